package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"sync/atomic"
)

// ImportOptions configures Import and ImportRecords. A nil *ImportOptions is
// the zero value.
type ImportOptions struct {
	// OnError says what the server does with a line it cannot import:
	// "skip" it and go on (the server's default, also when OnError is
	// empty), or "abort" the import at that line.
	OnError string
}

// ImportResult is the server's account of an import.
type ImportResult struct {
	Imported int           `json:"imported"` // records upserted
	Failed   int           `json:"failed"`   // lines not imported
	Errors   []ImportError `json:"errors"`   // why, for (some of) the failed lines
	Aborted  bool          `json:"aborted"`  // the import stopped at a failed line
	Seq      uint64        `json:"seq"`      // sequence number of the import's last write
}

// ImportError says why one line of an import failed.
type ImportError struct {
	Line    int    `json:"line"` // 1-based line number in the request body
	Code    string `json:"code"` // one of the Code constants
	Message string `json:"message"`
}

// Import upserts the records in r, which holds NDJSON: one JSON record per
// line, in the form Record encodes to (or with "vector_b64"). r is streamed
// to the server as it is read, never held in memory as a whole, so it may be
// arbitrarily large. Import reads r until EOF or until the server answers.
// It does not close r, and starts no Read of r after it returns (though a
// Read that was blocked when the server answered may still be finishing).
//
// Lines the server cannot import do not fail the call: they are counted and
// described in the result. Import fails only if the request as a whole does,
// for example because the collection does not exist.
//
// WithTimeout does not apply; bound an import with ctx.
func (c *Client) Import(ctx context.Context, collection string, r io.Reader, opts *ImportOptions) (*ImportResult, error) {
	if err := checkName("collection name", collection); err != nil {
		return nil, err
	}
	// The guard hides r's own type from the transport, so that neither
	// knows its length nor buffers it (as it would a *bytes.Reader to
	// retry), and neither closes it (as it would an io.ReadCloser).
	body := &guardedReader{r: r}
	defer body.stop()
	return c.importBody(ctx, collection, body, opts)
}

// importBody sends body as an import request.
func (c *Client) importBody(ctx context.Context, collection string, body io.Reader, opts *ImportOptions) (*ImportResult, error) {
	query := url.Values{}
	if opts != nil && opts.OnError != "" {
		query.Set("on_error", opts.OnError)
	}
	req, err := c.newRequest(ctx, http.MethodPost, collectionPath(collection, "/import"), query, body, contentTypeNDJSON)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp.Body)
	result := new(ImportResult)
	if err := json.NewDecoder(resp.Body).Decode(result); err != nil {
		return nil, fmt.Errorf("hippo: import into %s: decode answer: %w", collection, err)
	}
	return result, nil
}

// errCallDone stops a producer goroutine whose request has finished.
var errCallDone = errors.New("hippo: call finished")

// ImportRecords is Import for records produced by an iterator. It encodes
// them to NDJSON on the fly, in constant memory however many there are, and
// streams them to the server while the iterator produces them.
//
// The iterator runs on a goroutine of its own. ImportRecords returns only
// after the iterator has returned: if the request ends early, the iterator's
// next yield returns false.
//
// If a record cannot be encoded (WithJSONVectors and a NaN in a vector,
// say), the request is cut off and ImportRecords returns the encoding error.
// Whether the records before it were imported is then up to the server; the
// API's rule that a rejected request changes nothing suggests not.
//
// WithTimeout does not apply; bound an import with ctx.
func (c *Client) ImportRecords(ctx context.Context, collection string, records iter.Seq[Record], opts *ImportOptions) (*ImportResult, error) {
	if err := checkName("collection name", collection); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	var encodeErr error // written by the producer before done is closed
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Buffering batches small records into large writes; a batch
		// is sent as soon as it is full, so memory stays constant.
		w := bufio.NewWriterSize(pw, 64<<10)
		line := 0
		var err error
		for record := range records {
			line++
			var b []byte
			if b, err = json.Marshal(c.writeRecord(&record, true)); err != nil {
				encodeErr = fmt.Errorf("hippo: import into %s: encode record %d (id %q): %w", collection, line, record.ID, err)
				err = encodeErr
				break
			}
			if _, err = w.Write(b); err == nil {
				err = w.WriteByte('\n')
			}
			if err != nil {
				break // the request has ended
			}
		}
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err) // nil sends EOF, the end of the body
	}()

	result, err := c.importBody(ctx, collection, pr, opts)
	pr.CloseWithError(errCallDone) // unblocks the producer if the server answered early
	<-done
	if encodeErr != nil {
		return nil, encodeErr
	}
	return result, err
}

// Export returns an iterator over every record of collection, read from one
// consistent snapshot that the server streams as NDJSON. Records are decoded
// one at a time as they arrive, so memory stays constant however large the
// collection; each yielded *Record is new and the caller may keep it.
//
// Breaking out of the loop closes the stream, which tells the server to stop.
// An error ends the iteration after being yielded once; if the server fails
// half-way, the error is an *Error. Each range over the
// iterator starts a new export.
//
//	for record, err := range c.Export(ctx, "docs") {
//		if err != nil {
//			return err
//		}
//		process(record)
//	}
//
// WithTimeout does not apply; bound an export with ctx.
func (c *Client) Export(ctx context.Context, collection string) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		if err := checkName("collection name", collection); err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, err := c.newRequest(ctx, http.MethodGet, collectionPath(collection, "/export"), c.readQuery(), nil, "")
		if err != nil {
			yield(nil, err)
			return
		}
		req.Header.Set("Accept", contentTypeNDJSON)
		resp, err := c.send(req)
		if err != nil {
			yield(nil, err)
			return
		}
		// Closing an unfinished body resets the HTTP/2 stream or closes
		// the HTTP/1.1 connection; either way the server stops sending.
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for n := 1; ; n++ {
			var line recordLine
			err := dec.Decode(&line)
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, fmt.Errorf("hippo: export %s: record %d: %w", collection, n, err))
				return
			}
			if line.err != nil {
				// The server failed half-way; the stream ends here.
				yield(nil, line.err.toError(0))
				return
			}
			if !yield(&line.record, nil) {
				return
			}
		}
	}
}

// guardedReader passes reads through to r until stop is called, after which
// it fails them. It lets a call that streams a caller's reader as a request
// body promise that no read starts after the call returns, even though the
// transport may still hold the body.
type guardedReader struct {
	r       io.Reader
	stopped atomic.Bool
}

var errBodyStopped = errors.New("hippo: request finished")

func (g *guardedReader) Read(p []byte) (int, error) {
	if g.stopped.Load() {
		return 0, errBodyStopped
	}
	return g.r.Read(p)
}

func (g *guardedReader) stop() { g.stopped.Store(true) }
