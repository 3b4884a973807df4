package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Pebble is the embedded Store: one Pebble database in one directory. Every
// Commit is one Pebble batch written with fsync; the engine's committer groups
// concurrent writers into one Commit, so they share the fsync.
type Pebble struct {
	db *pebble.DB

	mu struct {
		sync.Mutex
		lastCollectionID uint64 // high-water mark handed out by NextCollectionID
	}
}

// quietLogger drops Pebble's informational chatter; errors and fatal messages
// still reach the process log.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

// PebbleOptions configures the embedded store.
type PebbleOptions struct {
	// FS is the filesystem to use; nil means the operating system's (tests
	// pass an in-memory one).
	FS vfs.FS
	// CacheBytes bounds the block cache, which holds decoded blocks of
	// records, events and indexes in memory so that reads of them need no
	// system call; 0 means DefaultCacheBytes. Memory is taken only as
	// blocks are read.
	CacheBytes int64
}

// DefaultCacheBytes is the block cache's size unless set: enough for the
// records of about 150,000 vectors of 784 dimensions.
const DefaultCacheBytes = 512 << 20

// OpenPebble opens (creating if needed) the embedded store in dir.
func OpenPebble(dir string, o PebbleOptions) (*Pebble, error) {
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref() // the database holds its own reference
	opts := &pebble.Options{
		FS:     o.FS,
		Logger: quietLogger{},
		Cache:  cache,
		// Large batches of 784-dimension vectors are common; a bigger memtable
		// keeps imports from stalling on flushes.
		MemTableSize: 64 << 20,
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble: %w", err)
	}
	s := &Pebble{db: db}
	last, err := s.getUint64(keyLastCollectionID)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.mu.lastCollectionID = last
	return s, nil
}

func (s *Pebble) getUint64(key []byte) (uint64, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %q: %w", key, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %q has %d bytes", ErrCorrupt, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Commit implements Store.
func (s *Pebble) Commit(events []Event) error {
	if len(events) == 0 {
		return nil
	}
	b := s.db.NewBatchWithSize(batchSize(events))
	defer b.Close()
	var buf []byte
	var err error
	var maxCollectionID uint64
	for i := range events {
		e := &events[i]
		switch e.Op {
		case OpCollectionCreated:
			desc, err := json.Marshal(&e.Collection)
			if err != nil {
				return fmt.Errorf("encode collection: %w", err)
			}
			b.Set(collectionKey(e.Collection.ID), desc, nil)
			maxCollectionID = max(maxCollectionID, e.Collection.ID)
		case OpCollectionDeleted:
			b.Delete(collectionKey(e.Collection.ID), nil)
			b.DeleteRange(recordPrefix(e.Collection.ID), recordPrefix(e.Collection.ID+1), nil)
		case OpRecordUpserted:
			buf = appendRecord(buf[:0], e.Record)
			b.Set(recordKey(e.Collection.ID, e.RecordID), buf, nil)
		case OpRecordDeleted:
			b.Delete(recordKey(e.Collection.ID, e.RecordID), nil)
		default:
			return fmt.Errorf("commit: unknown op %d", e.Op)
		}
		buf, err = appendEvent(buf[:0], e)
		if err != nil {
			return err
		}
		b.Set(eventKey(e.Seq), buf, nil)
	}
	b.Set(keyLastSeq, binary.BigEndian.AppendUint64(nil, events[len(events)-1].Seq), nil)
	if maxCollectionID > 0 {
		b.Set(keyLastCollectionID, binary.BigEndian.AppendUint64(nil, maxCollectionID), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// batchSize estimates the bytes a commit writes, so the batch is allocated
// once instead of growing by copying (a 1,000-record import of 784-dimension
// vectors is over 3 MB).
func batchSize(events []Event) int {
	n := 64
	for i := range events {
		e := &events[i]
		n += 64 + 2*len(e.RecordID) + len(e.Collection.Name)
		if r := e.Record; r != nil {
			n += 48 + 4*len(r.Vector) + len(r.Text) + len(r.Metadata)
		}
	}
	return n
}

// LastSeq implements Store.
func (s *Pebble) LastSeq() (uint64, error) { return s.getUint64(keyLastSeq) }

// NextCollectionID implements Store.
func (s *Pebble) NextCollectionID() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.lastCollectionID++
	return s.mu.lastCollectionID, nil
}

// Collections implements Store.
func (s *Pebble) Collections() ([]Collection, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixCollection},
		UpperBound: []byte{prefixCollection + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	defer it.Close()
	var out []Collection
	for it.First(); it.Valid(); it.Next() {
		var c Collection
		if err := json.Unmarshal(it.Value(), &c); err != nil {
			return nil, fmt.Errorf("%w: collection %x: %v", ErrCorrupt, it.Key(), err)
		}
		out = append(out, c)
	}
	return out, it.Error()
}

// Get implements Store.
func (s *Pebble) Get(collectionID uint64, id string) (*Record, error) {
	return getRecord(s.db, collectionID, id)
}

// getRecord reads a record from the database or a snapshot.
func getRecord(r pebble.Reader, collectionID uint64, id string) (*Record, error) {
	v, closer, err := r.Get(recordKey(collectionID, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get record: %w", err)
	}
	defer closer.Close()
	d := &decoder{b: v}
	rec := decodeRecord(d, id)
	if d.err != nil {
		return nil, fmt.Errorf("record %q: %w", id, d.err)
	}
	return rec, nil
}

// Snapshot implements Store.
func (s *Pebble) Snapshot() (Snapshot, error) {
	return &pebbleSnapshot{snap: s.db.NewSnapshot()}, nil
}

// Events implements Store.
func (s *Pebble) Events(from uint64) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		it, err := s.db.NewIter(&pebble.IterOptions{
			LowerBound: eventKey(from),
			UpperBound: []byte{prefixEvent + 1},
		})
		if err != nil {
			yield(nil, fmt.Errorf("read events: %w", err))
			return
		}
		defer it.Close()
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()
			if len(k) != 9 {
				yield(nil, fmt.Errorf("%w: event key %x", ErrCorrupt, k))
				return
			}
			e, err := decodeEvent(binary.BigEndian.Uint64(k[1:]), it.Value())
			if !yield(e, err) || err != nil {
				return
			}
		}
		if err := it.Error(); err != nil {
			yield(nil, fmt.Errorf("read events: %w", err))
		}
	}
}

// OldestSeq implements Store.
func (s *Pebble) OldestSeq() (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return 0, fmt.Errorf("oldest seq: %w", err)
	}
	defer it.Close()
	if it.First() {
		if k := it.Key(); len(k) == 9 {
			return binary.BigEndian.Uint64(k[1:]), nil
		}
		return 0, fmt.Errorf("%w: event key %x", ErrCorrupt, it.Key())
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("oldest seq: %w", err)
	}
	last, err := s.LastSeq()
	return last + 1, err
}

// TrimEvents implements Store.
func (s *Pebble) TrimEvents(before uint64) error {
	b := s.db.NewBatch()
	defer b.Close()
	b.DeleteRange(eventKey(0), eventKey(before), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("trim events: %w", err)
	}
	return nil
}

// EventBytes implements Store.
func (s *Pebble) EventBytes(from, to uint64) (uint64, error) {
	n, err := s.db.EstimateDiskUsage(eventKey(from), eventKey(to))
	if err != nil {
		return 0, fmt.Errorf("event bytes: %w", err)
	}
	return n, nil
}

// Flush implements Store.
func (s *Pebble) Flush() error {
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// EventTime implements Store.
func (s *Pebble) EventTime(from uint64) (time.Time, uint64, bool, error) {
	for e, err := range s.Events(from) {
		if err != nil {
			return time.Time{}, 0, false, err
		}
		return e.Time, e.Seq, true, nil
	}
	return time.Time{}, 0, false, nil
}

// Close implements Store.
func (s *Pebble) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close pebble: %w", err)
	}
	return nil
}

type pebbleSnapshot struct{ snap *pebble.Snapshot }

func (p *pebbleSnapshot) Records(collectionID uint64, after string) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		prefix := recordPrefix(collectionID)
		lower := prefix
		if after != "" {
			// The smallest key strictly greater than after's key.
			lower = append(recordKey(collectionID, after), 0)
		}
		it, err := p.snap.NewIter(&pebble.IterOptions{
			LowerBound: lower,
			UpperBound: recordPrefix(collectionID + 1),
		})
		if err != nil {
			yield(nil, fmt.Errorf("read records: %w", err))
			return
		}
		defer it.Close()
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()
			if !bytes.HasPrefix(k, prefix) {
				break
			}
			id := string(k[len(prefix):])
			d := &decoder{b: it.Value()}
			r := decodeRecord(d, id)
			if d.err != nil {
				yield(nil, fmt.Errorf("record %q: %w", id, d.err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := it.Error(); err != nil {
			yield(nil, fmt.Errorf("read records: %w", err))
		}
	}
}

func (p *pebbleSnapshot) Get(collectionID uint64, id string) (*Record, error) {
	return getRecord(p.snap, collectionID, id)
}

func (p *pebbleSnapshot) Close() error { return p.snap.Close() }

// PutKey implements KeyStore.
func (s *Pebble) PutKey(k *APIKey) error {
	if k.ID == "" {
		return errors.New("put key: empty id")
	}
	v, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := s.db.Set(apiKeyKey(k.ID), v, pebble.Sync); err != nil {
		return fmt.Errorf("put key: %w", err)
	}
	return nil
}

// DeleteKey implements KeyStore.
func (s *Pebble) DeleteKey(id string) error {
	_, closer, err := s.db.Get(apiKeyKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	closer.Close()
	if err := s.db.Delete(apiKeyKey(id), pebble.Sync); err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	return nil
}

// Keys implements KeyStore.
func (s *Pebble) Keys() ([]APIKey, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixKey},
		UpperBound: []byte{prefixKey + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer it.Close()
	var out []APIKey
	for it.First(); it.Valid(); it.Next() {
		var k APIKey
		if err := json.Unmarshal(it.Value(), &k); err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrCorrupt, it.Key()[1:], err)
		}
		out = append(out, k)
	}
	return out, it.Error()
}
