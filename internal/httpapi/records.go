package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/wire"
)

// wireRecordIn is a record as clients send it. The time and seq fields of an
// exported record are accepted and ignored, so an export imports as it is.
type wireRecordIn struct {
	ID        *string         `json:"id"`
	Vector    jsonVector      `json:"vector"`
	VectorB64 vectorB64Field  `json:"vector_b64"`
	Text      string          `json:"text"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
	Seq       json.RawMessage `json:"seq"`
}

func (in *wireRecordIn) vectorB64() *vectorB64Field { return &in.VectorB64 }

// toInput converts to the engine's form. pathID, if not empty, is the id from
// the URL, which a body id must match.
func (in *wireRecordIn) toInput(pathID string) (engine.RecordInput, error) {
	id := pathID
	switch {
	case in.ID != nil && pathID != "" && *in.ID != pathID:
		return engine.RecordInput{}, newError("invalid_argument", fmt.Sprintf("body id %q differs from the id %q in the path", *in.ID, pathID))
	case in.ID != nil:
		id = *in.ID
	case pathID == "":
		return engine.RecordInput{}, newError("invalid_argument", "record has no id")
	}
	if err := engine.ValidID(id); err != nil {
		return engine.RecordInput{}, err
	}
	v, err := pickVector(in.Vector, in.VectorB64.b64)
	if err != nil {
		return engine.RecordInput{}, newError("invalid_argument", fmt.Sprintf("record %q: %v", id, err))
	}
	return engine.RecordInput{ID: id, Vector: v, Text: in.Text, Metadata: in.Metadata}, nil
}

func (a *API) putRecord(w http.ResponseWriter, r *http.Request) {
	var body wireRecordIn
	if err := decodeVectorBody(w, r, MaxRecordBodyBytes, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := engine.ValidID(id); err != nil {
		a.writeError(w, r, err)
		return
	}
	in, err := body.toInput(id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	seq, err := a.engine.Upsert(r.Context(), r.PathValue("collection"), []engine.RecordInput{in})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "seq": seq})
}

func (a *API) getRecord(w http.ResponseWriter, r *http.Request) {
	rec, err := a.engine.Get(r.PathValue("collection"), r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeRecord(w, rec, vectorsAsB64(r))
}

func (a *API) deleteRecord(w http.ResponseWriter, r *http.Request) {
	seq, err := a.engine.Delete(r.Context(), r.PathValue("collection"), r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"seq": seq})
}

func (a *API) upsertRecords(w http.ResponseWriter, r *http.Request) {
	var body upsertBody
	if err := decodeBody(w, r, MaxBodyBytes, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	collection := r.PathValue("collection")
	inputs, err := a.batchInputs(collection, &body)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	seq, err := a.engine.Upsert(r.Context(), collection, inputs)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"upserted": len(inputs), "seq": seq})
}

// upsertBody is the body of a batch upsert, over HTTP (POST
// /v1/collections/{c}/records) and over the WebSocket (op upsert).
type upsertBody struct {
	Records []wireRecordIn `json:"records"`
}

// batchInputs converts the records of a batch upsert into collection to the
// engine's form and validates them, so that both transports refuse the same
// batches with the same errors. An error about one record names it: its
// message starts with records[i] and its details hold "index": i.
func (a *API) batchInputs(collection string, body *upsertBody) ([]engine.RecordInput, error) {
	if len(body.Records) > engine.MaxBatchRecords {
		return nil, newError("payload_too_large",
			fmt.Sprintf("a batch holds at most %d records, got %d; use /import for more", engine.MaxBatchRecords, len(body.Records)))
	}
	inputs := make([]engine.RecordInput, len(body.Records))
	for i := range body.Records {
		in, err := body.Records[i].toInput("")
		if err == nil {
			// Validated here, not by Upsert, to say which record failed;
			// Upsert does not validate them again.
			err = a.engine.ValidateRecord(collection, &in)
		}
		if errors.Is(err, engine.ErrNotFound) {
			return nil, err // the collection: the batch's error, not the record's
		}
		if err != nil {
			return nil, withIndex(err, i)
		}
		inputs[i] = in
	}
	return inputs, nil
}

// withIndex adds the position of the failing record to an error.
func withIndex(err error, i int) error {
	ae := catalog(err)
	out := *ae
	out.Message = fmt.Sprintf("records[%d]: %s", i, ae.Message)
	out.Details = map[string]any{"index": i}
	for k, v := range ae.Details {
		out.Details[k] = v
	}
	return &out
}

func (a *API) listRecords(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			a.writeError(w, r, newError("invalid_argument", fmt.Sprintf("limit %q is not a number", s)))
			return
		}
		limit = n
	}
	after := ""
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(raw) == 0 || len(raw) > engine.MaxIDBytes {
			a.writeError(w, r, newError("invalid_argument", "cursor is not one this server issued"))
			return
		}
		after = string(raw)
	}
	recs, next, err := a.engine.List(r.PathValue("collection"), after, limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	b64 := vectorsAsB64(r)
	body := []byte(`{"records":[`)
	for i, rec := range recs {
		if i > 0 {
			body = append(body, ',')
		}
		body = wire.AppendRecord(body, rec, b64)
	}
	body = append(body, `],"next_cursor":`...)
	if next != "" {
		body = wire.AppendString(body, base64.RawURLEncoding.EncodeToString([]byte(next)))
	} else {
		body = append(body, "null"...)
	}
	writeBody(w, http.StatusOK, append(body, "}\n"...))
}

func (a *API) exportRecords(w http.ResponseWriter, r *http.Request) {
	records, err := a.engine.Export(r.PathValue("collection"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	b64 := vectorsAsB64(r)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 256<<10)
	var line []byte
	for rec, err := range records {
		if err != nil {
			// Headers are gone; end the stream with an error line the client
			// can recognise, and abort so the body is not mistaken as whole.
			a.log.Error("export", "collection", r.PathValue("collection"), "err", err)
			line, _ := json.Marshal(map[string]any{"error": catalog(err)})
			bw.Write(append(line, '\n'))
			bw.Flush()
			panic(http.ErrAbortHandler)
		}
		line = append(wire.AppendRecord(line[:0], rec, b64), '\n')
		if _, err := bw.Write(line); err != nil {
			return // the client went away
		}
	}
	bw.Flush()
}

// importChunkRecords is how many records an import commits together. Chunks
// are pipelined: one commits (fsync) while the next is parsed, so smaller
// chunks than a full batch overlap parsing with disk writes.
const importChunkRecords = 250

// chunkWriter commits import chunks one at a time in the background and
// keeps the count of what committed.
type chunkWriter struct {
	api        *API
	ctx        context.Context
	collection string
	inflight   chan chunkResult
	imported   int
	seq        uint64
}

type chunkResult struct {
	n   int
	seq uint64
	err error
}

// submit waits for the chunk in flight, then starts committing records.
func (cw *chunkWriter) submit(records []engine.RecordInput) error {
	if err := cw.wait(); err != nil {
		return err
	}
	ch := make(chan chunkResult, 1)
	cw.inflight = ch
	go func() {
		seq, err := cw.api.engine.Upsert(cw.ctx, cw.collection, records)
		ch <- chunkResult{len(records), seq, err}
	}()
	return nil
}

// wait waits for the chunk in flight and counts it.
func (cw *chunkWriter) wait() error {
	if cw.inflight == nil {
		return nil
	}
	res := <-cw.inflight
	cw.inflight = nil
	if res.err != nil {
		return res.err
	}
	cw.imported += res.n
	cw.seq = res.seq
	return nil
}

type importLineError struct {
	Line    int    `json:"line"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (a *API) importRecords(w http.ResponseWriter, r *http.Request) {
	collection := r.PathValue("collection")
	if err := checkContentType(r, "application/x-ndjson", "application/ndjson", "application/jsonl"); err != nil {
		a.writeError(w, r, err)
		return
	}
	q, err := queryParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	abort := false
	switch mode := q.Get("on_error"); mode {
	case "", "skip":
	case "abort":
		abort = true
	default:
		a.writeError(w, r, newError("invalid_argument", fmt.Sprintf("on_error must be skip or abort, got %q", mode)))
		return
	}
	if _, err := a.engine.Collection(collection); err != nil {
		a.writeError(w, r, err)
		return
	}
	var (
		failed     int
		lineErrors = []importLineError{}
		truncated  bool
		aborted    bool
		chunk      []engine.RecordInput
	)
	cw := &chunkWriter{api: a, ctx: r.Context(), collection: collection}
	fail := func(line int, err error) {
		failed++
		if len(lineErrors) == maxImportErrors {
			truncated = true
			return
		}
		ae := catalog(err)
		lineErrors = append(lineErrors, importLineError{Line: line, Code: ae.Code, Message: ae.Message})
	}
	// flush commits the chunk in the background; finish waits for it.
	flush := func() error {
		if len(chunk) == 0 {
			return cw.wait()
		}
		err := cw.submit(chunk)
		chunk = make([]engine.RecordInput, 0, importChunkRecords)
		return err
	}
	finish := func() error {
		if err := flush(); err != nil {
			return err
		}
		return cw.wait()
	}
	lines := newLineReader(r.Body, MaxLineBytes)
	for !aborted {
		line, n, err := lines.next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			// The body broke off (client gone, or a limit): keep what was
			// committed, report the failure.
			if ferr := finish(); ferr != nil {
				err = ferr
			}
			a.writeError(w, r, fmt.Errorf("%w: read body after %d records were imported: %v", engine.ErrInvalid, cw.imported, err))
			return
		}
		var in engine.RecordInput
		if err == nil {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			in, err = decodeRecordLine(line)
		}
		if err == nil {
			err = a.engine.ValidateRecord(collection, &in)
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				err = newError("payload_too_large", err.Error())
			}
			fail(n, err)
			aborted = abort
			continue
		}
		chunk = append(chunk, in)
		if len(chunk) == importChunkRecords {
			if err := flush(); err != nil {
				a.writeError(w, r, fmt.Errorf("after %d records were imported: %w", cw.imported, err))
				return
			}
		}
	}
	if err := finish(); err != nil {
		a.writeError(w, r, fmt.Errorf("after %d records were imported: %w", cw.imported, err))
		return
	}
	seq := cw.seq
	if seq == 0 {
		seq = a.engine.LastSeq()
	}
	out := map[string]any{"imported": cw.imported, "failed": failed, "errors": lineErrors, "aborted": aborted, "seq": seq}
	if truncated {
		out["errors_truncated"] = true
	}
	writeJSON(w, http.StatusOK, out)
}

func decodeRecordLine(line []byte) (engine.RecordInput, error) {
	var body wireRecordIn
	if err := decodeCutVector(line, &body); err != nil {
		return engine.RecordInput{}, err
	}
	return body.toInput("")
}
