// Package h1 serves plain HTTP/1.1 connections on one goroutine each, with
// no other goroutine per request, and hands every connection it will not
// serve itself to a net/http server for the rest of that connection's life.
//
// Why: for every request without a body, net/http starts a goroutine that
// watches the connection while the handler runs, and stops it afterwards.
// Each start and stop wakes another OS thread; on a small virtual machine
// that doubles the latency of a get by id over a Unix socket (measured in
// docs/design/http.md). The requests that need that watch — streams that
// must notice a client going away — are exactly the ones handed to
// net/http here.
//
// The lean path takes only well-formed HTTP/1.1 requests whose head fits
// its buffer, whose route the Lean function accepts, and that ask for no
// Upgrade or Expect. Anything else — HTTP/2 prior knowledge, upgrades,
// Expect: 100-continue, HTTP/1.0, large heads, streams — goes to net/http
// with the bytes already read, so net/http remains the reference for every
// unusual case. Parsing is net/http's (http.ReadRequest); this package only
// runs the connection loop and writes answers.
package h1

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// bufSize is the size of a connection's read and write buffers, and so
	// the largest request head the lean path takes.
	bufSize = 8 << 10
	// maxDrain is how much of a request body the handler left unread is
	// read and discarded to keep the connection; past it the connection
	// is closed after the answer.
	maxDrain = 256 << 10
)

// Server serves the connections of one listener.
type Server struct {
	// Fallback serves the connections handed over, and its settings are
	// the lean path's too: Handler answers the requests; ConnContext, if
	// set, derives each connection's base context (a connection handed
	// over is wrapped, with a NetConn method that returns it as accepted,
	// as tls.Conn has); ReadHeaderTimeout bounds reading a new
	// connection's first request head, and a later head once its first
	// byte has arrived; IdleTimeout bounds the wait for the next request
	// (zero: no limit); ErrorLog receives handler panics. Shutdown shuts
	// it down too.
	Fallback *http.Server
	// Lean reports whether a request for method and path (without query)
	// may be served on the lean path: a request with a bounded body and a
	// bounded answer that needs no notice of the client going away.
	Lean func(method, path string) bool

	mu       sync.Mutex
	listener net.Listener
	handoff  *handoffListener
	conns    map[*conn]struct{}
	closing  atomic.Bool
	drained  chan struct{} // closed when conns empties after closing
}

// Serve accepts connections from l until Shutdown, serving each on its own
// goroutine. It returns http.ErrServerClosed after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.listener = l
	s.handoff = newHandoffListener(l.Addr())
	s.conns = make(map[*conn]struct{})
	s.mu.Unlock()

	go s.Fallback.Serve(s.handoff)

	base := context.WithValue(context.Background(), http.ServerContextKey, s.Fallback)
	var backoff time.Duration
	for {
		rwc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of descriptors, say: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &conn{srv: s, rwc: rwc}
		if !s.track(c) {
			rwc.Close()
			return http.ErrServerClosed
		}
		go c.serve(base)
	}
}

// track adds c to the live connections; false once Shutdown has begun.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// forget removes c from the live connections.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// setIdle marks c idle (true) or busy; it reports false if the server is
// shutting down, in which case c must close.
func (s *Server) setIdle(c *conn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	c.idle = idle
	return true
}

// Shutdown stops accepting, closes idle connections, and waits until the
// busy ones have answered their request or ctx ends; then it closes what
// is left. The handed-over connections are shut down by
// Fallback.Shutdown(ctx) at the same time, which also runs its
// RegisterOnShutdown functions.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	if s.listener != nil {
		s.listener.Close()
	}
	drained := make(chan struct{})
	if len(s.conns) == 0 {
		close(drained)
	} else {
		s.drained = drained
	}
	for c := range s.conns {
		if c.idle {
			c.rwc.Close()
		}
	}
	s.mu.Unlock()

	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			c.rwc.Close()
		}
		s.mu.Unlock()
	}
	if ferr := <-fallback; err == nil {
		err = ferr
	}
	return err
}

// handedConn is a connection handed to the fallback server: its reads start
// with the bytes the lean path had already read, and the read buffer goes
// back to its pool once they are consumed, so that a long-lived connection
// (an event stream, HTTP/2) does not keep it.
type handedConn struct {
	net.Conn
	r *bufio.Reader // nil once drained
}

func (h *handedConn) Read(p []byte) (int, error) {
	if h.r != nil {
		if h.r.Buffered() > 0 {
			return h.r.Read(p) // only from the buffer
		}
		h.r.Reset(nil)
		readers.Put(h.r)
		h.r = nil
	}
	return h.Conn.Read(p)
}

// NetConn returns the underlying connection, as tls.Conn's method does.
func (h *handedConn) NetConn() net.Conn { return h.Conn }

// handoffListener is the listener the fallback server accepts from.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c to the fallback server, or closes it if that has stopped.
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// Close closes the listener and every connection at once, the fallback
// server's too.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing.Store(true)
	if s.listener != nil {
		s.listener.Close()
	}
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	return s.Fallback.Close()
}
