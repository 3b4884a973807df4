package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hippo-db/hippo/client"
)

// The change feed, proved against the real binary: what a consumer of
// GET /v1/events receives through crashes, and what a consumer that stops
// reading costs the server.

const (
	feedWriters = 4
	feedKeys    = 30 // per writer
	feedDim     = 8
	feedKills   = 6
	feedColl    = "feed"
)

// feedChange is one event a write produces, as the consumer must see it.
type feedChange struct {
	typ, id, text string // text is empty for deletes
}

// feedLedger is what the writers know: the events of acknowledged writes by
// seq, and the events of writes whose answer never came (in flight when the
// server was killed), which may or may not have been committed.
type feedLedger struct {
	mu       sync.Mutex
	acked    map[uint64]feedChange
	inFlight map[feedChange]int // how many unanswered writes would produce this event
	nAcked   int
}

func (l *feedLedger) ack(lastSeq uint64, changes []feedChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// A write's events have consecutive seqs ending with the one it was
	// answered with, in the order of its records.
	first := lastSeq - uint64(len(changes)) + 1
	for i, ch := range changes {
		l.acked[first+uint64(i)] = ch
	}
	l.nAcked++
}

func (l *feedLedger) unanswered(changes []feedChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ch := range changes {
		l.inFlight[ch]++
	}
}

// feedVector derives a record's vector from its text, so that a record in an
// event can be checked in full.
func feedVector(text string) []float32 {
	v := make([]float32, feedDim)
	for i, b := range []byte(text) {
		v[i%feedDim] += float32(b) * float32(i+1)
	}
	return v
}

// feedWriter writes until stop is closed or a write fails (the server died):
// single upserts, atomic batches and deletes of its own keys.
func feedWriter(ctx context.Context, stop <-chan struct{}, c *client.Client, w int, cycle int, ledger *feedLedger, r *rand.Rand) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		var changes []feedChange
		var seq uint64
		var err error
		version := fmt.Sprintf("c%d-n%d", cycle, n)
		switch p := r.IntN(10); {
		case p < 5:
			id := fmt.Sprintf("w%d-k%d", w, r.IntN(feedKeys))
			text := id + "-" + version
			changes = []feedChange{{client.EventRecordUpserted, id, text}}
			seq, err = c.Upsert(ctx, feedColl, client.Record{ID: id, Vector: feedVector(text), Text: text})
		case p < 8:
			var recs []client.Record
			for _, k := range r.Perm(feedKeys)[:1+r.IntN(5)] {
				id := fmt.Sprintf("w%d-k%d", w, k)
				text := id + "-" + version
				changes = append(changes, feedChange{client.EventRecordUpserted, id, text})
				recs = append(recs, client.Record{ID: id, Vector: feedVector(text), Text: text})
			}
			_, seq, err = c.UpsertBatch(ctx, feedColl, recs)
		default:
			id := fmt.Sprintf("w%d-k%d", w, r.IntN(feedKeys))
			changes = []feedChange{{client.EventRecordDeleted, id, ""}}
			seq, err = c.Delete(ctx, feedColl, id)
			if client.IsNotFound(err) {
				continue // answered, and nothing was written
			}
		}
		if err != nil {
			ledger.unanswered(changes)
			return
		}
		ledger.ack(seq, changes)
	}
}

// TestFeedDeliversEveryAcknowledgedWriteThroughKills runs concurrent writers
// and one consumer of the change feed against the real server, kills the
// server with SIGKILL again and again and restarts it. The consumer is the
// client's Events iterator, which reconnects with Last-Event-ID by itself.
// It must receive seqs 1..N with no gap, no repeat and in order; the event
// of every acknowledged write at the seq the write was answered with; and
// nothing else than the events of writes that were in flight at a kill.
func TestFeedDeliversEveryAcknowledgedWriteThroughKills(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, dir)
	writers := srv.client(t) // one client for the whole test: it redials after each restart
	ctx := context.Background()
	coll, _, err := writers.CreateCollection(ctx, feedColl, client.CollectionSpec{Dimension: feedDim, Metric: client.MetricL2})
	if err != nil {
		t.Fatal(err)
	}
	ledger := &feedLedger{acked: map[uint64]feedChange{coll.Seq: {client.EventCollectionCreated, "", ""}}, inFlight: map[feedChange]int{}}

	// Two consumers: over HTTP/1.1, as the client opens event streams,
	// which the server writes from its direct writer; and over HTTP/2,
	// where each stream has a goroutine of its own.
	consumerCtx, stopConsumers := context.WithCancel(ctx)
	socket := srv.socket // the same path after every restart
	h2c := &http.Transport{Protocols: new(http.Protocols), DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	consumers := []*feedConsumer{
		{name: "http/1.1", c: srv.client(t)},
		{name: "h2c", c: srv.client(t, client.WithHTTPClient(&http.Client{Transport: h2c}))},
	}
	for _, fc := range consumers {
		fc.start(consumerCtx)
	}

	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for cycle := 0; cycle <= feedKills; cycle++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range feedWriters {
			seed := r.Uint64()
			wg.Go(func() { feedWriter(ctx, stop, writers, w, cycle, ledger, rand.New(rand.NewPCG(seed, uint64(w)))) })
		}
		time.Sleep(time.Duration(150+r.IntN(350)) * time.Millisecond)
		if cycle == feedKills {
			// The last round ends cleanly: no write is cut off (a
			// cancelled request could still commit after the count
			// below), so that every write of it is answered.
			close(stop)
			wg.Wait()
			break
		}
		srv.kill() // the writes in flight fail
		close(stop)
		wg.Wait()
		srv = start(t, dir)
	}

	// Wait for the consumers to reach the server's newest seq.
	status, err := writers.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := uint64(status["seq"].(float64))
	deadline := time.Now().Add(20 * time.Second)
	for _, fc := range consumers {
		for !fc.reached(last) && time.Now().Before(deadline) {
			select {
			case err := <-fc.done:
				t.Fatalf("the %s consumer stopped: %v", fc.name, err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	stopConsumers()
	for _, fc := range consumers {
		if err := <-fc.done; !errors.Is(err, context.Canceled) {
			t.Fatalf("the %s consumer ended with %v", fc.name, err)
		}
		t.Run(fc.name, func(t *testing.T) { fc.check(t, ledger, last) })
	}
}

// feedConsumer reads the feed from seq 1 on, through the client's events
// iterator, which reconnects by itself.
type feedConsumer struct {
	name     string
	c        *client.Client
	mu       sync.Mutex
	received []*client.Event
	retries  []error
	done     chan error
}

func (fc *feedConsumer) start(ctx context.Context) {
	fc.done = make(chan error, 1)
	go func() {
		from := uint64(0)
		opts := &client.EventsOptions{From: &from, Records: true, OnRetry: func(err error, _ time.Duration) {
			fc.mu.Lock()
			fc.retries = append(fc.retries, err)
			fc.mu.Unlock()
		}}
		for ev, err := range fc.c.Events(ctx, opts) {
			if err != nil {
				fc.done <- err
				return
			}
			fc.mu.Lock()
			fc.received = append(fc.received, ev)
			fc.mu.Unlock()
		}
		fc.done <- nil
	}()
}

// reached reports whether the consumer has received seq last.
func (fc *feedConsumer) reached(last uint64) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.received) > 0 && fc.received[len(fc.received)-1].Seq >= last
}

// check verifies that the consumer received seqs 1..last, each once, in
// order, each the event of an acknowledged write or of one in flight at a
// kill.
func (fc *feedConsumer) check(t *testing.T, ledger *feedLedger, last uint64) {
	received := fc.received
	if len(received) != int(last) {
		t.Fatalf("received %d events, the server's newest seq is %d", len(received), last)
	}
	for i, ev := range received {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d (previous %d)", i, ev.Seq, received[max(i-1, 0)].Seq)
		}
	}
	// Each event is that of an acknowledged write, at its seq, or of a
	// write in flight at a kill. Events whose record came along are matched
	// first, in full; then those whose record had been replaced before the
	// server read them (after a restart, say), by type and id.
	inFlight := maps.Clone(ledger.inFlight)
	landed := 0
	var partial []feedChange
	for _, ev := range received {
		got := feedChange{typ: ev.Type, id: ev.ID}
		if ev.Collection != feedColl {
			t.Fatalf("seq %d: collection %q", ev.Seq, ev.Collection)
		}
		want, acked := ledger.acked[ev.Seq]
		if ev.Record != nil {
			// The record is the version the upsert wrote, whole.
			if ev.Record.ID != ev.ID || !slices.Equal(ev.Record.Vector, feedVector(ev.Record.Text)) || ev.Record.Seq != ev.Seq {
				t.Fatalf("seq %d: record %+v", ev.Seq, ev.Record)
			}
			got.text = ev.Record.Text
		} else if ev.Type == client.EventRecordUpserted {
			if !acked {
				partial = append(partial, got)
				continue
			}
			got.text = want.text // only the type and id can be checked
		}
		switch {
		case acked && got == want:
		case acked:
			t.Fatalf("seq %d: received %+v, the write answered with this seq was %+v", ev.Seq, got, want)
		case inFlight[got] > 0:
			inFlight[got]--
			landed++
		default:
			t.Fatalf("seq %d: %+v matches no write", ev.Seq, got)
		}
	}
	for _, got := range partial {
		keys := mapsKeys(inFlight)
		i := slices.IndexFunc(keys, func(ch feedChange) bool {
			return ch.typ == got.typ && ch.id == got.id && inFlight[ch] > 0
		})
		if i < 0 {
			t.Fatalf("%+v matches no write", got)
		}
		inFlight[keys[i]]--
		landed++
	}
	if len(ledger.acked) != int(last)-landed {
		t.Fatalf("%d acknowledged events, %d received of which %d from unanswered writes", len(ledger.acked), last, landed)
	}
	if len(fc.retries) < feedKills {
		t.Fatalf("the consumer reconnected %d times over %d kills: %v", len(fc.retries), feedKills, fc.retries)
	}
	if ledger.nAcked < 100 {
		t.Fatalf("only %d writes were acknowledged: the test proved little", ledger.nAcked)
	}
	t.Logf("%d kills; %d acknowledged writes; %d events received in order, %d of them from writes in flight at a kill; %d reconnections",
		feedKills, ledger.nAcked, len(received), landed, len(fc.retries))
}

func mapsKeys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

const (
	slowRecords = 20_000
	slowDim     = 784
	// slowBound is how much more the server may hold at its peak with a
	// consumer that stopped reading than without one. The server keeps the
	// newest feed.DefaultCapacity = 4,096 events in memory whatever its
	// subscribers do; each of these holds its 784-dimension record (3 KiB)
	// and its JSON (up to about 4 KiB of base64, or 3.5 KiB of numbers),
	// so the whole ring is at most 4,096 × 7.5 KiB ≈ 30 MiB, and Go's
	// collector (GOGC=100) may let that double before it reclaims it. A
	// stalled subscriber should pin no more than the batch it is writing
	// (256 events), but the bound allows for a whole extra ring: 64 MiB.
	// Buffering what the consumer has not taken would cost 20,000 × 4 KiB
	// = 80 MiB of JSON alone, twice that in RSS.
	slowBound = 64 << 20
)

// TestFeedSlowConsumerBoundsServerMemory shows that a consumer that stops
// reading does not make the server hold what it has not taken: a server
// with such a consumer takes the same 20,000 writes of 784-dimension records
// as one without, and its peak memory differs by less than slowBound. Then
// the consumer reads again and receives every event, in order.
func TestFeedSlowConsumerBoundsServerMemory(t *testing.T) {
	control := slowConsumerRun(t, false)
	stalled := slowConsumerRun(t, true)
	t.Logf("peak RSS: %d MiB without a consumer, %d MiB with one that stopped reading (bound: +%d MiB)",
		control>>20, stalled>>20, slowBound>>20)
	if stalled > control+slowBound {
		t.Fatalf("the stalled consumer cost the server %d MiB", (stalled-control)>>20)
	}
}

// slowConsumerRun starts a server, writes slowRecords records, and returns
// the server's peak RSS. With stall, a consumer subscribes from the start over
// a raw HTTP/1.1 connection and reads nothing until the writes are done, then
// reads (or, if it was dropped, reconnects) until it has every event.
func slowConsumerRun(t *testing.T, stall bool) int64 {
	dir := t.TempDir()
	srv := start(t, dir, "--snapshot-interval", "-1s")
	defer srv.kill()
	c := srv.client(t)
	ctx := context.Background()
	if _, _, err := c.CreateCollection(ctx, "slow", client.CollectionSpec{Dimension: slowDim, Metric: client.MetricL2,
		Index: client.IndexSpec{Type: client.IndexFlat}}); err != nil {
		t.Fatal(err)
	}

	var conn net.Conn
	var br *bufio.Reader
	if stall {
		var err error
		if conn, err = net.Dial("unix", srv.socket); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /v1/events?from=0&vector_b64=1 HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
		br = bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("subscribe: %v %v", resp, err)
		}
		br = bufio.NewReaderSize(resp.Body, 64<<10)
		// From here on nothing is read until the writes are done.
	}

	r := rand.New(rand.NewPCG(1, 2))
	records := func(yield func(client.Record) bool) {
		for i := range slowRecords {
			v := make([]float32, slowDim)
			for j := range v {
				v[j] = float32(r.IntN(256))
			}
			if !yield(client.Record{ID: "r" + strconv.Itoa(i), Vector: v}) {
				return
			}
		}
	}
	began := time.Now()
	res, err := c.ImportRecords(ctx, "slow", records, nil)
	if err != nil || res.Imported != slowRecords {
		t.Fatalf("import: %+v %v", res, err)
	}
	took := time.Since(began)
	time.Sleep(500 * time.Millisecond) // let the feed and the collector settle
	peak := procStatus(t, srv.cmd.Process.Pid, "VmHWM")
	t.Logf("stall=%v: %d writes in %v; peak RSS %d MiB, now %d MiB", stall, slowRecords, took.Round(time.Millisecond),
		peak>>20, procStatus(t, srv.cmd.Process.Pid, "VmRSS")>>20)
	if !stall {
		return peak
	}

	// The consumer reads again: seq 1 created the collection, 2.. are the
	// records in the order they were imported.
	last := uint64(slowRecords + 1)
	var pos uint64
	check := func(seq uint64, typ, id string) {
		if seq != pos+1 {
			t.Fatalf("after seq %d came %d", pos, seq)
		}
		if seq > 1 && (typ != client.EventRecordUpserted || id != "r"+strconv.FormatUint(seq-2, 10)) {
			t.Fatalf("seq %d: %s %s", seq, typ, id)
		}
		pos = seq
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	readErr := readSSE(br, func(data []byte) bool {
		var ev struct {
			Seq    uint64 `json:"seq"`
			Type   string `json:"type"`
			ID     string `json:"id"`
			Record *struct {
				VectorB64 string `json:"vector_b64"`
			} `json:"record"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("after seq %d: %v", pos, err)
		}
		if ev.Seq > 1 && (ev.Record == nil || len(ev.Record.VectorB64) != (slowDim*4+2)/3*4) {
			t.Fatalf("seq %d: record missing or cut", ev.Seq)
		}
		check(ev.Seq, ev.Type, ev.ID)
		return pos < last
	})
	if pos < last {
		// Dropped as too slow: resume from the last seq received.
		t.Logf("the server dropped the stalled consumer after seq %d (%v); resuming", pos, readErr)
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		from := pos
		for ev, err := range c.Events(ctx, &client.EventsOptions{From: &from}) {
			if err != nil {
				t.Fatalf("resume after %d: %v", pos, err)
			}
			check(ev.Seq, ev.Type, ev.ID)
			if pos == last {
				break
			}
		}
	}
	return peak
}

// readSSE calls f with the data of each event until f returns false or the
// stream fails.
func readSSE(br *bufio.Reader, f func(data []byte) bool) error {
	var data []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			return err
		}
		switch {
		case len(line) == 1 && data != nil:
			if !f(data) {
				return nil
			}
			data = nil
		case strings.HasPrefix(string(line[:min(len(line), 6)]), "data: "):
			data = append(data[:0:0], line[6:len(line)-1]...)
		}
	}
}

// procStatus returns a memory figure of /proc/PID/status in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
