package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testServer serves a test handler on a Unix socket with the lean path for
// every path but /stream, and returns the socket's address.
type testServer struct {
	srv      *Server
	addr     string
	served   chan error
	lean     atomic.Int64 // requests the handler saw on the lean path
	fallback atomic.Int64 // requests it saw through net/http
}

func newTestServer(t testing.TB, tweak func(*Server)) *testServer {
	t.Helper()
	ts := &testServer{addr: filepath.Join(t.TempDir(), "s.sock"), served: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d:%s", len(b), b) // no Content-Length: chunked
	})
	mux.HandleFunc("POST /ignore", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted) // leaves the body unread
	})
	mux.HandleFunc("GET /empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /short", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "abc") // fewer bytes than declared
	})
	mux.HandleFunc("GET /flush", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "one,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "two")
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "done")
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "streamed")
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(*response); ok {
			ts.lean.Add(1)
		} else {
			ts.fallback.Add(1)
		}
		w.Header().Set("X-Peer", fmt.Sprint(r.Context().Value(peerKey{})))
		mux.ServeHTTP(w, r)
	})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	connContext := func(ctx context.Context, c net.Conn) context.Context {
		if w, ok := c.(interface{ NetConn() net.Conn }); ok {
			c = w.NetConn()
		}
		_, unix := c.(*net.UnixConn)
		return context.WithValue(ctx, peerKey{}, unix)
	}
	ts.srv = &Server{
		Fallback: &http.Server{Handler: handler, Protocols: &protocols, ConnContext: connContext,
			ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)},
		Lean: func(method, path string) bool { return path != "/stream" },
	}
	if tweak != nil {
		tweak(ts.srv)
	}
	l, err := net.Listen("unix", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { ts.served <- ts.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-ts.served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ts
}

// peerKey marks whether ConnContext found the *net.UnixConn, under the
// wrapping of a connection handed over.
type peerKey struct{}

func (ts *testServer) dial(t testing.TB) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// roundTrip writes raw and reads one answer.
func roundTrip(t testing.TB, c net.Conn, br *bufio.Reader, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, br, strings.HasPrefix(raw, "HEAD "))
}

func readAnswer(t testing.TB, br *bufio.Reader, head bool) (*http.Response, string) {
	t.Helper()
	var req *http.Request
	if head {
		req = &http.Request{Method: http.MethodHead}
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestLeanKeepAlive(t *testing.T) {
	ts := newTestServer(t, nil)
	c, br := ts.dial(t)
	for i := range 50 {
		resp, body := roundTrip(t, c, br, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 200 || body != "hello" || resp.Close {
			t.Fatalf("request %d: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
		if resp.Header.Get("Date") == "" || resp.Header.Get("X-Peer") != "true" {
			t.Fatalf("header %v", resp.Header)
		}
	}
	if ts.lean.Load() != 50 || ts.fallback.Load() != 0 {
		t.Fatalf("lean %d, fallback %d; want 50, 0", ts.lean.Load(), ts.fallback.Load())
	}
}

func TestLeanPipelined(t *testing.T) {
	ts := newTestServer(t, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"hello", "3:abc", ""} {
		if _, body := readAnswer(t, br, false); body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
	if ts.lean.Load() != 3 {
		t.Fatalf("lean %d, want 3", ts.lean.Load())
	}
}

func TestLeanBodies(t *testing.T) {
	ts := newTestServer(t, nil)
	c, br := ts.dial(t)

	resp, body := roundTrip(t, c, br, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	if body != "5:hello" || resp.TransferEncoding == nil || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("content-length body: %q, transfer-encoding %v", body, resp.TransferEncoding)
	}
	resp, body = roundTrip(t, c, br, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	if body != "5:abcde" {
		t.Fatalf("chunked body: %q", body)
	}
	// A body the handler leaves unread is drained and the connection kept.
	resp, _ = roundTrip(t, c, br, "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd")
	if resp.StatusCode != http.StatusAccepted || resp.Close {
		t.Fatalf("ignored body: %d close=%v", resp.StatusCode, resp.Close)
	}
	resp, body = roundTrip(t, c, br, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	if body != "hello" {
		t.Fatalf("after an ignored body: %q", body)
	}
	// A handler that writes nothing answers Content-Length: 0.
	resp, body = roundTrip(t, c, br, "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.ContentLength != 0 || body != "" {
		t.Fatalf("empty: length %d body %q", resp.ContentLength, body)
	}
	resp, body = roundTrip(t, c, br, "GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusNoContent || body != "" || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("204: %v %q", resp.Header, body)
	}
	resp, body = roundTrip(t, c, br, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.ContentLength != 5 || body != "" {
		t.Fatalf("HEAD: length %d body %q", resp.ContentLength, body)
	}
	resp, body = roundTrip(t, c, br, "GET /flush HTTP/1.1\r\nHost: x\r\n\r\n")
	if body != "one,two" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("flush: %q %v", body, resp.Header)
	}
	if ts.fallback.Load() != 0 {
		t.Fatalf("%d requests went to net/http", ts.fallback.Load())
	}
}

func TestLeanClosesConnection(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct{ name, raw, status string }{
		{"client asks", "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "200"},
		{"no host", "GET /hello HTTP/1.1\r\n\r\n", "400"},
		{"bad host", "GET /hello HTTP/1.1\r\nHost: a b\r\n\r\n", "400"},
		{"two hosts", "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		{"bad header", "GET /hello HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", "400"},
		{"bad header value", "GET /hello HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", "400"},
		{"short answer", "GET /short HTTP/1.1\r\nHost: x\r\n\r\n", "200"},
		{"large unread body", "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("x", 1000000), "202"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := ts.dial(t)
			go io.WriteString(c, tc.raw)
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 "+tc.status) {
				t.Fatalf("status line %q, %v", line, err)
			}
			// The server closes: reading ends at EOF, not at the deadline.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Fatalf("connection not closed: %v", err)
			}
		})
	}
}

func TestLeanPanic(t *testing.T) {
	ts := newTestServer(t, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after a panic: %v, want the connection closed", err)
	}
	// The server goes on.
	c, br = ts.dial(t)
	if _, body := roundTrip(t, c, br, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"); body != "hello" {
		t.Fatalf("after a panic: %q", body)
	}
}

// Requests the lean path does not take reach net/http with every byte,
// even after lean requests on the same connection.
func TestHandOff(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct{ name, raw, want string }{
		{"stream route", "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", "streamed"},
		{"expect", "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", "2:hi"},
		{"HTTP/1.0", "GET /hello HTTP/1.0\r\nHost: x\r\n\r\n", "hello"},
		{"large head", "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 3*bufSize) + "\r\n\r\n", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.fallback.Load()
			c, br := ts.dial(t)
			if _, body := roundTrip(t, c, br, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"); body != "hello" {
				t.Fatalf("lean request first: %q", body)
			}
			io.WriteString(c, tc.raw)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == http.StatusContinue {
				resp, err = http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != tc.want || resp.Header.Get("X-Peer") != "true" {
				t.Fatalf("got %d %q peer %q, want %q from a Unix connection", resp.StatusCode, b, resp.Header.Get("X-Peer"), tc.want)
			}
			if ts.fallback.Load() != before+1 {
				t.Fatalf("net/http served %d requests, want 1", ts.fallback.Load()-before)
			}
		})
	}
}

func TestHandOffHTTP2(t *testing.T) {
	ts := newTestServer(t, nil)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{
		Protocols: &protocols,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", ts.addr)
		},
	}}
	defer client.CloseIdleConnections()
	for range 3 {
		resp, err := client.Get("http://x/hello")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "hello" {
			t.Fatalf("%s %q", resp.Proto, b)
		}
	}
	if ts.fallback.Load() != 3 || ts.lean.Load() != 0 {
		t.Fatalf("fallback %d lean %d", ts.fallback.Load(), ts.lean.Load())
	}
}

func TestTimeouts(t *testing.T) {
	ts := newTestServer(t, func(s *Server) {
		s.Fallback.ReadHeaderTimeout = 200 * time.Millisecond
		s.Fallback.IdleTimeout = 2 * time.Second
	})
	// A later request's head that never ends.
	c, br := ts.dial(t)
	roundTrip(t, c, br, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: x\r\n")
	began := time.Now()
	if _, err := br.ReadByte(); err != io.EOF || time.Since(began) > time.Second {
		t.Fatalf("stalled head: %v after %v, want EOF after about 200ms", err, time.Since(began))
	}
	// A first head whose first byte comes late has the time left since
	// accept, not a new ReadHeaderTimeout.
	ts = newTestServer(t, func(s *Server) { s.Fallback.ReadHeaderTimeout = 500 * time.Millisecond })
	c, br = ts.dial(t)
	began = time.Now()
	time.Sleep(450 * time.Millisecond)
	io.WriteString(c, "G")
	if _, err := br.ReadByte(); err != io.EOF || time.Since(began) > 750*time.Millisecond {
		t.Fatalf("late first head: %v after %v, want EOF about 500ms after connecting", err, time.Since(began))
	}
	// An idle connection.
	ts = newTestServer(t, func(s *Server) {
		s.Fallback.ReadHeaderTimeout = 200 * time.Millisecond
		s.Fallback.IdleTimeout = 300 * time.Millisecond
	})
	c, br = ts.dial(t)
	roundTrip(t, c, br, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	began = time.Now()
	if _, err := br.ReadByte(); err != io.EOF || time.Since(began) > 3*time.Second {
		t.Fatalf("idle: %v after %v, want EOF after about 300ms", err, time.Since(began))
	}
}

// TestSilentConnection: a connection that never sends a byte is closed after
// ReadHeaderTimeout, not held for the much longer idle timeout of kept-alive
// connections.
func TestSilentConnection(t *testing.T) {
	ts := newTestServer(t, func(s *Server) {
		s.Fallback.ReadHeaderTimeout = 200 * time.Millisecond
		s.Fallback.IdleTimeout = time.Minute
	})
	_, br := ts.dial(t)
	began := time.Now()
	if _, err := br.ReadByte(); err != io.EOF || time.Since(began) > 10*time.Second {
		t.Fatalf("silent connection: %v after %v, want EOF after about 200ms", err, time.Since(began))
	}
}

func TestShutdown(t *testing.T) {
	ts := newTestServer(t, nil)
	idle, idleBR := ts.dial(t)
	roundTrip(t, idle, idleBR, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	busy, busyBR := ts.dial(t)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // let /slow begin
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The busy connection got its whole answer, marked as the last.
	resp, body := readAnswer(t, busyBR, false)
	if body != "done" || !resp.Close {
		t.Fatalf("busy: %q close=%v", body, resp.Close)
	}
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	if _, err := net.Dial("unix", ts.addr); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// FuzzConn sends arbitrary bytes on a connection: the server must answer
// with HTTP/1.x (HTTP/2 after its preface) or nothing, close the connection once the client has stopped
// sending, and go on serving others.
func FuzzConn(f *testing.F) {
	for _, seed := range []string{
		"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /empty HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	ts := newTestServer(f, func(s *Server) { s.Fallback.ReadHeaderTimeout = time.Second })
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("unix", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(in)
		c.(*net.UnixConn).CloseWrite()
		out, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading the answer: %v", err)
		}
		h2 := strings.HasPrefix(string(in), "PRI * HTTP/2.0\r\n") // answered with HTTP/2 frames
		if len(out) > 0 && !h2 && !strings.HasPrefix(string(out), "HTTP/1.") {
			t.Fatalf("answer %q is not HTTP", out)
		}
		c2, br := ts.dial(t)
		if _, body := roundTrip(t, c2, br, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"); body != "hello" {
			t.Fatalf("server broken after %q: %q", in, body)
		}
	})
}

// A connection handed over gives its read buffer back once the fallback
// server has read what was in it.
func TestHandedConnReleasesBuffer(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.WriteString(b, "head")
	br := readers.Get().(*bufio.Reader)
	br.Reset(a)
	if _, err := br.Peek(4); err != nil {
		t.Fatal(err)
	}
	h := &handedConn{Conn: a, r: br}
	go io.WriteString(b, "more")
	got := make([]byte, 0, 8)
	for len(got) < 8 {
		buf := make([]byte, 8)
		n, err := h.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "headmore" || h.r != nil {
		t.Fatalf("read %q, buffer held: %v", got, h.r != nil)
	}
}
