package h1

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"
)

// response is the http.ResponseWriter of a request on the lean path. The
// head is written at the first Write or Flush, or when the handler returns:
// with the handler's Content-Length if it set one, else chunked (or
// Content-Length: 0 for a handler that wrote nothing).
type response struct {
	c      *conn
	req    *http.Request
	header http.Header

	status      int
	wroteHeader bool // WriteHeader called, explicitly or by Write
	headWritten bool // the head is in the connection's buffer
	bodyless    bool // HEAD, 204 or 304: nothing follows the head
	chunked     bool
	chunks      io.WriteCloser
	length      int64 // declared Content-Length, -1 if none
	written     int64
	closeAfter  bool
}

func (w *response) reset(c *conn, req *http.Request) {
	*w = response{c: c, req: req, header: make(http.Header, 8), length: -1}
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader || code < 200 {
		return // informational answers are not sent on the lean path
	}
	w.wroteHeader = true
	w.status = code
}

func (w *response) Write(p []byte) (int, error) {
	if !w.headWritten {
		w.writeHead(p, false)
	}
	if w.bodyless {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.chunked {
		return w.chunks.Write(p)
	}
	return w.c.bw.Write(p)
}

// Flush sends what is buffered (http.Flusher).
func (w *response) Flush() { w.FlushError() }

// FlushError sends what is buffered; http.ResponseController uses it.
func (w *response) FlushError() error {
	if !w.headWritten {
		w.writeHead(nil, false)
	}
	return w.c.bw.Flush()
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error  { return w.c.rwc.SetReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex: the lean path never stops a handler from reading its
// request body after it has begun to answer.
func (w *response) EnableFullDuplex() error { return nil }

// writeHead writes the status line and header; first is the start of the
// body for sniffing a missing Content-Type, and done says the handler has
// returned, so an undeclared length is what has been written: zero.
func (w *response) writeHead(first []byte, done bool) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.headWritten = true
	h, code := w.header, w.status
	w.bodyless = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if v := h.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			h.Del("Content-Length")
		}
	}
	switch {
	case code == http.StatusNoContent || code == http.StatusNotModified:
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
	case w.length >= 0 || w.req.Method == http.MethodHead:
	case done:
		w.length = 0
		h.Set("Content-Length", "0")
	default:
		w.chunked = true
		h.Del("Content-Length")
		h.Set("Transfer-Encoding", "chunked")
	}
	if !w.bodyless && len(first) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", http.DetectContentType(first))
	}
	if h.Get("Date") == "" {
		var buf [len(http.TimeFormat)]byte
		h.Set("Date", string(time.Now().UTC().AppendFormat(buf[:0], http.TimeFormat)))
	}
	if w.req.Close || h.Get("Connection") == "close" || w.c.srv.closing.Load() {
		w.closeAfter = true
		h.Set("Connection", "close")
	}
	bw := w.c.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	h.Write(bw)
	bw.WriteString("\r\n")
	if w.chunked {
		w.chunks = httputil.NewChunkedWriter(bw)
	}
}

// finish completes the answer after the handler has returned and reports
// whether the connection may go on: the answer is whole and sent.
func (w *response) finish() bool {
	if !w.headWritten {
		w.writeHead(nil, true)
	}
	whole := true
	if w.chunked {
		w.chunks.Close()
		w.c.bw.WriteString("\r\n")
	} else if !w.bodyless && w.length >= 0 && w.written != w.length {
		whole = false // the client still waits for declared bytes
	}
	return w.c.bw.Flush() == nil && whole
}
