package feed

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hippo-db/hippo/internal/store"
)

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// testLog is a real Pebble store (in memory) that tests commit events to.
type testLog struct {
	t     *testing.T
	store *store.Pebble
	seq   uint64
	coll  store.Collection
}

func newLog(t *testing.T) *testLog {
	s, err := store.OpenPebble("db", store.PebbleOptions{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l := &testLog{t: t, store: s, coll: store.Collection{ID: 1, Name: "a", Dimension: 1, Metric: "l2", CreatedAt: t0}}
	l.commit(store.Event{Op: store.OpCollectionCreated, Collection: l.coll})
	return l
}

func (l *testLog) commit(events ...store.Event) uint64 {
	for i := range events {
		l.seq++
		events[i].Seq = l.seq
		events[i].Time = t0
		if events[i].Record != nil {
			events[i].Record.Seq = l.seq
		}
	}
	if err := l.store.Commit(events); err != nil {
		l.t.Fatal(err)
	}
	return l.seq
}

func (l *testLog) upsert(coll store.Collection, id string) uint64 {
	return l.commit(store.Event{Op: store.OpRecordUpserted, Collection: coll, RecordID: id,
		Record: &store.Record{ID: id, Vector: []float32{1}, CreatedAt: t0, UpdatedAt: t0}})
}

func next(t *testing.T, s *Subscription, max int) []*Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := s.Next(ctx, max)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func seqs(es []*Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%d ", e.Seq())
	}
	return strings.TrimSpace(b.String())
}

func TestLiveAndHistoryInOrder(t *testing.T) {
	l := newLog(t)
	l.upsert(l.coll, "x") // seq 2
	h := New(l.store, l.seq, 8, 0)
	defer h.Close()
	live, _ := h.Subscribe(h.Last(), Filter{})
	history, _ := h.Subscribe(0, Filter{})
	for i := range 20 {
		h.Publish(l.upsert(l.coll, fmt.Sprint("r", i)))
	}
	var got []*Entry
	for len(got) < 20 {
		got = append(got, next(t, live, 7)...)
	}
	if seqs(got) != "3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22" {
		t.Fatalf("live: %s", seqs(got))
	}
	got = nil
	for len(got) < 22 {
		got = append(got, next(t, history, 5)...)
	}
	if seqs(got[:3]) != "1 2 3" || got[21].Seq() != 22 {
		t.Fatalf("history: %s", seqs(got))
	}
	if string(got[0].JSON(NoRecords)) != `{"seq":1,"type":"collection.created","collection":"a","time":"2026-11-22T08:00:00Z"}` {
		t.Fatalf("json: %s", got[0].JSON(NoRecords))
	}
	if js := string(got[1].JSON(RecordsJSON)); !strings.Contains(js, `"record":{"id":"x","vector":[1]`) {
		t.Fatalf("record json: %s", js)
	}
	if js := string(got[1].JSON(RecordsBase64)); !strings.Contains(js, `"vector_b64":"AACAPw=="`) {
		t.Fatalf("b64 json: %s", js)
	}
}

func TestFilterAndSupersededRecords(t *testing.T) {
	l := newLog(t)
	other := store.Collection{ID: 2, Name: "b", Dimension: 1, Metric: "l2", CreatedAt: t0}
	h := New(l.store, l.seq, 4, 0)
	defer h.Close()
	sub, _ := h.Subscribe(h.Last(), Filter{Collections: map[string]bool{"b": true}, Types: map[string]bool{"record.upserted": true}})
	l.commit(store.Event{Op: store.OpCollectionCreated, Collection: other}) // 2
	l.upsert(l.coll, "x")                                                   // 3
	l.upsert(other, "y")                                                    // 4
	l.upsert(other, "y")                                                    // 5: supersedes 4
	h.Publish(l.commit(store.Event{Op: store.OpRecordDeleted, Collection: other, RecordID: "y"}))
	got := next(t, sub, 10)
	if seqs(got) != "4 5" {
		t.Fatalf("filtered: %s", seqs(got))
	}
	for _, e := range got {
		if strings.Contains(string(e.JSON(RecordsJSON)), `"record"`) {
			t.Fatalf("seq %d carries a record that was replaced or deleted since: %s", e.Seq(), e.JSON(RecordsJSON))
		}
	}
	if sub.Position() != 6 {
		t.Fatalf("position %d: skipped events must advance it", sub.Position())
	}
}

// A reader that stops reading falls behind the ring; it catches up from the
// log without loss, and the hub's memory stays at the ring's capacity.
func TestSlowSubscriberCatchesUp(t *testing.T) {
	l := newLog(t)
	h := New(l.store, l.seq, 16, 0)
	defer h.Close()
	slow, _ := h.Subscribe(h.Last(), Filter{})
	for i := range 1000 {
		h.Publish(l.upsert(l.coll, fmt.Sprint("r", i%50)))
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.Last() != l.seq && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var got []*Entry
	for len(got) < 1000 {
		got = append(got, next(t, slow, 100)...)
	}
	for i, e := range got {
		if e.Seq() != uint64(i)+2 {
			t.Fatalf("entry %d has seq %d", i, e.Seq())
		}
	}
	h.mu.Lock()
	held := 0
	for _, e := range h.mu.ring {
		if e != nil {
			held++
		}
	}
	h.mu.Unlock()
	if held > 16 {
		t.Fatalf("ring holds %d entries", held)
	}
}

// TestUnreadGivesEventsBack: events given back are returned again, in
// order, whether the ring still holds them or they must be read from the
// log.
func TestUnreadGivesEventsBack(t *testing.T) {
	l := newLog(t)
	h := New(l.store, l.seq, 16, 0)
	defer h.Close()
	s, _ := h.Subscribe(h.Last(), Filter{})
	for i := range 10 {
		h.Publish(l.upsert(l.coll, fmt.Sprint("r", i)))
	}
	got := next(t, s, 10)
	for len(got) < 10 {
		got = append(got, next(t, s, 10-len(got))...)
	}
	s.Unread(got[4])
	if again := seqs(next(t, s, 100)); again != seqs(got[4:]) {
		t.Fatalf("after giving back from seq %d: %s, want %s", got[4].Seq(), again, seqs(got[4:]))
	}
	// Give back events the ring has since let go of: they come from the log.
	for i := range 100 {
		h.Publish(l.upsert(l.coll, fmt.Sprint("s", i)))
	}
	s.Unread(got[2])
	var again []*Entry
	for len(again) < 108 {
		again = append(again, next(t, s, 200)...)
	}
	for i, e := range again {
		if e.Seq() != got[2].Seq()+uint64(i) {
			t.Fatalf("entry %d after giving back from seq %d has seq %d", i, got[2].Seq(), e.Seq())
		}
	}
}

func TestGapIsExplicit(t *testing.T) {
	l := newLog(t)
	for i := range 10 {
		l.upsert(l.coll, fmt.Sprint(i))
	}
	if err := l.store.TrimEvents(6); err != nil {
		t.Fatal(err)
	}
	h := New(l.store, l.seq, 4, 0)
	defer h.Close()
	_, err := h.Subscribe(2, Filter{})
	var gap *GapError
	if !errors.As(err, &gap) || gap.Requested != 3 || gap.Oldest != 6 {
		t.Fatalf("subscribe before the oldest: %v", err)
	}
	sub, err := h.Subscribe(gap.Oldest-1, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(next(t, sub, 100)); got != "6 7 8 9 10 11" {
		t.Fatalf("from the oldest: %s", got)
	}
	// Trimmed while a subscriber lags behind: it is told, not skipped ahead.
	lag, _ := h.Subscribe(7, Filter{})
	for range 10 {
		h.Publish(l.upsert(l.coll, "z"))
	}
	for h.Last() != l.seq {
		time.Sleep(time.Millisecond)
	}
	l.store.TrimEvents(15)
	// It may still get what subscribers before it read (8 to 11 are in
	// the history of catch-up reads), in order, and then the gap.
	pos := lag.Position()
	for {
		got, err := lag.Next(context.Background(), 3)
		if errors.As(err, &gap) {
			if gap.Requested != pos+1 || gap.Oldest != 15 || pos < 7 || pos > 11 {
				t.Fatalf("lagging subscriber after a trim: gap %+v after %d", gap, pos)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			if e.Seq() != pos+1 {
				t.Fatalf("after %d came %d", pos, e.Seq())
			}
			pos = e.Seq()
		}
	}
}

// Subscribers catching up from the log together share the entries read for
// them, and so each event's encoding, instead of reading and encoding it
// once each.
func TestCatchUpIsShared(t *testing.T) {
	l := newLog(t)
	h := New(l.store, l.seq, 16, 0)
	defer h.Close()
	a, _ := h.Subscribe(h.Last(), Filter{})
	b, _ := h.Subscribe(h.Last(), Filter{})
	for i := range 600 {
		h.Publish(l.upsert(l.coll, fmt.Sprint("r", i)))
	}
	for h.Last() != l.seq {
		time.Sleep(time.Millisecond)
	}
	for a.Position() < l.seq-16 {
		ea, eb := next(t, a, 100), next(t, b, 100)
		if seqs(ea) != seqs(eb) {
			t.Fatalf("a got %s, b got %s", seqs(ea), seqs(eb))
		}
		for i := range ea {
			if ea[i] != eb[i] {
				t.Fatalf("seq %d: each subscriber has an entry of its own", ea[i].Seq())
			}
		}
	}
}

// Subscribers catching up at once from positions farther apart than the
// shared history holds each get every event, in order: one's batch is not
// lost when another's load replaces it in the history.
func TestManyCatchUpsAtOnce(t *testing.T) {
	l := newLog(t)
	start := l.seq
	for i := range 3 * historySize {
		l.upsert(l.coll, fmt.Sprint("r", i))
	}
	h := New(l.store, l.seq, 16, 0)
	defer h.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		from := start + uint64(i*historySize/3)
		sub, err := h.Subscribe(from, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer sub.Close()
			want := from + 1
			for want <= l.seq {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				es, err := sub.Next(ctx, 50)
				cancel()
				if err != nil {
					t.Errorf("from %d, at %d: %v", from, want, err)
					return
				}
				for _, e := range es {
					if e.Seq() != want {
						t.Errorf("from %d: got seq %d, want %d", from, e.Seq(), want)
						return
					}
					want++
				}
			}
		})
	}
	wg.Wait()
}

// fakeLog is an in-memory Source for tests that run in a synctest bubble.
type fakeLog struct {
	mu     sync.Mutex
	events []*store.Event // events[i] has seq i+1
	reads  int            // calls of Events
}

func (f *fakeLog) add() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	seq := uint64(len(f.events)) + 1
	f.events = append(f.events, &store.Event{Seq: seq, Op: store.OpRecordDeleted, RecordID: fmt.Sprint(seq)})
	return seq
}

func (f *fakeLog) Events(from uint64) iter.Seq2[*store.Event, error] {
	return func(yield func(*store.Event, error) bool) {
		f.mu.Lock()
		f.reads++
		events := f.events[min(max(from, 1)-1, uint64(len(f.events))):]
		f.mu.Unlock()
		for _, ev := range events {
			if !yield(ev, nil) {
				return
			}
		}
	}
}

func (f *fakeLog) OldestSeq() (uint64, error) { return 1, nil }
func (f *fakeLog) Get(uint64, string) (*store.Record, error) {
	return nil, store.ErrNotFound
}

// The first commit after a quiet spell is delivered at once; commits that
// follow within the round interval (5 ms with 100 subscribers) wake a
// waiting subscriber once, with all of them, when the interval is up.
func TestRoundsGatherBursts(t *testing.T) {
	if got := roundInterval(1); got != 50*time.Microsecond {
		t.Fatalf("round interval with one subscriber: %v", got)
	}
	synctest.Test(t, func(t *testing.T) {
		src := &fakeLog{}
		h := New(src, 0, 16, 0)
		defer h.Close()
		var others []*Subscription
		for range 99 {
			s, _ := h.Subscribe(0, Filter{})
			others = append(others, s)
		}
		sub, _ := h.Subscribe(0, Filter{})
		_, wait, err := sub.Poll(10)
		if wait == nil || err != nil {
			t.Fatalf("poll with nothing new: %v %v", wait, err)
		}
		began := time.Now()
		h.Publish(src.add())
		<-wait
		if took := time.Since(began); took != 0 {
			t.Fatalf("the first commit was delivered after %v", took)
		}
		got, _, _ := sub.Poll(10)
		if seqs(got) != "1" {
			t.Fatalf("got %s", seqs(got))
		}
		_, wait, _ = sub.Poll(10)
		began = time.Now()
		for range 3 {
			time.Sleep(time.Millisecond)
			h.Publish(src.add())
		}
		<-wait
		if took := time.Since(began); took != maxRoundInterval {
			t.Fatalf("the burst was delivered after %v, not when the round was due (%v)", took, maxRoundInterval)
		}
		if got, _, _ = sub.Poll(10); seqs(got) != "2 3 4" {
			t.Fatalf("one wake-up for the burst got %s", seqs(got))
		}
		sub.Close()
		for _, s := range others {
			s.Close()
		}
	})
}

// Events trimmed before the hub read them (a retention age shorter than
// the hub's lag) leave no hole in the ring: a subscriber before them is
// told of the gap, and one after them gets the events.
func TestHubReadsPastTrimmedEvents(t *testing.T) {
	l := newLog(t)
	h := New(l.store, l.seq, 8, 0)
	defer h.Close()
	sub, _ := h.Subscribe(h.Last(), Filter{})
	for i := range 4 {
		h.Publish(l.upsert(l.coll, fmt.Sprint(i)))
	}
	var got []*Entry
	for len(got) < 4 {
		got = append(got, next(t, sub, 100)...)
	}
	if seqs(got) != "2 3 4 5" {
		t.Fatalf("before the trim: %s", seqs(got))
	}
	for i := range 5 {
		l.upsert(l.coll, fmt.Sprint("t", i)) // 6 to 10, not published yet
	}
	if err := l.store.TrimEvents(9); err != nil {
		t.Fatal(err)
	}
	h.Publish(l.seq)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := sub.Next(ctx, 100)
	var gap *GapError
	if !errors.As(err, &gap) || gap.Requested != 6 || gap.Oldest != 9 {
		t.Fatalf("after events trimmed unread: %s, %v; want a gap from 6 to 9", seqs(out), err)
	}
	after, err := h.Subscribe(gap.Oldest-1, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(next(t, after, 100)); got != "9 10" {
		t.Fatalf("from the oldest: %s", got)
	}
}

// TestPollStepBoundsAScan: a subscriber far behind the ring whose filter
// admits nothing until the end scans the log a stretch per PollStep, so that
// a writer serving many subscriptions in turn is not held by one.
func TestPollStepBoundsAScan(t *testing.T) {
	l := newLog(t)
	other := store.Collection{ID: 2, Name: "b", Dimension: 1, Metric: "l2", CreatedAt: t0}
	l.commit(store.Event{Op: store.OpCollectionCreated, Collection: other})
	for i := range 3000 {
		l.upsert(l.coll, fmt.Sprint("r", i))
	}
	wanted := l.upsert(other, "x")
	h := New(l.store, l.seq, 16, 0)
	defer h.Close()
	s, err := h.Subscribe(0, Filter{Collections: map[string]bool{"b": true}})
	if err != nil {
		t.Fatal(err)
	}
	const max = 10
	var got []*Entry
	steps := 0
	for ; len(got) < 2; steps++ {
		before := s.Position()
		out, wait, err := s.PollStep(max)
		switch {
		case err != nil:
			t.Fatal(err)
		case wait != nil:
			t.Fatalf("caught up with %v", seqs(got))
		}
		if scanned := s.Position() - before; scanned > 64*max {
			t.Fatalf("one step scanned %d events", scanned)
		}
		got = append(got, out...)
	}
	if seqs(got) != fmt.Sprintf("2 %d", wanted) {
		t.Fatalf("got %s", seqs(got))
	}
	if steps <= int(wanted)/(64*max) {
		t.Fatalf("%d steps to scan %d events", steps, wanted)
	}
}

// countingSource counts what the hub asks of the log.
type countingSource struct {
	Source
	reads, gets atomic.Int64
}

func (c *countingSource) Events(from uint64) iter.Seq2[*store.Event, error] {
	c.reads.Add(1)
	return c.Source.Events(from)
}

func (c *countingSource) Get(collectionID uint64, id string) (*store.Record, error) {
	c.gets.Add(1)
	return c.Source.Get(collectionID, id)
}

// TestLiveSubscribersShareOneRead: events not handed to the hub are read
// from the log once for all live subscribers, and each upsert's record is
// looked up and encoded once, not once per subscriber.
func TestLiveSubscribersShareOneRead(t *testing.T) {
	l := newLog(t)
	src := &countingSource{Source: l.store}
	h := New(src, l.seq, 256, 0)
	defer h.Close()
	const subscribers, events = 50, 100
	subs := make([]*Subscription, subscribers)
	for i := range subs {
		subs[i], _ = h.Subscribe(h.Last(), Filter{Records: true})
	}
	for i := range events {
		h.Publish(l.upsert(l.coll, fmt.Sprint("r", i)))
	}
	first := make(map[uint64]*Entry)
	for i, s := range subs {
		var got []*Entry
		for len(got) < events {
			got = append(got, next(t, s, events)...)
		}
		for _, e := range got {
			js := e.JSON(RecordsJSON)
			if i == 0 {
				first[e.Seq()] = e
			} else if first[e.Seq()] != e || &js[0] != &first[e.Seq()].JSON(RecordsJSON)[0] {
				t.Fatalf("subscriber %d has its own entry or encoding of seq %d", i, e.Seq())
			}
		}
	}
	if r, g := src.reads.Load(), src.gets.Load(); r > events || g != events {
		t.Fatalf("%d subscribers of %d events: %d reads of the log, %d record lookups", subscribers, events, r, g)
	}
}

// Events handed to PublishEvents reach subscribers without a read of the
// log, each upsert with the record it wrote (even once replaced); after a
// commit that was not handed, the hub reads the log again.
func TestHandedEventsSkipTheLog(t *testing.T) {
	l := newLog(t)
	src := &countingSource{Source: l.store}
	h := New(src, l.seq, 8, 0)
	defer h.Close()
	sub, _ := h.Subscribe(h.Last(), Filter{Records: true})
	upsert := func(id string, v float32) store.Event {
		return store.Event{Op: store.OpRecordUpserted, Collection: l.coll, RecordID: id,
			Record: &store.Record{ID: id, Vector: []float32{v}, CreatedAt: t0, UpdatedAt: t0}}
	}
	first := []store.Event{upsert("x", 1), upsert("y", 2)}
	l.commit(first...)
	h.PublishEvents(first)
	got := next(t, sub, 10)
	second := []store.Event{upsert("x", 3)}
	l.commit(second...)
	h.PublishEvents(second)
	for len(got) < 3 {
		got = append(got, next(t, sub, 10)...)
	}
	if seqs(got) != "2 3 4" {
		t.Fatalf("handed: %s", seqs(got))
	}
	for i, want := range []string{`"id":"x","vector":[1]`, `"id":"y","vector":[2]`, `"id":"x","vector":[3]`} {
		if js := string(got[i].JSON(RecordsJSON)); !strings.Contains(js, want) {
			t.Fatalf("seq %d: %s, want the record it wrote (%s)", got[i].Seq(), js, want)
		}
	}
	if r, g := src.reads.Load(), src.gets.Load(); r != 0 || g != 0 {
		t.Fatalf("the hub read the log %d times and the store %d times for events it was handed", r, g)
	}

	h.Publish(l.upsert(l.coll, "z")) // 5, not handed
	third := []store.Event{upsert("w", 4)}
	l.commit(third...)
	h.PublishEvents(third) // 6: the round must read 5 from the log
	got = nil
	for len(got) < 2 {
		got = append(got, next(t, sub, 10)...)
	}
	if seqs(got) != "5 6" || src.reads.Load() == 0 {
		t.Fatalf("after a commit not handed: %s, %d reads of the log", seqs(got), src.reads.Load())
	}
}

// Without a subscriber for records the hub keeps no record; a subscriber
// for records that comes later gets them from the store.
func TestHandedEventsKeepRecordsOnlyForThoseWhoWantThem(t *testing.T) {
	l := newLog(t)
	src := &countingSource{Source: l.store}
	h := New(src, l.seq, 8, 0)
	defer h.Close()
	sub, _ := h.Subscribe(h.Last(), Filter{})
	evs := []store.Event{{Op: store.OpRecordUpserted, Collection: l.coll, RecordID: "x",
		Record: &store.Record{ID: "x", Vector: []float32{5}, CreatedAt: t0, UpdatedAt: t0}}}
	l.commit(evs...)
	h.PublishEvents(evs)
	got := next(t, sub, 10)
	if len(got) != 1 || got[0].Event.Record != nil {
		t.Fatalf("an events-only hub kept the record: %+v", got[0].Event)
	}
	if js := string(got[0].JSON(RecordsJSON)); !strings.Contains(js, `"vector":[5]`) || src.gets.Load() != 1 {
		t.Fatalf("record looked up %d times: %s", src.gets.Load(), js)
	}
}

// Commits handed while the hub waits for its next round are kept up to the
// ring's capacity; past it they are dropped and read from the log, and no
// event is lost or repeated either way.
func TestHandedEventsAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeLog{}
		h := New(src, 0, 8, 0)
		defer h.Close()
		sub, _ := h.Subscribe(0, Filter{})
		hand := func() {
			seq := src.add()
			src.mu.Lock()
			ev := *src.events[seq-1]
			src.mu.Unlock()
			h.PublishEvents([]store.Event{ev})
		}
		hand()
		got := next(t, sub, 100)
		for range 20 { // during the round interval: the hub waits
			hand()
			h.mu.Lock()
			n := len(h.mu.handed)
			h.mu.Unlock()
			if n > h.capacity {
				t.Fatalf("%d handed events kept, capacity %d", n, h.capacity)
			}
		}
		for len(got) < 21 {
			got = append(got, next(t, sub, 100)...)
		}
		var want []string
		for i := range 21 {
			want = append(want, fmt.Sprint(i+1))
		}
		if seqs(got) != strings.Join(want, " ") || src.reads == 0 {
			t.Fatalf("got %s with %d reads of the log", seqs(got), src.reads)
		}

		// A commit not handed between handed ones, within one round.
		hand()
		h.Publish(src.add())
		hand()
		got = nil
		for len(got) < 3 {
			got = append(got, next(t, sub, 100)...)
		}
		if seqs(got) != "22 23 24" {
			t.Fatalf("around a commit not handed: %s", seqs(got))
		}
	})
}

// heldInEntries sums what the ring's and the history's entries say they
// hold, which must be what the hub counts.
func heldInEntries(h *Hub) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, es := range [][]*Entry{h.mu.ring, h.mu.history} {
		for _, e := range es {
			if e != nil {
				n += e.held.Load()
			}
		}
	}
	return n
}

// TestMemoryIsBoundedByBytes: large records make the hub let go of its
// oldest entries to stay within its bound in bytes, not only in events;
// subscribers behind them read them from the log, and lose nothing.
func TestMemoryIsBoundedByBytes(t *testing.T) {
	l := newLog(t)
	const maxBytes, textBytes, n = 1 << 20, 200 << 10, 30
	h := New(l.store, l.seq, 64, maxBytes)
	defer h.Close()
	live, _ := h.Subscribe(h.Last(), Filter{Records: true})
	late, _ := h.Subscribe(h.Last(), Filter{Records: true}) // reads after all are written
	text := strings.Repeat("x", textBytes)
	var got []*Entry
	for i := range n {
		ev := []store.Event{{Op: store.OpRecordUpserted, Collection: l.coll, RecordID: fmt.Sprint("r", i),
			Record: &store.Record{ID: fmt.Sprint("r", i), Vector: []float32{float32(i)}, Text: text, CreatedAt: t0, UpdatedAt: t0}}}
		l.commit(ev...)
		h.PublishEvents(ev)
		for len(got) < i+1 {
			got = append(got, next(t, live, 10)...)
		}
	}
	var behind []*Entry
	for len(behind) < n {
		behind = append(behind, next(t, late, 4)...)
	}
	for _, es := range [][]*Entry{got, behind} {
		for i, e := range es {
			js := string(e.JSON(RecordsJSON))
			if e.Seq() != uint64(i)+2 || !strings.Contains(js, fmt.Sprintf(`"id":"r%d","vector":[%d]`, i, i)) || len(js) < textBytes {
				t.Fatalf("entry %d: seq %d, %.80s…", i, e.Seq(), js)
			}
			if held := h.held.Load(); held > maxBytes {
				t.Fatalf("the hub holds %d bytes, bound %d", held, maxBytes)
			}
		}
	}
	if held, counted := heldInEntries(h), h.held.Load(); held != counted {
		t.Fatalf("entries hold %d bytes, the hub counts %d", held, counted)
	}
	h.mu.Lock()
	kept := h.mu.last - h.mu.first + 1
	h.mu.Unlock()
	if kept >= n {
		t.Fatalf("the ring kept all %d entries", kept)
	}
}
