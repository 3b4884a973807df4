package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/auth"
)

// recordsBody returns the body of POST /v1/collections/{c}/records with n
// records, ids r0000 on from first, each with the given members.
func recordsBody(first, n int, members string) string {
	var b strings.Builder
	b.WriteString(`{"records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"r%04d",%s}`, first+i, members)
	}
	b.WriteString(`]}`)
	return b.String()
}

// openRawStream sends GET /v1/events on a new connection to the Unix socket
// at path and returns the connection and the answer; its body is the
// stream.
func openRawStream(t *testing.T, path, query string) (net.Conn, *http.Response) {
	t.Helper()
	return openRawStreamAs(t, path, query, "text/event-stream")
}

// openRawStreamAs is openRawStream asking for the given media type.
func openRawStreamAs(t *testing.T, path, query, accept string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET /v1/events?%s HTTP/1.1\r\nHost: localhost\r\nAccept: %s\r\n\r\n", query, accept)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, resp
}

// directStreamServer serves an API with opts on a Unix socket (configure,
// if not nil, sets up its http.Server) and returns its client, its path and
// a function that writes to it: PUT path, or POST for a batch of records.
func directStreamServer(t *testing.T, opts Options, configure func(*http.Server)) (*http.Client, string, func(path, body string)) {
	a, _, _ := newAccessAPI(t, opts, auth.KeyringOptions{})
	hc, path := serveUnix(t, a, "class=write", configure)
	return hc, path, func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", "http://localhost"+path, strings.NewReader(body))
		if strings.HasSuffix(path, "/records") {
			req.Method = "POST"
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
}

// TestDirectStreamBatchesAreBounded: large records are cut into batches of
// about maxBatchBytes, each one chunk, so that a stream holds no more than
// that while its subscriber is slow; every event still arrives, in order.
func TestDirectStreamBatchesAreBounded(t *testing.T) {
	_, path, put := directStreamServer(t, Options{}, nil)
	put("/v1/collections/c", `{"dimension":2,"metric":"l2"}`)
	const n, textBytes = 5, 600 << 10 // two such events exceed maxBatchBytes
	put("/v1/collections/c/records", recordsBody(0, n, `"vector":[1,2],"text":"`+strings.Repeat("x", textBytes)+`"`))
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET /v1/events?from=1&types=record.upserted HTTP/1.1\r\nHost: localhost\r\nAccept: application/x-ndjson\r\n\r\n")
	r := bufio.NewReader(c)
	for { // the answer's head
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	var ids []string
	for len(ids) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		size, err := strconv.ParseUint(strings.TrimSpace(line), 16, 64)
		if err != nil || size == 0 {
			t.Fatalf("chunk head %q after %v", line, ids)
		}
		chunk := make([]byte, size+2)
		if _, err := io.ReadFull(r, chunk); err != nil {
			t.Fatal(err)
		}
		events := strings.Split(strings.TrimSuffix(string(chunk[:size]), "\n"), "\n")
		if len(events) > 1 {
			t.Fatalf("a chunk of %d bytes carries %d events of %d KiB", size, len(events), textBytes>>10)
		}
		var ev struct{ ID string }
		if err := json.Unmarshal([]byte(events[0]), &ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	if got := strings.Join(ids, ","); got != "r0000,r0001,r0002,r0003,r0004" {
		t.Fatalf("events %s", got)
	}
}

// TestDirectStreamSlowReader: a subscriber that stops reading while records
// pour in fills its socket; what the socket would not take is written
// later, and the subscriber then receives every event once, in order.
func TestDirectStreamSlowReader(t *testing.T) {
	_, path, put := directStreamServer(t, Options{}, nil)
	put("/v1/collections/c", `{"dimension":512,"metric":"l2"}`)
	_, resp := openRawStream(t, path, "from=0")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("answer %d %v", resp.StatusCode, resp.Header)
	}
	// 2,000 records of 512 dimensions, 10 MB of events: far more than a
	// socket buffers, written while the subscriber reads nothing.
	vec := strings.TrimSuffix(strings.Repeat("0.123456,", 512), ",")
	const batches, perBatch = 40, 50
	for b := range batches {
		put("/v1/collections/c/records", recordsBody(b*perBatch, perBatch, `"vector":[`+vec+`]`))
	}
	last := uint64(1 + batches*perBatch) // the collection, then every record
	r := bufio.NewReader(resp.Body)
	want := uint64(1)
	for want <= last {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for seq %d: %v", want, err)
		}
		id, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "id: ")
		if !ok {
			continue
		}
		seq, _ := strconv.ParseUint(id, 10, 64)
		if seq == 0 {
			continue // the position the stream started from
		}
		if seq != want {
			t.Fatalf("seq %d after %d", seq, want-1)
		}
		want++
	}
}

// TestDirectStreamsShareOnlyLikeBatches: the direct writer encodes a batch
// once for the streams that send the same events in the same format; a
// stream with another filter or format beside them gets its own.
func TestDirectStreamsShareOnlyLikeBatches(t *testing.T) {
	a, _, _ := newAccessAPI(t, Options{}, auth.KeyringOptions{})
	hc, path := serveUnix(t, a, "class=write", nil)
	call := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	for _, c := range []string{"a", "b"} {
		call("PUT", "/v1/collections/"+c, `{"dimension":2,"metric":"l2"}`)
	}
	type stream struct {
		query, accept string
		want          int    // events
		collection    string // of every event, if set
		records       bool   // events carry their record
	}
	const rounds = 20 // each a record in a, then one in b
	streams := []stream{
		{"", "text/event-stream", 2 * rounds, "", true},
		{"", "text/event-stream", 2 * rounds, "", true},
		{"", "application/x-ndjson", 2 * rounds, "", true},
		{"records=false", "text/event-stream", 2 * rounds, "", false},
		{"collections=a", "text/event-stream", rounds, "a", true},
		{"collections=b", "text/event-stream", rounds, "b", true},
	}
	bodies := make([]*bufio.Reader, len(streams))
	for i, s := range streams {
		_, resp := openRawStreamAs(t, path, s.query, s.accept)
		if resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
		bodies[i] = bufio.NewReader(resp.Body)
	}
	for r := range rounds {
		call("POST", "/v1/collections/a/records", recordsBody(r, 1, `"vector":[1,2]`))
		call("POST", "/v1/collections/b/records", recordsBody(r, 1, `"vector":[3,4]`))
		time.Sleep(2 * time.Millisecond) // rounds in passes of their own, mostly
	}
	for i, s := range streams {
		sse := s.accept == "text/event-stream"
		var last uint64
		for n := 0; n < s.want; {
			line, err := bodies[i].ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d, after %d events: %v", i, n, err)
			}
			data := strings.TrimSuffix(line, "\n")
			if sse {
				var ok bool
				if data, ok = strings.CutPrefix(data, "data: "); !ok {
					continue
				}
			}
			if data == "" {
				continue // an NDJSON heartbeat
			}
			var ev struct {
				Seq        uint64          `json:"seq"`
				Type       string          `json:"type"`
				Collection string          `json:"collection"`
				Record     json.RawMessage `json:"record"`
			}
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("stream %d (%s %q): %q: %v", i, s.accept, s.query, line, err)
			}
			if ev.Type != "record.upserted" {
				continue
			}
			if ev.Seq <= last || (s.collection != "" && ev.Collection != s.collection) || (len(ev.Record) > 0) != s.records {
				t.Fatalf("stream %d (%s %q) after seq %d: %s", i, s.accept, s.query, last, data)
			}
			last = ev.Seq
			n++
		}
	}
}

// TestDirectStreamEndsWithClient: a subscriber that hangs up gives its
// place back at once: with max_streams=1 the next stream is admitted.
func TestDirectStreamEndsWithClient(t *testing.T) {
	a, _, _ := newAccessAPI(t, Options{}, auth.KeyringOptions{})
	_, path := serveUnix(t, a, "class=read&max_streams=1", nil)
	c, resp := openRawStream(t, path, "")
	if resp.StatusCode != 200 {
		t.Fatalf("first stream: %d", resp.StatusCode)
	}
	if _, resp := openRawStream(t, path, ""); resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second stream beside the first: %d", resp.StatusCode)
	}
	c.Close()
	for began := time.Now(); ; {
		_, resp := openRawStream(t, path, "")
		if resp.StatusCode == 200 {
			break
		}
		if time.Since(began) > 2*time.Second {
			t.Fatalf("the stream of a client that hung up still holds its place: %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDirectStreamOnlyForHTTP11Get: an HTTP/1.0 client cannot read a chunked
// answer, so its stream stays with net/http, which ends the body by closing.
func TestDirectStreamOnlyForHTTP11Get(t *testing.T) {
	a, _, _ := newAccessAPI(t, Options{}, auth.KeyringOptions{})
	_, path := serveUnix(t, a, "class=read", nil)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /v1/events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(resp.TransferEncoding) > 0 {
		t.Fatalf("HTTP/1.0 stream: %d, transfer encoding %v", resp.StatusCode, resp.TransferEncoding)
	}
}

// Writing is paced to 1/writePacing of the time, at most maxPacePerStream
// a stream written and maxWriteInterval in all.
func TestWritePace(t *testing.T) {
	for _, c := range []struct {
		took    time.Duration
		streams int
		want    time.Duration
	}{
		{10 * time.Microsecond, 1, 200 * time.Microsecond},
		{time.Millisecond, 1, maxPacePerStream},
		{time.Millisecond, 100, 20 * time.Millisecond},
		{10 * time.Millisecond, 1000, maxWriteInterval},
		{0, 5, 0},
	} {
		if got := writePace(c.took, c.streams); got != c.want {
			t.Errorf("writePace(%v, %d) = %v, want %v", c.took, c.streams, got, c.want)
		}
	}
}

// TestStalledStreamIsDroppedAndResumes: a subscriber that takes nothing for
// the stream write timeout while events pour in is disconnected, over
// HTTP/1.1 (the direct writer) and over HTTP/2 (a goroutine per stream);
// reconnecting with the last seq it read, it receives every other event
// once, in order.
func TestStalledStreamIsDroppedAndResumes(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			hc, path, put := directStreamServer(t, Options{StreamWriteTimeout: 200 * time.Millisecond}, func(s *http.Server) {
				s.Protocols = new(http.Protocols)
				s.Protocols.SetHTTP1(true)
				s.Protocols.SetUnencryptedHTTP2(true)
			})
			sc := hc
			if h2 {
				tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", path)
				}}
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetUnencryptedHTTP2(true)
				t.Cleanup(tr.CloseIdleConnections)
				sc = &http.Client{Transport: tr}
			}
			open := func(lastID string) *bufio.Reader {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				t.Cleanup(cancel)
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://localhost/v1/events", nil)
				req.Header.Set("Accept", "text/event-stream")
				req.Header.Set("Last-Event-ID", lastID)
				resp, err := sc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				if resp.StatusCode != 200 || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
					t.Fatalf("answer %d over %s", resp.StatusCode, resp.Proto)
				}
				return bufio.NewReader(resp.Body)
			}
			// readSeqs reads the seqs of record events (an id line, then an
			// event line; positions have none) until the stream ends or
			// seq last.
			readSeqs := func(r *bufio.Reader, last uint64) (seqs []uint64, err error) {
				var id uint64
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return seqs, err
					}
					if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "id: "); ok {
						id, _ = strconv.ParseUint(v, 10, 64)
					}
					if strings.HasPrefix(line, "event: record.") {
						if seqs = append(seqs, id); id == last {
							return seqs, nil
						}
					}
				}
			}
			put("/v1/collections/c", `{"dimension":512,"metric":"l2"}`)
			stalled := open("1")
			// 2,000 records, 10 MB of events: more than the socket and an
			// HTTP/2 client's window take while the subscriber reads
			// nothing.
			vec := strings.TrimSuffix(strings.Repeat("0.123456,", 512), ",")
			const batches, perBatch = 40, 50
			for b := range batches {
				put("/v1/collections/c/records", recordsBody(b*perBatch, perBatch, `"vector":[`+vec+`]`))
			}
			last := uint64(1 + batches*perBatch)
			time.Sleep(time.Second) // five times the write timeout
			got, err := readSeqs(stalled, last)
			if err == nil {
				t.Fatalf("the stalled stream was not dropped: it delivered all %d events", len(got))
			}
			resumeFrom := uint64(1)
			if len(got) > 0 {
				resumeFrom = got[len(got)-1]
			}
			rest, err := readSeqs(open(strconv.FormatUint(resumeFrom, 10)), last)
			if err != nil {
				t.Fatalf("resuming after seq %d: %v", resumeFrom, err)
			}
			all := append(got, rest...)
			for i, seq := range all {
				if seq != uint64(i)+2 {
					t.Fatalf("event %d has seq %d (dropped after %d events)", i, seq, len(got))
				}
			}
			if len(all) != int(last-1) {
				t.Fatalf("%d events, want %d", len(all), last-1)
			}
			t.Logf("dropped after %d of %d events", len(got), last-1)
		})
	}
}
