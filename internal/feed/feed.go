package feed

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"

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
	src   Source
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
	})
	return enc.json
}

// lookupRecord returns the record an upsert wrote if it is still the current
// version. A record replaced or deleted since is left out: the later event
// says what happened to it. A read error also leaves it out (the event
// itself is still right).
func (e *Entry) lookupRecord() *store.Record {
	e.recordOnce.Do(func() {
		if e.Event.Op != store.OpRecordUpserted {
			return
		}
		if r, err := e.src.Get(e.Event.Collection.ID, e.Event.RecordID); err == nil && r.Seq == e.Event.Seq {
			e.record = r
		}
	})
	return e.record
}

func newEntry(src Source, ev *store.Event) *Entry { return &Entry{Event: ev, src: src} }

// Filter selects events by collection and type; an empty set admits all.
type Filter struct {
	Collections map[string]bool
	Types       map[string]bool
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
	subs     atomic.Int64  // open subscriptions
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
	}
}

// DefaultCapacity is the ring size used when New is given 0.
const DefaultCapacity = 4096

// New starts a hub whose log has been committed up to last. capacity bounds
// the events kept in memory (0 means DefaultCapacity).
func New(src Source, last uint64, capacity int) *Hub {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	h := &Hub{src: src, capacity: capacity, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	h.mu.ring = make([]*Entry, capacity)
	h.mu.last = last
	h.mu.published = last
	h.mu.changed = make(chan struct{})
	go h.run()
	return h
}

// Publish tells the hub that the log is committed up to seq. It never blocks.
func (h *Hub) Publish(seq uint64) {
	h.mu.Lock()
	h.mu.published = max(h.mu.published, seq)
	h.mu.Unlock()
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

// run reads newly published events from the log into the ring.
func (h *Hub) run() {
	defer close(h.done)
	for {
		select {
		case <-h.quit:
			return
		case <-h.wake:
		}
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

// readPublished appends every event up to the published seq to the ring and
// wakes the subscribers once.
func (h *Hub) readPublished() error {
	h.mu.Lock()
	from, to := h.mu.last+1, h.mu.published
	if from <= to && h.subs.Load() == 0 {
		// Nobody listens: move on without reading. A later subscriber
		// behind this point catches up from the log.
		h.mu.last = to
		if h.mu.first != 0 {
			h.mu.first = 0
			clear(h.mu.ring)
		}
		close(h.mu.changed)
		h.mu.changed = make(chan struct{})
		from = to + 1
	}
	h.mu.Unlock()
	if from > to {
		return nil
	}
	var batch []*Entry
	flush := func() {
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
			h.mu.ring[e.Seq()%uint64(h.capacity)] = e
			h.mu.last = e.Seq()
		}
		close(h.mu.changed)
		h.mu.changed = make(chan struct{})
		h.mu.Unlock()
		batch = batch[:0]
	}
	for ev, err := range h.src.Events(from) {
		if err != nil {
			return err
		}
		if ev.Seq > to {
			break
		}
		batch = append(batch, newEntry(h.src, ev))
		if len(batch) == 256 {
			flush()
		}
	}
	flush()
	return nil
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
	}
}

// Subscribe returns a subscription that yields the events after seq `after`
// that f admits. If the first of them is no longer retained it returns a
// *GapError; subscribe again after GapError.Oldest-1 to go on from there.
func (h *Hub) Subscribe(after uint64, f Filter) (*Subscription, error) {
	oldest, err := h.src.OldestSeq()
	if err != nil {
		return nil, err
	}
	if after+1 < oldest {
		return nil, &GapError{Requested: after + 1, Oldest: oldest}
	}
	h.subs.Add(1)
	return &Subscription{hub: h, pos: after, filter: f}, nil
}

// Position returns the seq up to which the subscription has read.
func (s *Subscription) Position() uint64 { return s.pos }

// Next blocks until events after the subscription's position are available
// and returns up to max of them (at least one), or ctx's error. Events the
// filter does not admit are skipped without being returned.
func (s *Subscription) Next(ctx context.Context, max int) ([]*Entry, error) {
	h := s.hub
	for {
		h.mu.Lock()
		if h.mu.err != nil {
			err := h.mu.err
			h.mu.Unlock()
			return nil, err
		}
		if s.pos >= h.mu.last {
			changed := h.mu.changed
			h.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-h.quit:
				return nil, ErrClosed
			case <-changed:
				continue
			}
		}
		if h.mu.first != 0 && s.pos+1 >= h.mu.first {
			var out []*Entry
			for s.pos < h.mu.last && len(out) < max {
				e := h.mu.ring[(s.pos+1)%uint64(h.capacity)]
				s.pos++
				if s.filter.admits(e.Event) {
					out = append(out, e)
				}
			}
			h.mu.Unlock()
			if len(out) > 0 {
				return out, nil
			}
			continue
		}
		last := h.mu.last
		h.mu.Unlock()
		out, err := s.catchUp(last, max)
		if err != nil || len(out) > 0 {
			return out, err
		}
	}
}

// catchUp reads up to max admitted events after the position from the
// store, for a subscriber behind the ring. It stops at `last`, the newest
// event the hub has read, after which the ring takes over.
func (s *Subscription) catchUp(last uint64, max int) ([]*Entry, error) {
	var out []*Entry
	scanned := 0
	for ev, err := range s.hub.src.Events(s.pos + 1) {
		if err != nil {
			return nil, err
		}
		if ev.Seq != s.pos+1 {
			return nil, &GapError{Requested: s.pos + 1, Oldest: ev.Seq}
		}
		if ev.Seq > last {
			break
		}
		s.pos = ev.Seq
		scanned++
		if s.filter.admits(ev) {
			out = append(out, newEntry(s.hub.src, ev))
		}
		// Bound the work of one call even when the filter admits little.
		if len(out) == max || scanned == 64*max {
			break
		}
	}
	if scanned == 0 && s.pos < last {
		// The log holds nothing after the position although the hub has
		// read further: retention trimmed what this subscriber needed.
		oldest, err := s.hub.src.OldestSeq()
		if err != nil {
			return nil, err
		}
		return nil, &GapError{Requested: s.pos + 1, Oldest: oldest}
	}
	return out, nil // empty when nothing in this stretch was admitted; Next loops
}
