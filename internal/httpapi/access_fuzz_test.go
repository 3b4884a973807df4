package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/auth"
)

// FuzzAPIRequest sends arbitrary requests to the whole handler: it never
// panics, every answer that is not 2xx is a JSON error envelope with a known
// code and its status, and an answer that is an error changed nothing.
func FuzzAPIRequest(f *testing.F) {
	seeds := []struct{ method, path, contentType, body string }{
		{"PUT", "/v1/collections/d", "", `{"dimension":2,"metric":"cosine"}`},
		{"PUT", "/v1/collections/c/records/a", "application/json", `{"vector":[1,2],"text":"t","metadata":{"k":1}}`},
		{"PUT", "/v1/collections/c/records/a", "application/json", `{"vector_b64":"AACAPwAAAEA="}`},
		{"POST", "/v1/collections/c/records", "", `{"records":[{"id":"b","vector":[1,0]}]}`},
		{"POST", "/v1/collections/c/import", "application/x-ndjson", "{\"id\":\"x\",\"vector\":[1,2]}\n{\"id\":\"y\"}\n"},
		{"POST", "/v1/collections/c/search", "", `{"vector":[1,0],"k":3,"filter":{"k":{"$gte":1}},"include":["text"]}`},
		{"POST", "/v1/collections/c/search/batch", "application/x-ndjson", "{\"vector\":[1,0],\"k\":1}\n"},
		{"GET", "/v1/collections/c/records?limit=2&after=a", "", ""},
		{"GET", "/v1/collections/c/export", "", ""},
		{"DELETE", "/v1/collections/c/records/zz", "", ""},
		{"GET", "/v1/collections/c/records/%2E%2E", "", ""},
		{"POST", "/v1/admin/keys", "", `{"name":"n","scope":"read","collections":["c*"]}`},
		{"DELETE", "/v1/admin/keys/0011223344556677", "", ""},
		{"GET", "/v1/events?from=0&collections=c&types=record.upserted", "", ""},
		{"PATCH", "/v1/collections", "text/plain", "x"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.contentType, []byte(s.body))
	}
	a, e, _ := newAccessAPI(f, Options{}, auth.KeyringOptions{})
	// Requests come in without a listener identity: let them in as the
	// admin of an in-process listener, so that every route is reachable.
	a.access.unlisted = conn(f, "unix:/fuzz.sock?class=admin")
	rec := call(a, nil, "PUT", "/v1/collections/c", `{"dimension":2,"metric":"l2"}`)
	if rec.Code != 201 {
		f.Fatal(rec.Body)
	}
	f.Fuzz(func(t *testing.T, method, path, contentType string, body []byte) {
		if strings.Contains(path, "/v1/collections/c") && (method == "DELETE" && strings.Count(path, "/") == 3) {
			return // deleting the collection every fuzz call writes into is legal, and dull
		}
		req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(string(body)))
		if err != nil || req.URL.Path == "" || req.URL.Path[0] != '/' {
			return
		}
		req.RequestURI = req.URL.RequestURI()
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		ctx := context.Background()
		if strings.HasPrefix(req.URL.Path, "/v1/events") || strings.HasPrefix(req.URL.Path, "/v1/ws") {
			// A stream would run until cancelled: let it start and end.
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			cancel()
		}
		req = req.WithContext(ctx)
		before := e.LastSeq()
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { a.ServeHTTP(rec, req); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s %q %q %q: no answer after 10 s", method, path, contentType, body)
		}
		if rec.Code >= 200 && rec.Code < 300 {
			return
		}
		if rec.Code >= 300 && rec.Code < 400 {
			// ServeMux redirects to the clean form of an unclean path
			// ("//x", "/a/../b") before any route runs.
			if e.LastSeq() != before {
				t.Fatalf("%s %q: redirect %d changed the store", method, path, rec.Code)
			}
			return
		}
		var env struct {
			Error *apiError `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error == nil {
			t.Fatalf("%s %q: %d answered without an error envelope: %q", method, path, rec.Code, rec.Body)
		}
		status, known := codeStatus[env.Error.Code]
		if !known || status != rec.Code || env.Error.Message == "" {
			t.Fatalf("%s %q: %d with code %q (known %v, its status %d), message %q", method, path, rec.Code, env.Error.Code, known, status, env.Error.Message)
		}
		if env.Error.Code == "internal" {
			t.Fatalf("%s %q %q: internal error: %s", method, path, body, env.Error.Message)
		}
		if after := e.LastSeq(); after != before {
			t.Fatalf("%s %q %q: error %s but seq moved %d → %d", method, path, body, env.Error.Code, before, after)
		}
	})
}
