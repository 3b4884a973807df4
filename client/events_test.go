package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hippo-db/hippo/client"
)

// feedServer is a small change feed in memory that speaks GET /v1/events as
// Server-Sent Events the way the real server does, with knobs to misbehave.
type feedServer struct {
	t *testing.T

	mu struct {
		sync.Mutex
		events   []feedEvent // events[i] has seq i+1
		oldest   uint64      // the oldest retained seq; 0 means 1
		changed  chan struct{}
		requests []*http.Request
		// Behaviour of the next connections, consumed in order: a
		// status to refuse with, or 0 to serve.
		refuse []int
		// dropEvery ends each connection after this many events (0:
		// never), alternately cleanly and by aborting mid-message.
		dropEvery int
		drops     int
		// replay makes the server ignore the position it is asked for
		// and send everything from its oldest event again.
		replay bool
		// silent sends nothing at all after the first bytes.
		silent bool
	}
}

type feedEvent struct {
	typ, collection, id string
	time                time.Time
	vector              []float32
	text                string
}

func newFeedServer(t *testing.T, opts ...client.Option) (*feedServer, *client.Client, *httptest.Server) {
	t.Helper()
	fs := &feedServer{t: t}
	fs.mu.changed = make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", fs.readyz)
	mux.HandleFunc("GET /v1/events", fs.serveEvents)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := client.New(srv.Listener.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return fs, c, srv
}

// add appends events and wakes the streams.
func (fs *feedServer) add(events ...feedEvent) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, e := range events {
		if e.time.IsZero() {
			e.time = time.Date(2026, 1, 2, 3, 4, 5, len(fs.mu.events), time.UTC)
		}
		fs.mu.events = append(fs.mu.events, e)
	}
	close(fs.mu.changed)
	fs.mu.changed = make(chan struct{})
}

// addUpserts appends n upserts of collection c with ids c0, c1, ...
func (fs *feedServer) addUpserts(c string, n int) {
	var evs []feedEvent
	for i := range n {
		evs = append(evs, feedEvent{typ: client.EventRecordUpserted, collection: c, id: fmt.Sprintf("%s%d", c, i),
			vector: []float32{float32(i), 0.5, -1}, text: fmt.Sprint("text ", i)})
	}
	fs.add(evs...)
}

func (fs *feedServer) requests() []*http.Request {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.mu.requests)
}

func (fs *feedServer) readyz(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	last := len(fs.mu.events)
	fs.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"ready","seq":%d,"feed":{"oldest_seq":1,"last_seq":%d}}`, last, last)
}

func (fs *feedServer) serveEvents(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	fs.mu.requests = append(fs.mu.requests, r)
	refuse := 0
	if len(fs.mu.refuse) > 0 {
		refuse, fs.mu.refuse = fs.mu.refuse[0], fs.mu.refuse[1:]
	}
	dropEvery, replay, silent := fs.mu.dropEvery, fs.mu.replay, fs.mu.silent
	oldest := max(fs.mu.oldest, 1)
	fs.mu.Unlock()
	if refuse != 0 {
		w.Header().Set("Content-Type", "application/json")
		if refuse == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(refuse)
		fmt.Fprintf(w, `{"error":{"code":"x","message":"refused with %d"}}`, refuse)
		return
	}
	q := r.URL.Query()
	pos, _ := strconv.ParseUint(q.Get("from"), 10, 64)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		pos, _ = strconv.ParseUint(id, 10, 64)
	}
	if replay {
		pos = 0
	}
	filterColl := map[string]bool{}
	for _, c := range strings.Split(q.Get("collections"), ",") {
		if c != "" {
			filterColl[c] = true
		}
	}
	withRecords := q.Get("records") != "false"
	b64 := q.Get("vector_b64") == "1"
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n\n")
	flush := http.NewResponseController(w).Flush
	flush()
	if silent {
		<-r.Context().Done()
		return
	}
	if pos+1 < oldest {
		fmt.Fprintf(w, "event: feed.gap\ndata: {\"type\":\"feed.gap\",\"requested_seq\":%d,\"oldest_seq\":%d,\"message\":\"gone\"}\n\n", pos+1, oldest)
		pos = oldest - 1
	}
	sent := 0
	for {
		fs.mu.Lock()
		events, changed := fs.mu.events, fs.mu.changed
		fs.mu.Unlock()
		for ; pos < uint64(len(events)); pos++ {
			seq := pos + 1
			e := events[pos]
			if len(filterColl) > 0 && !filterColl[e.collection] {
				continue
			}
			data := fs.encode(seq, e, withRecords, b64)
			if dropEvery > 0 && sent == dropEvery {
				fs.mu.Lock()
				fs.mu.drops++
				abort := fs.mu.drops%2 == 0
				fs.mu.Unlock()
				if abort {
					// Cut the connection in the middle of a message.
					fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s", seq, e.typ, data[:len(data)/2])
					flush()
					panic(http.ErrAbortHandler)
				}
				return // a clean end, as at a graceful shutdown
			}
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", seq, e.typ, data)
			sent++
		}
		flush()
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		}
	}
}

func (fs *feedServer) encode(seq uint64, e feedEvent, withRecords, b64 bool) []byte {
	m := map[string]any{"seq": seq, "type": e.typ, "collection": e.collection, "time": e.time.Format(time.RFC3339Nano)}
	if e.id != "" {
		m["id"] = e.id
	}
	if withRecords && e.vector != nil {
		rec := map[string]any{"id": e.id, "text": e.text, "seq": seq}
		if b64 {
			raw := make([]byte, 0, 4*len(e.vector))
			for _, f := range e.vector {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
			}
			rec["vector_b64"] = base64.StdEncoding.EncodeToString(raw)
		} else {
			rec["vector"] = e.vector
		}
		m["record"] = rec
	}
	b, err := json.Marshal(m)
	if err != nil {
		fs.t.Error(err)
	}
	return b
}

// collect ranges over the events until want of them arrived, or an error.
func collect(t *testing.T, seq func(func(*client.Event, error) bool), want int) ([]*client.Event, error) {
	t.Helper()
	var got []*client.Event
	for ev, err := range seq {
		if err != nil {
			return got, err
		}
		got = append(got, ev)
		if len(got) == want {
			break
		}
	}
	return got, nil
}

func checkSeqs(t *testing.T, got []*client.Event, first uint64) {
	t.Helper()
	for i, ev := range got {
		if ev.Seq != first+uint64(i) {
			t.Fatalf("event %d has seq %d, want %d (seqs %v)", i, ev.Seq, first+uint64(i), seqsOf(got))
		}
	}
}

func seqsOf(evs []*client.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func TestEventsDecodesAndAsks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []client.Option
		records bool
		wantQ   string
	}{
		{"default", nil, false, "collections=a%2Cb&records=false&types=record.upserted%2Ccollection.created"},
		{"records-b64", nil, true, "collections=a%2Cb&types=record.upserted%2Ccollection.created&vector_b64=1"},
		{"records-json", []client.Option{client.WithJSONVectors()}, true, "collections=a%2Cb&types=record.upserted%2Ccollection.created"},
		{"http1", []client.Option{client.WithHTTP1Pool(2)}, true, "collections=a%2Cb&types=record.upserted%2Ccollection.created&vector_b64=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, c, _ := newFeedServer(t, tc.opts...)
			fs.add(feedEvent{typ: client.EventCollectionCreated, collection: "a"})
			fs.addUpserts("a", 3)
			fs.addUpserts("z", 2) // filtered out by the server
			fs.addUpserts("b", 1)
			ctx := context.Background()
			got, err := collect(t, c.Events(ctx, &client.EventsOptions{From: ptr[uint64](0), Collections: []string{"a", "b"},
				Types: []string{client.EventRecordUpserted, client.EventCollectionCreated}, Records: tc.records}), 5)
			if err != nil {
				t.Fatal(err)
			}
			if want := []uint64{1, 2, 3, 4, 7}; !slices.Equal(seqsOf(got), want) {
				t.Fatalf("seqs %v, want %v", seqsOf(got), want)
			}
			if got[0].Type != client.EventCollectionCreated || got[0].Collection != "a" || got[0].Record != nil || got[0].ID != "" {
				t.Fatalf("first event %+v", got[0])
			}
			ev := got[2]
			if ev.Type != client.EventRecordUpserted || ev.Collection != "a" || ev.ID != "a1" ||
				!ev.Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 2, time.UTC)) {
				t.Fatalf("event %+v", ev)
			}
			if tc.records {
				if ev.Record == nil || ev.Record.ID != "a1" || ev.Record.Text != "text 1" || ev.Record.Seq != 3 ||
					!slices.Equal(ev.Record.Vector, []float32{1, 0.5, -1}) {
					t.Fatalf("record %+v", ev.Record)
				}
			} else if ev.Record != nil {
				t.Fatalf("record without asking: %+v", ev.Record)
			}
			reqs := fs.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.URL.RawQuery != tc.wantQ || r.Header.Get("Accept") != "text/event-stream" || r.Header.Get("Last-Event-ID") != "0" {
				t.Fatalf("request %s, Accept %q, Last-Event-ID %q", r.URL.RawQuery, r.Header.Get("Accept"), r.Header.Get("Last-Event-ID"))
			}
		})
	}
}

// The iterator reconnects after clean ends, aborted streams cut in the middle
// of a message, and refusals the server may recover from, and delivers every
// event once, in order.
func TestEventsReconnectsAndResumes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []client.Option
	}{{"http2", nil}, {"http1", []client.Option{client.WithHTTP1Pool(1)}}} {
		t.Run(tc.name, func(t *testing.T) {
			fs, c, _ := newFeedServer(t, tc.opts...)
			fs.mu.Lock()
			fs.mu.dropEvery = 3
			fs.mu.Unlock()
			fs.addUpserts("c", 10)
			var retries []error
			opts := &client.EventsOptions{From: ptr[uint64](0), OnRetry: func(err error, wait time.Duration) {
				retries = append(retries, err)
				var herr *client.Error
				if !errors.As(err, &herr) && (wait < 50*time.Millisecond || wait > 100*time.Millisecond) {
					t.Errorf("first wait after a healthy connection: %v", wait)
				}
				if len(retries) == 2 {
					// The next two attempts are refused with statuses
					// worth retrying.
					fs.mu.Lock()
					fs.mu.refuse = []int{http.StatusServiceUnavailable, http.StatusBadGateway}
					fs.mu.Unlock()
				}
			}}
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(100 * time.Millisecond)
				fs.addUpserts("d", 20) // while the iterator waits or reads
			}()
			got, err := collect(t, c.Events(context.Background(), opts), 30)
			<-done
			if err != nil {
				t.Fatal(err)
			}
			checkSeqs(t, got, 1)
			// Every reconnection asked for the events after the last one
			// delivered.
			var asked []string
			for _, r := range fs.requests() {
				asked = append(asked, r.Header.Get("Last-Event-ID"))
			}
			if asked[0] != "0" || asked[1] != "3" || asked[2] != "6" {
				t.Fatalf("Last-Event-ID of the connections: %v", asked)
			}
			if len(retries) < 10 {
				t.Fatalf("%d retries: %v", len(retries), retries)
			}
			var herr *client.Error
			if !slices.ContainsFunc(retries, func(err error) bool { return errors.As(err, &herr) && herr.Status == 502 }) {
				t.Fatalf("the 502 was not retried: %v", retries)
			}
		})
	}
}

// Events the server sends again (here: a server that ignores Last-Event-ID)
// are not delivered twice.
func TestEventsSkipsWhatWasDelivered(t *testing.T) {
	fs, c, _ := newFeedServer(t)
	fs.mu.Lock()
	fs.mu.dropEvery, fs.mu.replay = 4, true
	fs.mu.Unlock()
	fs.addUpserts("c", 3)
	go func() {
		time.Sleep(50 * time.Millisecond)
		fs.addUpserts("d", 3)
	}()
	opts := &client.EventsOptions{From: ptr[uint64](0), OnRetry: func(error, time.Duration) {
		fs.mu.Lock()
		fs.mu.dropEvery = 0 // the second connection sends 1 to 6
		fs.mu.Unlock()
	}}
	got, err := collect(t, c.Events(context.Background(), opts), 6)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, got, 1)
	if n := len(fs.requests()); n != 2 {
		t.Fatalf("%d connections", n)
	}
}

// Without From the iterator asks the server for its position first, so that
// a reconnection before the first event loses nothing written meanwhile.
func TestEventsFromNow(t *testing.T) {
	fs, c, _ := newFeedServer(t)
	fs.addUpserts("old", 5)
	fs.mu.Lock()
	fs.mu.refuse = []int{http.StatusServiceUnavailable}
	fs.mu.Unlock()
	opts := &client.EventsOptions{OnRetry: func(error, time.Duration) {
		fs.addUpserts("new", 2) // written before the first connection is made
	}}
	got, err := collect(t, c.Events(context.Background(), opts), 2)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, got, 6)
	if r := fs.requests()[0]; r.Header.Get("Last-Event-ID") != "5" {
		t.Fatalf("first Last-Event-ID %q", r.Header.Get("Last-Event-ID"))
	}
}

func TestEventsGap(t *testing.T) {
	fs, c, _ := newFeedServer(t)
	fs.addUpserts("c", 10)
	fs.mu.Lock()
	fs.mu.oldest = 6
	fs.mu.Unlock()
	// Going on past the gap.
	var got []*client.Event
	var gaps []*client.GapError
	for ev, err := range c.Events(context.Background(), &client.EventsOptions{From: ptr[uint64](2)}) {
		var gap *client.GapError
		if errors.As(err, &gap) {
			gaps = append(gaps, gap)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, ev); len(got) == 5 {
			break
		}
	}
	if len(gaps) != 1 || gaps[0].Requested != 3 || gaps[0].Oldest != 6 || !strings.Contains(gaps[0].Error(), "gone") {
		t.Fatalf("gaps %+v", gaps)
	}
	checkSeqs(t, got, 6)

	// Stopping at it.
	got, err := collect(t, c.Events(context.Background(), &client.EventsOptions{From: ptr[uint64](0)}), 1)
	var gap *client.GapError
	if !errors.As(err, &gap) || len(got) != 0 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestEventsFinalErrors(t *testing.T) {
	fs, c, _ := newFeedServer(t)
	fs.mu.Lock()
	fs.mu.refuse = []int{http.StatusBadRequest}
	fs.mu.Unlock()
	retried := false
	_, err := collect(t, c.Events(context.Background(), &client.EventsOptions{OnRetry: func(error, time.Duration) { retried = true }}), 1)
	var herr *client.Error
	if !errors.As(err, &herr) || herr.Status != 400 || retried {
		t.Fatalf("err %v, retried %v", err, retried)
	}

	// A malformed event ends the iteration rather than looping on it.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "id: 1\ndata: {\"seq\":1,\"type\":\n\n")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c2, _ := client.New(srv.Listener.Addr().String(), client.WithHTTP1Pool(1))
	defer c2.Close()
	_, err = collect(t, c2.Events(context.Background(), &client.EventsOptions{From: ptr[uint64](0)}), 1)
	if err == nil || !strings.Contains(err.Error(), "decode the event after seq 0") {
		t.Fatalf("malformed event: %v", err)
	}
}

func TestEventsRetryAfter(t *testing.T) {
	fs, c, _ := newFeedServer(t)
	fs.mu.Lock()
	fs.mu.refuse = []int{http.StatusTooManyRequests}
	fs.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	var wait time.Duration
	_, err := collect(t, c.Events(ctx, &client.EventsOptions{From: ptr[uint64](0), OnRetry: func(_ error, d time.Duration) {
		wait = d
		cancel() // rather than wait 7 s
	}}), 1)
	if !errors.Is(err, context.Canceled) || wait != 7*time.Second {
		t.Fatalf("err %v, wait %v", err, wait)
	}
}

func TestEventsIdleTimeout(t *testing.T) {
	fs, c, _ := newFeedServer(t)
	fs.mu.Lock()
	fs.mu.silent = true
	fs.mu.Unlock()
	fs.addUpserts("c", 1)
	var retries []error
	opts := &client.EventsOptions{From: ptr[uint64](0), IdleTimeout: 100 * time.Millisecond, OnRetry: func(err error, _ time.Duration) {
		retries = append(retries, err)
		fs.mu.Lock()
		fs.mu.silent = false
		fs.mu.Unlock()
	}}
	got, err := collect(t, c.Events(context.Background(), opts), 1)
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	if len(retries) != 1 || !strings.Contains(retries[0].Error(), "nothing received for 100ms") {
		t.Fatalf("retries %v", retries)
	}
}

// Cancelling the context ends the iteration with its error, whether it is
// reading or waiting to reconnect; breaking out closes the stream.
func TestEventsCancelAndBreak(t *testing.T) {
	fs, c, _ := newFeedServer(t)
	fs.addUpserts("c", 2)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	var last error
	for _, err := range c.Events(ctx, &client.EventsOptions{From: ptr[uint64](0)}) {
		if err != nil {
			last = err
			continue // the iterator must end by itself
		}
		if n++; n == 2 {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("after cancel: %v", last)
	}

	// Waiting between attempts: the server refuses every time.
	fs.mu.Lock()
	fs.mu.refuse = slices.Repeat([]int{503}, 100)
	fs.mu.Unlock()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := collect(t, c.Events(ctx, nil), 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("while retrying: %v", err)
	}
	fs.mu.Lock()
	fs.mu.refuse = nil
	fs.mu.Unlock()

	// Breaking out releases the stream: the Client's 100 streams would
	// otherwise run out.
	for range 150 {
		for _, err := range c.Events(context.Background(), &client.EventsOptions{From: ptr[uint64](0)}) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
}

// The parser follows the SSE rules the server does not exercise: CRLF line
// ends, comments, unknown fields, an id without data (which moves the
// position), and lines longer than the read buffer.
func TestEventsParser(t *testing.T) {
	big := make([]float32, 30000) // about 60 KiB as a JSON array, 160 KiB as base64... either way, long lines
	for i := range big {
		big[i] = float32(i) / 7
	}
	vec, _ := json.Marshal(big)
	stream := "retry: 500\r\n\r\n" +
		": a comment\r\n" +
		"id: 4\r\n\r\n" + // position only
		"id: 4\r\nevent: record.upserted\r\ndata: {\"seq\":4,\"type\":\"record.upserted\",\"collection\":\"c\",\"id\":\"x\",\"time\":\"2026-01-01T00:00:00Z\"}\r\n\r\n" +
		"foo: bar\n" +
		"id: 5\nevent: record.upserted\ndata: {\"seq\":5,\"type\":\"record.upserted\",\"collection\":\"c\",\"id\":\"big\",\"time\":\"2026-01-01T00:00:00Z\",\"record\":{\"id\":\"big\",\"vector\":" + string(vec) + "}}\n\n"
	var mu sync.Mutex
	var asked []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Header.Get("Last-Event-ID"))
		first := len(asked) == 1
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if first {
			io.WriteString(w, stream)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := client.New(srv.Listener.Addr().String(), client.WithHTTP1Pool(1))
	defer c.Close()
	got, err := collect(t, c.Events(context.Background(), &client.EventsOptions{From: ptr[uint64](2), Records: true}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != 5 || !slices.Equal(got[0].Record.Vector, big) {
		t.Fatalf("got %v", seqsOf(got))
	}

	// The id-only message moved the position past seq 3, so after the
	// stream ends the next connection asks for what follows 5.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mu.Lock()
	asked = nil
	mu.Unlock()
	opts := &client.EventsOptions{From: ptr[uint64](2), OnRetry: func(error, time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if len(asked) == 2 {
			cancel()
		}
	}}
	var seqs []uint64
	for ev, err := range c.Events(ctx, opts) {
		if err == nil {
			seqs = append(seqs, ev.Seq)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seqs, []uint64{5}) || !slices.Equal(asked, []string{"2", "5"}) {
		t.Fatalf("seqs %v, Last-Event-IDs %v", seqs, asked)
	}
}

// roundTripFunc serves requests in process, for the benchmark.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkEventsDecode measures the client's side of a feed of 784-dimension
// records sent as base64, the form Events asks for.
func BenchmarkEventsDecode(b *testing.B) {
	for _, records := range []bool{false, true} {
		b.Run(fmt.Sprintf("records=%v", records), func(b *testing.B) {
			fs := &feedServer{}
			vec := make([]float32, 784)
			for i := range vec {
				vec[i] = float32(i % 255)
			}
			const perBody = 1000
			var body bytes.Buffer
			for i := range perBody {
				e := feedEvent{typ: client.EventRecordUpserted, collection: "fashion", id: strconv.Itoa(i), vector: vec,
					time: time.Date(2026, 1, 1, 0, 0, 0, i, time.UTC)}
				fmt.Fprintf(&body, "id: %d\nevent: %s\ndata: %s\n\n", i+1, e.typ, fs.encode(uint64(i+1), e, records, true))
			}
			stream := body.Bytes()
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
					Body: io.NopCloser(bytes.NewReader(stream)), Request: r}, nil
			})}
			c, _ := client.New("localhost:1", client.WithHTTPClient(hc))
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				for _, err := range c.Events(context.Background(), &client.EventsOptions{From: ptr[uint64](0), Records: records}) {
					if err != nil {
						b.Fatal(err)
					}
					if n++; n == perBody {
						break
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBody), "ns/event")
		})
	}
}

func ExampleClient_Events() {
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	// Keep a cache of the "docs" collection up to date, from the last
	// change it has seen (persist it to survive restarts too).
	cache := map[string]*client.Record{}
	var last uint64
	opts := &client.EventsOptions{
		From:        &last,
		Collections: []string{"docs"},
		Records:     true,
		OnRetry: func(err error, wait time.Duration) {
			log.Printf("change feed: %v; reconnecting in %v", err, wait)
		},
	}
	for event, err := range c.Events(context.Background(), opts) {
		var gap *client.GapError
		switch {
		case errors.As(err, &gap):
			// Changes were lost to the server's retention: start over.
			clear(cache)
			for record, err := range c.Export(context.Background(), "docs") {
				if err != nil {
					log.Fatal(err)
				}
				cache[record.ID] = record
			}
			continue
		case err != nil:
			log.Fatal(err)
		}
		switch event.Type {
		case client.EventRecordUpserted:
			if event.Record != nil {
				cache[event.ID] = event.Record
			}
		case client.EventRecordDeleted:
			delete(cache, event.ID)
		case client.EventCollectionDeleted:
			clear(cache)
		}
		last = event.Seq
	}
}
