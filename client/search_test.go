package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// setupSearch returns a client for a fake server whose collection "docs" holds
// records r0..r9 with vectors {i, 0} and metadata {"even": i%2 == 0}.
func setupSearch(t *testing.T, network string, opts ...Option) (*fakeServer, *Client) {
	t.Helper()
	s, c := setup(t, network, 2, opts...)
	var records []Record
	for i := range 10 {
		records = append(records, Record{ID: fmt.Sprint("r", i), Vector: []float32{float32(i), 0},
			Text: fmt.Sprint("text ", i), Metadata: map[string]any{"even": i%2 == 0}})
	}
	if _, _, err := c.UpsertBatch(t.Context(), "docs", records); err != nil {
		t.Fatal(err)
	}
	return s, c
}

func resultIDs(answer *SearchResponse) []string {
	var ids []string
	for _, r := range answer.Results {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestSearch(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		s, c := setupSearch(t, network, opts...)
		ctx := t.Context()

		answer, err := c.Search(ctx, "docs", SearchRequest{Vector: []float32{3.1, 0}, K: 3})
		if err != nil {
			t.Fatal(err)
		}
		if got := resultIDs(answer); !slices.Equal(got, []string{"r3", "r4", "r2"}) || answer.Seq == 0 {
			t.Errorf("Search = %v (seq %d)", got, answer.Seq)
		}
		if r := answer.Results[0]; r.Metadata != nil || r.Text != "" || r.Vector != nil || r.Distance < 0.0099 || r.Distance > 0.0101 {
			t.Errorf("result without includes = %+v", r)
		}

		answer, err = c.Search(ctx, "docs", SearchRequest{Vector: []float32{3.1, 0}, K: 2, Ef: 99,
			Filter: map[string]any{"even": true}, Include: []string{IncludeMetadata, IncludeText, IncludeVector}})
		if err != nil {
			t.Fatal(err)
		}
		want := []SearchResult{
			{ID: "r4", Distance: answer.Results[0].Distance, Metadata: map[string]any{"even": true}, Text: "text 4", Vector: []float32{4, 0}},
			{ID: "r2", Distance: answer.Results[1].Distance, Metadata: map[string]any{"even": true}, Text: "text 2", Vector: []float32{2, 0}},
		}
		if !reflect.DeepEqual(answer.Results, want) {
			t.Errorf("Search with filter and includes = %+v, want %+v", answer.Results, want)
		}
		var sent map[string]any
		json.Unmarshal(s.lastRequest().Body, &sent)
		if sent["k"] != 2.0 || sent["ef"] != 99.0 || !reflect.DeepEqual(sent["filter"], map[string]any{"even": true}) ||
			!reflect.DeepEqual(sent["include"], []any{"metadata", "text", "vector"}) {
			t.Errorf("sent %v", sent)
		}

		// A filter given as encoded JSON.
		answer, err = c.Search(ctx, "docs", SearchRequest{Vector: []float32{3.1, 0}, K: 1, Filter: json.RawMessage(`{"even": false}`)})
		if err != nil || !slices.Equal(resultIDs(answer), []string{"r3"}) {
			t.Errorf("Search with a raw filter = %v, %v", answer, err)
		}

		if _, err := c.Search(ctx, "docs", SearchRequest{Vector: []float32{1}}); !isCode(err, CodeInvalidArgument, 400) {
			t.Errorf("Search with a wrong dimension: err = %v", err)
		}
		if _, err := c.Search(ctx, "nope", SearchRequest{Vector: []float32{1, 2}}); !IsNotFound(err) {
			t.Errorf("Search of a missing collection: err = %v", err)
		}
	})
}

// TestSearchEncoding checks the request bodies Search sends.
func TestSearchEncoding(t *testing.T) {
	c := &Client{}
	f := func(req SearchRequest, want string) {
		t.Helper()
		got, err := c.encodeSearch(&req)
		if err != nil || string(got) != want {
			t.Errorf("encodeSearch(%+v) = %s, %v; want %s", req, got, err, want)
		}
	}
	f(SearchRequest{Vector: []float32{1}}, `{"vector_b64":"AACAPw=="}`)
	f(SearchRequest{Vector: []float32{1}, K: 5, Ef: 7, Include: []string{"text"}}, `{"vector_b64":"AACAPw==","k":5,"ef":7,"include":["text"]}`)
	f(SearchRequest{Filter: map[string]any(nil)}, `{}`)
	f(SearchRequest{Filter: json.RawMessage(nil)}, `{}`)
	f(SearchRequest{Filter: json.RawMessage("null")}, `{}`)
	f(SearchRequest{Filter: json.RawMessage(` {"a" : 1} `)}, `{"filter":{"a":1}}`)
	f(SearchRequest{Filter: struct {
		Kind string `json:"kind"`
	}{"fact"}}, `{"filter":{"kind":"fact"}}`)
	if _, err := c.encodeSearch(&SearchRequest{Filter: func() {}}); err == nil {
		t.Error("a filter that cannot be encoded: no error")
	}
	c.jsonVectors = true
	f(SearchRequest{Vector: []float32{1, 2.5}}, `{"vector":[1,2.5]}`)
}

// TestSearchBatchInterleaves checks that SearchBatch streams both ways: each
// request is produced only after the answer to the one before has arrived,
// which deadlocks unless requests are sent and answers read as they come.
func TestSearchBatchInterleaves(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		_, c := setupSearch(t, network, opts...)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		answered := make(chan int)
		const n = 20
		reqs := func(yield func(SearchRequest) bool) {
			for i := range n {
				if i > 0 {
					select {
					case got := <-answered:
						if got != i-1 {
							t.Errorf("answer %d arrived while waiting for %d", got, i-1)
						}
					case <-ctx.Done():
						return
					}
				}
				if !yield(SearchRequest{Vector: []float32{float32(i % 10), 0}, K: 1}) {
					return
				}
			}
		}
		i := 0
		for answer, err := range c.SearchBatch(ctx, "docs", reqs) {
			if err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
			if want := fmt.Sprint("r", i%10); len(answer.Results) != 1 || answer.Results[0].ID != want {
				t.Errorf("answer %d = %+v, want %s", i, answer, want)
			}
			if i < n-1 {
				answered <- i
			}
			i++
		}
		if i != n {
			t.Errorf("%d answers, want %d", i, n)
		}
	})
}

func TestSearchBatch(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		s, c := setupSearch(t, network, opts...)
		ctx := t.Context()
		reqs := slices.Values([]SearchRequest{
			{Vector: []float32{1, 0}, K: 1},
			{Vector: []float32{1}, K: 1}, // wrong dimension: fails alone
			{Vector: []float32{7, 0}, K: 2, Include: []string{IncludeText}},
		})
		var ids [][]string
		var errs []error
		for answer, err := range c.SearchBatch(ctx, "docs", reqs) {
			errs = append(errs, err)
			if answer != nil {
				ids = append(ids, resultIDs(answer))
			} else {
				ids = append(ids, nil)
			}
		}
		if len(errs) != 3 || errs[0] != nil || errs[2] != nil || !isCode(errs[1], CodeInvalidArgument, 400) {
			t.Fatalf("errors = %v", errs)
		}
		if !slices.Equal(ids[0], []string{"r1"}) || !slices.Equal(ids[2], []string{"r7", "r6"}) {
			t.Errorf("answers = %v", ids)
		}
		last := s.requests()[len(s.requests())-1]
		if last.Header.Get("Content-Type") != "application/x-ndjson" || last.Header.Get("Accept") != "application/x-ndjson" {
			t.Errorf("headers = %v", last.Header)
		}

		// No requests, no answers.
		for answer, err := range c.SearchBatch(ctx, "docs", slices.Values([]SearchRequest{})) {
			t.Errorf("empty batch yielded %v, %v", answer, err)
		}

		// A missing collection fails the batch once.
		errs = nil
		for _, err := range c.SearchBatch(ctx, "nope", reqs) {
			errs = append(errs, err)
		}
		if len(errs) != 1 || !IsNotFound(errs[0]) {
			t.Errorf("batch on a missing collection yielded %v", errs)
		}
	})
}

// TestSearchBatchEarlyBreak checks that leaving the loop early stops both the
// request and the requests iterator.
func TestSearchBatchEarlyBreak(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		_, c := setupSearch(t, network, opts...)
		stopped := false
		reqs := func(yield func(SearchRequest) bool) {
			for {
				if !yield(SearchRequest{Vector: []float32{1, 0}, K: 1}) {
					stopped = true
					return
				}
			}
		}
		n := 0
		for _, err := range c.SearchBatch(t.Context(), "docs", reqs) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 100 {
				break
			}
		}
		// SearchBatch waits for the iterator, so no synchronisation is
		// needed to read stopped.
		if !stopped {
			t.Error("the requests iterator is still running after the loop")
		}
	})
}

func TestSearchBatchShortAnswer(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/collections/docs/search/batch", func(w http.ResponseWriter, r *http.Request) {
		// Answers the first request of however many, then ends.
		var line json.RawMessage
		json.NewDecoder(r.Body).Decode(&line)
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"results":[],"seq":1}`)
	})
	addr, _ := startServer(t, "tcp", mux)
	c := newTestClient(t, addr)
	var errs []error
	for _, err := range c.SearchBatch(t.Context(), "docs", slices.Values(make([]SearchRequest, 3))) {
		errs = append(errs, err)
	}
	if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], errBatchShort) {
		t.Errorf("errors = %v, want nil then errBatchShort", errs)
	}
}

func TestSearchBatchEncodeError(t *testing.T) {
	_, c := setupSearch(t, "tcp")
	reqs := slices.Values([]SearchRequest{{Vector: []float32{1, 0}}, {Filter: make(chan int)}})
	var lastErr error
	for _, err := range c.SearchBatch(t.Context(), "docs", reqs) {
		lastErr = err
	}
	if lastErr == nil || !strings.Contains(lastErr.Error(), "request 2: encode filter") {
		t.Errorf("err = %v, want the encoding error of request 2", lastErr)
	}
}
