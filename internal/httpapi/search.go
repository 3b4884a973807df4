package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/filter"
)

type wireSearch struct {
	Vector    jsonVector      `json:"vector"`
	VectorB64 vectorB64Field  `json:"vector_b64"`
	K         *int            `json:"k"`
	Ef        int             `json:"ef"`
	Filter    json.RawMessage `json:"filter"`
	Include   *[]string       `json:"include"`
}

func (s *wireSearch) vectorB64() *vectorB64Field { return &s.VectorB64 }

type wireHit struct {
	ID       string         `json:"id"`
	Distance float32        `json:"distance"`
	Metadata map[string]any `json:"metadata,omitempty"`
	Text     string         `json:"text,omitempty"`
	Vector   jsonVector     `json:"vector,omitempty"`
}

type wireSearchResult struct {
	Results []wireHit   `json:"results"`
	Seq     uint64      `json:"seq"`
	Plan    engine.Plan `json:"plan"`
}

type include struct{ metadata, text, vector bool }

// defaultK is k when a search does not say.
const defaultK = 10

func (s *wireSearch) query() (*engine.Query, include, error) {
	v, err := pickVector(s.Vector, s.VectorB64.b64)
	if err != nil {
		return nil, include{}, newError("invalid_argument", err.Error())
	}
	if v == nil {
		return nil, include{}, newError("invalid_argument", "vector (or vector_b64) is required")
	}
	q := &engine.Query{Vector: v, K: defaultK, Ef: s.Ef}
	if s.K != nil {
		q.K = *s.K
	}
	if len(s.Filter) > 0 {
		if q.Filter, err = filter.Parse(s.Filter); err != nil {
			return nil, include{}, err
		}
		if q.Filter.MatchesAll() {
			q.Filter = nil
		}
	}
	inc := include{metadata: true}
	if s.Include != nil {
		inc = include{}
		for _, f := range *s.Include {
			switch f {
			case "metadata":
				inc.metadata = true
			case "text":
				inc.text = true
			case "vector":
				inc.vector = true
			default:
				return nil, include{}, newError("invalid_argument", fmt.Sprintf("include: unknown field %q (use metadata, text, vector)", f))
			}
		}
	}
	return q, inc, nil
}

// runSearch executes one search body and builds its answer.
func (a *API) runSearch(collection string, body *wireSearch) (*wireSearchResult, error) {
	q, inc, err := body.query()
	if err != nil {
		return nil, err
	}
	res, err := a.engine.Search(collection, q)
	if err != nil {
		return nil, err
	}
	out := &wireSearchResult{Results: make([]wireHit, len(res.Hits)), Seq: res.Seq, Plan: res.Plan}
	for i, h := range res.Hits {
		out.Results[i] = wireHit{ID: h.ID, Distance: h.Distance}
		if inc.metadata {
			out.Results[i].Metadata = h.Metadata
		}
	}
	if inc.text || inc.vector {
		ids := make([]string, len(res.Hits))
		for i, h := range res.Hits {
			ids[i] = h.ID
		}
		recs, err := a.engine.GetRecords(collection, ids)
		if err != nil {
			return nil, err
		}
		for i, rec := range recs {
			if rec == nil {
				continue // deleted since the search ran
			}
			if inc.text {
				out.Results[i].Text = rec.Text
			}
			if inc.vector {
				out.Results[i].Vector = rec.Vector
			}
		}
	}
	return out, nil
}

func (a *API) search(w http.ResponseWriter, r *http.Request) {
	var body wireSearch
	if err := decodeVectorBody(w, r, MaxRecordBodyBytes, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	out, err := a.runSearch(r.PathValue("collection"), &body)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// searchBatch answers an NDJSON stream of searches with an NDJSON stream of
// answers, one line per query line, in order. Answers are flushed whenever
// the next query is not already buffered, so a client that streams queries
// gets answers as it goes.
func (a *API) searchBatch(w http.ResponseWriter, r *http.Request) {
	collection := r.PathValue("collection")
	if err := checkContentType(r, "application/x-ndjson", "application/ndjson", "application/jsonl"); err != nil {
		a.writeError(w, r, err)
		return
	}
	if _, err := a.engine.Collection(collection); err != nil {
		a.writeError(w, r, err)
		return
	}
	// HTTP/1.1 needs this to read the request while answering; HTTP/2 is
	// full duplex already and reports an error we can ignore.
	_ = http.NewResponseController(w).EnableFullDuplex()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	rc := http.NewResponseController(w)
	lines := newLineReader(r.Body, MaxLineBytes)
	queries := 0
	for stop := false; !stop; {
		line, n, err := lines.next()
		if err == io.EOF {
			break
		}
		var answer any
		switch {
		case errors.Is(err, errLineTooLong):
			answer = errorLine(n, newError("payload_too_large", err.Error()))
		case err != nil:
			// The body broke off: say so on the line it happened and stop.
			answer, stop = errorLine(n, fmt.Errorf("%w: read body: %v", engine.ErrInvalid, err)), true
		case queries == MaxBatchQueries:
			answer, stop = errorLine(n, newError("payload_too_large", fmt.Sprintf("a batch holds at most %d queries", MaxBatchQueries))), true
		default:
			queries++
			answer = a.searchLine(collection, line, n)
		}
		out, _ := json.Marshal(answer)
		if _, err := bw.Write(append(out, '\n')); err != nil {
			return
		}
		if !lines.buffered() {
			if bw.Flush() != nil || rc.Flush() != nil {
				return
			}
		}
	}
	bw.Flush()
}

// searchLine answers one line of a batch search.
func (a *API) searchLine(collection string, line []byte, n int) any {
	var body wireSearch
	if err := decodeCutVector(line, &body); err != nil {
		return errorLine(n, err)
	}
	res, err := a.runSearch(collection, &body)
	if err != nil {
		return errorLine(n, err)
	}
	return res
}

// errorLine is the answer line of a query that failed.
func errorLine(line int, err error) map[string]any {
	ae := catalog(err)
	details := map[string]any{"line": line}
	for k, v := range ae.Details {
		details[k] = v
	}
	return map[string]any{"error": &apiError{Code: ae.Code, Message: ae.Message, Details: details}}
}
