// Package store is Hippo's durable storage: collections, records and the change
// log, written together in atomic, synced batches. The embedded implementation
// is Pebble (see Open); the PostgreSQL implementation will satisfy the same
// Store interface.
//
// The store knows nothing about indexes or validation. The engine decides what a
// mutation means, assigns its sequence number and hands the store a group of
// Events; the store makes each group durable atomically: the data change and its
// log entry land together or not at all.
package store

import (
	"errors"
	"iter"
	"time"
)

// Errors returned by stores. Corruption is its own class so callers can tell a
// damaged store from a missing key.
var (
	ErrNotFound = errors.New("hippo: not found")
	ErrCorrupt  = errors.New("hippo: corrupt data")
	ErrClosed   = errors.New("hippo: store closed")
)

// Op is the kind of change an Event records.
type Op uint8

// The operations recorded in the log. The numeric values are stored on disk
// (docs/format/store.md): never renumber them.
const (
	OpCollectionCreated Op = 1
	OpCollectionDeleted Op = 2
	OpRecordUpserted    Op = 3
	OpRecordDeleted     Op = 4
)

// String returns the event type name used on the wire, e.g. "record.upserted".
func (o Op) String() string {
	switch o {
	case OpCollectionCreated:
		return "collection.created"
	case OpCollectionDeleted:
		return "collection.deleted"
	case OpRecordUpserted:
		return "record.upserted"
	case OpRecordDeleted:
		return "record.deleted"
	}
	return "unknown"
}

// IndexSpec is a collection's vector index configuration as stored and served.
// Type is "hnsw", "flat" or "ivfpq"; engine.CollectionSpec's validation says
// which fields apply to which type (docs/design/indexes.md explains them).
type IndexSpec struct {
	Type string `json:"type"`
	// M is the HNSW graph degree, or the number of IVF-PQ subspaces.
	M              int `json:"m,omitempty"`
	EfConstruction int `json:"ef_construction,omitempty"` // hnsw
	Ef             int `json:"ef,omitempty"`              // hnsw, flat: default search beam
	// Quantization is "int8" for an HNSW index searched on 8-bit codes and
	// re-ranked with the float32 vectors; empty for float32 only.
	Quantization string `json:"quantization,omitempty"`
	NList        int    `json:"nlist,omitempty"`  // ivfpq: inverted lists
	NProbe       int    `json:"nprobe,omitempty"` // ivfpq: default lists probed per search
	Rerank       int    `json:"rerank,omitempty"` // ivfpq: keep float32 vectors, re-rank this many candidates
}

// Collection is a collection's durable descriptor. ID is internal and never
// reused, so a collection deleted and created again under the same name keeps
// no trace of its predecessor.
type Collection struct {
	ID        uint64    `json:"id"`
	Name      string    `json:"name"`
	Dimension int       `json:"dimension"`
	Metric    string    `json:"metric"`
	Index     IndexSpec `json:"index"`
	CreatedAt time.Time `json:"created_at"`
}

// Record is one stored record. Metadata is the raw JSON object (or nil).
type Record struct {
	ID        string
	Vector    []float32
	Text      string
	Metadata  []byte
	CreatedAt time.Time
	UpdatedAt time.Time
	Seq       uint64 // seq of the write that produced this version
}

// Event is one committed change: the unit of the change log. Seq is assigned
// by the engine and grows by exactly one per event across the whole store.
type Event struct {
	Seq  uint64
	Op   Op
	Time time.Time
	// Collection identifies the collection; for OpCollectionCreated it is the
	// full descriptor, otherwise only ID and Name are meaningful.
	Collection Collection
	// RecordID is set for record operations.
	RecordID string
	// Record is the new version for OpRecordUpserted, given to Commit. The
	// log does not keep it: events read back from the log have Record nil,
	// and the version is found under the record's key (its Seq tells
	// whether it is still the one this event wrote).
	Record *Record
}

// Store is durable storage shared by the engine. All methods are safe for
// concurrent use, except that Commit must be called by one goroutine at a time
// (the engine's committer), which is what keeps the log in seq order.
type Store interface {
	// Commit makes the events durable in one atomic, synced write: records
	// upserted or deleted, collections created or deleted (with all their
	// records), and one log entry per event.
	Commit(events []Event) error
	// LastSeq returns the seq of the last committed event, 0 for none.
	LastSeq() (uint64, error)
	// NextCollectionID returns an unused collection id. Ids are never reused;
	// the store persists the high-water mark with the next Commit that creates
	// a collection.
	NextCollectionID() (uint64, error)
	// Collections returns all live collections.
	Collections() ([]Collection, error)
	// Get returns the current version of a record, or ErrNotFound.
	Get(collectionID uint64, id string) (*Record, error)
	// Snapshot returns a consistent read-only view. Close it when done.
	Snapshot() (Snapshot, error)
	// Events yields committed events with seq >= from, in seq order, as of
	// the call. The iteration stops at the first error.
	Events(from uint64) iter.Seq2[*Event, error]
	// OldestSeq returns the seq of the oldest retained event: 1 if nothing
	// was ever trimmed, LastSeq()+1 if the log is empty.
	OldestSeq() (uint64, error)
	// TrimEvents deletes the events with seq < before, durably.
	TrimEvents(before uint64) error
	// EventBytes estimates the bytes on disk of the events with seq in
	// [from, to). Events still only in memory (and in the write-ahead log)
	// count for nothing: call Flush first for an estimate of them all.
	EventBytes(from, to uint64) (uint64, error)
	// Flush writes what the store holds in memory to its files, so that
	// EventBytes sees it. It is not needed for durability: commits are
	// durable already.
	Flush() error
	// EventTime returns the time of the first retained event with seq >=
	// from, and its seq; ok is false if there is none.
	EventTime(from uint64) (t time.Time, seq uint64, ok bool, err error)
	// Close flushes and closes the store. Calls after Close return ErrClosed.
	Close() error
}

// Snapshot is a point-in-time view of a Store.
type Snapshot interface {
	// Records yields a collection's records in id byte order, starting after
	// the id `after` ("" for the first). Stops at the first error.
	Records(collectionID uint64, after string) iter.Seq2[*Record, error]
	// Get returns a record as of the snapshot, or ErrNotFound.
	Get(collectionID uint64, id string) (*Record, error)
	Close() error
}

// APIKey is a stored API key. The secret itself is never stored: Hash is
// its SHA-256 (docs/security.md says why a fast hash is enough).
type APIKey struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Scope       string    `json:"scope"`
	Collections []string  `json:"collections"`
	Rate        float64   `json:"rate,omitempty"` // requests per second; 0: the server's default
	Hash        []byte    `json:"sha256"`
	CreatedAt   time.Time `json:"created_at"`
}

// KeyStore keeps API keys, outside the change log: keys are not data, and
// the feed is readable by every reader. Its methods are safe for concurrent
// use; each write is durable (synced) when it returns.
type KeyStore interface {
	// PutKey stores k under k.ID, replacing any key with that id.
	PutKey(k *APIKey) error
	// DeleteKey deletes the key with that id, or returns ErrNotFound.
	DeleteKey(id string) error
	// Keys returns every stored key, ordered by id.
	Keys() ([]APIKey, error)
}
