package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/engine"
)

// stream opens GET path and returns a reader of its lines.
func stream(t *testing.T, srv *httptest.Server, path string, header map[string]string) (*bufio.Reader, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return bufio.NewReader(resp.Body), resp
}

// sseMessage is one SSE message: an event (data set) or, without data, a
// position (id) the stream has reached.
type sseMessage struct {
	id, data string
	comment  bool
}

// sseMessages reads SSE messages until f returns false.
func sseMessages(t *testing.T, r *bufio.Reader, f func(m sseMessage) bool) {
	t.Helper()
	var m sseMessage
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %+v: %v", m, err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if !f(m) {
				return
			}
			m = sseMessage{}
		case strings.HasPrefix(line, ":"):
			m.comment = true
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			m.data = line[6:]
		}
	}
}

// sseEvents reads n SSE events and returns their ids and data.
func sseEvents(t *testing.T, r *bufio.Reader, n int) (ids, data []string) {
	t.Helper()
	sseMessages(t, r, func(m sseMessage) bool {
		if m.data != "" {
			ids, data = append(ids, m.id), append(data, m.data)
		}
		return len(data) < n
	})
	return ids, data
}

func ndjsonLines(t *testing.T, r *bufio.Reader, n int) []map[string]any {
	t.Helper()
	var out []map[string]any
	for len(out) < n {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue // heartbeat
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestEventsSSEAndNDJSON(t *testing.T) { bothTransports(t, testEventsSSEAndNDJSON) }

func testEventsSSEAndNDJSON(t *testing.T, h2 bool) {
	srv, _ := newServerOver(t, h2)
	live, resp := stream(t, srv, "/v1/events", map[string]string{"Accept": "text/event-stream"})
	if resp.Header.Get("Content-Type") != "text/event-stream" || h2 != (resp.ProtoMajor == 2) {
		t.Fatalf("content type %q over %s", resp.Header.Get("Content-Type"), resp.Proto)
	}
	// The first message gives the client's retry delay and the position
	// the stream starts from.
	if prelude, _ := live.ReadString('\n'); prelude != "retry: 1000\n" {
		t.Fatalf("prelude %q", prelude)
	}
	sseMessages(t, live, func(m sseMessage) bool {
		if m.id != "0" || m.data != "" {
			t.Fatalf("prelude %+v", m)
		}
		return false
	})
	do(t, srv, "PUT", "/v1/collections/a", "", `{"dimension":2,"metric":"l2"}`)
	do(t, srv, "PUT", "/v1/collections/b", "", `{"dimension":2,"metric":"l2"}`)
	do(t, srv, "PUT", "/v1/collections/a/records/x", "", `{"vector":[1,2],"text":"hi"}`)
	do(t, srv, "PUT", "/v1/collections/b/records/y", "", `{"vector":[3,4]}`)
	do(t, srv, "DELETE", "/v1/collections/a/records/x", "", "")
	ids, data := sseEvents(t, live, 5)
	if strings.Join(ids, ",") != "1,2,3,4,5" {
		t.Fatalf("ids %v", ids)
	}
	var ev map[string]any
	json.Unmarshal([]byte(data[2]), &ev)
	// The record is left out if the stream encodes the event after x was
	// deleted; if it is there, it is the record as upserted.
	rec, _ := ev["record"].(map[string]any)
	if ev["type"] != "record.upserted" || ev["collection"] != "a" || ev["id"] != "x" || rec["text"] != nil && rec["text"] != "hi" {
		t.Fatalf("event 3: %s", data[2])
	}

	// Resume after 2 with Last-Event-ID; filters on collection and type.
	r, _ := stream(t, srv, "/v1/events?collections=b&types=record.upserted", map[string]string{"Accept": "text/event-stream", "Last-Event-ID": "2"})
	ids, _ = sseEvents(t, r, 1)
	if ids[0] != "4" {
		t.Fatalf("filtered resume: %v", ids)
	}
	// NDJSON from 0, events only, vectors not wanted.
	nd, resp := stream(t, srv, "/v1/events?from=0&records=false", nil)
	if resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	lines := ndjsonLines(t, nd, 5)
	for i, l := range lines {
		if l["seq"] != float64(i+1) || l["record"] != nil {
			t.Fatalf("line %d: %v", i, l)
		}
	}
	// from=3 starts after 3.
	nd, _ = stream(t, srv, "/v1/events?from=3", nil)
	if l := ndjsonLines(t, nd, 1); l[0]["seq"] != 4.0 {
		t.Fatalf("from=3: %v", l)
	}
}

// A client that starts "now" from /readyz's feed position must not be sent
// writes acknowledged before it asked: the position is the last committed
// seq, not how far the feed has read.
func TestReadyzFeedPositionIsCommitted(t *testing.T) {
	srv, _ := newServer(t)
	do(t, srv, "PUT", "/v1/collections/a", "", `{"dimension":2,"metric":"l2"}`)
	for i := range 200 {
		a := do(t, srv, "PUT", fmt.Sprintf("/v1/collections/a/records/r%d", i), "", `{"vector":[1,2]}`)
		seq, _ := a.body["seq"].(float64)
		r := do(t, srv, "GET", "/readyz", "", "")
		f, _ := r.body["feed"].(map[string]any)
		if last, _ := f["last_seq"].(float64); last < seq {
			t.Fatalf("write %d acknowledged at seq %v; /readyz then gave feed.last_seq %v", i, seq, last)
		}
	}
}

func TestEventsBadRequests(t *testing.T) {
	srv, _ := newServer(t)
	for _, tc := range []struct {
		path   string
		accept string
		status int
	}{
		{"/v1/events?types=record.bogus", "", 400},
		{"/v1/events?collections=bad*name", "", 400},
		{"/v1/events?from=-1", "", 400},
		{"/v1/events?records=maybe", "", 400},
		{"/v1/events?on_gap=ignore", "", 400},
		{"/v1/events", "text/html", 406},
	} {
		a := doAccept(t, srv, tc.path, tc.accept)
		if a.status != tc.status || a.code() == "" {
			t.Errorf("%s: %d %s", tc.path, a.status, a.raw)
		}
	}
}

func doAccept(t *testing.T, srv *httptest.Server, path, accept string) answer {
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	a.status = resp.StatusCode
	json.NewDecoder(resp.Body).Decode(&a.body)
	b, _ := json.Marshal(a.body)
	a.raw = string(b)
	return a
}

func TestEventsGapAndShutdown(t *testing.T) { bothTransports(t, testEventsGapAndShutdown) }

func testEventsGapAndShutdown(t *testing.T, h2 bool) {
	e, err := engine.Open(engine.Options{Dir: t.TempDir(), SnapshotInterval: -1,
		Retention: engine.Retention{MaxAge: time.Millisecond, Interval: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	api := New(e, Options{})
	srv := serveEvents(t, api, h2)
	defer func() { srv.Close(); e.Close() }()
	do(t, srv, "PUT", "/v1/collections/a", "", `{"dimension":1,"metric":"l2"}`)
	do(t, srv, "PUT", "/v1/collections/a/records/x", "", `{"vector":[1]}`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if oldest, _ := e.OldestSeq(); oldest > e.LastSeq() { // all trimmed
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("retention did not trim")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a := doAccept(t, srv, "/v1/events?from=0&on_gap=fail", ""); a.status != 410 || a.code() != "gone" {
		t.Fatalf("on_gap=fail: %d %s", a.status, a.raw)
	}
	r, _ := stream(t, srv, "/v1/events?from=0", nil)
	do(t, srv, "PUT", "/v1/collections/a/records/y", "", `{"vector":[2]}`)
	lines := ndjsonLines(t, r, 2)
	if lines[0]["type"] != "feed.gap" || lines[0]["requested_seq"] != 1.0 || lines[1]["id"] != "y" {
		t.Fatalf("gap then events: %v", lines)
	}
	// Shutdown ends open streams.
	done := make(chan struct{})
	go func() {
		for {
			if _, err := r.ReadByte(); err != nil {
				close(done)
				return
			}
		}
	}()
	api.Shutdown()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Shutdown")
	}
}

// An idle SSE stream gets heartbeats, each with the position the stream has
// reached, including events its filter left out.
// serveEvents serves api over plain HTTP/1.1, whose event streams the
// direct writer writes, or over TLS and HTTP/2, where each stream has a
// goroutine of its own; on each the same must hold.
func serveEvents(t *testing.T, api *API, h2 bool) *httptest.Server {
	srv := httptest.NewUnstartedServer(api)
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	return srv
}

// bothTransports runs f over plain HTTP/1.1 and over HTTP/2 (serveEvents).
func bothTransports(t *testing.T, f func(t *testing.T, h2 bool)) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "http2"}[h2], func(t *testing.T) { f(t, h2) })
	}
}

func TestEventsHeartbeatCarriesPosition(t *testing.T) {
	bothTransports(t, testEventsHeartbeatCarriesPosition)
}

func testEventsHeartbeatCarriesPosition(t *testing.T, h2 bool) {
	e, err := engine.Open(engine.Options{Dir: t.TempDir(), SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	api := New(e, Options{Heartbeat: 20 * time.Millisecond})
	srv := serveEvents(t, api, h2)
	defer func() { api.Shutdown(); srv.Close(); e.Close() }()
	do(t, srv, "PUT", "/v1/collections/a", "", `{"dimension":1,"metric":"l2"}`)
	r, resp := stream(t, srv, "/v1/events?collections=b", map[string]string{"Accept": "text/event-stream"})
	if h2 != (resp.ProtoMajor == 2) {
		t.Fatalf("stream over %s", resp.Proto)
	}
	var last string
	for i := range 3 {
		a := do(t, srv, "PUT", "/v1/collections/a/records/x"+strconv.Itoa(i), "", `{"vector":[1]}`)
		last = strconv.FormatUint(uint64(a.body["seq"].(float64)), 10)
	}
	// Read until a heartbeat carries the last event's id (sseMessages
	// fails if the stream ends first).
	sseMessages(t, r, func(m sseMessage) bool {
		if m.data != "" {
			t.Fatalf("an event the filter leaves out: %+v", m)
		}
		return m.id != last || !m.comment
	})
	nd, _ := stream(t, srv, "/v1/events", nil)
	if line, err := nd.ReadString('\n'); line != "\n" || err != nil {
		t.Fatalf("NDJSON heartbeat: %q %v", line, err)
	}
}

// An upsert's event is the same bytes live (its record as the commit handed
// it to the feed) and read back from the log (its record from the store).
func TestEventsLiveAndReplayedAlike(t *testing.T) {
	// A ring of two events: the replay reads the first ones from the log.
	e, err := engine.Open(engine.Options{Dir: t.TempDir(), SnapshotInterval: -1, FeedCapacity: 2})
	if err != nil {
		t.Fatal(err)
	}
	api := New(e, Options{})
	srv := httptest.NewServer(api)
	defer e.Close()
	defer api.Shutdown()
	defer srv.Close()
	live, _ := stream(t, srv, "/v1/events", map[string]string{"Accept": "text/event-stream"})
	do(t, srv, "PUT", "/v1/collections/a", "", `{"dimension":3,"metric":"cosine"}`)
	do(t, srv, "PUT", "/v1/collections/a/records/x", "",
		`{"vector":[0.5,-1.25,3e-7],"text":"héllo","metadata":{"k":[1,"two",{"n":null}],"b":true}}`)
	for _, id := range []string{"y", "z"} {
		do(t, srv, "PUT", "/v1/collections/a/records/"+id, "", `{"vector":[1,2,3]}`)
	}
	_, liveData := sseEvents(t, live, 4)
	replay, _ := stream(t, srv, "/v1/events?from=0", map[string]string{"Accept": "text/event-stream"})
	_, replayed := sseEvents(t, replay, 4)
	for i := range liveData {
		if liveData[i] != replayed[i] {
			t.Fatalf("event %d live:     %s\nreplayed: %s", i+1, liveData[i], replayed[i])
		}
	}
	if !strings.Contains(liveData[1], `"text":"héllo"`) {
		t.Fatalf("no record: %s", liveData[1])
	}
}
