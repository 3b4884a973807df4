package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// setup starts a fake server on network and returns it with a client and a
// collection "docs" of dimension dim.
func setup(t *testing.T, network string, dim int, opts ...Option) (*fakeServer, *Client) {
	t.Helper()
	s := newFakeServer()
	addr, _ := startServer(t, network, s)
	c := newTestClient(t, addr, opts...)
	if _, _, err := c.CreateCollection(t.Context(), "docs", CollectionSpec{Dimension: dim, Metric: MetricL2}); err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestCollections(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		s := newFakeServer()
		addr, _ := startServer(t, network, s)
		c := newTestClient(t, addr, opts...)
		ctx := t.Context()

		spec := CollectionSpec{Dimension: 4, Metric: MetricCosine,
			Index: IndexSpec{Type: IndexHNSW, M: 16, EfConstruction: 200, Ef: 64, Params: map[string]any{"future": "x"}}}
		coll, created, err := c.CreateCollection(ctx, "docs", spec)
		if err != nil || !created {
			t.Fatalf("CreateCollection = %v, %v, %v; want created", coll, created, err)
		}
		if coll.Name != "docs" || coll.Dimension != 4 || coll.Metric != MetricCosine || coll.Seq == 0 || coll.CreatedAt.IsZero() {
			t.Errorf("created collection = %+v", coll)
		}
		if !reflect.DeepEqual(coll.Index, spec.Index) {
			t.Errorf("index = %+v, want %+v", coll.Index, spec.Index)
		}
		var sent map[string]any
		json.Unmarshal(s.lastRequest().Body, &sent)
		wantSent := map[string]any{"dimension": 4.0, "metric": "cosine",
			"index": map[string]any{"type": "hnsw", "m": 16.0, "ef_construction": 200.0, "ef": 64.0, "future": "x"}}
		if !reflect.DeepEqual(sent, wantSent) {
			t.Errorf("sent %v, want %v", sent, wantSent)
		}

		coll, created, err = c.CreateCollection(ctx, "docs", spec)
		if err != nil || created || coll.Seq != 0 {
			t.Errorf("CreateCollection again = %+v, %v, %v; want existing with seq 0", coll, created, err)
		}
		_, _, err = c.CreateCollection(ctx, "docs", CollectionSpec{Dimension: 5})
		if !IsConflict(err) || IsNotFound(err) {
			t.Errorf("CreateCollection with other settings: err = %v, want a conflict", err)
		}

		if _, _, err := c.CreateCollection(ctx, "other", CollectionSpec{Dimension: 2}); err != nil {
			t.Fatal(err)
		}
		if got := s.lastRequest().Body; string(got) != `{"dimension":2}` {
			t.Errorf("zero spec fields sent: %s", got)
		}
		list, err := c.ListCollections(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "docs" || list[1].Name != "other" {
			t.Errorf("ListCollections = %+v, %v", list, err)
		}
		if list[0].Stats["segments"] != 1.0 {
			t.Errorf("stats = %v", list[0].Stats)
		}
		got, err := c.GetCollection(ctx, "docs")
		if err != nil || got.Name != "docs" || got.Count != 0 {
			t.Errorf("GetCollection = %+v, %v", got, err)
		}
		seq, err := c.DeleteCollection(ctx, "docs")
		if err != nil || seq == 0 {
			t.Errorf("DeleteCollection = %d, %v", seq, err)
		}
		if _, err := c.GetCollection(ctx, "docs"); !IsNotFound(err) {
			t.Errorf("GetCollection after delete: err = %v, want not found", err)
		}
		if _, err := c.DeleteCollection(ctx, "docs"); !IsNotFound(err) {
			t.Errorf("DeleteCollection again: err = %v, want not found", err)
		}
	})
}

func TestIndexSpecJSON(t *testing.T) {
	f := func(in string, want IndexSpec) {
		t.Helper()
		var got IndexSpec
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Fatalf("Unmarshal(%s): %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Unmarshal(%s) = %+v, want %+v", in, got, want)
		}
		out, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		json.Unmarshal([]byte(in), &a)
		json.Unmarshal(out, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("round trip of %s gave %s", in, out)
		}
	}
	f(`{"type":"flat"}`, IndexSpec{Type: IndexFlat})
	f(`{"type":"hnsw","m":8,"ef_construction":100,"ef":32}`, IndexSpec{Type: IndexHNSW, M: 8, EfConstruction: 100, Ef: 32})
	f(`{"type":"hnsw","m":16,"ef_construction":200,"ef":64,"quantization":"int8"}`,
		IndexSpec{Type: IndexHNSW, M: 16, EfConstruction: 200, Ef: 64, Quantization: QuantizationInt8})
	f(`{"type":"ivfpq","nlist":256,"m":98,"nprobe":8,"rerank":100}`, IndexSpec{Type: IndexIVFPQ, NList: 256, M: 98, NProbe: 8, Rerank: 100})
	// Members this client does not know stay in Params, next to known ones.
	f(`{"type":"ivfpq","nlist":256,"nprobe":8,"opq":true,"train":{"iters":10}}`, IndexSpec{Type: IndexIVFPQ, NList: 256, NProbe: 8,
		Params: map[string]any{"opq": true, "train": map[string]any{"iters": 10.0}}})

	for _, key := range []string{"m", "quantization", "nlist", "nprobe", "rerank"} {
		if _, err := json.Marshal(IndexSpec{Params: map[string]any{key: 3}}); err == nil {
			t.Errorf("Params holding the named field %q: no error", key)
		}
	}
}

func TestRecords(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		s, c := setup(t, network, 3, opts...)
		ctx := t.Context()
		rec := Record{ID: "a", Vector: []float32{1, -2.5, float32(math.SmallestNonzeroFloat32)}, Text: "hello",
			Metadata: map[string]any{"kind": "fact", "n": 3.0}}
		seq, err := c.Upsert(ctx, "docs", rec)
		if err != nil || seq == 0 {
			t.Fatalf("Upsert = %d, %v", seq, err)
		}
		got, err := c.Get(ctx, "docs", "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != rec.ID || !slices.Equal(got.Vector, rec.Vector) || got.Text != rec.Text ||
			!reflect.DeepEqual(got.Metadata, rec.Metadata) || got.Seq != seq || got.CreatedAt.IsZero() {
			t.Errorf("Get = %+v, want %+v with seq %d", got, rec, seq)
		}
		dseq, err := c.Delete(ctx, "docs", "a")
		if err != nil || dseq <= seq {
			t.Errorf("Delete = %d, %v", dseq, err)
		}
		if _, err := c.Get(ctx, "docs", "a"); !IsNotFound(err) {
			t.Errorf("Get after Delete: err = %v, want not found", err)
		}
		if _, err := c.Delete(ctx, "docs", "a"); !IsNotFound(err) {
			t.Errorf("Delete again: err = %v, want not found", err)
		}
		if _, err := c.Upsert(ctx, "docs", Record{ID: "b", Vector: []float32{1}}); !isCode(err, CodeInvalidArgument, 400) {
			t.Errorf("Upsert of a wrong dimension: err = %v, want invalid_argument", err)
		}
		_ = s
	})
}

func isCode(err error, code string, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code && e.Status == status
}

// TestVectorOnTheWire checks that writes send "vector_b64" by default and
// "vector" with WithJSONVectors.
func TestVectorOnTheWire(t *testing.T) {
	v := []float32{0.5, -1, float32(math.Copysign(0, -1)), math.MaxFloat32, math.SmallestNonzeroFloat32, 1.0 / 3}
	for _, jsonVectors := range []bool{false, true} {
		var opts []Option
		if jsonVectors {
			opts = append(opts, WithJSONVectors())
		}
		s, c := setup(t, "tcp", len(v), opts...)
		ctx := t.Context()
		check := func(what string, body []byte) {
			t.Helper()
			var sent map[string]json.RawMessage
			if err := json.Unmarshal(body, &sent); err != nil {
				t.Fatalf("%s: %v in %s", what, err, body)
			}
			_, hasB64 := sent["vector_b64"]
			_, hasArray := sent["vector"]
			if hasB64 == jsonVectors || hasArray != jsonVectors {
				t.Errorf("%s, WithJSONVectors %v: sent %s", what, jsonVectors, body)
			}
			if hasB64 {
				var b64 string
				json.Unmarshal(sent["vector_b64"], &b64)
				if got, err := decodeVector(b64); err != nil || !slices.Equal(got, v) {
					t.Errorf("%s: vector_b64 decodes to %v, %v; want %v", what, got, err, v)
				}
			}
		}
		if _, err := c.Upsert(ctx, "docs", Record{ID: "a", Vector: v}); err != nil {
			t.Fatal(err)
		}
		check("Upsert", s.lastRequest().Body)
		if strings.Contains(string(s.lastRequest().Body), `"id"`) {
			t.Errorf("Upsert sent the id in the body: %s", s.lastRequest().Body)
		}

		if _, _, err := c.UpsertBatch(ctx, "docs", []Record{{ID: "b", Vector: v}}); err != nil {
			t.Fatal(err)
		}
		var batch struct{ Records []json.RawMessage }
		json.Unmarshal(s.lastRequest().Body, &batch)
		check("UpsertBatch", batch.Records[0])

		if _, err := c.Search(ctx, "docs", SearchRequest{Vector: v, K: 1}); err != nil {
			t.Fatal(err)
		}
		check("Search", s.lastRequest().Body)

		// Reads ask for vectors in the same form.
		got, err := c.Get(ctx, "docs", "a")
		if err != nil || !slices.Equal(got.Vector, v) {
			t.Errorf("Get = %v, %v; want vector %v", got, err, v)
		}
		if asked := s.lastRequest().RawQuery == "vector_b64=1"; asked == jsonVectors {
			t.Errorf("Get with WithJSONVectors %v: query %q", jsonVectors, s.lastRequest().RawQuery)
		}
		for record, err := range c.List(ctx, "docs", nil) {
			if err != nil || !slices.Equal(record.Vector, v) {
				t.Errorf("List yielded %v, %v; want vector %v", record, err, v)
			}
		}
		for record, err := range c.Export(ctx, "docs") {
			if err != nil || !slices.Equal(record.Vector, v) {
				t.Errorf("Export yielded %v, %v; want vector %v", record, err, v)
			}
		}
	}
}

// TestIDEscaping checks that any record id reaches the server intact, as one
// escaped path segment.
func TestIDEscaping(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		s, c := setup(t, network, 1, opts...)
		ctx := t.Context()
		ids := map[string]string{
			"plain":        "/v1/collections/docs/records/plain",
			"a/b":          "/v1/collections/docs/records/a%2Fb",
			"a b":          "/v1/collections/docs/records/a%20b",
			"q?x=1#frag":   "/v1/collections/docs/records/q%3Fx=1%23frag",
			"100%":         "/v1/collections/docs/records/100%25",
			"%41":          "/v1/collections/docs/records/%2541",
			".":            "/v1/collections/docs/records/%2E",
			"..":           "/v1/collections/docs/records/%2E%2E",
			"../../x":      "/v1/collections/docs/records/..%2F..%2Fx",
			"ünï/cödé 😀":   "/v1/collections/docs/records/%C3%BCn%C3%AF%2Fc%C3%B6d%C3%A9%20%F0%9F%98%80",
			"+;,=&@:$!'()": "/v1/collections/docs/records/+%3B%2C=&@:$%21%27%28%29",
		}
		for id, wantPath := range ids {
			if _, err := c.Upsert(ctx, "docs", Record{ID: id, Vector: []float32{1}}); err != nil {
				t.Errorf("Upsert(%q): %v", id, err)
				continue
			}
			if got := s.lastRequest().EscapedPath; got != wantPath {
				t.Errorf("Upsert(%q) path = %s, want %s", id, got, wantPath)
			}
			got, err := c.Get(ctx, "docs", id)
			if err != nil || got.ID != id {
				t.Errorf("Get(%q) = %+v, %v", id, got, err)
			}
		}
		var listed []string
		for record, err := range c.List(ctx, "docs", nil) {
			if err != nil {
				t.Fatal(err)
			}
			listed = append(listed, record.ID)
		}
		if len(listed) != len(ids) {
			t.Errorf("listed %q, want the %d ids", listed, len(ids))
		}
		for id := range ids {
			if _, err := c.Delete(ctx, "docs", id); err != nil {
				t.Errorf("Delete(%q): %v", id, err)
			}
		}
	})
}

func TestEmptyNames(t *testing.T) {
	c, err := New("localhost:1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	checks := map[string]error{}
	_, _, checks["CreateCollection"] = c.CreateCollection(ctx, "", CollectionSpec{Dimension: 1})
	_, checks["GetCollection"] = c.GetCollection(ctx, "")
	_, checks["DeleteCollection"] = c.DeleteCollection(ctx, "")
	_, checks["Upsert"] = c.Upsert(ctx, "docs", Record{Vector: []float32{1}})
	_, checks["Get"] = c.Get(ctx, "docs", "")
	_, checks["Delete"] = c.Delete(ctx, "", "a")
	_, _, checks["UpsertBatch"] = c.UpsertBatch(ctx, "docs", []Record{{ID: "a"}, {}})
	_, checks["Search"] = c.Search(ctx, "", SearchRequest{})
	_, checks["Import"] = c.Import(ctx, "", strings.NewReader(""), nil)
	for _, err := range c.List(ctx, "", nil) {
		checks["List"] = err
	}
	for _, err := range c.Export(ctx, "") {
		checks["Export"] = err
	}
	for name, err := range checks {
		if err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("%s with an empty name: err = %v", name, err)
		}
	}
}

func TestUpsertBatch(t *testing.T) {
	s, c := setup(t, "unix", 2)
	ctx := t.Context()
	records := make([]Record, 10)
	for i := range records {
		records[i] = Record{ID: fmt.Sprint("r", i), Vector: []float32{float32(i), 1}, Metadata: map[string]any{"i": float64(i)}}
	}
	n, seq, err := c.UpsertBatch(ctx, "docs", records)
	if err != nil || n != 10 || seq == 0 {
		t.Fatalf("UpsertBatch = %d, %d, %v", n, seq, err)
	}
	if h := s.lastRequest().Header.Get("Content-Type"); h != "application/json" {
		t.Errorf("Content-Type = %q", h)
	}
	got, err := c.Get(ctx, "docs", "r7")
	if err != nil || got.Metadata["i"] != 7.0 {
		t.Errorf("Get(r7) = %+v, %v", got, err)
	}
	// All or nothing.
	records = append(records, Record{ID: "bad", Vector: []float32{1}})
	if _, _, err := c.UpsertBatch(ctx, "docs", records); !isCode(err, CodeInvalidArgument, 400) {
		t.Errorf("UpsertBatch with a bad record: err = %v", err)
	}
	if _, err := c.Get(ctx, "docs", "bad"); !IsNotFound(err) {
		t.Errorf("a rejected batch wrote a record: %v", err)
	}
}

func TestList(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		s, c := setup(t, network, 1, opts...)
		ctx := t.Context()
		var want []string
		var records []Record
		for i := range 25 {
			id := fmt.Sprintf("r%02d", i)
			want = append(want, id)
			records = append(records, Record{ID: id, Vector: []float32{float32(i)}})
		}
		if _, _, err := c.UpsertBatch(ctx, "docs", records); err != nil {
			t.Fatal(err)
		}

		before := len(s.requests())
		var got []string
		for record, err := range c.List(ctx, "docs", &ListOptions{PageSize: 7}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, record.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("List = %q, want %q", got, want)
		}
		pages := s.requests()[before:]
		if len(pages) != 4 {
			t.Fatalf("List sent %d requests, want 4 pages", len(pages))
		}
		first, _ := url.ParseQuery(pages[0].RawQuery)
		second, _ := url.ParseQuery(pages[1].RawQuery)
		if first.Get("limit") != "7" || first.Has("cursor") || second.Get("limit") != "7" || second.Get("cursor") == "" {
			t.Errorf("page queries: %q, %q", pages[0].RawQuery, pages[1].RawQuery)
		}

		// Breaking out early fetches no more pages.
		before = len(s.requests())
		n := 0
		for _, err := range c.List(ctx, "docs", &ListOptions{PageSize: 7}) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 3 {
				break
			}
		}
		if got := len(s.requests()) - before; got != 1 {
			t.Errorf("breaking out in the first page sent %d requests, want 1", got)
		}

		// The default page size.
		n = 0
		for _, err := range c.List(ctx, "docs", nil) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 25 || strings.Contains(s.lastRequest().RawQuery, "limit") {
			t.Errorf("List with nil options: %d records, query %q", n, s.lastRequest().RawQuery)
		}

		// An error ends the iteration.
		var errs []error
		for record, err := range c.List(ctx, "nope", nil) {
			if record != nil {
				t.Errorf("record %v with the error", record)
			}
			errs = append(errs, err)
		}
		if len(errs) != 1 || !IsNotFound(errs[0]) {
			t.Errorf("List of a missing collection yielded %v", errs)
		}
	})
}

func TestListRepeatedCursor(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/collections/docs/records", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"records": []any{map[string]any{"id": "x"}}, "next_cursor": "same"})
	})
	addr, _ := startServer(t, "tcp", mux)
	c := newTestClient(t, addr)
	n := 0
	var lastErr error
	for _, err := range c.List(t.Context(), "docs", nil) {
		if n++; n > 10 {
			t.Fatal("List loops")
		}
		lastErr = err
	}
	if !errors.Is(lastErr, errRepeatedCursor) {
		t.Errorf("err = %v, want errRepeatedCursor", lastErr)
	}
}

func TestListCancelled(t *testing.T) {
	_, c := setup(t, "tcp", 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, err := range c.List(ctx, "docs", nil) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	}
}
