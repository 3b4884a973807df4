package client

// A small in-memory server that speaks the wire shapes of API v1, enough to
// test the client's own logic. It decodes requests with its own types, not
// the client's, so that tests see what the client really sends.

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startServer serves h on network ("tcp" or "unix") with HTTP/1.1 and
// cleartext HTTP/2, and returns an address for New and the server. configure
// functions may change the server before it starts.
func startServer(t testing.TB, network string, h http.Handler, configure ...func(*http.Server)) (string, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	for _, f := range configure {
		f(srv.Config)
	}
	var addr string
	switch network {
	case "tcp":
		srv.Start()
		addr = srv.Listener.Addr().String()
	case "unix":
		// Not t.TempDir: its paths can exceed the ~104-byte limit on
		// socket paths.
		dir, err := os.MkdirTemp("", "hippo-client")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path := filepath.Join(dir, "hippo.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		srv.Listener.Close()
		srv.Listener = l
		srv.Start()
		addr = "unix://" + path
	default:
		t.Fatalf("unknown network %q", network)
	}
	t.Cleanup(srv.Close)
	return addr, srv
}

// newTestClient returns a client for addr that is closed when the test ends.
func newTestClient(t testing.TB, addr string, opts ...Option) *Client {
	t.Helper()
	c, err := New(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// networks are the listeners every transport test runs on.
var networks = []string{"tcp", "unix"}

// transports are the client's two modes.
var transports = []struct {
	name string
	opts []Option
}{
	{"http2", nil},
	{"http1", []Option{WithHTTP1Pool(4)}},
}

// forEachTransport runs f on every network with every transport mode.
func forEachTransport(t *testing.T, f func(t *testing.T, network string, opts []Option)) {
	for _, network := range networks {
		for _, tr := range transports {
			t.Run(network+"/"+tr.name, func(t *testing.T) { f(t, network, tr.opts) })
		}
	}
}

// capturedRequest is what fakeServer saw of a request.
type capturedRequest struct {
	Method      string
	EscapedPath string
	RawQuery    string
	ProtoMajor  int
	Header      http.Header
	Body        []byte // for unary requests only
}

type fakeServer struct {
	mux *http.ServeMux

	mu struct {
		sync.Mutex
		collections map[string]*fakeCollection
		seq         uint64
		requests    []capturedRequest
	}
	notReady atomic.Bool
}

type fakeCollection struct {
	Name      string         `json:"name"`
	Dimension int            `json:"dimension"`
	Metric    string         `json:"metric"`
	Index     map[string]any `json:"index"`
	CreatedAt time.Time      `json:"created_at"`
	records   map[string]*fakeRecord
}

// fakeRecord is a record as the server stores and answers it.
type fakeRecord struct {
	ID        string          `json:"id"`
	Vector    []float32       `json:"vector"`
	Text      string          `json:"text,omitempty"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Seq       uint64          `json:"seq"`
}

// answer returns the record as the server answers it, with its vector as
// "vector_b64" if the request asked for that with ?vector_b64=1.
func (rec *fakeRecord) answer(r *http.Request) any {
	if r.URL.Query().Get("vector_b64") != "1" {
		return rec
	}
	raw := make([]byte, 0, 4*len(rec.Vector))
	for _, f := range rec.Vector {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
	}
	return struct {
		*fakeRecord
		Vector    []float32 `json:"vector,omitempty"` // hides the embedded one
		VectorB64 string    `json:"vector_b64"`
	}{fakeRecord: rec, VectorB64: base64.StdEncoding.EncodeToString(raw)}
}

// recordInput is a record as the server accepts it.
type recordInput struct {
	ID        string          `json:"id"`
	Vector    []float32       `json:"vector"`
	VectorB64 *string         `json:"vector_b64"`
	Text      string          `json:"text"`
	Metadata  json.RawMessage `json:"metadata"`
}

type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func invalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "invalid_argument", fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{http.StatusNotFound, "not_found", fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]any{"error": map[string]any{
		"code": e.code, "message": e.message, "details": map[string]any{"reason": "test"},
	}})
}

// vector returns the input's vector from either form.
func (in *recordInput) vector() ([]float32, *apiError) {
	if in.VectorB64 == nil {
		return in.Vector, nil
	}
	raw, err := base64.StdEncoding.DecodeString(*in.VectorB64)
	if err != nil || len(raw)%4 != 0 {
		return nil, invalid("bad vector_b64")
	}
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v, nil
}

func newFakeServer() *fakeServer {
	s := &fakeServer{mux: http.NewServeMux()}
	s.mu.collections = make(map[string]*fakeCollection)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.notReady.Load() {
			writeJSON(w, 503, map[string]any{"status": "starting", "store": "opening"})
			return
		}
		writeJSON(w, 200, map[string]any{"status": "ready", "store": "ok"})
	})
	s.handle("PUT /v1/collections/{c}", s.createCollection)
	s.handle("GET /v1/collections", s.listCollections)
	s.handle("GET /v1/collections/{c}", s.getCollection)
	s.handle("DELETE /v1/collections/{c}", s.deleteCollection)
	s.handle("PUT /v1/collections/{c}/records/{id}", s.upsert)
	s.handle("GET /v1/collections/{c}/records/{id}", s.get)
	s.handle("DELETE /v1/collections/{c}/records/{id}", s.delete)
	s.handle("POST /v1/collections/{c}/records", s.upsertBatch)
	s.handle("GET /v1/collections/{c}/records", s.list)
	s.handle("POST /v1/collections/{c}/search", s.search)
	s.mux.HandleFunc("POST /v1/collections/{c}/import", s.importRecords)
	s.mux.HandleFunc("GET /v1/collections/{c}/export", s.export)
	s.mux.HandleFunc("POST /v1/collections/{c}/search/batch", s.searchBatch)
	return s
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// handle registers a unary handler: it gets the whole body, and what it
// returns is written as a JSON answer or an error envelope.
func (s *fakeServer) handle(pattern string, f func(r *http.Request, body []byte) (int, any, *apiError)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		s.capture(r, body)
		if len(body) > 0 && r.Header.Get("Content-Type") != "application/json" {
			writeError(w, &apiError{415, "unsupported_media_type", "want application/json"})
			return
		}
		s.mu.Lock()
		status, answer, apiErr := f(r, body)
		s.mu.Unlock()
		if apiErr != nil {
			writeError(w, apiErr)
			return
		}
		writeJSON(w, status, answer)
	})
}

func (s *fakeServer) capture(r *http.Request, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.requests = append(s.mu.requests, capturedRequest{
		Method: r.Method, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		ProtoMajor: r.ProtoMajor, Header: r.Header.Clone(), Body: body,
	})
}

// lastRequest returns the last unary request the server saw.
func (s *fakeServer) lastRequest() capturedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.requests) == 0 {
		return capturedRequest{}
	}
	return s.mu.requests[len(s.mu.requests)-1]
}

func (s *fakeServer) requests() []capturedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mu.requests)
}

// collectionLocked returns the collection named in r's path.
func (s *fakeServer) collectionLocked(r *http.Request) (*fakeCollection, *apiError) {
	c := s.mu.collections[r.PathValue("c")]
	if c == nil {
		return nil, notFound("collection %q not found", r.PathValue("c"))
	}
	return c, nil
}

func (s *fakeServer) collectionJSON(c *fakeCollection, seq *uint64) map[string]any {
	out := map[string]any{
		"name": c.Name, "dimension": c.Dimension, "metric": c.Metric, "index": c.Index,
		"count": len(c.records), "created_at": c.CreatedAt,
		"stats": map[string]any{"segments": 1},
	}
	if seq != nil {
		out["seq"] = *seq
	}
	return out
}

func (s *fakeServer) createCollection(r *http.Request, body []byte) (int, any, *apiError) {
	var spec struct {
		Dimension int            `json:"dimension"`
		Metric    string         `json:"metric"`
		Index     map[string]any `json:"index"`
	}
	if err := json.Unmarshal(body, &spec); err != nil {
		return 0, nil, invalid("bad body: %v", err)
	}
	if spec.Dimension <= 0 {
		return 0, nil, invalid("dimension must be positive")
	}
	name := r.PathValue("c")
	if c := s.mu.collections[name]; c != nil {
		if c.Dimension == spec.Dimension && c.Metric == spec.Metric && fmt.Sprint(c.Index) == fmt.Sprint(spec.Index) {
			var zero uint64
			return http.StatusOK, s.collectionJSON(c, &zero), nil
		}
		return 0, nil, &apiError{http.StatusConflict, "conflict", fmt.Sprintf("collection %q exists with other settings", name)}
	}
	c := &fakeCollection{Name: name, Dimension: spec.Dimension, Metric: spec.Metric, Index: spec.Index,
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), records: make(map[string]*fakeRecord)}
	s.mu.collections[name] = c
	s.mu.seq++
	return http.StatusCreated, s.collectionJSON(c, &s.mu.seq), nil
}

func (s *fakeServer) listCollections(r *http.Request, body []byte) (int, any, *apiError) {
	out := []any{}
	names := make([]string, 0, len(s.mu.collections))
	for name := range s.mu.collections {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, s.collectionJSON(s.mu.collections[name], nil))
	}
	return 200, map[string]any{"collections": out}, nil
}

func (s *fakeServer) getCollection(r *http.Request, body []byte) (int, any, *apiError) {
	c, err := s.collectionLocked(r)
	if err != nil {
		return 0, nil, err
	}
	return 200, s.collectionJSON(c, nil), nil
}

func (s *fakeServer) deleteCollection(r *http.Request, body []byte) (int, any, *apiError) {
	c, err := s.collectionLocked(r)
	if err != nil {
		return 0, nil, err
	}
	delete(s.mu.collections, c.Name)
	s.mu.seq++
	return 200, map[string]any{"seq": s.mu.seq}, nil
}

// putLocked validates and stores one record.
func (s *fakeServer) putLocked(c *fakeCollection, in *recordInput) *apiError {
	if in.ID == "" {
		return invalid("empty id")
	}
	v, err := in.vector()
	if err != nil {
		return err
	}
	if len(v) != c.Dimension {
		return invalid("vector has %d dimensions, want %d", len(v), c.Dimension)
	}
	for _, f := range v {
		if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
			return invalid("vector holds NaN or an infinity")
		}
	}
	s.mu.seq++
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := &fakeRecord{ID: in.ID, Vector: v, Text: in.Text, Metadata: in.Metadata, CreatedAt: now, UpdatedAt: now, Seq: s.mu.seq}
	if old := c.records[in.ID]; old != nil {
		rec.CreatedAt = old.CreatedAt
	}
	c.records[in.ID] = rec
	return nil
}

func (s *fakeServer) upsert(r *http.Request, body []byte) (int, any, *apiError) {
	c, apiErr := s.collectionLocked(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	var in recordInput
	if err := json.Unmarshal(body, &in); err != nil {
		return 0, nil, invalid("bad body: %v", err)
	}
	if in.ID != "" {
		return 0, nil, invalid("id belongs in the path")
	}
	in.ID = r.PathValue("id")
	if apiErr := s.putLocked(c, &in); apiErr != nil {
		return 0, nil, apiErr
	}
	return 200, map[string]any{"id": in.ID, "seq": s.mu.seq}, nil
}

func (s *fakeServer) get(r *http.Request, body []byte) (int, any, *apiError) {
	c, apiErr := s.collectionLocked(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	rec := c.records[r.PathValue("id")]
	if rec == nil {
		return 0, nil, notFound("record %q not found", r.PathValue("id"))
	}
	return 200, rec.answer(r), nil
}

func (s *fakeServer) delete(r *http.Request, body []byte) (int, any, *apiError) {
	c, apiErr := s.collectionLocked(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	if c.records[r.PathValue("id")] == nil {
		return 0, nil, notFound("record %q not found", r.PathValue("id"))
	}
	delete(c.records, r.PathValue("id"))
	s.mu.seq++
	return 200, map[string]any{"seq": s.mu.seq}, nil
}

func (s *fakeServer) upsertBatch(r *http.Request, body []byte) (int, any, *apiError) {
	c, apiErr := s.collectionLocked(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	var in struct {
		Records []recordInput `json:"records"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return 0, nil, invalid("bad body: %v", err)
	}
	// All or nothing: validate everything first.
	for i := range in.Records {
		v, apiErr := in.Records[i].vector()
		if apiErr != nil {
			return 0, nil, apiErr
		}
		if len(v) != c.Dimension || in.Records[i].ID == "" {
			return 0, nil, invalid("record %d is invalid", i)
		}
	}
	for i := range in.Records {
		s.putLocked(c, &in.Records[i])
	}
	return 200, map[string]any{"upserted": len(in.Records), "seq": s.mu.seq}, nil
}

func (s *fakeServer) list(r *http.Request, body []byte) (int, any, *apiError) {
	c, apiErr := s.collectionLocked(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, nil, invalid("bad limit")
		}
		limit = n
	}
	after := ""
	if cursor := r.URL.Query().Get("cursor"); cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil {
			return 0, nil, invalid("bad cursor")
		}
		after = string(raw)
	}
	ids := make([]string, 0, len(c.records))
	for id := range c.records {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	page := map[string]any{"records": []any{}, "next_cursor": nil}
	if len(ids) > limit {
		ids = ids[:limit]
		page["next_cursor"] = base64.RawURLEncoding.EncodeToString([]byte(ids[len(ids)-1]))
	}
	records := make([]any, len(ids))
	for i, id := range ids {
		records[i] = c.records[id].answer(r)
	}
	page["records"] = records
	return 200, page, nil
}

// searchInput is a search body as the server accepts it.
type searchInput struct {
	Vector    []float32      `json:"vector"`
	VectorB64 *string        `json:"vector_b64"`
	K         int            `json:"k"`
	Filter    map[string]any `json:"filter"`
	Ef        int            `json:"ef"`
	Include   []string       `json:"include"`
}

func (s *fakeServer) searchLocked(c *fakeCollection, in *searchInput) (map[string]any, *apiError) {
	v, apiErr := (&recordInput{Vector: in.Vector, VectorB64: in.VectorB64}).vector()
	if apiErr != nil {
		return nil, apiErr
	}
	if len(v) != c.Dimension {
		return nil, invalid("query has %d dimensions, want %d", len(v), c.Dimension)
	}
	k := in.K
	if k == 0 {
		k = 10
	}
	type hit struct {
		rec      *fakeRecord
		distance float32
	}
	var hits []hit
	for _, rec := range c.records {
		if len(in.Filter) > 0 {
			var meta map[string]any
			json.Unmarshal(rec.Metadata, &meta)
			match := true
			for key, want := range in.Filter {
				if fmt.Sprint(meta[key]) != fmt.Sprint(want) {
					match = false
				}
			}
			if !match {
				continue
			}
		}
		var d float32
		for i := range v {
			d += (v[i] - rec.Vector[i]) * (v[i] - rec.Vector[i])
		}
		if math.IsInf(float64(d), 0) {
			d = math.MaxFloat32 // JSON has no infinities
		}
		hits = append(hits, hit{rec, d})
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].distance != hits[j].distance {
			return hits[i].distance < hits[j].distance
		}
		return hits[i].rec.ID < hits[j].rec.ID
	})
	if len(hits) > k {
		hits = hits[:k]
	}
	results := []any{}
	for _, h := range hits {
		result := map[string]any{"id": h.rec.ID, "distance": h.distance}
		for _, what := range in.Include {
			switch what {
			case "metadata":
				result["metadata"] = h.rec.Metadata
			case "text":
				result["text"] = h.rec.Text
			case "vector":
				result["vector"] = h.rec.Vector
			}
		}
		results = append(results, result)
	}
	return map[string]any{"results": results, "seq": s.mu.seq}, nil
}

func (s *fakeServer) search(r *http.Request, body []byte) (int, any, *apiError) {
	c, apiErr := s.collectionLocked(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	var in searchInput
	if err := json.Unmarshal(body, &in); err != nil {
		return 0, nil, invalid("bad body: %v", err)
	}
	answer, apiErr := s.searchLocked(c, &in)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	return 200, answer, nil
}

func (s *fakeServer) importRecords(w http.ResponseWriter, r *http.Request) {
	s.capture(r, nil)
	if r.Header.Get("Content-Type") != "application/x-ndjson" {
		writeError(w, &apiError{415, "unsupported_media_type", "want application/x-ndjson"})
		return
	}
	abort := r.URL.Query().Get("on_error") == "abort"
	s.mu.Lock()
	c := s.mu.collections[r.PathValue("c")]
	s.mu.Unlock()
	if c == nil {
		writeError(w, notFound("collection %q not found", r.PathValue("c")))
		return
	}
	type lineError struct {
		Line    int    `json:"line"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	result := struct {
		Imported int         `json:"imported"`
		Failed   int         `json:"failed"`
		Errors   []lineError `json:"errors"`
		Aborted  bool        `json:"aborted"`
		Seq      uint64      `json:"seq"`
	}{Errors: []lineError{}}
	scanner := bufio.NewScanner(r.Body)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; scanner.Scan(); line++ {
		if len(scanner.Bytes()) == 0 {
			continue
		}
		var in recordInput
		var apiErr *apiError
		if err := json.Unmarshal(scanner.Bytes(), &in); err != nil {
			apiErr = invalid("line %d: %v", line, err)
		} else {
			s.mu.Lock()
			apiErr = s.putLocked(c, &in)
			s.mu.Unlock()
		}
		if apiErr != nil {
			result.Failed++
			result.Errors = append(result.Errors, lineError{line, apiErr.code, apiErr.message})
			if abort {
				result.Aborted = true
				break
			}
			continue
		}
		result.Imported++
	}
	if err := scanner.Err(); err != nil {
		writeError(w, invalid("read body: %v", err))
		return
	}
	s.mu.Lock()
	result.Seq = s.mu.seq
	s.mu.Unlock()
	writeJSON(w, 200, result)
}

func (s *fakeServer) export(w http.ResponseWriter, r *http.Request) {
	s.capture(r, nil)
	s.mu.Lock()
	c := s.mu.collections[r.PathValue("c")]
	var records []*fakeRecord
	if c != nil {
		for _, rec := range c.records {
			records = append(records, rec)
		}
	}
	s.mu.Unlock()
	if c == nil {
		writeError(w, notFound("collection %q not found", r.PathValue("c")))
		return
	}
	sort.Slice(records, func(i, j int) bool { return records[i].ID < records[j].ID })
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, rec := range records {
		if err := enc.Encode(rec.answer(r)); err != nil {
			return
		}
	}
}

func (s *fakeServer) searchBatch(w http.ResponseWriter, r *http.Request) {
	s.capture(r, nil)
	s.mu.Lock()
	c := s.mu.collections[r.PathValue("c")]
	s.mu.Unlock()
	if c == nil {
		writeError(w, notFound("collection %q not found", r.PathValue("c")))
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil && r.ProtoMajor == 1 {
		writeError(w, &apiError{500, "internal", err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(200)
	rc.Flush()
	dec := json.NewDecoder(r.Body)
	enc := json.NewEncoder(w)
	for {
		var in searchInput
		err := dec.Decode(&in)
		if err == io.EOF {
			return
		}
		if err != nil {
			enc.Encode(map[string]any{"error": map[string]any{"code": "invalid_argument", "message": err.Error()}})
			return
		}
		s.mu.Lock()
		answer, apiErr := s.searchLocked(c, &in)
		s.mu.Unlock()
		if apiErr != nil {
			enc.Encode(map[string]any{"error": map[string]any{"code": apiErr.code, "message": apiErr.message}})
		} else {
			enc.Encode(answer)
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
