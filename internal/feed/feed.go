package feed

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hippo-db/hippo/internal/store"
	"github.com/hippo-db/hippo/internal/wire"
)

// ErrClosed is returned by a subscription whose hub was closed.
var ErrClosed = errors.New("hippo: feed closed")

// GapError says that events a subscriber asks for are no longer retained.
type GapError struct {
	Requested uint64 // the first seq the subscriber needed
	Oldest    uint64 // the oldest seq still retained
}

func (e *GapError) Error() string {
	return fmt.Sprintf("hippo: events from seq %d are no longer retained; the oldest is %d", e.Requested, e.Oldest)
}

// Source is the durable log a Hub reads.
type Source interface {
	// Events yields committed events with seq >= from, in order.
	Events(from uint64) iter.Seq2[*store.Event, error]
	// OldestSeq returns the oldest retained seq (LastSeq+1 when empty).
	OldestSeq() (uint64, error)
	// Get returns the current version of a record, or store.ErrNotFound.
	Get(collectionID uint64, id string) (*store.Record, error)
}

// Format selects how an Entry is encoded.
type Format uint8

// Formats of an entry's JSON.
const (
	RecordsJSON   Format = iota // upserts carry their record, vector as a JSON array
	RecordsBase64               // upserts carry their record, vector as base64
	NoRecords                   // events only
	numFormats
)

// Entry is one event, shared by every subscriber that receives it.
type Entry struct {
	Event *store.Event
	hub   *Hub
	// held is what the entry holds, in bytes, counted in hub.held while it
	// is in the ring or the history; -1 while it is in neither.
	held atomic.Int64
	// The record an upsert wrote, looked up at the first encoding that
	// needs it, so events nobody asks records for cost no read.
	recordOnce sync.Once
	record     *store.Record
	enc        [numFormats]struct {
		once sync.Once
		json []byte
	}
}

// Seq returns the entry's seq.
func (e *Entry) Seq() uint64 { return e.Event.Seq }

// JSON returns the event encoded in format f, computed once per format.
func (e *Entry) JSON(f Format) []byte {
	enc := &e.enc[f]
	enc.once.Do(func() {
		var rec *store.Record
		if f != NoRecords {
			rec = e.lookupRecord()
		}
		enc.json = wire.AppendEvent(nil, e.Event, rec, f == RecordsBase64)
		e.charge(len(enc.json))
	})
	return enc.json
}

// lookupRecord returns the record an upsert wrote: the one its commit
// handed the hub, or else the one in the store if it is still the current
// version. A record replaced or deleted since is left out: the later event
// says what happened to it. A read error also leaves it out (the event
// itself is still right).
func (e *Entry) lookupRecord() *store.Record {
	e.recordOnce.Do(func() {
		if e.Event.Op != store.OpRecordUpserted {
			return
		}
		if e.Event.Record != nil {
			e.record = e.Event.Record
			return
		}
		if r, err := e.hub.src.Get(e.Event.Collection.ID, e.Event.RecordID); err == nil && r.Seq == e.Event.Seq {
			e.record = r
			e.charge(recordBytes(r))
		}
	})
	return e.record
}

func newEntry(h *Hub, ev *store.Event) *Entry {
	e := &Entry{Event: ev, hub: h}
	e.held.Store(-1)
	return e
}

// entryBytes is what an entry costs before its record and encodings.
const entryBytes = 256

// recordBytes is about what a record holds in memory.
func recordBytes(r *store.Record) int {
	return len(r.ID) + 4*len(r.Vector) + len(r.Text) + len(r.Metadata) + 64
}

// attach counts the entry in hub.held as it enters the ring or the
// history. It holds h.mu.
func (e *Entry) attach() {
	n := int64(entryBytes)
	if e.Event.Record != nil {
		n += int64(recordBytes(e.Event.Record))
	}
	e.held.Store(n)
	e.hub.held.Add(n)
}

// release stops counting the entry as it leaves the ring or the history.
// Subscribers that hold it may still use it.
func (e *Entry) release() {
	if n := e.held.Swap(-1); n > 0 {
		e.hub.held.Add(-n)
	}
}

// charge counts n more bytes the entry holds (a record looked up, an
// encoding), if it is in the ring or the history, and makes room if that
// takes the hub past its bound. It must not be called with h.mu held.
func (e *Entry) charge(n int) {
	for {
		held := e.held.Load()
		if held < 0 {
			return
		}
		if e.held.CompareAndSwap(held, held+int64(n)) {
			break
		}
	}
	if e.hub.held.Add(int64(n)) > e.hub.maxBytes {
		e.hub.mu.Lock()
		e.hub.shedLocked()
		e.hub.mu.Unlock()
	}
}

// Filter selects events by collection and type; an empty set admits all.
type Filter struct {
	Collections map[string]bool
	Types       map[string]bool
	// Records says the subscriber is sent upserts' records. While one such
	// subscriber is open the hub keeps the records commits hand it, so
	// that they need not be read back from the store.
	Records bool
}

func (f *Filter) admits(ev *store.Event) bool {
	if len(f.Collections) > 0 && !f.Collections[ev.Collection.Name] {
		return false
	}
	if len(f.Types) > 0 && !f.Types[ev.Op.String()] {
		return false
	}
	return true
}

// Hub fans the log out to subscribers. Create it with New, tell it about
// commits with Publish, and Close it when done. Its methods are safe for
// concurrent use.
type Hub struct {
	src      Source
	capacity int
	maxBytes int64         // bound on held
	held     atomic.Int64  // bytes the ring's and the history's entries hold
	subs     atomic.Int64  // open subscriptions
	withRecs atomic.Int64  // open subscriptions whose Filter.Records is set
	wake     chan struct{} // buffered(1): Publish was called
	quit     chan struct{}
	done     chan struct{}

	mu struct {
		sync.Mutex
		published uint64   // highest seq Publish announced
		ring      []*Entry // ring[i%capacity] holds seq first+i
		first     uint64   // seq of the oldest entry in the ring; 0 when empty
		last      uint64   // seq of the newest entry read from the log
		changed   chan struct{}
		err       error // a read error; the hub stops

		// handed holds the events commits handed to PublishEvents since
		// the last round, in seq order and without a hole, up to
		// published. A round that starts where they start takes them
		// rather than reading the log.
		handed []*Entry

		// history[seq%historySize] holds entries that subscribers behind
		// the ring read from the log, if its seq is the one asked for:
		// subscribers catching up together share one read and one
		// encoding of each event instead of one each.
		history []*Entry
		// loading has a channel for each history batch being read, by
		// its first seq; it is closed when the batch is in history.
		loading map[uint64]chan struct{}
	}
}

const (
	// historySize bounds the entries kept for catching-up subscribers:
	// four batches (and what they hold counts against the hub's bound).
	historySize = 4 * historyBatch
	// historyBatch is how many events one read from the log for
	// catching-up subscribers takes.
	historyBatch = 256
	// publishBatch is how many entries the hub adds to the ring under one
	// lock, waking the subscribers once.
	publishBatch = 256
	// A round of the hub's reading wakes every subscriber; rounds follow
	// each other at least roundInterval apart, so that a burst of commits
	// (writers send thousands a second) wakes each subscriber once with
	// all of them, rather than once each: at 2,800 commits/s and 100
	// subscribers that is 20,000 stream writes a second instead of
	// 280,000. The interval is roundCostPerSubscriber per open
	// subscription, at most maxRoundInterval: a few subscribers cost
	// little to wake and get their events at once; 100 or more wait up to
	// 5 ms (2.5 ms on average). The first commit after a quiet spell is
	// read at once.
	roundCostPerSubscriber = 50 * time.Microsecond
	maxRoundInterval       = 5 * time.Millisecond
)

// DefaultCapacity is the ring size used when New is given 0.
const DefaultCapacity = 4096

// DefaultMaxBytes bounds the bytes the ring's and the history's entries
// hold (records, encodings) when New is given 0: 4,096 events of
// 1,536-dimension records, or 64 of the largest (a MiB of text each).
const DefaultMaxBytes = 128 << 20

// New starts a hub whose log has been committed up to last. capacity bounds
// the events kept in memory (0 means DefaultCapacity), and maxBytes what
// they hold (0 means DefaultMaxBytes): past it the oldest are let go, and
// subscribers behind them read them from the log.
func New(src Source, last uint64, capacity int, maxBytes int64) *Hub {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	h := &Hub{src: src, capacity: capacity, maxBytes: maxBytes,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	h.mu.ring = make([]*Entry, capacity)
	h.mu.last = last
	h.mu.published = last
	h.mu.changed = make(chan struct{})
	h.mu.history = make([]*Entry, historySize)
	h.mu.loading = map[uint64]chan struct{}{}
	go h.run()
	return h
}

// Publish tells the hub that the log is committed up to seq; the hub reads
// the events from the log. It never blocks.
func (h *Hub) Publish(seq uint64) {
	h.mu.Lock()
	if seq > h.mu.published {
		h.mu.published = seq
		h.mu.handed = nil // they would no longer reach up to published
	}
	h.mu.Unlock()
	h.wakeUp()
}

// PublishEvents is Publish for the events of one commit, in seq order, as
// given to the store (with upserts' records). The hub delivers them as they
// are, rather than reading them back from the log, if it is handed every
// event from its last round on. It keeps the records: the caller must not
// change them after. It never blocks.
func (h *Hub) PublishEvents(events []store.Event) {
	if len(events) == 0 {
		return
	}
	withRecords := h.withRecs.Load() > 0
	h.mu.Lock()
	last := events[len(events)-1].Seq
	switch {
	case last <= h.mu.published:
		// Already published by seq: nothing to add.
	case h.subs.Load() == 0 || events[0].Seq != h.mu.published+1 || len(h.mu.handed)+len(events) > h.capacity:
		// Nobody listens, or the round will read the log anyway; past
		// the ring's capacity, the log is where they wait.
		h.mu.handed = nil
		h.mu.published = last
	default:
		for i := range events {
			ev := events[i]
			if !withRecords {
				ev.Record = nil // not kept in the ring for no one
			}
			h.mu.handed = append(h.mu.handed, newEntry(h, &ev))
		}
		h.mu.published = last
	}
	h.mu.Unlock()
	h.wakeUp()
}

// wakeUp tells the hub's goroutine there is something to publish.
func (h *Hub) wakeUp() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Last returns the seq of the newest event the hub has read.
func (h *Hub) Last() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.last
}

// Close stops the hub; subscriptions then return ErrClosed.
func (h *Hub) Close() {
	select {
	case <-h.quit:
	default:
		close(h.quit)
	}
	<-h.done
}

// roundInterval is the least time between two rounds with subs open
// subscriptions.
func roundInterval(subs int64) time.Duration {
	return min(maxRoundInterval, time.Duration(subs)*roundCostPerSubscriber)
}

// run reads newly published events from the log into the ring, in rounds
// at most every roundInterval.
func (h *Hub) run() {
	defer close(h.done)
	var lastRound time.Time
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-h.wake:
		}
		if wait := roundInterval(h.subs.Load()) - time.Since(lastRound); wait > 0 {
			// Let more commits arrive; Publish's wake-ups meanwhile are
			// taken by this round.
			pause.Reset(wait)
			select {
			case <-h.quit:
				return
			case <-pause.C:
			}
			select {
			case <-h.wake:
			default:
			}
		}
		lastRound = time.Now()
		if err := h.readPublished(); err != nil {
			h.mu.Lock()
			h.mu.err = err
			close(h.mu.changed)
			h.mu.changed = make(chan struct{})
			h.mu.Unlock()
			return
		}
	}
}

// emptyRingLocked empties the ring: the next entry read starts it again.
func (h *Hub) emptyRingLocked() {
	if h.mu.first != 0 {
		h.mu.first = 0
		for i, e := range h.mu.ring {
			if e != nil {
				e.release()
				h.mu.ring[i] = nil
			}
		}
	}
}

// shedLocked lets go of entries while they hold more than the hub's bound:
// first the history (subscribers catching up read it again from the log),
// then the ring's oldest, but never its newest (subscribers behind them
// catch up from the log).
func (h *Hub) shedLocked() {
	if h.held.Load() <= h.maxBytes {
		return
	}
	for i, e := range h.mu.history {
		if e != nil {
			e.release()
			h.mu.history[i] = nil
		}
	}
	for h.held.Load() > h.maxBytes && h.mu.first != 0 && h.mu.first < h.mu.last {
		slot := h.mu.first % uint64(h.capacity)
		h.mu.ring[slot].release()
		h.mu.ring[slot] = nil
		h.mu.first++
	}
}

// readPublished appends every event up to the published seq to the ring,
// from the events commits handed it or else from the log, and wakes the
// subscribers once per publishBatch entries.
func (h *Hub) readPublished() error {
	h.mu.Lock()
	from, to := h.mu.last+1, h.mu.published
	handed := h.mu.handed
	h.mu.handed = nil
	if from <= to && h.subs.Load() == 0 {
		// Nobody listens: move on without reading. A later subscriber
		// behind this point catches up from the log.
		h.mu.last = to
		h.emptyRingLocked()
		close(h.mu.changed)
		h.mu.changed = make(chan struct{})
		from = to + 1
	}
	h.mu.Unlock()
	if from > to {
		return nil
	}
	if len(handed) > 0 && handed[0].Seq() == from && handed[len(handed)-1].Seq() == to {
		for len(handed) > 0 {
			n := min(len(handed), publishBatch)
			h.addToRing(handed[:n])
			handed = handed[n:]
		}
		return nil
	}
	var batch []*Entry
	want := from
	for ev, err := range h.src.Events(from) {
		if err != nil {
			return err
		}
		if ev.Seq > to {
			break
		}
		if ev.Seq != want {
			// Retention trimmed events before the hub read them. The ring
			// holds consecutive seqs only: restart it here, so that
			// subscribers before the jump catch up from the log, which
			// tells them of the gap.
			h.addToRing(batch)
			batch = batch[:0]
			h.mu.Lock()
			h.emptyRingLocked()
			h.mu.Unlock()
		}
		want = ev.Seq + 1
		batch = append(batch, newEntry(h, ev))
		if len(batch) == publishBatch {
			h.addToRing(batch)
			batch = batch[:0]
		}
	}
	h.addToRing(batch)
	return nil
}

// addToRing appends entries, which follow the ring's newest, to the ring
// under one lock and wakes the subscribers.
func (h *Hub) addToRing(batch []*Entry) {
	if len(batch) == 0 {
		return
	}
	h.mu.Lock()
	for _, e := range batch {
		if h.mu.first == 0 || e.Seq()-h.mu.first >= uint64(h.capacity) {
			if h.mu.first == 0 {
				h.mu.first = e.Seq()
			} else {
				h.mu.first++
			}
		}
		slot := e.Seq() % uint64(h.capacity)
		if old := h.mu.ring[slot]; old != nil {
			old.release()
		}
		e.attach()
		h.mu.ring[slot] = e
		h.mu.last = e.Seq()
	}
	h.shedLocked()
	close(h.mu.changed)
	h.mu.changed = make(chan struct{})
	h.mu.Unlock()
}

// Subscription is one subscriber's position in the feed. It is not safe for
// concurrent use. Close it when done: while no subscription is open the hub
// does not read the log at all.
type Subscription struct {
	hub    *Hub
	pos    uint64 // the last seq delivered or skipped
	filter Filter
	closed bool
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	if !s.closed {
		s.closed = true
		s.hub.subs.Add(-1)
		if s.filter.Records {
			s.hub.withRecs.Add(-1)
		}
	}
}

// Subscribe returns a subscription that yields the events after seq `after`
// that f admits. If the first of them is no longer retained it returns a
// *GapError; subscribe again after GapError.Oldest-1 to go on from there.
func (h *Hub) Subscribe(after uint64, f Filter) (*Subscription, error) {
	// From the hub's newest event on nothing can be missing (the oldest
	// retained seq is at most the newest plus one), so the common
	// subscription, from now, asks the log nothing: the look-up is a
	// Pebble iterator whose stack, kept by the subscriber's goroutine for
	// its life, would be larger than all the rest of an idle subscriber.
	if after < h.Last() {
		oldest, err := h.src.OldestSeq()
		if err != nil {
			return nil, err
		}
		if after+1 < oldest {
			return nil, &GapError{Requested: after + 1, Oldest: oldest}
		}
	}
	h.subs.Add(1)
	if f.Records {
		h.withRecs.Add(1)
	}
	return &Subscription{hub: h, pos: after, filter: f}, nil
}

// Position returns the seq up to which the subscription has read.
func (s *Subscription) Position() uint64 { return s.pos }

// Unread gives back the events from e on, which the subscription returned
// last and its caller did not send: the next Poll returns them again
// (from the ring, or from the log if the ring has moved on).
func (s *Subscription) Unread(e *Entry) {
	if seq := e.Seq(); seq <= s.pos {
		s.pos = seq - 1
	}
}

// Next blocks until events after the subscription's position are available
// and returns up to max of them (at least one), or ctx's error. Events the
// filter does not admit are skipped without being returned.
func (s *Subscription) Next(ctx context.Context, max int) ([]*Entry, error) {
	for {
		out, wait, err := s.Poll(max)
		if err != nil || len(out) > 0 {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.hub.quit:
			return nil, ErrClosed
		case <-wait:
		}
	}
}

// Poll returns up to max events after the subscription's position without
// waiting for new ones to be committed (it may read the log, for a
// subscriber behind the ring). When there are none it returns no entries
// and a channel that is closed once the hub has read further: a caller that
// waits on it rather than on a timer of its own holds nothing while idle.
// After Close of the hub it returns ErrClosed.
func (s *Subscription) Poll(max int) ([]*Entry, <-chan struct{}, error) {
	for {
		out, wait, err := s.PollStep(max)
		if len(out) > 0 || wait != nil || err != nil {
			return out, wait, err
		}
	}
}

// PollStep is Poll for a caller that serves many subscriptions in turn: a
// subscriber behind the ring whose filter admits little could otherwise
// make one call scan the whole log. It reads at most one stretch of the log
// (64×max events), and if that held nothing the filter admits, it returns
// no entries, no channel and no error: call again.
func (s *Subscription) PollStep(max int) ([]*Entry, <-chan struct{}, error) {
	h := s.hub
	for {
		select {
		case <-h.quit:
			return nil, nil, ErrClosed
		default:
		}
		h.mu.Lock()
		if h.mu.err != nil {
			err := h.mu.err
			h.mu.Unlock()
			return nil, nil, err
		}
		if s.pos >= h.mu.last {
			changed := h.mu.changed
			h.mu.Unlock()
			return nil, changed, nil
		}
		if h.mu.first != 0 && s.pos+1 >= h.mu.first {
			out := make([]*Entry, 0, min(uint64(max), h.mu.last-s.pos))
			for s.pos < h.mu.last && len(out) < max {
				e := h.mu.ring[(s.pos+1)%uint64(h.capacity)]
				s.pos++
				if s.filter.admits(e.Event) {
					out = append(out, e)
				}
			}
			h.mu.Unlock()
			if len(out) > 0 {
				return out, nil, nil
			}
			continue // the ring is in memory and bounded: go on through it
		}
		last := h.mu.last
		h.mu.Unlock()
		out, err := s.catchUp(last, max)
		return out, nil, err
	}
}

// catchUp returns up to max admitted events after the position, for a
// subscriber behind the ring, from the history of entries read from the log
// for catching-up subscribers, reading the log in batches into it where it
// has not got them. It stops at `last`, the newest event the hub has read,
// after which the ring takes over, and after scanning 64×max events, so
// that one call's work is bounded even when the filter admits little.
func (s *Subscription) catchUp(last uint64, max int) ([]*Entry, error) {
	h := s.hub
	var out []*Entry
	scanned := 0
	more := func() bool { return s.pos < last && len(out) < max && scanned < 64*max }
	take := func(e *Entry) {
		s.pos++
		scanned++
		if s.filter.admits(e.Event) {
			out = append(out, e)
		}
	}
	for more() {
		h.mu.Lock()
		for more() {
			e := h.mu.history[(s.pos+1)%historySize]
			if e == nil || e.Seq() != s.pos+1 {
				break
			}
			take(e)
		}
		if !more() {
			h.mu.Unlock()
			break
		}
		from := s.pos + 1
		if loading, ok := h.mu.loading[from]; ok {
			// Another subscriber is reading this batch: wait for it.
			h.mu.Unlock()
			<-loading
			continue
		}
		loading := make(chan struct{})
		h.mu.loading[from] = loading
		h.mu.Unlock()
		batch, err := h.loadHistory(from, last)
		h.mu.Lock()
		delete(h.mu.loading, from)
		close(loading)
		h.mu.Unlock()
		if err != nil || len(batch) == 0 {
			if len(out) > 0 {
				// The position has moved past these: deliver them; the
				// next call meets the error again.
				return out, nil
			}
		}
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			// The log holds nothing from the position on although the
			// hub has read further: retention trimmed what this
			// subscriber needed.
			oldest, err := h.src.OldestSeq()
			if err != nil {
				return nil, err
			}
			return nil, &GapError{Requested: from, Oldest: oldest}
		}
		// Take from this batch directly: other subscribers' loads may
		// already have replaced it in the history.
		for _, e := range batch {
			if !more() {
				break
			}
			take(e)
		}
	}
	return out, nil // empty when nothing in this stretch was admitted
}

// loadHistory reads up to historyBatch events from seq `from` on, and not
// past `last`, from the log into the history, and returns them.
func (h *Hub) loadHistory(from, last uint64) ([]*Entry, error) {
	batch := make([]*Entry, 0, min(historyBatch, last-from+1))
	for ev, err := range h.src.Events(from) {
		if err != nil {
			return nil, err
		}
		if want := from + uint64(len(batch)); ev.Seq != want {
			if len(batch) > 0 {
				break // trimmed meanwhile: the next call finds the gap
			}
			return nil, &GapError{Requested: want, Oldest: ev.Seq}
		}
		if ev.Seq > last {
			break
		}
		batch = append(batch, newEntry(h, ev))
		if len(batch) == historyBatch {
			break
		}
	}
	h.mu.Lock()
	for _, e := range batch {
		slot := e.Seq() % historySize
		if old := h.mu.history[slot]; old != nil {
			old.release()
		}
		e.attach()
		h.mu.history[slot] = e
	}
	h.shedLocked()
	h.mu.Unlock()
	return batch, nil
}
