package httpapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/hippo-db/hippo/internal/engine"
)

// newWSServer is newServer that also returns the API, for Shutdown.
func newWSServer(t *testing.T, opts engine.Options, apiOpts ...Options) (*httptest.Server, *engine.Engine, *API) {
	t.Helper()
	t.Cleanup(func() { checkSessionsEnded(t) }) // runs last
	opts.Dir = t.TempDir()
	opts.SnapshotInterval = -1
	e, err := engine.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	var ao Options
	if len(apiOpts) > 0 {
		ao = apiOpts[0]
	}
	api := New(e, ao)
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Shutdown()
		srv.Close()
		e.Close()
	})
	return srv, e, api
}

// checkSessionsEnded fails t if goroutines of a WebSocket session outlive
// the server: every session must end, and wait for its goroutines, once its
// connection is gone.
func checkSessionsEnded(t *testing.T) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "httpapi.(*wsSession)") || strings.Contains(g, "httpapi.(*API).ws(") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session goroutines still running:\n%s", strings.Join(leaked, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wsClient is a test peer: coder/websocket's client with helpers.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialWS(t *testing.T, srv *httptest.Server) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(64 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return &wsClient{t: t, conn: conn}
}

func (c *wsClient) send(msg string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatalf("send %.80s: %v", msg, err)
	}
}

// wsMsg is any message from the server.
type wsMsg struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	Subscription string          `json:"subscription"`
	Result       json.RawMessage `json:"result"`
	Event        *struct {
		Seq        uint64          `json:"seq"`
		Type       string          `json:"type"`
		Collection string          `json:"collection"`
		ID         string          `json:"id"`
		Record     json.RawMessage `json:"record"`
	} `json:"event"`
	Error *struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
	RequestedSeq uint64 `json:"requested_seq"`
	OldestSeq    uint64 `json:"oldest_seq"`
	raw          string
}

// read returns the next message, or the error that ended the connection.
func (c *wsClient) read() (*wsMsg, error) {
	// A generous bound: cancelling a read closes the connection.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	typ, data, err := c.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, fmt.Errorf("message of type %v", typ)
	}
	m := &wsMsg{raw: string(data)}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("bad message %.200s: %v", data, err)
	}
	return m, nil
}

func (c *wsClient) mustRead() *wsMsg {
	c.t.Helper()
	m, err := c.read()
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// answer reads messages until the answer to request id, and returns it with
// the events read on the way.
func (c *wsClient) answer(id string) (*wsMsg, []*wsMsg) {
	c.t.Helper()
	var events []*wsMsg
	for {
		m := c.mustRead()
		if m.ID == id && (m.Type == "result" || m.Type == "error") {
			return m, events
		}
		events = append(events, m)
	}
}

// closeStatus reads until the connection ends and returns its close error.
func (c *wsClient) closeStatus() websocket.CloseError {
	c.t.Helper()
	for {
		_, err := c.read()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want a close frame", err)
		}
		return ce
	}
}

func TestWSSubscribeDeliversEventsInOrder(t *testing.T) {
	srv, e, _ := newWSServer(t, engine.Options{})
	do(t, srv, "PUT", "/v1/collections/c", "", `{"dimension":2,"metric":"l2"}`)
	do(t, srv, "PUT", "/v1/collections/other", "", `{"dimension":2,"metric":"l2"}`)
	start := e.LastSeq()
	c := dialWS(t, srv)

	c.send(`{"op":"subscribe","id":"sub-c","collections":["c"],"types":["record.upserted","record.deleted"]}`)
	ans, _ := c.answer("sub-c")
	var subbed struct {
		Subscription string `json:"subscription"`
		Seq          uint64 `json:"seq"`
	}
	json.Unmarshal(ans.Result, &subbed)
	if ans.Type != "result" || subbed.Subscription == "" || subbed.Seq != start {
		t.Fatalf("subscribe: %s", ans.raw)
	}
	// A second subscription on the same socket replays everything, without
	// records.
	c.send(`{"op":"subscribe","id":"sub-all","from":0,"records":false}`)
	ans, events := c.answer("sub-all")
	var all struct {
		Subscription string `json:"subscription"`
	}
	json.Unmarshal(ans.Result, &all)
	if len(events) != 0 || all.Subscription == subbed.Subscription {
		t.Fatalf("second subscription: %s (after %d events)", ans.raw, len(events))
	}

	const n = 50
	for i := range n {
		do(t, srv, "PUT", fmt.Sprintf("/v1/collections/c/records/r%d", i), "", `{"vector":[1,2],"metadata":{"i":1}}`)
		do(t, srv, "PUT", fmt.Sprintf("/v1/collections/other/records/r%d", i), "", `{"vector":[1,2]}`)
	}
	do(t, srv, "DELETE", "/v1/collections/c/records/r0", "", "")

	var bySub = map[string][]*wsMsg{}
	for len(bySub[subbed.Subscription]) < n+1 || len(bySub[all.Subscription]) < int(e.LastSeq()) {
		m := c.mustRead()
		if m.Type != "event" {
			t.Fatalf("unexpected %s", m.raw)
		}
		bySub[m.Subscription] = append(bySub[m.Subscription], m)
	}
	got := bySub[subbed.Subscription]
	for i, m := range got {
		ev := m.Event
		wantType, wantID := "record.upserted", fmt.Sprintf("r%d", i)
		if i == n {
			wantType, wantID = "record.deleted", "r0"
		}
		if ev.Collection != "c" || ev.Type != wantType || ev.ID != wantID || (i > 0 && ev.Seq <= got[i-1].Event.Seq) {
			t.Fatalf("event %d: %s", i, m.raw)
		}
		if (wantType == "record.upserted") != (len(ev.Record) > 0) {
			t.Fatalf("event %d: record present %v: %s", i, len(ev.Record) > 0, m.raw)
		}
	}
	for i, m := range bySub[all.Subscription] {
		if m.Event.Seq != uint64(i+1) || len(m.Event.Record) != 0 {
			t.Fatalf("replayed event %d: %s", i, m.raw)
		}
	}

	// Unsubscribing answers with the position reached; nothing follows.
	c.send(`{"op":"unsubscribe","id":"u","subscription":"` + subbed.Subscription + `"}`)
	ans, events = c.answer("u")
	var unsub struct {
		Seq uint64 `json:"seq"`
	}
	json.Unmarshal(ans.Result, &unsub)
	if ans.Type != "result" || len(events) != 0 || unsub.Seq != e.LastSeq() {
		t.Fatalf("unsubscribe: %s after %d events (last %d)", ans.raw, len(events), e.LastSeq())
	}
	do(t, srv, "PUT", "/v1/collections/c/records/late", "", `{"vector":[1,2]}`)
	if m := c.mustRead(); m.Subscription != all.Subscription || m.Event.ID != "late" {
		t.Fatalf("after unsubscribe: %s", m.raw)
	}
	c.send(`{"op":"unsubscribe","id":"u2","subscription":"` + subbed.Subscription + `"}`)
	if ans, _ := c.answer("u2"); ans.Type != "error" || ans.Error.Code != "not_found" {
		t.Fatalf("second unsubscribe: %s", ans.raw)
	}
}

func TestWSOperationsInterleaveWithEvents(t *testing.T) {
	srv, _, _ := newWSServer(t, engine.Options{})
	do(t, srv, "PUT", "/v1/collections/c", "", `{"dimension":2,"metric":"l2"}`)
	c := dialWS(t, srv)
	c.send(`{"op":"subscribe","id":"s","collections":["c"],"vector_b64":true}`)
	if ans, _ := c.answer("s"); ans.Type != "result" {
		t.Fatal(ans.raw)
	}
	// Send everything before reading anything: answers and events share
	// the socket.
	const n = 20
	for i := range n {
		c.send(fmt.Sprintf(`{"op":"upsert","id":"up%d","collection":"c","body":{"records":[{"id":"r%d","vector":[%d,0],"metadata":{"i":%d}}]}}`, i, i, i, i))
	}
	answers := map[string]*wsMsg{}
	var events []*wsMsg
	// Operations run concurrently: these follow the upserts once they are
	// answered.
	for sent := false; len(answers) < n+4 || len(events) < n+1; {
		if len(answers) == n && !sent {
			c.send(`{"op":"search","id":"find","collection":"c","body":{"vector":[0,0],"k":3,"include":["metadata"]}}`)
			c.send(`{"op":"get","id":"get","collection":"c","record_id":"r3","vector_b64":true}`)
			c.send(`{"op":"delete","id":"del","collection":"c","record_id":"r4"}`)
			c.send(`{"op":"get","id":"missing","collection":"c","record_id":"nope"}`)
			sent = true
		}
		m := c.mustRead()
		switch m.Type {
		case "result", "error":
			if answers[m.ID] != nil {
				t.Fatalf("two answers to %s", m.ID)
			}
			answers[m.ID] = m
		case "event":
			events = append(events, m)
		default:
			t.Fatalf("unexpected %s", m.raw)
		}
	}
	seqOf := map[string]uint64{}
	for i := range n {
		a := answers[fmt.Sprintf("up%d", i)]
		var r struct{ Upserted, Seq uint64 }
		json.Unmarshal(a.Result, &r)
		if a.Type != "result" || r.Upserted != 1 || r.Seq == 0 {
			t.Fatalf("upsert %d: %s", i, a.raw)
		}
		seqOf[fmt.Sprintf("r%d", i)] = r.Seq
	}
	for i, m := range events {
		if i > 0 && m.Event.Seq <= events[i-1].Event.Seq {
			t.Fatalf("events out of order: %s after %s", m.raw, events[i-1].raw)
		}
		if m.Event.Type == "record.upserted" && (m.Event.Seq != seqOf[m.Event.ID] ||
			(len(m.Event.Record) > 0 && !strings.Contains(string(m.Event.Record), `"vector_b64"`))) {
			t.Fatalf("event %s does not match its upsert (seq %d)", m.raw, seqOf[m.Event.ID])
		}
	}
	var found struct {
		Results []struct{ ID string }
	}
	json.Unmarshal(answers["find"].Result, &found)
	if len(found.Results) != 3 {
		t.Fatalf("search: %s", answers["find"].raw)
	}
	if a := answers["get"]; a.Type != "result" || !strings.Contains(string(a.Result), `"id":"r3"`) || !strings.Contains(string(a.Result), `"vector_b64"`) {
		t.Fatalf("get: %s", a.raw)
	}
	if a := answers["del"]; a.Type != "result" || !strings.Contains(string(a.Result), `"seq":`) {
		t.Fatalf("delete: %s", a.raw)
	}
	if a := answers["missing"]; a.Type != "error" || a.Error.Code != "not_found" || a.Error.Message == "" {
		t.Fatalf("missing: %s", a.raw)
	}
	// The same answers as over HTTP.
	get := do(t, srv, "GET", "/v1/collections/c/records/r3?vector_b64=1", "", "")
	var viaHTTP, viaWS map[string]any
	json.Unmarshal([]byte(get.raw), &viaHTTP)
	json.Unmarshal(answers["get"].Result, &viaWS)
	if fmt.Sprint(viaHTTP) != fmt.Sprint(viaWS) {
		t.Fatalf("get differs:\nHTTP %v\nWS   %v", viaHTTP, viaWS)
	}
}

func TestWSBadMessagesGetErrors(t *testing.T) {
	srv, e, _ := newWSServer(t, engine.Options{})
	do(t, srv, "PUT", "/v1/collections/c", "", `{"dimension":2,"metric":"l2"}`)
	c := dialWS(t, srv)
	big := `{"op":"search","id":"big","collection":"c","body":{"vector":[1,2],"filter":{"x":"` + strings.Repeat("x", wsMaxRequestBytes) + `"}}}`
	for _, tc := range []struct {
		msg, id, code string
	}{
		{`{not json`, "", "invalid_argument"},
		{`[1,2]`, "", "invalid_argument"},
		{``, "", "invalid_argument"},
		{`{"op":"get","id":"x","collection":"c","record_id":"a"} trailing`, "x", "invalid_argument"},
		{`{"id":"noop"}`, "noop", "invalid_argument"},
		{`{"op":"fly","id":"f"}`, "f", "invalid_argument"},
		{`{"op":"get","collection":"c","record_id":"a"}`, "", "invalid_argument"},
		{`{"op":"get","id":7,"collection":"c","record_id":"a"}`, "", "invalid_argument"},
		{`{"op":"get","id":"","collection":"c","record_id":"a"}`, "", "invalid_argument"},
		{`{"op":"get","id":"` + strings.Repeat("i", 129) + `","collection":"c","record_id":"a"}`, "", "invalid_argument"},
		{`{"op":"get","id":"g1","collection":"c"}`, "g1", "invalid_argument"},
		{`{"op":"get","id":"g2","collection":"c","record_id":"a","body":{}}`, "g2", "invalid_argument"},
		{`{"op":"get","id":"g3","collection":"c","record_id":"a","extra":1}`, "g3", "invalid_argument"},
		{`{"op":"get","id":"g4","collection":"bad*name","record_id":"a"}`, "g4", "invalid_argument"},
		{`{"op":"get","id":"g5","collection":"nope","record_id":"a"}`, "g5", "not_found"},
		{`{"op":"upsert","id":"u1","collection":"c","body":{"records":[{"id":"a","vector":[1]}]}}`, "u1", "invalid_argument"},
		{`{"op":"upsert","id":"u2","collection":"c","body":{"records":[]}}`, "u2", "invalid_argument"},
		{`{"op":"upsert","id":"u3","collection":"c","body":"records"}`, "u3", "invalid_argument"},
		{`{"op":"upsert","id":"u4","collection":"c"}`, "u4", "invalid_argument"},
		{`{"op":"search","id":"q1","collection":"c","body":{"k":1}}`, "q1", "invalid_argument"},
		{`{"op":"search","id":"q2","collection":"c","body":{"vector":[1,2],"include":["secrets"]}}`, "q2", "invalid_argument"},
		{`{"op":"delete","id":"d1","collection":"c","record_id":"missing"}`, "d1", "not_found"},
		{`{"op":"subscribe","id":"s1","types":["record.exploded"]}`, "s1", "invalid_argument"},
		{`{"op":"subscribe","id":"s2","collections":["bad*"]}`, "s2", "invalid_argument"},
		{`{"op":"subscribe","id":"s3","from":-1}`, "s3", "invalid_argument"},
		{`{"op":"subscribe","id":"s4","collection":"c"}`, "s4", "invalid_argument"},
		{`{"op":"unsubscribe","id":"x1"}`, "x1", "invalid_argument"},
		{`{"op":"unsubscribe","id":"x2","subscription":"s99"}`, "x2", "not_found"},
		{big, "big", "payload_too_large"},
	} {
		seq := e.LastSeq()
		c.send(tc.msg)
		m := c.mustRead()
		if m.Type != "error" || m.ID != tc.id || m.Error.Code != tc.code || m.Error.Message == "" {
			t.Errorf("%.80s: got %.300s, want error %s for id %q", tc.msg, m.raw, tc.code, tc.id)
		}
		if e.LastSeq() != seq {
			t.Errorf("%.80s: a refused message wrote", tc.msg)
		}
		// The connection is still usable.
		c.send(`{"op":"get","id":"ok","collection":"c","record_id":"a"}`)
		if m := c.mustRead(); m.ID != "ok" || m.Error == nil || m.Error.Code != "not_found" {
			t.Fatalf("after %.80s: %s", tc.msg, m.raw)
		}
	}
}

// TestUpsertBatchErrorsMatchOverHTTPAndWS sends the same bad batches over
// HTTP and over the WebSocket: both refuse them with the same error object,
// naming the failing record where there is one.
func TestUpsertBatchErrorsMatchOverHTTPAndWS(t *testing.T) {
	srv, e, _ := newWSServer(t, engine.Options{})
	do(t, srv, "PUT", "/v1/collections/c", "", `{"dimension":2,"metric":"l2"}`)
	c := dialWS(t, srv)
	ok := `{"id":"a","vector":[1,2]}`
	tooMany := strings.Repeat(ok+",", engine.MaxBatchRecords) + ok
	for _, tc := range []struct {
		collection, records string
		status              int
		code                string
		index               int // of the failing record; -1 for none
	}{
		{"c", ok + `,{"id":"b","vector":[1]}`, 400, "invalid_argument", 1},                               // wrong dimension
		{"c", ok + `,` + ok + `,{"id":"b","vector":[1,2,3]}`, 400, "invalid_argument", 2},                // wrong dimension
		{"c", `{"vector":[1,2]}`, 400, "invalid_argument", 0},                                            // no id
		{"c", ok + `,{"id":"b","vector":[1,2],"vector_b64":"AAAAAAAAAAA="}`, 400, "invalid_argument", 1}, // two vectors
		{"c", ok + `,{"id":"b","vector":[1,2],"metadata":[1]}`, 400, "invalid_argument", 1},              // metadata not an object
		{"c", ok + `,{"id":"b","vector":[1,2],"metadata":{"m":"` + strings.Repeat("x", 70000) + `"}}`, 413, "payload_too_large", 1},
		{"c", ``, 400, "invalid_argument", -1},                          // empty batch
		{"c", tooMany, 413, "payload_too_large", -1},                    // too many records
		{"nope", ok + `,{"id":"b","vector":[1]}`, 404, "not_found", -1}, // the collection, not a record
	} {
		body := `{"records":[` + tc.records + `]}`
		name := fmt.Sprintf("%s %.80s", tc.collection, body)
		seq := e.LastSeq()
		viaHTTP := do(t, srv, "POST", "/v1/collections/"+tc.collection+"/records", "", body)
		c.send(`{"op":"upsert","id":"u","collection":"` + tc.collection + `","body":` + body + `}`)
		viaWS := c.mustRead()
		if e.LastSeq() != seq {
			t.Errorf("%s: a refused batch wrote", name)
		}
		if viaHTTP.status != tc.status || viaHTTP.code() != tc.code {
			t.Errorf("%s: HTTP %d %s, want %d %s (%.300s)", name, viaHTTP.status, viaHTTP.code(), tc.status, tc.code, viaHTTP.raw)
			continue
		}
		var wsError map[string]any
		var m map[string]json.RawMessage
		json.Unmarshal([]byte(viaWS.raw), &m)
		json.Unmarshal(m["error"], &wsError)
		if !reflect.DeepEqual(viaHTTP.body["error"], wsError) {
			t.Errorf("%s: errors differ\nHTTP %.300s\nWS   %.300s", name, viaHTTP.raw, viaWS.raw)
		}
		errBody, _ := viaHTTP.body["error"].(map[string]any)
		details, _ := errBody["details"].(map[string]any)
		message, _ := errBody["message"].(string)
		index, named := details["index"]
		switch {
		case tc.index < 0 && named:
			t.Errorf("%s: details.index %v, want none", name, index)
		case tc.index >= 0 && (index != float64(tc.index) || !strings.HasPrefix(message, fmt.Sprintf("records[%d]: ", tc.index))):
			t.Errorf("%s: details.index %v, message %.100q; want record %d", name, index, message, tc.index)
		}
	}
}

func TestWSAbuseCloses(t *testing.T) {
	srv, _, _ := newWSServer(t, engine.Options{})
	do(t, srv, "PUT", "/v1/collections/c", "", `{"dimension":2,"metric":"l2"}`)
	ctx := context.Background()

	t.Run("binary", func(t *testing.T) {
		c := dialWS(t, srv)
		c.conn.Write(ctx, websocket.MessageBinary, []byte(`{"op":"get"}`))
		if ce := c.closeStatus(); ce.Code != websocket.StatusUnsupportedData || ce.Reason == "" {
			t.Fatalf("close %v", ce)
		}
	})
	t.Run("too big", func(t *testing.T) {
		c := dialWS(t, srv)
		c.conn.Write(ctx, websocket.MessageText, []byte(`{"op":"upsert","body":"`+strings.Repeat("x", wsMaxMessageBytes)+`"}`))
		if ce := c.closeStatus(); ce.Code != websocket.StatusMessageTooBig {
			t.Fatalf("close %v", ce)
		}
	})
	t.Run("subscriptions", func(t *testing.T) {
		c := dialWS(t, srv)
		for i := range wsMaxSubscriptions {
			c.send(fmt.Sprintf(`{"op":"subscribe","id":"s%d"}`, i))
			if m := c.mustRead(); m.Type != "result" {
				t.Fatal(m.raw)
			}
		}
		c.send(`{"op":"subscribe","id":"one-more"}`)
		if ce := c.closeStatus(); ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "subscriptions") {
			t.Fatalf("close %v", ce)
		}
	})
	t.Run("in flight", func(t *testing.T) {
		// Answers of 60 KB that the peer does not read fill its socket
		// and the outbox; operations then stay in flight until one too
		// many closes the connection.
		meta := `{"m":"` + strings.Repeat("x", 60000) + `"}`
		do(t, srv, "PUT", "/v1/collections/c/records/fat", "", `{"vector":[1,2],"metadata":`+meta+`}`)
		c := dialWS(t, srv)
		sent := 0
		for ; sent < 2000; sent++ {
			// A write to a closed connection fails at once; the bound is
			// for a server that stopped reading without closing.
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.conn.Write(wctx, websocket.MessageText, []byte(fmt.Sprintf(`{"op":"get","id":"g%d","collection":"c","record_id":"fat"}`, sent)))
			cancel()
			if err != nil {
				break // the server closed the connection
			}
		}
		ce := c.closeStatus()
		if ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "in flight") {
			t.Fatalf("close %v after %d requests", ce, sent)
		}
	})
	// A request id still in flight is not abuse: it gets an error
	// (TestWSDuplicateRequestIDInFlight).
}

// TestWSDuplicateRequestIDInFlight: a message whose id is that of an
// operation still in flight gets a conflict error carrying the id and does
// not run; the operation in flight completes normally, and once it is
// answered its id may be used again.
//
// It runs in a bubble over an in-memory pipe, so that synctest.Wait tells
// when the server has handled each message. The first operation is held in
// flight by making the session's outbox look full, as it is while a peer
// reads slowly: an operation leaves the in-flight set only as its answer
// enters the outbox.
func TestWSDuplicateRequestIDInFlight(t *testing.T) {
	e, err := engine.Open(engine.Options{Dir: t.TempDir(), SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if _, _, _, err := e.CreateCollection(ctx, "c", engine.CollectionSpec{Dimension: 2, Metric: "l2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Upsert(ctx, "c", []engine.RecordInput{{ID: "r", Vector: []float32{1, 2}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wsHook = nil })
	synctest.Test(t, func(t *testing.T) {
		sessions := make(chan *wsSession, 1)
		wsHook = func(s *wsSession) { sessions <- s }
		api := New(e, Options{Heartbeat: time.Hour}) // no ping in the way
		conn, br := pipeWS(t, api)
		s := <-sessions
		inFlight := func(id string) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			_, ok := s.mu.inflight[id]
			return ok
		}

		// The outbox looks full until the release below.
		s.out.mu.Lock()
		s.out.mu.bytes += wsOutboxBytes
		s.out.mu.Unlock()
		writeRawText(t, conn, `{"op":"get","id":"same","collection":"c","record_id":"r"}`)
		synctest.Wait() // the get ran; its answer waits for room
		if !inFlight("same") {
			t.Fatal("the get is not in flight: the test holds nothing")
		}
		writeRawText(t, conn, `{"op":"search","id":"same","collection":"c","body":{"vector":[1,2],"k":1}}`)
		synctest.Wait() // the search was handled; its answer waits for room too
		if !inFlight("same") {
			t.Fatal("the get left the in-flight set before its answer was queued")
		}
		s.out.release(wsOutboxBytes)

		// The two answers, in either order: they waited for room together.
		var result, conflict *wsMsg
		for range 2 {
			m := readRawMessage(t, br)
			switch {
			case m.ID != "same":
				t.Fatalf("unexpected %s", m.raw)
			case m.Type == "error" && conflict == nil:
				conflict = m
			case m.Type == "result" && result == nil:
				result = m
			default:
				t.Fatalf("two answers of type %s to id %q, want one result and one conflict error: %s", m.Type, m.ID, m.raw)
			}
		}
		if conflict.Error.Code != "conflict" || !strings.Contains(conflict.Error.Message, `"same"`) {
			t.Errorf("duplicate: %s, want a conflict error naming the id", conflict.raw)
		}
		if !strings.Contains(string(result.Result), `"id":"r"`) {
			t.Errorf("the get in flight: %s, want record r", result.raw)
		}
		if inFlight("same") {
			t.Fatal("id still in flight after its answer")
		}

		// Answered, the id is free again: a search under it runs.
		writeRawText(t, conn, `{"op":"search","id":"same","collection":"c","body":{"vector":[1,2],"k":1}}`)
		if m := readRawMessage(t, br); m.Type != "result" || m.ID != "same" || !strings.Contains(string(m.Result), `"results":[{"id":"r"`) {
			t.Errorf("id reused after its answer: %s, want the search's result", m.raw)
		}
	})
}

// TestWSChecksEachOperation runs on a read-only listener: the socket opens
// (it needs the read class), reads pass, writes are refused one by one.
func TestWSChecksEachOperation(t *testing.T) {
	srv, e, _ := newWSServer(t, engine.Options{}, Options{Unlisted: conn(t, "unix:/test.sock?class=read")})
	if _, _, _, err := e.CreateCollection(context.Background(), "c", engine.CollectionSpec{Dimension: 2, Metric: "l2"}); err != nil {
		t.Fatal(err)
	}
	c := dialWS(t, srv)
	for _, tc := range []struct{ msg, code string }{
		{`{"op":"upsert","id":"1","collection":"c","body":{"records":[{"id":"a","vector":[1,2]}]}}`, "permission_denied"},
		{`{"op":"delete","id":"2","collection":"c","record_id":"a"}`, "permission_denied"},
		{`{"op":"get","id":"3","collection":"c","record_id":"a"}`, "not_found"},
		{`{"op":"search","id":"4","collection":"c","body":{"vector":[1,2]}}`, ""},
		{`{"op":"subscribe","id":"5","collections":["c"]}`, ""},
	} {
		c.send(tc.msg)
		m := c.mustRead()
		if (tc.code == "" && m.Type != "result") || (tc.code != "" && (m.Error == nil || m.Error.Code != tc.code)) {
			t.Errorf("%s: %s, want %q", tc.msg, m.raw, tc.code)
		}
	}
	if e.LastSeq() != 1 {
		t.Fatalf("a refused write was applied: seq %d", e.LastSeq())
	}
}

func TestWSUpgradeErrors(t *testing.T) {
	srv, _, _ := newWSServer(t, engine.Options{})
	a := do(t, srv, "GET", "/v1/ws", "", "")
	if a.status != 400 || a.code() != "invalid_argument" || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("plain GET: %d %s", a.status, a.raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin: %v %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"permission_denied"`) {
		t.Fatalf("cross-origin body %s", body)
	}
	// The same origin is welcome.
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {srv.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

func TestWSGap(t *testing.T) {
	// Events older than a second are trimmed: long enough for the event
	// written after the gap to be delivered before it is trimmed in turn,
	// even on a loaded machine.
	srv, e, _ := newWSServer(t, engine.Options{Retention: engine.Retention{MaxAge: time.Second, Interval: 20 * time.Millisecond}})
	do(t, srv, "PUT", "/v1/collections/c", "", `{"dimension":2,"metric":"l2"}`)
	for i := range 5 {
		do(t, srv, "PUT", fmt.Sprintf("/v1/collections/c/records/r%d", i), "", `{"vector":[1,2]}`)
	}
	last := e.LastSeq()
	for deadline := time.Now().Add(10 * time.Second); ; {
		oldest, err := e.OldestSeq()
		if err != nil {
			t.Fatal(err)
		}
		if oldest > last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention did not trim: oldest %d, last %d", oldest, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := dialWS(t, srv)
	c.send(`{"op":"subscribe","id":"old","from":0}`)
	ans := c.mustRead()
	var sub struct{ Subscription string }
	json.Unmarshal(ans.Result, &sub)
	if ans.Type != "result" || ans.ID != "old" {
		t.Fatalf("subscribe: %s", ans.raw)
	}
	gap := c.mustRead()
	if gap.Type != "gap" || gap.Subscription != sub.Subscription || gap.RequestedSeq != 1 || gap.OldestSeq <= last {
		t.Fatalf("gap: %s (last %d)", gap.raw, last)
	}
	// The subscription goes on from the oldest retained event.
	do(t, srv, "PUT", "/v1/collections/c/records/new", "", `{"vector":[1,2]}`)
	if m := c.mustRead(); m.Type != "event" || m.Event.ID != "new" || m.Event.Seq < gap.OldestSeq {
		t.Fatalf("after gap: %s", m.raw)
	}
}

func TestWSShutdownClosesWithGoingAway(t *testing.T) {
	srv, _, api := newWSServer(t, engine.Options{})
	c := dialWS(t, srv)
	c.send(`{"op":"subscribe","id":"s"}`)
	c.mustRead()
	api.Shutdown()
	if ce := c.closeStatus(); ce.Code != websocket.StatusGoingAway {
		t.Fatalf("close %v", ce)
	}
}

// TestWSSlowReaderBoundedMemory writes much more than socket buffers and
// the outbox hold to a subscriber that reads nothing, then reads: the
// outbox stayed within its bound and nothing was lost or reordered.
func TestWSSlowReaderBoundedMemory(t *testing.T) {
	var mu sync.Mutex
	var sessions []*wsSession
	wsHook = func(s *wsSession) {
		mu.Lock()
		sessions = append(sessions, s)
		mu.Unlock()
	}
	t.Cleanup(func() { wsHook = nil })
	srv, e, _ := newWSServer(t, engine.Options{})
	do(t, srv, "PUT", "/v1/collections/c", "", `{"dimension":2,"metric":"l2"}`)
	c := dialWS(t, srv)
	c.send(`{"op":"subscribe","id":"s","collections":["c"]}`)
	c.mustRead()

	const batches, perBatch = 20, 20 // 400 events of 32 KB: 13 MB
	meta := `{"m":"` + strings.Repeat("x", 32<<10) + `"}`
	for b := range batches {
		body := recordsBody(b*perBatch, perBatch, `"vector":[1,2],"metadata":`+meta)
		if a := do(t, srv, "POST", "/v1/collections/c/records", "", body); a.status != 200 {
			t.Fatalf("upsert: %d %.200s", a.status, a.raw)
		}
	}
	last := e.LastSeq()
	// Wait until the subscription is stuck on a full outbox.
	mu.Lock()
	s := sessions[0]
	mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); s.out.peak() < wsOutboxBytes; {
		if time.Now().After(deadline) {
			t.Fatalf("outbox peaked at %d bytes; the test did not fill it", s.out.peak())
		}
		time.Sleep(10 * time.Millisecond)
	}
	maxEvent := 40 << 10
	if p := s.out.peak(); p > wsOutboxBytes+maxEvent {
		t.Fatalf("outbox held %d bytes, bound %d", p, wsOutboxBytes+maxEvent)
	}
	var prev uint64
	for n := 0; n < batches*perBatch; n++ {
		m := c.mustRead()
		if m.Type != "event" || m.Event.ID != fmt.Sprintf("r%04d", n) || m.Event.Seq <= prev {
			t.Fatalf("event %d: %.200s", n, m.raw)
		}
		prev = m.Event.Seq
	}
	if prev != last {
		t.Fatalf("last event %d, last write %d", prev, last)
	}
	if p := s.out.peak(); p > wsOutboxBytes+maxEvent {
		t.Fatalf("outbox held %d bytes, bound %d", p, wsOutboxBytes+maxEvent)
	}
}

// TestWSPeerThatIgnoresPingsIsClosed runs in fake time over an in-memory
// pipe: a peer that never answers pings is closed with 1008 after the
// heartbeat plus wsPongTimeout.
func TestWSPeerThatIgnoresPingsIsClosed(t *testing.T) {
	e, err := engine.Open(engine.Options{Dir: t.TempDir(), SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	synctest.Test(t, func(t *testing.T) {
		api := New(e, Options{Heartbeat: 10 * time.Second})
		start := time.Now()
		_, br := pipeWS(t, api)
		pings := 0
		for {
			op, payload := readRawFrame(t, br)
			if op == 0x9 {
				pings++
				continue
			}
			if op != 0x8 || len(payload) < 2 {
				t.Fatalf("frame %x %q", op, payload)
			}
			code := binary.BigEndian.Uint16(payload)
			if code != uint16(websocket.StatusPolicyViolation) || !strings.Contains(string(payload[2:]), "pong") {
				t.Fatalf("close %d %q", code, payload[2:])
			}
			break
		}
		if elapsed := time.Since(start); pings != 1 || elapsed != 10*time.Second+wsPongTimeout {
			t.Fatalf("closed after %v and %d pings, want %v and 1", elapsed, pings, 10*time.Second+wsPongTimeout)
		}
	})
}

// pipeWS serves api over an in-memory pipe, for tests in a synctest bubble,
// and opens a WebSocket on it by hand: it returns the client's end and a
// reader of it positioned after the handshake. The test's cleanup closes the
// client's end and shuts api down, so that the session's goroutines end
// even if the test failed in the middle of it.
func pipeWS(t *testing.T, api *API) (net.Conn, *bufio.Reader) {
	t.Helper()
	serverConn, conn := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv := &http.Server{Handler: api}
		srv.Serve(&oneConnListener{conn: serverConn})
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
		api.Shutdown()
	})
	fmt.Fprintf(conn, "GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return conn, br
}

// writeRawText writes msg as one masked text frame, as a client must; the
// zero masking key leaves the payload as it is.
func writeRawText(t *testing.T, w io.Writer, msg string) {
	t.Helper()
	frame := []byte{0x81} // FIN, text
	switch n := len(msg); {
	case n < 126:
		frame = append(frame, 0x80|byte(n))
	case n <= 0xffff:
		frame = binary.BigEndian.AppendUint16(append(frame, 0x80|126), uint16(n))
	default:
		frame = binary.BigEndian.AppendUint64(append(frame, 0x80|127), uint64(n))
	}
	frame = append(append(frame, 0, 0, 0, 0), msg...)
	if _, err := w.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// readRawMessage reads one server frame, which must be a text message, and
// parses it.
func readRawMessage(t *testing.T, r io.Reader) *wsMsg {
	t.Helper()
	op, payload := readRawFrame(t, r)
	if op != 0x1 {
		t.Fatalf("frame of opcode %x (%q), want a text message", op, payload)
	}
	m := &wsMsg{raw: string(payload)}
	if err := json.Unmarshal(payload, m); err != nil {
		t.Fatalf("bad message %.200s: %v", payload, err)
	}
	return m
}

// readRawFrame reads one unmasked server frame, without fragmentation.
func readRawFrame(t *testing.T, r io.Reader) (opcode byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatal(err)
	}
	return h[0] & 0x0f, payload
}

// oneConnListener hands out one connection, then reports itself closed once
// that connection's server goroutine is done with it.
type oneConnListener struct {
	conn net.Conn
	once sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
