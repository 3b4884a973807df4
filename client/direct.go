package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// directTransport is the transport of WithHTTP1Pool: a bounded pool of
// HTTP/1.1 keep-alive connections on which the calling goroutine writes a
// request and reads its answer itself.
//
// net/http's Transport hands every request to a writer goroutine and every
// answer back from a reader goroutine. On a small request those hand-offs
// cost more than the server's work: a get of a 784-dimension record over a
// Unix socket took about 200 µs with it and about 100 µs without. Requests
// whose body streams (unknown length: imports, batch searches, which also
// need to read while writing) go to the fallback transport.
type directTransport struct {
	dial     func(ctx context.Context) (net.Conn, error)
	fallback http.RoundTripper
	// slots holds a token per connection open or being dialled; idle holds
	// the open connections not in use. Both have room for the pool's size,
	// so putting a connection back never blocks, and a caller waiting for a
	// connection wakes for whichever comes first: a free slot or an idle
	// connection.
	slots chan struct{}
	idle  chan *directConn
}

// directIdleTimeout retires a connection idle this long, well before the
// server's own idle timeout (2 minutes) could close it under a request.
const directIdleTimeout = 60 * time.Second

type directConn struct {
	net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

func newDirectTransport(dial func(ctx context.Context) (net.Conn, error), maxConns int, fallback http.RoundTripper) *directTransport {
	return &directTransport{dial: dial, fallback: fallback, slots: make(chan struct{}, maxConns), idle: make(chan *directConn, maxConns)}
}

// RoundTrip implements http.RoundTripper.
func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || req.Body != nil && req.Body != http.NoBody && req.ContentLength <= 0 {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		conn, reused, err := t.get(ctx)
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		resp, err := t.roundTrip(ctx, conn, req)
		if err == nil {
			return resp, nil
		}
		t.discard(conn)
		// A kept-alive connection can have been closed by the server just
		// as the request went out; such a request was never processed.
		// Only reads are retried: a write might have been applied.
		if reused && attempt == 0 && ctx.Err() == nil && (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
			(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
				errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
}

// get returns an idle connection or dials one, waiting for either.
func (t *directTransport) get(ctx context.Context) (*directConn, bool, error) {
	for {
		var c *directConn
		select {
		case c = <-t.idle:
		default:
			select {
			case c = <-t.idle:
			case t.slots <- struct{}{}:
				nc, err := t.dial(ctx)
				if err != nil {
					<-t.slots
					return nil, false, err
				}
				return &directConn{Conn: nc, br: bufio.NewReaderSize(nc, 32<<10), bw: bufio.NewWriterSize(nc, 32<<10)}, false, nil
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
		if time.Since(c.lastUsed) < directIdleTimeout && c.alive() {
			return c, true, nil
		}
		t.discard(c) // closed by the server, or about to be
	}
}

// alive reports whether an idle connection is still open, so that a
// request is not written into one the server closed, for instance by
// restarting: a POST would fail, as it is not retried. It peeks at the
// socket without waiting (one system call). Where that is not possible it
// reports true, and a failed GET or HEAD is retried on a new connection.
// (A read with a deadline already past cannot tell: Go reports the timeout
// without reading the socket.)
func (c *directConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false // an idle connection has nothing to say
	}
	if alive, ok := peekAlive(c.Conn); ok {
		return alive
	}
	return true
}

// put returns a connection to the idle pool.
func (t *directTransport) put(c *directConn) {
	c.lastUsed = time.Now()
	t.idle <- c
}

// discard closes a connection that cannot be reused and frees its slot.
func (t *directTransport) discard(c *directConn) {
	c.Close()
	<-t.slots
}

// CloseIdleConnections closes the idle connections.
func (t *directTransport) CloseIdleConnections() {
	for {
		select {
		case c := <-t.idle:
			t.discard(c)
		default:
			if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
				ci.CloseIdleConnections()
			}
			return
		}
	}
}

func (t *directTransport) roundTrip(ctx context.Context, c *directConn, req *http.Request) (*http.Response, error) {
	// Cancellation interrupts blocked reads and writes through a deadline
	// in the past; the connection is then discarded.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	if err := req.Write(c.bw); err != nil {
		stop()
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		stop()
		return nil, err
	}
	resp.Body = &directBody{body: resp.Body, conn: c, t: t, stop: stop, reuse: !resp.Close}
	return resp, nil
}

// directBody returns its connection to the pool once the answer was read to
// its end, and discards it if the answer is abandoned half-way.
type directBody struct {
	body  io.ReadCloser
	conn  *directConn
	t     *directTransport
	stop  func() bool
	reuse bool
	done  bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *directBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

// finish releases the connection; complete says the answer was read whole.
func (b *directBody) finish(complete bool) {
	b.done = true
	// stop reports false if cancellation already poisoned the deadline.
	if b.stop() && complete && b.reuse {
		b.body.Close()
		b.t.put(b.conn)
		return
	}
	// Close the connection first: closing an unfinished body would read
	// the rest of it, which may never end (an export, a stream).
	b.t.discard(b.conn)
	b.body.Close()
}
