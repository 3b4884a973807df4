package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hippo-db/hippo/internal/feed"
	"github.com/hippo-db/hippo/internal/store"
)

// Options configure an Engine. The zero value of every field but Dir is usable.
type Options struct {
	// Dir holds the store (Dir/store) and index snapshots (Dir/index).
	Dir string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// IndexWorkers is how many goroutines link nodes into a graph; 0 means
	// GOMAXPROCS.
	IndexWorkers int
	// SnapshotInterval is how often changed collections' indexes are
	// snapshotted; 0 means 5 minutes, negative disables periodic snapshots
	// (they are still written on Close).
	SnapshotInterval time.Duration
	// FeedCapacity is how many recent events the change feed keeps in
	// memory for live subscribers; 0 means feed.DefaultCapacity.
	FeedCapacity int
	// FeedMemoryBytes bounds what those events hold (records and their
	// encodings); 0 means feed.DefaultMaxBytes.
	FeedMemoryBytes int64
	// Retention bounds the change log; the zero value keeps everything.
	Retention Retention
	// CacheBytes bounds the store's block cache; 0 means
	// store.DefaultCacheBytes.
	CacheBytes int64
}

// Engine is an open Hippo database. All methods are safe for concurrent use.
// Close it to stop background work and write index snapshots.
type Engine struct {
	opts  Options
	store store.Store
	log   *slog.Logger

	writes        chan *writeOp // to the committer; unbuffered
	quit          chan struct{} // closed by Close
	committerDone chan struct{}
	snapshotDone  chan struct{}
	retentionDone chan struct{}
	hub           *feed.Hub
	closeOnce     sync.Once
	closeErr      error

	seq     uint64        // last committed seq; owned by the committer
	lastSeq atomic.Uint64 // last committed and applied seq, for readers
	broken  atomic.Pointer[error]

	mu struct {
		sync.RWMutex
		collections map[string]*Collection
	}
}

// Open opens the database in opts.Dir, creating it if needed, and recovers the
// in-memory indexes from snapshots and the log.
func Open(opts Options) (*Engine, error) {
	if opts.Dir == "" {
		return nil, errors.New("open engine: no data directory")
	}
	if opts.IndexWorkers <= 0 {
		opts.IndexWorkers = runtime.GOMAXPROCS(0)
	}
	if opts.SnapshotInterval == 0 {
		opts.SnapshotInterval = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{opts.Dir, filepath.Join(opts.Dir, "index")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("open engine: %w", err)
		}
	}
	st, err := store.OpenPebble(filepath.Join(opts.Dir, "store"), store.PebbleOptions{CacheBytes: opts.CacheBytes})
	if err != nil {
		return nil, err
	}
	e := &Engine{
		opts:          opts,
		store:         st,
		log:           opts.Logger,
		writes:        make(chan *writeOp),
		quit:          make(chan struct{}),
		committerDone: make(chan struct{}),
		snapshotDone:  make(chan struct{}),
		retentionDone: make(chan struct{}),
	}
	e.mu.collections = make(map[string]*Collection)
	if err := e.recover(); err != nil {
		st.Close()
		return nil, err
	}
	for _, c := range e.mu.collections {
		c.startIndexer(opts.IndexWorkers)
		c.notifyIndexer()
	}
	e.hub = feed.New(st, e.seq, opts.FeedCapacity, opts.FeedMemoryBytes)
	go e.commitLoop()
	go e.snapshotLoop()
	go e.retentionLoop()
	return e, nil
}

// Close stops taking writes, finishes the writes in flight, stops indexing,
// snapshots changed indexes and closes the store. It is safe to call twice.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		close(e.quit)
		<-e.committerDone
		<-e.snapshotDone
		<-e.retentionDone
		e.hub.Close()
		for _, c := range e.allCollections() {
			c.stopIndexer()
		}
		var errs []error
		for _, c := range e.allCollections() {
			if err := e.snapshotIfChanged(c); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, e.store.Close())
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

func (e *Engine) setBroken(err error) { e.broken.Store(&err) }

func (e *Engine) brokenErr() error {
	if p := e.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// LastSeq returns the seq of the last committed write; a read that starts
// after a write was answered sees at least that write's seq.
func (e *Engine) LastSeq() uint64 { return e.lastSeq.Load() }

// Feed returns the change feed hub.
func (e *Engine) Feed() *feed.Hub { return e.hub }

// OldestSeq returns the oldest seq the change log still holds (LastSeq+1 when
// it holds none).
func (e *Engine) OldestSeq() (uint64, error) { return e.store.OldestSeq() }

// Ready reports nil when the engine accepts reads and writes.
func (e *Engine) Ready() error {
	select {
	case <-e.quit:
		return ErrClosed
	default:
	}
	return e.brokenErr()
}

func (e *Engine) collection(name string) *Collection {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.mu.collections[name]
}

func (e *Engine) allCollections() []*Collection {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]*Collection, 0, len(e.mu.collections))
	for _, c := range e.mu.collections {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Collection) int {
		switch {
		case a.desc.Name < b.desc.Name:
			return -1
		case a.desc.Name > b.desc.Name:
			return 1
		}
		return 0
	})
	return out
}

func (e *Engine) mustCollection(name string) (*Collection, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	c := e.collection(name)
	if c == nil {
		return nil, notFoundf("collection %q not found", name)
	}
	return c, nil
}

// CreateCollection creates a collection, or finds an identical one (created
// is then false and seq 0). A collection of that name with other settings is
// a conflict.
func (e *Engine) CreateCollection(ctx context.Context, name string, spec CollectionSpec) (info Info, created bool, seq uint64, err error) {
	if err := ValidName(name); err != nil {
		return Info{}, false, 0, err
	}
	if err := spec.normalize(); err != nil {
		return Info{}, false, 0, err
	}
	res := e.submit(ctx, &writeOp{kind: opCreateCollection, name: name, spec: spec})
	if res.err != nil {
		return Info{}, false, 0, res.err
	}
	c, err := e.mustCollection(name)
	if err != nil {
		// Deleted again between the commit and now; report what was made.
		return Info{Collection: res.desc}, res.created, res.seq, nil
	}
	return c.info(), res.created, res.seq, nil
}

// DeleteCollection deletes a collection and all its records.
func (e *Engine) DeleteCollection(ctx context.Context, name string) (uint64, error) {
	if err := ValidName(name); err != nil {
		return 0, err
	}
	res := e.submit(ctx, &writeOp{kind: opDeleteCollection, name: name})
	return res.seq, res.err
}

// Collection describes one collection.
func (e *Engine) Collection(name string) (Info, error) {
	c, err := e.mustCollection(name)
	if err != nil {
		return Info{}, err
	}
	return c.info(), nil
}

// Collections describes every collection, ordered by name.
func (e *Engine) Collections() []Info {
	cs := e.allCollections()
	out := make([]Info, len(cs))
	for i, c := range cs {
		out[i] = c.info()
	}
	return out
}

// ValidateRecord checks r against the collection's schema and limits and
// prepares it for Upsert. Call it once per record; it parses the metadata.
func (e *Engine) ValidateRecord(collection string, r *RecordInput) error {
	c, err := e.mustCollection(collection)
	if err != nil {
		return err
	}
	return validateRecord(&c.desc, r)
}

// Upsert writes records atomically: all of them or none. Records not yet
// validated against this collection are validated first.
func (e *Engine) Upsert(ctx context.Context, collection string, records []RecordInput) (uint64, error) {
	c, err := e.mustCollection(collection)
	if err != nil {
		return 0, err
	}
	if len(records) == 0 {
		return 0, invalidf("no records to upsert")
	}
	if len(records) > MaxBatchRecords {
		return 0, tooLargef("a batch holds at most %d records, got %d", MaxBatchRecords, len(records))
	}
	for i := range records {
		if records[i].validFor != c.desc.ID {
			if err := validateRecord(&c.desc, &records[i]); err != nil {
				return 0, err
			}
		}
	}
	res := e.submit(ctx, &writeOp{kind: opUpsert, name: collection, collectionID: c.desc.ID, records: records})
	return res.seq, res.err
}

// Delete deletes one record.
func (e *Engine) Delete(ctx context.Context, collection, id string) (uint64, error) {
	c, err := e.mustCollection(collection)
	if err != nil {
		return 0, err
	}
	if err := ValidID(id); err != nil {
		return 0, err
	}
	res := e.submit(ctx, &writeOp{kind: opDeleteRecord, name: collection, collectionID: c.desc.ID, recordID: id})
	return res.seq, res.err
}

// Get returns the current version of a record.
func (e *Engine) Get(collection, id string) (*store.Record, error) {
	c, err := e.mustCollection(collection)
	if err != nil {
		return nil, err
	}
	if err := ValidID(id); err != nil {
		return nil, err
	}
	r, err := e.store.Get(c.desc.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFoundf("record %q not found in collection %q", id, collection)
	}
	return r, err
}

// List returns up to limit records with ids after `after`, in id byte order,
// and the id to continue after ("" at the end).
func (e *Engine) List(collection, after string, limit int) ([]*store.Record, string, error) {
	if limit < 1 || limit > MaxListLimit {
		return nil, "", invalidf("limit must be between 1 and %d, got %d", MaxListLimit, limit)
	}
	c, err := e.mustCollection(collection)
	if err != nil {
		return nil, "", err
	}
	snap, err := e.store.Snapshot()
	if err != nil {
		return nil, "", err
	}
	defer snap.Close()
	var out []*store.Record
	next := ""
	for r, err := range snap.Records(c.desc.ID, after) {
		if err != nil {
			return nil, "", err
		}
		if len(out) == limit {
			next = out[len(out)-1].ID
			break
		}
		out = append(out, r)
	}
	return out, next, nil
}

// Export returns an iterator over a consistent snapshot of a collection's
// records, in id order. The snapshot is taken now; the iterator may be
// consumed once.
func (e *Engine) Export(collection string) (iter.Seq2[*store.Record, error], error) {
	c, err := e.mustCollection(collection)
	if err != nil {
		return nil, err
	}
	snap, err := e.store.Snapshot()
	if err != nil {
		return nil, err
	}
	return func(yield func(*store.Record, error) bool) {
		defer snap.Close()
		for r, err := range snap.Records(c.desc.ID, "") {
			if !yield(r, err) || err != nil {
				return
			}
		}
	}, nil
}

// SearchResult is the answer to a search.
type SearchResult struct {
	Hits []Hit
	Plan Plan
	Seq  uint64 // every write up to Seq is reflected
}

// Search runs a k-nearest-neighbour query.
func (e *Engine) Search(collection string, q *Query) (*SearchResult, error) {
	c, err := e.mustCollection(collection)
	if err != nil {
		return nil, err
	}
	seq := e.lastSeq.Load()
	hits, plan, err := c.search(q)
	if err != nil {
		return nil, err
	}
	return &SearchResult{Hits: hits, Plan: plan, Seq: seq}, nil
}

// GetRecords returns the stored versions of the given ids (missing ones are
// nil), for answers that include text or vectors.
func (e *Engine) GetRecords(collection string, ids []string) ([]*store.Record, error) {
	c, err := e.mustCollection(collection)
	if err != nil {
		return nil, err
	}
	out := make([]*store.Record, len(ids))
	for i, id := range ids {
		r, err := e.store.Get(c.desc.ID, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}
