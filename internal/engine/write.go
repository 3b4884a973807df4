package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/hippo-db/hippo/internal/store"
)

type opKind uint8

const (
	opCreateCollection opKind = iota + 1
	opDeleteCollection
	opUpsert
	opDeleteRecord
)

// maxGroupRecords bounds the records one commit group carries, so a group's
// batch stays a few tens of megabytes at most.
const maxGroupRecords = 4096

// writeOp is one atomic write submitted to the committer.
type writeOp struct {
	kind         opKind
	name         string         // collection name
	collectionID uint64         // record ops: the collection validated against
	spec         CollectionSpec // opCreateCollection
	records      []RecordInput  // opUpsert
	recordID     string         // opDeleteRecord
	done         chan writeResult
}

type writeResult struct {
	seq     uint64 // last seq of the op's events; 0 if it wrote nothing
	created bool
	desc    store.Collection
	err     error
}

// isCollectionOp reports whether op must be committed in a group of its own.
// Keeping collection changes alone means record ops in a group never race a
// collection's creation or deletion.
func (op *writeOp) isCollectionOp() bool {
	return op.kind == opCreateCollection || op.kind == opDeleteCollection
}

// submit hands op to the committer and waits for its result. Once op was
// handed over, submit waits for it even if ctx ends, so that an answer is
// never "cancelled" for a write that committed.
func (e *Engine) submit(ctx context.Context, op *writeOp) writeResult {
	op.done = make(chan writeResult, 1)
	select {
	case e.writes <- op:
	case <-e.quit:
		return writeResult{err: ErrClosed}
	case <-ctx.Done():
		return writeResult{err: ctx.Err()}
	}
	return <-op.done
}

// commitLoop is the committer: the only goroutine that assigns seqs, commits,
// and changes in-memory state.
func (e *Engine) commitLoop() {
	defer close(e.committerDone)
	var carry *writeOp
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-e.writes:
			case <-e.quit:
				return
			}
		}
		group := []*writeOp{first}
		if !first.isCollectionOp() {
			records := len(first.records)
		gather:
			for records < maxGroupRecords {
				select {
				case op := <-e.writes:
					if op.isCollectionOp() {
						carry = op
						break gather
					}
					group = append(group, op)
					records += len(op.records)
				default:
					break gather
				}
			}
		}
		e.commitGroup(group)
	}
}

// recordKey names a record in the group overlay.
type recordKey struct {
	collection uint64
	id         string
}

// recordState is what the overlay knows of a record during validation.
type recordState struct {
	exists    bool
	createdAt int64
}

// commitGroup validates, commits and applies one group, then answers it.
func (e *Engine) commitGroup(group []*writeOp) {
	results := make([]writeResult, len(group))
	if err := e.brokenErr(); err != nil {
		for _, op := range group {
			op.done <- writeResult{err: err}
		}
		return
	}
	now := time.Now().UTC()
	seq := e.seq
	var events []store.Event
	var metas []map[string]any // parallel to events: parsed metadata of upserts
	overlay := map[recordKey]recordState{}
	lookup := func(c *Collection, id string) recordState {
		if st, ok := overlay[recordKey{c.desc.ID, id}]; ok {
			return st
		}
		// Only the committer writes ids and nodes, so it may read them unlocked.
		if n, ok := c.mu.ids[id]; ok {
			return recordState{exists: true, createdAt: c.mu.nodes[n].createdAt}
		}
		return recordState{}
	}
	emit := func(ev store.Event, meta map[string]any) {
		seq++
		ev.Seq = seq
		ev.Time = now
		events = append(events, ev)
		metas = append(metas, meta)
	}

	for i, op := range group {
		res := &results[i]
		c := e.collection(op.name)
		switch op.kind {
		case opCreateCollection:
			if c != nil {
				if !sameSpec(c.desc, op.spec) {
					res.err = &Error{Kind: ErrConflict,
						Message: fmt.Sprintf("collection %q exists with other settings", op.name),
						Details: map[string]any{"existing": specOf(c.desc)}}
				}
				res.desc = c.desc
				continue
			}
			id, err := e.store.NextCollectionID()
			if err != nil {
				res.err = fmt.Errorf("%w: allocate collection id: %v", ErrUnavailable, err)
				continue
			}
			res.desc = store.Collection{ID: id, Name: op.name, Dimension: op.spec.Dimension,
				Metric: op.spec.Metric, Index: op.spec.Index, CreatedAt: now}
			res.created = true
			emit(store.Event{Op: store.OpCollectionCreated, Collection: res.desc}, nil)
		case opDeleteCollection:
			if c == nil {
				res.err = notFoundf("collection %q not found", op.name)
				continue
			}
			emit(store.Event{Op: store.OpCollectionDeleted, Collection: c.desc}, nil)
		case opUpsert:
			if c == nil || c.desc.ID != op.collectionID {
				res.err = notFoundf("collection %q not found", op.name)
				continue
			}
			for j := range op.records {
				in := &op.records[j]
				st := lookup(c, in.ID)
				created := now.UnixNano()
				if st.exists {
					created = st.createdAt
				}
				overlay[recordKey{c.desc.ID, in.ID}] = recordState{exists: true, createdAt: created}
				rec := &store.Record{ID: in.ID, Vector: in.Vector, Text: in.Text, Metadata: in.compact,
					CreatedAt: time.Unix(0, created).UTC(), UpdatedAt: now, Seq: seq + 1}
				emit(store.Event{Op: store.OpRecordUpserted, Collection: c.desc, RecordID: in.ID, Record: rec}, in.meta)
			}
		case opDeleteRecord:
			if c == nil || c.desc.ID != op.collectionID {
				res.err = notFoundf("collection %q not found", op.name)
				continue
			}
			if !lookup(c, op.recordID).exists {
				res.err = notFoundf("record %q not found in collection %q", op.recordID, op.name)
				continue
			}
			overlay[recordKey{c.desc.ID, op.recordID}] = recordState{}
			emit(store.Event{Op: store.OpRecordDeleted, Collection: c.desc, RecordID: op.recordID}, nil)
		}
		if res.err == nil {
			res.seq = seq
		}
	}

	if len(events) > 0 {
		if err := e.store.Commit(events); err != nil {
			// The store may or may not hold the batch; memory does not. Stop
			// taking writes rather than guess: a restart recovers from disk.
			e.setBroken(fmt.Errorf("%w: commit failed, restart the server: %v", ErrUnavailable, err))
			e.log.Error("commit failed; writes disabled", "err", err)
			for _, op := range group {
				op.done <- writeResult{err: e.brokenErr()}
			}
			return
		}
		e.seq = seq
		e.applyEvents(events, metas)
		e.lastSeq.Store(seq)
		e.hub.PublishEvents(events)
	}
	for i, op := range group {
		op.done <- results[i]
	}
}

// applyEvents brings memory up to date with committed events, in seq order.
// Consecutive events of one collection are applied under one lock.
func (e *Engine) applyEvents(events []store.Event, metas []map[string]any) {
	var locked *Collection
	unlock := func() {
		if locked != nil {
			locked.mu.Unlock()
			locked.notifyIndexer()
			locked = nil
		}
	}
	defer unlock()
	for i := range events {
		ev := &events[i]
		switch ev.Op {
		case store.OpCollectionCreated:
			unlock()
			c := newCollection(ev.Collection, nil)
			c.mu.appliedSeq = ev.Seq
			e.mu.Lock()
			e.mu.collections[c.desc.Name] = c
			e.mu.Unlock()
			c.startIndexer(e.opts.IndexWorkers)
		case store.OpCollectionDeleted:
			unlock()
			e.dropCollection(ev.Collection.Name)
		case store.OpRecordUpserted, store.OpRecordDeleted:
			if locked == nil || locked.desc.ID != ev.Collection.ID {
				unlock()
				locked = e.collection(ev.Collection.Name)
				locked.mu.Lock()
			}
			if ev.Op == store.OpRecordUpserted {
				locked.applyUpsertLocked(ev.Record, metas[i])
			} else {
				locked.applyDeleteLocked(ev.RecordID, ev.Seq)
			}
		}
	}
}

// dropCollection removes a collection from memory and deletes its snapshot.
func (e *Engine) dropCollection(name string) {
	e.mu.Lock()
	c := e.mu.collections[name]
	delete(e.mu.collections, name)
	e.mu.Unlock()
	if c == nil {
		return
	}
	c.stopIndexer()
	e.removeSnapshot(c.desc.ID)
}

func sameSpec(desc store.Collection, spec CollectionSpec) bool {
	return desc.Dimension == spec.Dimension && desc.Metric == spec.Metric && desc.Index == spec.Index
}

func specOf(desc store.Collection) map[string]any {
	return map[string]any{"dimension": desc.Dimension, "metric": desc.Metric, "index": desc.Index}
}
