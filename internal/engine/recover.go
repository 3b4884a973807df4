package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/hippo-db/hippo/internal/store"
)

// errLogGap means the log no longer holds the events a snapshot needs.
var errLogGap = errors.New("hippo: log does not reach back to the snapshot")

// recover rebuilds memory from the store: snapshots plus a replay of the log
// after them, or a scan of the records where no usable snapshot exists.
func (e *Engine) recover() error {
	last, err := e.store.LastSeq()
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	e.seq = last
	e.lastSeq.Store(last)
	descs, err := e.store.Collections()
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	e.removeStaleSnapshots(descs)

	fromSnapshot := map[uint64]*Collection{}
	replayFrom := uint64(math.MaxUint64)
	for _, d := range descs {
		c, err := e.loadSnapshot(d)
		switch {
		case err != nil:
			e.log.Warn("index snapshot unusable; rebuilding from records", "collection", d.Name, "err", err)
		case c != nil && c.mu.appliedSeq > last:
			e.log.Warn("index snapshot is newer than the store; rebuilding from records", "collection", d.Name)
		case c != nil:
			fromSnapshot[d.ID] = c
			replayFrom = min(replayFrom, c.mu.appliedSeq+1)
			e.mu.collections[d.Name] = c
			continue
		}
		if c, err = e.rebuild(d, last); err != nil {
			return err
		}
		e.mu.collections[d.Name] = c
	}
	if len(fromSnapshot) == 0 || replayFrom > last {
		return nil
	}
	err = e.replay(replayFrom, fromSnapshot)
	if errors.Is(err, errLogGap) {
		e.log.Warn("log does not cover the index snapshots; rebuilding from records", "from", replayFrom)
		for _, c := range fromSnapshot {
			rebuilt, err := e.rebuild(c.desc, last)
			if err != nil {
				return err
			}
			e.mu.collections[c.desc.Name] = rebuilt
		}
		return nil
	}
	return err
}

// replay applies the log from seq `from` to the collections loaded from
// snapshots, each only past the seq its snapshot covers. An upsert event is
// applied with the record's current version only if that version is the one
// the event wrote; an older event was superseded by a later one in the log.
func (e *Engine) replay(from uint64, collections map[uint64]*Collection) error {
	snap, err := e.store.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	expect := from
	for ev, err := range e.store.Events(from) {
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if ev.Seq != expect {
			return fmt.Errorf("%w: wanted seq %d, log has %d", errLogGap, expect, ev.Seq)
		}
		expect++
		c := collections[ev.Collection.ID]
		if c == nil || ev.Seq <= c.mu.appliedSeq {
			continue
		}
		switch ev.Op {
		case store.OpRecordUpserted:
			r, err := snap.Get(ev.Collection.ID, ev.RecordID)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted later in the log
			}
			if err != nil {
				return fmt.Errorf("replay seq %d: %w", ev.Seq, err)
			}
			if r.Seq != ev.Seq {
				continue // replaced later in the log
			}
			meta, err := parseMetadata(r.Metadata)
			if err != nil {
				return fmt.Errorf("replay seq %d: %w", ev.Seq, err)
			}
			c.applyUpsertLocked(r, meta)
		case store.OpRecordDeleted:
			c.applyDeleteLocked(ev.RecordID, ev.Seq)
		}
	}
	if from <= e.seq && expect == from {
		return fmt.Errorf("%w: no events from seq %d", errLogGap, from)
	}
	return nil
}

// rebuild loads a collection from its stored records; its index is linked
// in the background afterwards.
func (e *Engine) rebuild(d store.Collection, last uint64) (*Collection, error) {
	c := newCollection(d, nil)
	snap, err := e.store.Snapshot()
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	for r, err := range snap.Records(d.ID, "") {
		if err != nil {
			return nil, fmt.Errorf("rebuild %q: %w", d.Name, err)
		}
		meta, err := parseMetadata(r.Metadata)
		if err != nil {
			return nil, fmt.Errorf("rebuild %q: record %q: %w", d.Name, r.ID, err)
		}
		c.applyUpsertLocked(r, meta)
	}
	c.mu.appliedSeq = last
	return c, nil
}

func parseMetadata(raw []byte) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", store.ErrCorrupt, err)
	}
	return m, nil
}
