package h1

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
)

// conn is one accepted connection.
type conn struct {
	srv  *Server
	rwc  net.Conn
	idle bool // guarded by srv.mu

	br *bufio.Reader
	bw *bufio.Writer // only while a request is served
	// remote is rwc.RemoteAddr().String(), once per connection.
	remote string
	resp   response // reused by every request
	// unread says the client may still be sending a body we did not read:
	// closing at once would reset the connection under the answer.
	unread bool
}

// lingerDelay is how long a connection closed with unread input waits,
// its writing side shut, for the client to read the answer (net/http's
// rstAvoidanceDelay).
const lingerDelay = 500 * time.Millisecond

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

// serve runs the connection's request loop until the connection ends or is
// handed over.
func (c *conn) serve(base context.Context) {
	handed := false
	defer func() {
		c.srv.forget(c)
		if handed {
			return // the fallback server owns rwc and c.br now
		}
		if c.unread {
			if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
				time.Sleep(lingerDelay)
			}
		}
		c.rwc.Close()
		c.br.Reset(nil)
		readers.Put(c.br)
		c.dropWriter()
	}()
	ctx := base
	if c.srv.Fallback.ConnContext != nil {
		ctx = c.srv.Fallback.ConnContext(ctx, c.rwc)
	}
	if a := c.rwc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c.rwc)

	for first := true; ; first = false {
		if !c.srv.setIdle(c, true) {
			return
		}
		// A new connection has ReadHeaderTimeout to send its first head, as
		// under net/http: a client that connects and stays silent does not
		// get the idle timeout meant for kept-alive connections.
		if first && c.srv.Fallback.ReadHeaderTimeout > 0 {
			c.setReadDeadline(c.srv.Fallback.ReadHeaderTimeout)
		} else {
			c.setReadDeadline(c.srv.Fallback.IdleTimeout)
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.srv.setIdle(c, false) {
			return
		}
		head, err := c.peekHead(first)
		if err != nil {
			return
		}
		if head == nil || !c.lean(head) {
			handed = true
			c.srv.forget(c)
			c.rwc.SetReadDeadline(time.Time{})
			c.srv.handoff.give(&handedConn{Conn: c.rwc, r: c.br})
			return
		}
		req, err := http.ReadRequest(c.br)
		if err == nil {
			err = checkRequest(req)
		}
		c.bw = writers.Get().(*bufio.Writer)
		c.bw.Reset(c.rwc)
		if err != nil {
			c.badRequest(err)
			c.unread = true
			return
		}
		c.rwc.SetReadDeadline(time.Time{})
		keep := c.serveRequest(ctx, req)
		c.dropWriter() // flushed: an idle connection holds no write buffer
		if !keep {
			return
		}
	}
}

// dropWriter gives the write buffer, if any, back to its pool.
func (c *conn) dropWriter() {
	if c.bw != nil {
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.bw = nil
	}
}

// setReadDeadline sets a read deadline d from now, or none if d is zero.
func (c *conn) setReadDeadline(d time.Duration) {
	if d > 0 {
		c.rwc.SetReadDeadline(time.Now().Add(d))
	} else {
		c.rwc.SetReadDeadline(time.Time{})
	}
}

// peekHead returns the buffered request head, through its empty line,
// reading more as needed. A head too large for the buffer returns no error
// and nil (net/http then takes the connection); a failed read, such as the
// head timing out, returns the error. The first request's head keeps the
// deadline set at accept.
func (c *conn) peekHead(first bool) ([]byte, error) {
	for waited := false; ; waited = true {
		buf, _ := c.br.Peek(c.br.Buffered())
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			return buf[:i+4], nil
		}
		if len(buf) == c.br.Size() {
			return nil, nil
		}
		if !waited && !first {
			// The head did not come whole: the rest of it has
			// ReadHeaderTimeout. (A head that came whole needs no timer.)
			c.setReadDeadline(c.srv.Fallback.ReadHeaderTimeout)
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

// lean reports whether the request with this head is served here.
func (c *conn) lean(head []byte) bool {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(line, []byte(" "))
	if !ok1 || !ok2 || string(proto) != "HTTP/1.1" || len(target) == 0 || target[0] != '/' {
		return false
	}
	path, _, _ := bytes.Cut(target, []byte("?"))
	// Headers that ask for what only net/http does.
	for len(rest) > 0 {
		var field []byte
		field, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, _, _ := bytes.Cut(field, []byte(":"))
		if bytes.EqualFold(name, []byte("Upgrade")) || bytes.EqualFold(name, []byte("Expect")) ||
			bytes.EqualFold(name, []byte("HTTP2-Settings")) {
			return false
		}
	}
	return c.srv.Lean(string(method), string(path))
}

// checkRequest applies what net/http's server checks beyond ReadRequest,
// which has already refused more than one Host header.
func checkRequest(req *http.Request) error {
	if req.Host == "" {
		return errors.New("missing required Host header")
	}
	if !validBytes(req.Host, &hostBytes) {
		return errors.New("malformed Host header")
	}
	// http.ReadRequest has refused control bytes in values and most
	// non-token bytes in names, but lets a space inside a name through.
	for name := range req.Header {
		if name == "" || !validBytes(name, &tokenBytes) {
			return errors.New("invalid header name")
		}
	}
	return nil
}

// Byte sets of RFC 9110: a field name is a token; a Host is a registered
// name or IP literal with a port (RFC 3986, section 3.2.2).
var (
	tokenBytes = byteSet("!#$%&'*+-.^_`|~" + alnum)
	hostBytes  = byteSet("-._~%!$&'()*+,;=:[]" + alnum)
)

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func byteSet(s string) (t [256]bool) {
	for i := range len(s) {
		t[s[i]] = true
	}
	return t
}

func validBytes(s string, set *[256]bool) bool {
	for i := range len(s) {
		if !set[s[i]] {
			return false
		}
	}
	return true
}

// badRequest answers a request that could not be parsed, and the
// connection closes.
func (c *conn) badRequest(err error) {
	msg, _ := json.Marshal("malformed HTTP request: " + err.Error())
	body := `{"error":{"code":"invalid_argument","message":` + string(msg) + "}}\n"
	fmt.Fprintf(c.bw, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	c.bw.Flush()
}

// serveRequest runs the handler for req and finishes its answer; it reports
// whether the connection may carry another request.
func (c *conn) serveRequest(base context.Context, req *http.Request) (keep bool) {
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	req = req.WithContext(ctx)
	req.RemoteAddr = c.remote
	w := &c.resp
	w.reset(c, req)
	defer func() {
		if v := recover(); v != nil {
			keep = false
			if v == http.ErrAbortHandler {
				return
			}
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.logf("h1: panic serving %s %s: %v\n%s", req.Method, req.URL.Path, v, buf)
		}
	}()
	c.srv.Fallback.Handler.ServeHTTP(w, req)
	cancel()
	whole := w.finish()
	c.rwc.SetWriteDeadline(time.Time{})
	// Read what is left of the request body, within reason, so that the
	// next request can be read.
	if req.Body != nil && req.Body != http.NoBody {
		c.setReadDeadline(max(c.srv.Fallback.ReadHeaderTimeout, time.Second))
		n, err := io.CopyN(io.Discard, req.Body, maxDrain+1)
		if err != io.EOF || n > maxDrain {
			c.unread = true
			return false
		}
	}
	return whole && !w.closeAfter && !c.srv.closing.Load()
}

func (c *conn) logf(format string, args ...any) {
	if l := c.srv.Fallback.ErrorLog; l != nil {
		l.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}
