package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestExport(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		s, c := setup(t, network, 2, opts...)
		ctx := t.Context()
		var want []string
		var records []Record
		for i := range 50 {
			id := fmt.Sprintf("r%02d", i)
			want = append(want, id)
			records = append(records, Record{ID: id, Vector: []float32{float32(i), 0.5}, Text: "t"})
		}
		if _, _, err := c.UpsertBatch(ctx, "docs", records); err != nil {
			t.Fatal(err)
		}
		var got []string
		for record, err := range c.Export(ctx, "docs") {
			if err != nil {
				t.Fatal(err)
			}
			if record.Text != "t" || record.Vector[1] != 0.5 {
				t.Errorf("exported %+v", record)
			}
			got = append(got, record.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Export = %q, want %q", got, want)
		}
		if h := s.lastRequest().Header.Get("Accept"); h != "application/x-ndjson" {
			t.Errorf("Accept = %q", h)
		}

		var errs []error
		for record, err := range c.Export(ctx, "nope") {
			if record != nil {
				t.Errorf("record %v with the error", record)
			}
			errs = append(errs, err)
		}
		if len(errs) != 1 || !IsNotFound(errs[0]) {
			t.Errorf("Export of a missing collection yielded %v", errs)
		}
	})
}

// endlessExport streams records until its request is cancelled, then
// reports that on stopped.
func endlessExport(stopped chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(stopped)
		w.Header().Set("Content-Type", "application/x-ndjson")
		rc := http.NewResponseController(w)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, `{"id":"r%d","vector_b64":"AACAPw=="}`+"\n", i); err != nil {
				return
			}
			if i%10 == 0 {
				if err := rc.Flush(); err != nil {
					return
				}
			}
			if r.Context().Err() != nil {
				return
			}
		}
	})
}

// TestExportEarlyBreak checks that breaking out of an Export loop closes the
// stream, so that the server stops.
func TestExportEarlyBreak(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		stopped := make(chan struct{})
		addr, _ := startServer(t, network, endlessExport(stopped))
		c := newTestClient(t, addr, opts...)
		n := 0
		for record, err := range c.Export(t.Context(), "docs") {
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(record.Vector, []float32{1}) {
				t.Fatalf("record %+v", record)
			}
			if n++; n == 25 {
				break
			}
		}
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("the server is still sending after the loop ended")
		}
	})
}

// TestExportErrorLine checks that an error line, with which the server ends
// an export that failed half-way, is an error and not a record.
func TestExportErrorLine(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/collections/docs/export", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"id":"a","vector":[1]}`)
		fmt.Fprintln(w, `{"error":{"code":"internal","message":"disk on fire"}}`)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	addr, _ := startServer(t, "tcp", mux)
	c := newTestClient(t, addr)
	var ids []string
	var errs []error
	for record, err := range c.Export(t.Context(), "docs") {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, record.ID)
	}
	if !slices.Equal(ids, []string{"a"}) || len(errs) != 1 || !isCode(errs[0], CodeInternal, 500) {
		t.Errorf("Export yielded %q and %v", ids, errs)
	}
}

func TestExportCancelled(t *testing.T) {
	stopped := make(chan struct{})
	addr, _ := startServer(t, "tcp", endlessExport(stopped))
	c := newTestClient(t, addr)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n := 0
	var lastErr error
	for _, err := range c.Export(ctx, "docs") {
		if err != nil {
			lastErr = err
			continue
		}
		if n++; n == 5 {
			cancel()
		}
	}
	if !errors.Is(lastErr, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", lastErr)
	}
	<-stopped
}

// lazyReader produces size bytes of NDJSON records on demand, counting what
// it has produced.
type lazyReader struct {
	size     int64
	produced atomic.Int64
	line     []byte
	pending  []byte
	i        int
	onRead   func(produced int64)
}

func (r *lazyReader) Read(p []byte) (int, error) {
	if r.onRead != nil {
		r.onRead(r.produced.Load())
	}
	left := r.size - r.produced.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && int64(n) < left {
		if len(r.pending) == 0 {
			r.i++
			r.pending = fmt.Appendf(r.line[:0], `{"id":"r%d","vector_b64":"AACAPwAAAEA=","text":"%s"}`+"\n", r.i, strings.Repeat("x", 200))
			r.line = r.pending
		}
		m := copy(p[n:min(int64(len(p)), left)], r.pending)
		r.pending = r.pending[m:]
		n += m
	}
	r.produced.Add(int64(n))
	return n, nil
}

func (r *lazyReader) Close() error {
	panic("Import closed its reader")
}

// TestImportStreams checks that Import streams its reader to the server
// instead of buffering it: at no point has the client read much more of the
// body than the server has received.
func TestImportStreams(t *testing.T) {
	const size = 50 << 20
	// What may sit between the reader and the server's handler: the
	// transport's buffers, the HTTP/2 flow-control windows (4 MiB per
	// stream) and the kernel's socket buffers, with room to spare.
	// Buffering the body would need 50 MiB.
	const window = 20 << 20
	t.Parallel()
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		t.Parallel()
		var received atomic.Int64
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Content-Type") != "application/x-ndjson" || r.URL.RawQuery != "on_error=abort" {
				writeError(w, invalid("bad request %s %v", r.URL, r.Header))
				return
			}
			br := bufio.NewReader(r.Body)
			lines := 0
			buf := make([]byte, 32<<10)
			for {
				n, err := br.Read(buf)
				received.Add(int64(n))
				for _, b := range buf[:n] {
					if b == '\n' {
						lines++
					}
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					return
				}
			}
			writeJSON(w, 200, map[string]any{"imported": lines, "failed": 0, "errors": []any{}, "aborted": false, "seq": 7})
		})
		addr, _ := startServer(t, network, handler)
		c := newTestClient(t, addr, opts...)

		var maxGap atomic.Int64
		body := &lazyReader{size: size, onRead: func(produced int64) {
			if gap := produced - received.Load(); gap > maxGap.Load() {
				maxGap.Store(gap)
			}
		}}
		result, err := c.Import(t.Context(), "docs", body, &ImportOptions{OnError: "abort"})
		if err != nil {
			t.Fatal(err)
		}
		// The last line is cut off by the size limit.
		if received.Load() != size || result.Imported != body.i-1 || result.Seq != 7 {
			t.Errorf("server received %d bytes, imported %d records (seq %d); want %d bytes, %d records",
				received.Load(), result.Imported, result.Seq, size, body.i-1)
		}
		t.Logf("the client read at most %d KiB ahead of the server", maxGap.Load()>>10)
		if gap := maxGap.Load(); gap > window {
			t.Errorf("the client read %d MiB ahead of the server; it buffers the body", gap>>20)
		}
	})
}

func TestImport(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		_, c := setup(t, network, 2, opts...)
		ctx := t.Context()
		body := `{"id":"a","vector":[1,2]}
{"id":"b","vector_b64":"AACAPwAAAEA="}
{"id":"c","vector":[1]}
not json

{"id":"d","vector":[3,4],"metadata":{"k":"v"}}
`
		result, err := c.Import(ctx, "docs", strings.NewReader(body), nil)
		if err != nil {
			t.Fatal(err)
		}
		if result.Imported != 3 || result.Failed != 2 || result.Aborted || result.Seq == 0 ||
			len(result.Errors) != 2 || result.Errors[0].Line != 3 || result.Errors[1].Line != 4 ||
			result.Errors[0].Code != CodeInvalidArgument || result.Errors[0].Message == "" {
			t.Errorf("Import = %+v", result)
		}
		record, err := c.Get(ctx, "docs", "b")
		if err != nil || !slices.Equal(record.Vector, []float32{1, 2}) {
			t.Errorf("Get(b) = %+v, %v", record, err)
		}

		result, err = c.Import(ctx, "docs", strings.NewReader(body), &ImportOptions{OnError: "abort"})
		if err != nil || !result.Aborted || result.Imported != 2 || result.Failed != 1 {
			t.Errorf("Import with abort = %+v, %v", result, err)
		}

		if _, err := c.Import(ctx, "nope", strings.NewReader(body), nil); !IsNotFound(err) {
			t.Errorf("Import into a missing collection: err = %v", err)
		}
	})
}

// TestImportStopsReading checks that Import does not read its reader after
// it returns, even if the server answered before the body ended.
func TestImportStopsReading(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.CopyN(io.Discard, r.Body, 1<<20)
			writeError(w, &apiError{413, CodePayloadTooLarge, "too large"})
		})
		addr, _ := startServer(t, network, handler)
		c := newTestClient(t, addr, opts...)
		var returned atomic.Bool
		body := &lazyReader{size: 1 << 40, onRead: func(int64) {
			if returned.Load() {
				t.Error("the reader was read after Import returned")
			}
		}}
		_, err := c.Import(t.Context(), "docs", body, nil)
		returned.Store(true)
		if !isCode(err, CodePayloadTooLarge, 413) {
			t.Errorf("err = %v, want payload_too_large", err)
		}
		time.Sleep(50 * time.Millisecond) // give a stray read the chance to happen
	})
}

// countRecords returns an iterator over n records, counting how many it has
// produced and whether it was stopped early.
func countRecords(n int, produced *atomic.Int64, stopped *atomic.Bool) iter.Seq[Record] {
	return func(yield func(Record) bool) {
		for i := range n {
			produced.Add(1)
			if !yield(Record{ID: fmt.Sprint("r", i), Vector: []float32{float32(i), 1}, Metadata: map[string]any{"i": i}}) {
				stopped.Store(true)
				return
			}
		}
	}
}

func TestImportRecords(t *testing.T) {
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		_, c := setup(t, network, 2, opts...)
		ctx := t.Context()
		var produced atomic.Int64
		var stopped atomic.Bool
		result, err := c.ImportRecords(ctx, "docs", countRecords(1000, &produced, &stopped), nil)
		if err != nil || result.Imported != 1000 || result.Failed != 0 {
			t.Fatalf("ImportRecords = %+v, %v", result, err)
		}
		record, err := c.Get(ctx, "docs", "r999")
		if err != nil || !slices.Equal(record.Vector, []float32{999, 1}) || record.Metadata["i"] != 999.0 {
			t.Errorf("Get(r999) = %+v, %v", record, err)
		}

		// A request that fails stops the iterator.
		produced.Store(0)
		_, err = c.ImportRecords(ctx, "nope", countRecords(1e9, &produced, &stopped), nil)
		if !IsNotFound(err) || !stopped.Load() {
			t.Errorf("ImportRecords into a missing collection: err = %v, iterator stopped %v", err, stopped.Load())
		}
	})
}

// TestImportRecordsStreams checks that ImportRecords encodes records as the
// server takes them rather than ahead of it.
func TestImportRecordsStreams(t *testing.T) {
	const n = 200_000 // ~50 MB of NDJSON
	// Records of ~250 bytes in flight in buffers, flow-control windows and
	// socket buffers (see TestImportStreams): 20 MiB.
	const window = 80_000
	text := strings.Repeat("x", 200)
	t.Parallel()
	forEachTransport(t, func(t *testing.T, network string, opts []Option) {
		t.Parallel()
		var produced, received, maxGap atomic.Int64
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scanner := bufio.NewScanner(r.Body)
			for scanner.Scan() {
				received.Add(1)
			}
			writeJSON(w, 200, map[string]any{"imported": received.Load()})
		})
		addr, _ := startServer(t, network, handler)
		c := newTestClient(t, addr, opts...)
		records := func(yield func(Record) bool) {
			for i := range n {
				if gap := produced.Add(1) - received.Load(); gap > maxGap.Load() {
					maxGap.Store(gap)
				}
				if !yield(Record{ID: fmt.Sprint(i), Vector: []float32{1, 2, 3}, Text: text}) {
					return
				}
			}
		}
		result, err := c.ImportRecords(t.Context(), "docs", records, nil)
		if err != nil || result.Imported != n {
			t.Fatalf("ImportRecords = %+v, %v", result, err)
		}
		if gap := maxGap.Load(); gap > window {
			t.Errorf("the client encoded %d records ahead of the server", gap)
		}
		t.Logf("the client encoded at most %d records ahead of the server", maxGap.Load())
	})
}

func TestImportRecordsEncodeError(t *testing.T) {
	_, c := setup(t, "tcp", 2, WithJSONVectors())
	stoppedAt := -1
	records := func(yield func(Record) bool) {
		for i := range 1000 {
			v := []float32{1, 2}
			if i == 500 {
				v[1] = float32(math.NaN())
			}
			if !yield(Record{ID: fmt.Sprint(i), Vector: v}) {
				stoppedAt = i
				return
			}
		}
	}
	_, err := c.ImportRecords(t.Context(), "docs", records, nil)
	if err == nil || !strings.Contains(err.Error(), "encode record 501") {
		t.Errorf("err = %v, want an encoding error for record 501", err)
	}
	if stoppedAt != 500 {
		t.Errorf("the iterator was stopped at record %d, want 500", stoppedAt)
	}
}
