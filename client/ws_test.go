package client

// Session against a scripted WebSocket server written here with the
// standard library, over in-memory pipes in a synctest bubble: each test
// says frame by frame what the server sends and checks what the client
// does. The Session against the real server is tested in e2e/ws_test.go.

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
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// wsPeer is the server end of one WebSocket connection.
type wsPeer struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// wsFrame is a frame as the peer read it, unmasked.
type wsFrame struct {
	fin     bool
	opcode  byte
	masked  bool
	payload []byte
}

// sessionTest runs f in a bubble with a Client whose connections reach
// accept, which plays the server.
func sessionTest(t *testing.T, f func(t *testing.T, c *Client, accept func() net.Conn)) {
	synctest.Test(t, func(t *testing.T) {
		l := newPipeListener()
		defer l.Close()
		hc := &http.Client{Transport: &http.Transport{DialContext: l.dial}}
		c, err := New("localhost:80", WithHTTPClient(hc), WithHeader("Authorization", "Bearer k"))
		if err != nil {
			t.Fatal(err)
		}
		f(t, c, func() net.Conn {
			conn, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			return conn
		})
	})
}

// upgrade reads the handshake request and answers it with status, or with
// 101 and the right accept key when status is 101 and accept is "".
func upgrade(t *testing.T, conn net.Conn, status int, accept string) *wsPeer {
	t.Helper()
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.Path != "/v1/ws" || req.Header.Get("Upgrade") != "websocket" || req.Header.Get("Connection") != "Upgrade" ||
		req.Header.Get("Sec-WebSocket-Version") != "13" || req.Header.Get("Authorization") != "Bearer k" || req.Proto != "HTTP/1.1" {
		t.Fatalf("handshake request: %s %s %v", req.Proto, req.URL, req.Header)
	}
	if status != http.StatusSwitchingProtocols {
		body := `{"error":{"code":"invalid_argument","message":"no"}}`
		fmt.Fprintf(conn, "HTTP/1.1 %d x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
		return nil
	}
	if accept == "" {
		accept = acceptKey(req.Header.Get("Sec-WebSocket-Key"))
	}
	fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept)
	return &wsPeer{t: t, conn: conn, br: br}
}

func (p *wsPeer) readFrame() wsFrame {
	p.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(p.br, h[:]); err != nil {
		p.t.Fatalf("read frame: %v", err)
	}
	f := wsFrame{fin: h[0]&0x80 != 0, opcode: h[0] & 0x0F, masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(p.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(p.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	var mask [4]byte
	if f.masked {
		io.ReadFull(p.br, mask[:])
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(p.br, f.payload); err != nil {
		p.t.Fatalf("read payload: %v", err)
	}
	for i := range f.payload {
		f.payload[i] ^= mask[i&3]
	}
	return f
}

// request reads the next frame, which must be a masked text request.
func (p *wsPeer) request() map[string]any {
	p.t.Helper()
	f := p.readFrame()
	if !f.fin || f.opcode != opText || !f.masked {
		p.t.Fatalf("frame fin=%v opcode=%d masked=%v, want a whole masked text frame", f.fin, f.opcode, f.masked)
	}
	var m map[string]any
	if err := json.Unmarshal(f.payload, &m); err != nil {
		p.t.Fatalf("request %s: %v", f.payload, err)
	}
	return m
}

// write sends a raw server frame.
func (p *wsPeer) write(first byte, payload []byte) {
	p.t.Helper()
	b := []byte{first}
	switch l := len(payload); {
	case l <= 125:
		b = append(b, byte(l))
	case l <= 0xFFFF:
		b = binary.BigEndian.AppendUint16(append(b, 126), uint16(l))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 127), uint64(l))
	}
	if _, err := p.conn.Write(append(b, payload...)); err != nil {
		p.t.Fatalf("write frame: %v", err)
	}
}

func (p *wsPeer) send(msg string) { p.write(0x80|opText, []byte(msg)) }

func (p *wsPeer) close(code int, reason string) {
	p.write(0x80|opClose, append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...))
}

// expectClose reads frames up to a close frame and returns its code.
func (p *wsPeer) expectClose() int {
	p.t.Helper()
	for {
		f := p.readFrame()
		if f.opcode == opClose {
			if len(f.payload) < 2 {
				return closeNoStatus
			}
			return int(binary.BigEndian.Uint16(f.payload))
		}
	}
}

func TestSessionOperations(t *testing.T) {
	sessionTest(t, func(t *testing.T, c *Client, accept func() net.Conn) {
		type result struct {
			name string
			v    any
			err  error
		}
		results := make(chan result, 4)
		var s *Session
		go func() {
			p := upgrade(t, accept(), 101, "")
			// Four requests, answered in reverse order.
			reqs := map[string]map[string]any{}
			for range 4 {
				r := p.request()
				reqs[r["op"].(string)] = r
			}
			if g := reqs["get"]; g["collection"] != "docs" || g["record_id"] != "a/b" || g["vector_b64"] != true {
				t.Errorf("get request %v", g)
			}
			up := reqs["upsert"]["body"].(map[string]any)["records"].([]any)[0].(map[string]any)
			if up["id"] != "x" || up["vector_b64"] != encodeVector([]float32{1, 2}) {
				t.Errorf("upsert request %v", up)
			}
			if q := reqs["search"]["body"].(map[string]any); q["k"] != 2.0 || q["vector_b64"] == nil {
				t.Errorf("search request %v", q)
			}
			ids := map[any]bool{}
			for _, r := range reqs {
				ids[r["id"]] = true
			}
			if len(ids) != 4 {
				t.Errorf("request ids are not distinct: %v", ids)
			}
			p.send(`{"type":"error","id":"` + reqs["delete"]["id"].(string) + `","error":{"code":"not_found","message":"no such record"}}`)
			p.send(`{"type":"result","id":"` + reqs["search"]["id"].(string) + `","result":{"results":[{"id":"x","distance":0.5}],"seq":7}}`)
			p.send(`{"type":"result","id":"` + reqs["upsert"]["id"].(string) + `","result":{"upserted":1,"seq":7}}`)
			// The last answer in three fragments, with a ping between
			// them that must be answered with its payload. (The pong is
			// read at once: a pipe has no buffer.)
			answer := `{"type":"result","id":"` + reqs["get"]["id"].(string) + `","result":{"id":"a/b","vector_b64":"` + encodeVector([]float32{3, 4}) + `","seq":5}}`
			p.write(opText, []byte(answer[:10]))
			p.write(0x80|opPing, []byte("hello"))
			if f := p.readFrame(); f.opcode != opPong || !f.masked || string(f.payload) != "hello" {
				t.Errorf("pong: %+v", f)
			}
			p.write(opContinuation, []byte(answer[10:20]))
			p.write(0x80|opContinuation, []byte(answer[20:]))
			if code := p.expectClose(); code != closeNormal {
				t.Errorf("client closed with %d", code)
			}
			p.close(closeNormal, "")
			p.conn.Close()
		}()
		s, err := c.Session(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			r, err := s.Get(t.Context(), "docs", "a/b")
			results <- result{"get", r, err}
		}()
		go func() {
			seq, err := s.Upsert(t.Context(), "docs", Record{ID: "x", Vector: []float32{1, 2}})
			results <- result{"upsert", seq, err}
		}()
		go func() {
			seq, err := s.Delete(t.Context(), "docs", "gone")
			results <- result{"delete", seq, err}
		}()
		go func() {
			r, err := s.Search(t.Context(), "docs", SearchRequest{Vector: []float32{1, 2}, K: 2})
			results <- result{"search", r, err}
		}()
		got := map[string]result{}
		for range 4 {
			r := <-results
			got[r.name] = r
		}
		if r := got["get"]; r.err != nil || r.v.(*Record).ID != "a/b" || fmt.Sprint(r.v.(*Record).Vector) != "[3 4]" {
			t.Errorf("get: %+v %v", r.v, r.err)
		}
		if r := got["upsert"]; r.err != nil || r.v != uint64(7) {
			t.Errorf("upsert: %v %v", r.v, r.err)
		}
		if r := got["delete"]; !IsNotFound(r.err) {
			t.Errorf("delete: %v", r.err)
		}
		if r := got["search"]; r.err != nil || r.v.(*SearchResponse).Results[0].ID != "x" {
			t.Errorf("search: %+v %v", r.v, r.err)
		}
		s.Close()
		if _, err := s.Get(t.Context(), "docs", "a"); !errors.Is(err, ErrSessionClosed) {
			t.Errorf("Get after Close: %v", err)
		}
		if _, ok := <-s.Events(); ok {
			t.Error("Events not closed")
		}
	})
}

func TestSessionEvents(t *testing.T) {
	sessionTest(t, func(t *testing.T, c *Client, accept func() net.Conn) {
		go func() {
			p := upgrade(t, accept(), 101, "")
			r := p.request()
			if r["op"] != "subscribe" || r["from"] != 3.0 || r["records"] != true || r["vector_b64"] != true ||
				fmt.Sprint(r["collections"]) != "[docs]" || fmt.Sprint(r["types"]) != "[record.upserted]" {
				t.Errorf("subscribe request %v", r)
			}
			p.send(`{"type":"result","id":"` + r["id"].(string) + `","result":{"subscription":"s1","seq":3}}`)
			p.send(`{"type":"gap","subscription":"s1","requested_seq":4,"oldest_seq":9,"message":"trimmed"}`)
			p.send(`{"type":"event","subscription":"s1","event":{"seq":9,"type":"record.upserted","collection":"docs","id":"a","time":"2026-01-02T03:04:05Z","record":{"id":"a","vector_b64":"` + encodeVector([]float32{1}) + `"}}}`)
			p.send(`{"type":"error","subscription":"s1","error":{"code":"unavailable","message":"feed closed"}}`)
			p.send(`{"type":"something.new"}`) // ignored
			r = p.request()
			if r["op"] != "unsubscribe" || r["subscription"] != "s1" {
				t.Errorf("unsubscribe request %v", r)
			}
			p.send(`{"type":"result","id":"` + r["id"].(string) + `","result":{"subscription":"s1","seq":9}}`)
			p.close(1001, "server shutting down")
			if code := p.expectClose(); code != 1001 {
				t.Errorf("client echoed %d", code)
			}
			p.conn.Close()
		}()
		s, err := c.Session(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		from := uint64(3)
		id, start, err := s.Subscribe(t.Context(), SubscribeOptions{From: &from, Collections: []string{"docs"}, Types: []string{EventRecordUpserted}, Records: true})
		if err != nil || id != "s1" || start != 3 {
			t.Fatalf("Subscribe: %q %d %v", id, start, err)
		}
		var gap *GapError
		if ev := <-s.Events(); ev.Subscription != "s1" || !errors.As(ev.Err, &gap) || gap.Oldest != 9 || gap.Requested != 4 {
			t.Fatalf("gap: %+v", ev)
		}
		ev := <-s.Events()
		if e := ev.Event; ev.Err != nil || e.Seq != 9 || e.ID != "a" || e.Time.Year() != 2026 || e.Record == nil || fmt.Sprint(e.Record.Vector) != "[1]" {
			t.Fatalf("event: %+v %+v", ev, ev.Event)
		}
		var herr *Error
		if ev := <-s.Events(); !errors.As(ev.Err, &herr) || herr.Code != CodeUnavailable || herr.Status != 503 {
			t.Fatalf("subscription error: %+v", ev)
		}
		if seq, err := s.Unsubscribe(t.Context(), "s1"); err != nil || seq != 9 {
			t.Fatalf("Unsubscribe: %d %v", seq, err)
		}
		<-s.Done()
		if _, ok := <-s.Events(); ok {
			t.Error("Events not closed")
		}
		var ce *CloseError
		if !errors.As(s.Err(), &ce) || ce.Code != 1001 || ce.Reason != "server shutting down" || ce.Local {
			t.Fatalf("Err: %v", s.Err())
		}
		if _, err := s.Get(t.Context(), "docs", "a"); !errors.As(err, &ce) {
			t.Fatalf("Get after close: %v", err)
		}
		s.Close()
	})
}

func TestSessionServerCloseFailsCalls(t *testing.T) {
	sessionTest(t, func(t *testing.T, c *Client, accept func() net.Conn) {
		go func() {
			p := upgrade(t, accept(), 101, "")
			p.request()
			p.close(1008, "more than 32 operations in flight")
			p.expectClose()
			p.conn.Close()
		}()
		s, err := c.Session(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Get(t.Context(), "docs", "a")
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != 1008 || !strings.Contains(ce.Error(), "in flight") {
			t.Fatalf("Get: %v", err)
		}
		s.Close()
	})
}

func TestSessionProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		code  int
	}{
		{"masked", []byte{0x81, 0x82, 1, 2, 3, 4, 'x' ^ 1, 'y' ^ 2}, closeProtocolError},
		{"reserved bits", []byte{0xC1, 0x01, 'x'}, closeProtocolError},
		{"binary", []byte{0x82, 0x01, 'x'}, closeUnsupportedData},
		{"unknown opcode", []byte{0x83, 0x00}, closeProtocolError},
		{"continuation first", []byte{0x80, 0x01, 'x'}, closeProtocolError},
		{"text inside text", []byte{0x01, 0x01, '{', 0x81, 0x01, '}'}, closeProtocolError},
		{"fragmented ping", []byte{0x09, 0x00}, closeProtocolError},
		{"long ping", append([]byte{0x89, 126, 0, 200}, make([]byte, 200)...), closeProtocolError},
		{"too big", []byte{0x81, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}, closeMessageTooBig},
		{"not utf-8", []byte{0x81, 0x02, 0xff, 0xfe}, closeInvalidPayload},
		{"not json", []byte{0x81, 0x01, '{'}, closeInvalidPayload},
		{"one-byte close", []byte{0x88, 0x01, 0x03}, closeProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sessionTest(t, func(t *testing.T, c *Client, accept func() net.Conn) {
				go func() {
					p := upgrade(t, accept(), 101, "")
					p.conn.Write(tc.frame)
					if code := p.expectClose(); code != tc.code {
						t.Errorf("client closed with %d, want %d", code, tc.code)
					}
					p.conn.Close()
				}()
				s, err := c.Session(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				<-s.Done()
				var ce *CloseError
				if !errors.As(s.Err(), &ce) || ce.Code != tc.code || !ce.Local {
					t.Fatalf("Err: %v", s.Err())
				}
				s.Close()
			})
		})
	}
}

func TestSessionHandshakeErrors(t *testing.T) {
	sessionTest(t, func(t *testing.T, c *Client, accept func() net.Conn) {
		go func() {
			upgrade(t, accept(), 400, "")
			upgrade(t, accept(), 101, "bm90IHRoZSByaWdodCBrZXk=")
		}()
		_, err := c.Session(t.Context())
		var herr *Error
		if !errors.As(err, &herr) || herr.Status != 400 || herr.Code != CodeInvalidArgument {
			t.Fatalf("400: %v", err)
		}
		if _, err := c.Session(t.Context()); err == nil || !strings.Contains(err.Error(), "Sec-WebSocket-Accept") {
			t.Fatalf("bad accept key: %v", err)
		}
		// A server that never answers: ctx bounds the handshake.
		go accept()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if _, err := c.Session(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("silent server: %v", err)
		}
	})
}

// TestSessionInFlightLimit checks that a Session keeps to the server's
// limit on operations in flight, counting calls whose caller gave up until
// their answer arrives.
func TestSessionInFlightLimit(t *testing.T) {
	sessionTest(t, func(t *testing.T, c *Client, accept func() net.Conn) {
		frames := make(chan map[string]any, 100)
		peer := make(chan *wsPeer, 1)
		go func() {
			p := upgrade(t, accept(), 101, "")
			peer <- p
			for {
				f := p.readFrame()
				if f.opcode == opClose {
					p.close(closeNormal, "")
					p.conn.Close()
					close(frames)
					return
				}
				var m map[string]any
				json.Unmarshal(f.payload, &m)
				frames <- m
			}
		}()
		s, err := c.Session(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		p := <-peer
		ctx, cancel := context.WithCancel(t.Context())
		errs := make(chan error, sessionMaxInFlight+8)
		for i := range sessionMaxInFlight + 8 {
			go func() {
				_, err := s.Get(ctx, "docs", fmt.Sprint(i))
				errs <- err
			}()
		}
		synctest.Wait()
		if len(frames) != sessionMaxInFlight {
			t.Fatalf("%d requests sent, want %d", len(frames), sessionMaxInFlight)
		}
		// Callers that give up still hold their slots.
		cancel()
		for range sessionMaxInFlight + 8 {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Get: %v", err)
			}
		}
		ids := []string{}
		for range sessionMaxInFlight {
			ids = append(ids, (<-frames)["id"].(string))
		}
		done := make(chan error)
		go func() {
			_, err := s.Delete(t.Context(), "docs", "x")
			done <- err
		}()
		synctest.Wait()
		if len(frames) != 0 {
			t.Fatal("a request was sent beyond the limit")
		}
		// One late answer frees one slot.
		p.send(`{"type":"error","id":"` + ids[0] + `","error":{"code":"not_found","message":"late"}}`)
		del := <-frames
		if del["op"] != "delete" {
			t.Fatalf("next request %v", del)
		}
		p.send(`{"type":"result","id":"` + del["id"].(string) + `","result":{"seq":1}}`)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
}

// TestSessionCloseWithoutAnswer checks that Close gives up on a server that
// does not answer its close frame, after sessionCloseTimeout.
func TestSessionCloseWithoutAnswer(t *testing.T) {
	sessionTest(t, func(t *testing.T, c *Client, accept func() net.Conn) {
		gotClose := make(chan int, 1)
		go func() {
			p := upgrade(t, accept(), 101, "")
			gotClose <- p.expectClose()
			io.Copy(io.Discard, p.conn) // until the client hangs up
		}()
		s, err := c.Session(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		s.Close()
		if elapsed := time.Since(start); elapsed != sessionCloseTimeout {
			t.Errorf("Close took %v, want %v", elapsed, sessionCloseTimeout)
		}
		if code := <-gotClose; code != closeNormal {
			t.Errorf("close code %d", code)
		}
		if !errors.Is(s.Err(), ErrSessionClosed) {
			t.Errorf("Err: %v", s.Err())
		}
	})
}
