package client

import (
	"context"
	"errors"
	"io"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestParseAddr(t *testing.T) {
	f := func(addr, wantBase, wantSocket string) {
		t.Helper()
		ep, err := parseAddr(addr)
		if err != nil {
			t.Errorf("parseAddr(%q): %v", addr, err)
			return
		}
		if got := ep.base.String(); got != wantBase || ep.socket != wantSocket {
			t.Errorf("parseAddr(%q) = %q, socket %q; want %q, socket %q", addr, got, ep.socket, wantBase, wantSocket)
		}
	}
	f("http://localhost:8080", "http://localhost:8080", "")
	f("http://localhost:8080/", "http://localhost:8080", "")
	f("https://db.example.com", "https://db.example.com", "")
	f("localhost:8080", "http://localhost:8080", "")
	f("127.0.0.1:1", "http://127.0.0.1:1", "")
	f("[::1]:8080", "http://[::1]:8080", "")
	f("http://gateway/hippo/", "http://gateway/hippo", "")
	f("http://gateway/a%2Fb", "http://gateway/a%2Fb", "")
	f("unix:///run/hippo.sock", "http://localhost", "/run/hippo.sock")
	f("unix:/run/hippo.sock", "http://localhost", "/run/hippo.sock")
	f("unix:hippo.sock", "http://localhost", "hippo.sock")
	f("/run/hippo.sock", "http://localhost", "/run/hippo.sock")
	f("./hippo.sock", "http://localhost", "./hippo.sock")
	f("../hippo.sock", "http://localhost", "../hippo.sock")

	for _, addr := range []string{"", "localhost", "unix:", "unix://", "ftp://x", "http://", "http://u:p@host", "http://host?x=1", "hippo.sock"} {
		if _, err := parseAddr(addr); err == nil {
			t.Errorf("parseAddr(%q) succeeded, want an error", addr)
		}
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, addr := range []string{"http://h:1/p", "h:1", "unix:///s", "/s", "./s", "https://[::1]:1"} {
		f.Add(addr)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		ep, err := parseAddr(addr)
		if err != nil {
			return
		}
		if ep.base.Scheme != "http" && ep.base.Scheme != "https" || ep.base.Host == "" {
			t.Fatalf("parseAddr(%q) = %v", addr, ep.base)
		}
		if _, err := New(addr); err != nil {
			t.Fatalf("parseAddr(%q) succeeded but New failed: %v", addr, err)
		}
	})
}

func TestNewOptionErrors(t *testing.T) {
	for name, opts := range map[string][]Option{
		"nil client":       {WithHTTPClient(nil)},
		"negative timeout": {WithTimeout(-time.Second)},
		"zero pool":        {WithHTTP1Pool(0)},
		"client and pool":  {WithHTTPClient(http.DefaultClient), WithHTTP1Pool(2)},
	} {
		if _, err := New("localhost:1", opts...); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}

// protoServer answers every request with 200 {} after recording its protocol,
// holding the first hold requests until hold of them are in flight at once.
type protoServer struct {
	hold     int
	inFlight atomic.Int64
	maxIn    atomic.Int64
	released chan struct{}
	once     sync.Once
	http1    atomic.Int64
	http2    atomic.Int64
	conns    atomic.Int64
}

func newProtoServer(hold int) *protoServer {
	return &protoServer{hold: hold, released: make(chan struct{})}
}

func (s *protoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.ProtoMajor {
	case 1:
		s.http1.Add(1)
	case 2:
		s.http2.Add(1)
	}
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxIn.Load()
		if n <= m || s.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	if n >= int64(s.hold) {
		s.once.Do(func() { close(s.released) })
	}
	select {
	case <-s.released:
	case <-r.Context().Done():
		return
	}
	writeJSON(w, 200, map[string]any{"status": "ok"})
}

func (s *protoServer) start(t *testing.T, network string, configure ...func(*http.Server)) string {
	configure = append(configure, func(srv *http.Server) {
		srv.ConnState = func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				s.conns.Add(1)
			}
		}
	})
	addr, _ := startServer(t, network, s, configure...)
	return addr
}

// concurrently runs n Health calls at once and fails t on any error.
func concurrently(t *testing.T, c *Client, n int) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := c.Health(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestH2COneConnection checks that the default mode speaks HTTP/2 and
// multiplexes concurrent requests, more than the server's stream limit of
// 250, on one connection, maxStreams at a time.
func TestH2COneConnection(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			s := newProtoServer(maxStreams)
			c := newTestClient(t, s.start(t, network))
			concurrently(t, c, 300)
			if got := s.http2.Load(); got != 300 || s.http1.Load() != 0 {
				t.Errorf("HTTP/2 requests = %d, HTTP/1 = %d; want 300, 0", got, s.http1.Load())
			}
			if got := s.conns.Load(); got != 1 {
				t.Errorf("connections = %d, want 1", got)
			}
			if got := s.maxIn.Load(); got != maxStreams {
				t.Errorf("at most %d requests in flight, want %d", got, maxStreams)
			}
		})
	}
}

// TestH2CLowStreamLimit checks that a server allowing fewer streams than
// maxStreams does not make requests wait forever.
func TestH2CLowStreamLimit(t *testing.T) {
	s := newProtoServer(20)
	c := newTestClient(t, s.start(t, "tcp", func(srv *http.Server) {
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 10}
	}))
	concurrently(t, c, 300)
	if got := s.http2.Load(); got != 300 {
		t.Errorf("HTTP/2 requests = %d, want 300", got)
	}
}

// TestHTTP1Pool checks that WithHTTP1Pool speaks HTTP/1.1 on no more
// connections than asked for, and uses all of them.
func TestHTTP1Pool(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			s := newProtoServer(3)
			c := newTestClient(t, s.start(t, network), WithHTTP1Pool(3))
			concurrently(t, c, 40)
			if got := s.http1.Load(); got != 40 || s.http2.Load() != 0 {
				t.Errorf("HTTP/1 requests = %d, HTTP/2 = %d; want 40, 0", got, s.http2.Load())
			}
			if got := s.conns.Load(); got != 3 {
				t.Errorf("connections = %d, want 3", got)
			}
			if got := s.maxIn.Load(); got != 3 {
				t.Errorf("at most %d requests in flight, want 3", got)
			}
		})
	}
}

// TestClose checks that Close closes idle connections and the client still
// works after it.
func TestClose(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		var closed atomic.Int64
		addr, _ := startServer(t, network, newFakeServer(), func(srv *http.Server) {
			srv.ConnState = func(_ net.Conn, state http.ConnState) {
				if state == http.StateClosed {
					closed.Add(1)
				}
			}
		})
		c := newTestClient(t, addr, opts...)
		if _, err := c.Health(t.Context()); err != nil {
			t.Fatal(err)
		}
		c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for closed.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("Close did not close the idle connection")
			}
			time.Sleep(time.Millisecond)
		}
		if _, err := c.Health(t.Context()); err != nil {
			t.Fatalf("Health after Close: %v", err)
		}
	})
}

func TestHeaders(t *testing.T) {
	s := newFakeServer()
	addr, _ := startServer(t, "tcp", s)

	c := newTestClient(t, addr)
	if _, err := c.ListCollections(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := s.lastRequest().Header
	if got := h.Get("User-Agent"); got != DefaultUserAgent {
		t.Errorf("User-Agent = %q, want %q", got, DefaultUserAgent)
	}
	if got := h.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q", got)
	}

	c = newTestClient(t, addr, WithHeader("Authorization", "Bearer one"), WithHeader("Authorization", "Bearer two"),
		WithHeader("X-Extra", "x"), WithUserAgent("test-agent/2"))
	if _, err := c.ListCollections(t.Context()); err != nil {
		t.Fatal(err)
	}
	h = s.lastRequest().Header
	if got := h.Values("Authorization"); len(got) != 1 || got[0] != "Bearer two" {
		t.Errorf("Authorization = %q, want [Bearer two]", got)
	}
	if got := h.Get("X-Extra"); got != "x" {
		t.Errorf("X-Extra = %q", got)
	}
	if got := h.Get("User-Agent"); got != "test-agent/2" {
		t.Errorf("User-Agent = %q", got)
	}
}

func TestPathPrefix(t *testing.T) {
	s := newFakeServer()
	mux := http.NewServeMux()
	mux.Handle("/hippo/", http.StripPrefix("/hippo", s))
	addr, _ := startServer(t, "tcp", mux)
	c := newTestClient(t, "http://"+addr+"/hippo/")
	if _, _, err := c.CreateCollection(t.Context(), "docs", CollectionSpec{Dimension: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Upsert(t.Context(), "docs", Record{ID: "a/b", Vector: []float32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if got := s.lastRequest().EscapedPath; got != "/v1/collections/docs/records/a%2Fb" {
		t.Errorf("path below the prefix = %q", got)
	}
}

func TestWithHTTPClient(t *testing.T) {
	var used atomic.Bool
	addr, _ := startServer(t, "tcp", newFakeServer())
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Store(true)
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := newTestClient(t, addr, WithHTTPClient(hc))
	if _, err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !used.Load() {
		t.Error("the given *http.Client was not used")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRedirectNotFollowed(t *testing.T) {
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/collections/docs/records/a", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { followed.Store(true) })
	addr, _ := startServer(t, "tcp", mux)
	c := newTestClient(t, addr)
	_, err := c.Upsert(t.Context(), "docs", Record{ID: "a", Vector: []float32{1}})
	var herr *Error
	if !errors.As(err, &herr) || herr.Status != http.StatusTemporaryRedirect {
		t.Errorf("Upsert answered by a redirect: err = %v, want an *Error with status 307", err)
	}
	if followed.Load() {
		t.Error("the redirect was followed")
	}
}

// blockingServer answers nothing until the request's context is done.
func blockingServer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
}

func TestTimeout(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		addr, _ := startServer(t, network, blockingServer())
		c := newTestClient(t, addr, append(opts, WithTimeout(time.Millisecond))...)
		if _, err := c.Health(t.Context()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WithTimeout: err = %v, want context.DeadlineExceeded", err)
		}

		// A deadline of the caller's wins over WithTimeout.
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Health(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("caller's deadline: err = %v, want context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
			t.Errorf("caller's deadline of 50ms: returned after %v; WithTimeout overrode it", elapsed)
		}

		// Cancellation, without WithTimeout.
		c = newTestClient(t, addr, opts...)
		ctx, cancel = context.WithCancel(t.Context())
		go func() {
			time.Sleep(10 * time.Millisecond)
			cancel()
		}()
		if _, err := c.Health(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled: err = %v, want context.Canceled", err)
		}
	})
}

// TestTimeoutStreamsExempt checks that WithTimeout does not cut streams off.
func TestTimeoutStreamsExempt(t *testing.T) {
	s := newFakeServer()
	addr, _ := startServer(t, "tcp", s)
	setup := newTestClient(t, addr)
	if _, _, err := setup.CreateCollection(t.Context(), "docs", CollectionSpec{Dimension: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := setup.UpsertBatch(t.Context(), "docs", []Record{{ID: "a", Vector: []float32{1}}}); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, addr, WithTimeout(time.Nanosecond))
	for _, err := range c.Export(t.Context(), "docs") {
		if err != nil {
			t.Errorf("Export: %v", err)
		}
	}
	if _, err := c.Import(t.Context(), "docs", strings.NewReader(`{"id":"b","vector":[2]}`+"\n"), nil); err != nil {
		t.Errorf("Import: %v", err)
	}
	if _, err := c.Get(t.Context(), "docs", "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get: err = %v, want context.DeadlineExceeded", err)
	}
}

// TestTimeoutExact checks, in fake time, that WithTimeout bounds a call by
// exactly its duration. The server sits at the other end of an in-memory
// pipe, so that the whole exchange runs inside the synctest bubble.
func TestTimeoutExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &http.Server{Handler: blockingServer()}
		l := newPipeListener()
		go srv.Serve(l)
		defer srv.Close()

		hc := &http.Client{Transport: &http.Transport{DialContext: l.dial}}
		c, err := New("localhost:80", WithHTTPClient(hc), WithTimeout(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.Health(t.Context())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed != 30*time.Second {
			t.Errorf("timed out after %v, want 30s", elapsed)
		}
		hc.CloseIdleConnections()
	})
}

// pipeListener is a net.Listener whose connections are net.Pipes.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case conn := <-l.conns:
		return conn, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func TestHealthReady(t *testing.T) {
	s := newFakeServer()
	addr, _ := startServer(t, "unix", s)
	c := newTestClient(t, addr)
	health, err := c.Health(t.Context())
	if err != nil || health["status"] != "ok" {
		t.Errorf("Health = %v, %v", health, err)
	}
	ready, err := c.Ready(t.Context())
	if err != nil || ready["status"] != "ready" {
		t.Errorf("Ready = %v, %v", ready, err)
	}
	s.notReady.Store(true)
	_, err = c.Ready(t.Context())
	var herr *Error
	if !errors.As(err, &herr) || herr.Status != 503 || herr.Code != CodeUnavailable || herr.Details["store"] != "opening" {
		t.Errorf("Ready when not ready: err = %#v", err)
	}
}

// TestReconnect checks that the client dials again after the server
// restarts, in both modes.
func TestReconnect(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "hippo-client")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			path := filepath.Join(dir, "hippo.sock")
			serve := func() *http.Server {
				l, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				srv := &http.Server{Handler: newFakeServer(), Protocols: new(http.Protocols)}
				srv.Protocols.SetHTTP1(true)
				srv.Protocols.SetUnencryptedHTTP2(true)
				go srv.Serve(l)
				return srv
			}
			c := newTestClient(t, path, tr.opts...)
			for i := range 3 {
				srv := serve()
				for range 3 {
					if _, err := c.Health(t.Context()); err != nil {
						t.Fatalf("server %d: %v", i, err)
					}
				}
				if err := srv.Shutdown(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestHTTPS checks that an https address negotiates HTTP/2 by ALPN, on one
// connection, and HTTP/1.1 with WithHTTP1Pool.
func TestHTTPS(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := newProtoServer(4) // as many as the HTTP/1.1 pool allows
			srv := httptest.NewUnstartedServer(s)
			srv.EnableHTTP2 = true
			srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
				if state == http.StateNew {
					s.conns.Add(1)
				}
			}
			srv.StartTLS()
			defer srv.Close()
			c := newTestClient(t, srv.URL, tr.opts...)
			// Trust the test server's certificate.
			c.transport.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			concurrently(t, c, 40)
			if tr.name == "http2" && (s.http2.Load() != 40 || s.conns.Load() != 1) {
				t.Errorf("%d HTTP/2 requests on %d connections, want 40 on 1", s.http2.Load(), s.conns.Load())
			}
			if tr.name == "http1" && s.http1.Load() != 40 {
				t.Errorf("%d HTTP/1 requests, want 40", s.http1.Load())
			}
		})
	}
}

// TestEventsOwnConnections: on a cleartext address the Client opens each
// event stream on an HTTP/1.1 connection of its own, which the server can
// write cheaply, while its other calls stay on HTTP/2, or on the
// WithHTTP1Pool connections, which an open stream does not take.
func TestEventsOwnConnections(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       []Option
		unaryMajor int
	}{{"h2c", nil, 2}, {"http1 pool of one", []Option{WithHTTP1Pool(1)}, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			var streamMajor, unaryMajor atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/events" {
					unaryMajor.Store(int64(r.ProtoMajor))
					writeJSON(w, 200, map[string]any{"status": "ok"})
					return
				}
				streamMajor.Store(int64(r.ProtoMajor))
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "id: 1\nevent: collection.created\ndata: {\"seq\":1,\"type\":\"collection.created\",\"collection\":\"a\",\"time\":\"2026-01-01T00:00:00Z\"}\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			})
			addr, _ := startServer(t, "unix", h)
			c := newTestClient(t, addr, tc.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			from := uint64(0)
			next, stop := iter.Pull2(c.Events(ctx, &EventsOptions{From: &from}))
			defer stop()
			if ev, err, ok := next(); !ok || err != nil || ev.Seq != 1 {
				t.Fatalf("first event: %v %v %v", ev, err, ok)
			}
			// The stream is open; a call still gets through.
			if _, err := c.Health(ctx); err != nil {
				t.Fatalf("a call beside an open stream: %v", err)
			}
			if streamMajor.Load() != 1 || unaryMajor.Load() != int64(tc.unaryMajor) {
				t.Fatalf("stream over HTTP/%d, calls over HTTP/%d", streamMajor.Load(), unaryMajor.Load())
			}
		})
	}
}
