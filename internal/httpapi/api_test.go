package httpapi

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hippo-db/hippo/internal/engine"
)

func newServer(t *testing.T) (*httptest.Server, *engine.Engine) { return newServerOver(t, false) }

// newServerOver is newServer over plain HTTP/1.1 or, with h2, over TLS and
// HTTP/2 (serveEvents).
func newServerOver(t *testing.T, h2 bool) (*httptest.Server, *engine.Engine) {
	t.Helper()
	e, err := engine.Open(engine.Options{Dir: t.TempDir(), SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	api := New(e, Options{})
	srv := serveEvents(t, api, h2)
	t.Cleanup(func() {
		srv.Close()
		api.Shutdown() // the WebSockets and HTTP/1.1 streams the server does not wait for
		e.Close()
	})
	return srv, e
}

type answer struct {
	status int
	body   map[string]any
	raw    string
	header http.Header
}

func do(t *testing.T, srv *httptest.Server, method, path, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw), header: resp.Header}
	json.Unmarshal(raw, &a.body)
	return a
}

func (a answer) code() string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func b64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestBadInputIsRejectedAndChangesNothing(t *testing.T) {
	srv, e := newServer(t)
	if a := do(t, srv, "PUT", "/v1/collections/c", "", `{"dimension":3,"metric":"l2"}`); a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	if a := do(t, srv, "PUT", "/v1/collections/c/records/keep", "application/json", `{"vector":[1,2,3]}`); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.raw)
	}
	longID := strings.Repeat("x", 257)
	bigMeta := `{"m":"` + strings.Repeat("x", 70000) + `"}`
	deep := strings.Repeat(`{"$not":`, 40) + `{"a":1}` + strings.Repeat(`}`, 40)
	for _, tc := range []struct {
		method, path, ctype, body string
		status                    int
		code                      string
	}{
		{"PUT", "/v1/collections/c", "", `{"dimension":4,"metric":"l2"}`, 409, "conflict"},
		{"PUT", "/v1/collections/bad*name", "", `{"dimension":3,"metric":"l2"}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/d", "", `{"dimension":5000,"metric":"l2"}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/d", "", `{"dimension":3,"metric":"l2","extra":1}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/d", "", `{"dimension":3,`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/d", "", ``, 400, "invalid_argument"},
		{"PUT", "/v1/collections/d", "text/plain", `{"dimension":3,"metric":"l2"}`, 415, "unsupported_media_type"},
		{"PUT", "/v1/collections/c/records/r", "", `{"vector":[1,2]}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/c/records/r", "", `{"vector":[1,2,"x"]}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/c/records/r", "", `{"vector":[1,2,1e999]}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/c/records/r", "", `{"vector":[1,2,3],"vector_b64":"AAAA"}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/c/records/r", "", `{"vector_b64":"!!"}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/c/records/r", "", `{"vector":[1,2,3],"metadata":[1]}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/c/records/r", "", `{"vector":[1,2,3],"metadata":` + bigMeta + `}`, 413, "payload_too_large"},
		{"PUT", "/v1/collections/c/records/r", "", `{"id":"other","vector":[1,2,3]}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/c/records/" + longID, "", `{"vector":[1,2,3]}`, 400, "invalid_argument"},
		{"PUT", "/v1/collections/nope/records/r", "", `{"vector":[1,2,3]}`, 404, "not_found"},
		{"PUT", "/v1/collections/c/records/r", "", `{"vector":[` + strings.Repeat("1,", 3<<20) + `1]}`, 413, "payload_too_large"},
		{"POST", "/v1/collections/c/records", "", `{"records":[{"id":"a","vector":[1,2,3]},{"id":"b","vector":[1]}]}`, 400, "invalid_argument"},
		{"POST", "/v1/collections/c/records", "", `{"records":[{"vector":[1,2,3]}]}`, 400, "invalid_argument"},
		{"POST", "/v1/collections/c/records", "", `{"records":[` + strings.Repeat(`{"id":"a","vector":[1,2,3]},`, 1000) + `{"id":"a","vector":[1,2,3]}]}`, 413, "payload_too_large"},
		{"POST", "/v1/collections/c/search", "", `{"vector":[1,2,3],"k":0}`, 400, "invalid_argument"},
		{"POST", "/v1/collections/c/search", "", `{"vector":[1,2,3],"k":1001}`, 400, "invalid_argument"},
		{"POST", "/v1/collections/c/search", "", `{"k":1}`, 400, "invalid_argument"},
		{"POST", "/v1/collections/c/search", "", `{"vector":[1,2,3],"filter":{"a":{"$foo":1}}}`, 400, "invalid_argument"},
		{"POST", "/v1/collections/c/search", "", `{"vector":[1,2,3],"filter":` + deep + `}`, 400, "invalid_argument"},
		{"POST", "/v1/collections/c/search", "", `{"vector":[1,2,3],"include":["secrets"]}`, 400, "invalid_argument"},
		{"POST", "/v1/collections/c/import?on_error=maybe", "application/x-ndjson", `{}`, 400, "invalid_argument"},
		{"POST", "/v1/collections/c/import", "application/json", `{}`, 415, "unsupported_media_type"},
		{"POST", "/v1/collections/nope/import", "application/x-ndjson", `{}`, 404, "not_found"},
		{"GET", "/v1/collections/c/records?limit=0", "", ``, 400, "invalid_argument"},
		{"GET", "/v1/collections/c/records?limit=x", "", ``, 400, "invalid_argument"},
		{"GET", "/v1/collections/c/records?cursor=%%%", "", ``, 400, "invalid_argument"},
		{"GET", "/v1/collections/c/records/missing", "", ``, 404, "not_found"},
		{"DELETE", "/v1/collections/c/records/missing", "", ``, 404, "not_found"},
		{"DELETE", "/v1/collections/nope", "", ``, 404, "not_found"},
		{"PATCH", "/v1/collections/c", "", ``, 405, "method_not_allowed"},
		{"GET", "/v2/anything", "", ``, 404, "not_found"},
	} {
		seq := e.LastSeq()
		a := do(t, srv, tc.method, tc.path, tc.ctype, tc.body)
		name := tc.method + " " + tc.path[:min(len(tc.path), 60)] + " " + tc.body[:min(len(tc.body), 60)]
		if a.status != tc.status || a.code() != tc.code {
			t.Errorf("%s: %d %s, want %d %s (%s)", name, a.status, a.code(), tc.status, tc.code, a.raw[:min(len(a.raw), 300)])
		}
		errBody, _ := a.body["error"].(map[string]any)
		if msg, _ := errBody["message"].(string); msg == "" {
			t.Errorf("%s: no error message", name)
		}
		if a.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: content type %q", name, a.header.Get("Content-Type"))
		}
		if e.LastSeq() != seq {
			t.Errorf("%s: a rejected request wrote (seq %d → %d)", name, seq, e.LastSeq())
		}
	}
	if info, _ := e.Collection("c"); info.Count != 1 {
		t.Fatalf("count %d after rejected requests", info.Count)
	}
}

func TestImportExportRoundTrip(t *testing.T) {
	srv, e := newServer(t)
	do(t, srv, "PUT", "/v1/collections/src", "", `{"dimension":4,"metric":"cosine"}`)
	do(t, srv, "PUT", "/v1/collections/dst", "", `{"dimension":4,"metric":"cosine"}`)
	var in strings.Builder
	for i := range 2500 {
		switch {
		case i == 10:
			in.WriteString("{broken\n")
		case i == 20:
			in.WriteString(`{"id":"short","vector":[1,2]}` + "\n")
		case i == 30:
			in.WriteString("\n") // blank lines are skipped
		case i%2 == 0:
			fmt.Fprintf(&in, `{"id":"r%04d","vector":[%d,1,2,3],"text":"t%d","metadata":{"i":%d}}`+"\r\n", i, i, i, i)
		default:
			fmt.Fprintf(&in, `{"id":"r%04d","vector_b64":%q}`+"\n", i, b64([]float32{float32(i), 1, 2, 3}))
		}
	}
	a := do(t, srv, "POST", "/v1/collections/src/import", "application/x-ndjson", in.String())
	if a.status != 200 || a.body["imported"] != 2497.0 || a.body["failed"] != 2.0 || a.body["aborted"] != false {
		t.Fatalf("import: %d %s", a.status, a.raw[:min(300, len(a.raw))])
	}
	errs := a.body["errors"].([]any)
	if l0 := errs[0].(map[string]any)["line"]; l0 != 11.0 {
		t.Fatalf("first error on line %v, want 11", l0)
	}
	if l1 := errs[1].(map[string]any)["line"]; l1 != 21.0 {
		t.Fatalf("second error on line %v, want 21", l1)
	}
	if a.body["seq"] != float64(e.LastSeq()) {
		t.Fatalf("import seq %v, last %d", a.body["seq"], e.LastSeq())
	}

	// abort stops at the first bad line; the lines before it stay.
	a = do(t, srv, "POST", "/v1/collections/dst/import?on_error=abort", "application/x-ndjson",
		`{"id":"a","vector":[1,0,0,0]}`+"\n"+`{"id":"b","vector":[1]}`+"\n"+`{"id":"c","vector":[1,0,0,0]}`)
	if a.body["imported"] != 1.0 || a.body["failed"] != 1.0 || a.body["aborted"] != true {
		t.Fatalf("abort: %s", a.raw)
	}
	do(t, srv, "DELETE", "/v1/collections/dst/records/a", "", "")

	// The export of src imports into dst unchanged.
	resp, err := srv.Client().Get(srv.URL + "/v1/collections/src/export")
	if err != nil {
		t.Fatal(err)
	}
	exported, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := bytes.Count(exported, []byte("\n")); n != 2497 {
		t.Fatalf("export has %d lines", n)
	}
	a = do(t, srv, "POST", "/v1/collections/dst/import", "application/x-ndjson", string(exported))
	if a.body["imported"] != 2497.0 || a.body["failed"] != 0.0 {
		t.Fatalf("re-import: %s", a.raw[:min(300, len(a.raw))])
	}
	// Paging through dst with cursors yields the same records as the export.
	var listed []string
	cursor := ""
	for {
		a = do(t, srv, "GET", "/v1/collections/dst/records?limit=333&cursor="+cursor, "", "")
		for _, r := range a.body["records"].([]any) {
			rec := r.(map[string]any)
			listed = append(listed, fmt.Sprint(rec["id"], rec["vector"], rec["text"], rec["metadata"]))
		}
		next, ok := a.body["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	var fromExport []string
	sc := bufio.NewScanner(bytes.NewReader(exported))
	for sc.Scan() {
		var rec map[string]any
		json.Unmarshal(sc.Bytes(), &rec)
		fromExport = append(fromExport, fmt.Sprint(rec["id"], rec["vector"], rec["text"], rec["metadata"]))
	}
	if strings.Join(listed, "\n") != strings.Join(fromExport, "\n") {
		t.Fatalf("listed %d records differ from the %d exported", len(listed), len(fromExport))
	}
}

func TestSearchAndBatchSearch(t *testing.T) {
	srv, _ := newServer(t)
	do(t, srv, "PUT", "/v1/collections/c", "", `{"dimension":2,"metric":"l2"}`)
	do(t, srv, "POST", "/v1/collections/c/records", "", `{"records":[
		{"id":"a","vector":[0,0],"text":"A","metadata":{"kind":"fact"}},
		{"id":"b","vector":[3,4],"text":"B","metadata":{"kind":"note"}}]}`)
	a := do(t, srv, "POST", "/v1/collections/c/search", "", `{"vector":[0,0],"k":2,"include":["text","vector"]}`)
	res := a.body["results"].([]any)
	first, second := res[0].(map[string]any), res[1].(map[string]any)
	if first["id"] != "a" || second["distance"] != 5.0 || second["text"] != "B" || first["metadata"] != nil ||
		fmt.Sprint(second["vector"]) != "[3 4]" {
		t.Fatalf("search: %s", a.raw)
	}
	a = do(t, srv, "POST", "/v1/collections/c/search", "", `{"vector_b64":"`+b64([]float32{0, 0})+`","filter":{"kind":"note"}}`)
	if res := a.body["results"].([]any); len(res) != 1 || res[0].(map[string]any)["metadata"].(map[string]any)["kind"] != "note" {
		t.Fatalf("filtered: %s", a.raw)
	}
	a = do(t, srv, "POST", "/v1/collections/c/search/batch", "application/x-ndjson",
		`{"vector":[3,4],"k":1}`+"\n"+`{"vector":[1]}`+"\n"+`not json`+"\n"+`{"vector":[0,0],"k":1}`+"\n")
	lines := strings.Split(strings.TrimSpace(a.raw), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], `"id":"b"`) || !strings.Contains(lines[1], `"line":2`) ||
		!strings.Contains(lines[2], `"invalid_argument"`) || !strings.Contains(lines[3], `"id":"a"`) {
		t.Fatalf("batch: %s", a.raw)
	}
}
