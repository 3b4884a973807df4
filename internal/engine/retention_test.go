package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/feed"
	"github.com/hippo-db/hippo/internal/store"
)

// Trimming the log must not cost recovery: collections whose snapshot needs
// trimmed events are snapshotted first, and a crash after the trim recovers
// every write.
func TestRetentionTrimsAndRecoveryStillReplays(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(Options{Dir: dir, SnapshotInterval: -1, Retention: Retention{MaxAge: time.Hour, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, e, "a", CollectionSpec{Dimension: 2, Metric: "l2"})
	mustCreate(t, e, "idle", CollectionSpec{Dimension: 2, Metric: "l2"})
	mustUpsert(t, e, "idle", RecordInput{ID: "i", Vector: []float32{5, 5}})
	for i := range 50 {
		mustUpsert(t, e, "a", RecordInput{ID: fmt.Sprint(i), Vector: []float32{float32(i), 1}})
	}
	last := e.LastSeq()
	// Two hours later every event is past the age limit.
	if err := e.applyRetention(time.Now().Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if oldest, _ := e.OldestSeq(); oldest != last+1 {
		t.Fatalf("oldest %d after trimming everything up to %d", oldest, last)
	}
	for _, c := range e.allCollections() {
		if c.snapshotSeq.Load() < last {
			t.Fatalf("%s: snapshot covers %d, trimmed up to %d", c.desc.Name, c.snapshotSeq.Load(), last)
		}
	}
	// Nothing newer than the limit is trimmed.
	mustUpsert(t, e, "a", RecordInput{ID: "late", Vector: []float32{9, 9}})
	if _, err := e.Delete(ctx, "a", "3"); err != nil {
		t.Fatal(err)
	}
	if err := e.applyRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	if oldest, _ := e.OldestSeq(); oldest != last+1 {
		t.Fatalf("recent events trimmed: oldest %d", oldest)
	}
	want := state(t, e)
	e.crashForTest()
	e = open(t, dir)
	if got := state(t, e); !mapsEqual(got, want) {
		t.Fatal("state differs after a crash following a trim")
	}
	res, err := e.Search("a", &Query{Vector: []float32{9, 9}, K: 1})
	if err != nil || res.Hits[0].ID != "late" {
		t.Fatalf("replayed write not searchable: %+v %v", res, err)
	}
}

// Retention by size keeps the newest events whose estimated size on disk fits
// MaxBytes, trims only the log, not the records, and trims durably.
func TestRetentionBySizeKeepsTheNewest(t *testing.T) {
	// The size is store.EventBytes: Pebble's estimate of the bytes of the
	// tables' blocks that hold the events, which a retention pass flushes
	// first. 3,000 small records, far less than Pebble holds in memory
	// before it flushes by itself, write events several times the limit.
	const (
		limit   = 16 << 10
		records = 3000
		batch   = 100
	)
	dir := t.TempDir()
	e, err := Open(Options{Dir: dir, SnapshotInterval: -1,
		Retention: Retention{MaxBytes: limit, Interval: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	// A collection written only before everything that is trimmed: its
	// index snapshot must be written before its events go.
	mustCreate(t, e, "idle", CollectionSpec{Dimension: 2, Metric: "l2"})
	mustUpsert(t, e, "idle", RecordInput{ID: "i", Vector: []float32{5, 5}})
	mustCreate(t, e, "a", CollectionSpec{Dimension: 2, Metric: "l2", Index: store.IndexSpec{Type: "flat"}})
	r := rand.New(rand.NewPCG(3, 3))
	idAt := map[uint64]string{} // seq → the record its upsert wrote
	firstVector := randVec(r, 2)
	for start := 0; start < records; start += batch {
		in := make([]RecordInput, batch)
		for i := range in {
			in[i] = RecordInput{ID: fmt.Sprintf("r%05d", start+i), Vector: randVec(r, 2)}
		}
		if start == 0 {
			in[0].Vector = firstVector
		}
		last := mustUpsert(t, e, "a", in...)
		for i := range in {
			idAt[last-uint64(batch-1-i)] = in[i].ID
		}
	}
	last := e.LastSeq()
	want := state(t, e)

	// Wait for a retention pass to trim down to the limit. Between passes a
	// flush can make the retained events exceed it; the next pass trims again.
	deadline := time.Now().Add(10 * time.Second)
	var oldest, size uint64
	for {
		if oldest, err = e.OldestSeq(); err != nil {
			t.Fatal(err)
		}
		if size, err = e.store.EventBytes(oldest, last+1); err != nil {
			t.Fatal(err)
		}
		if oldest > 1 && size <= limit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retention to %d bytes within 10s: oldest seq %d of %d, retained events estimated at %d bytes",
				limit, oldest, last, size)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Retention trims only what does not fit: of the flushed events it keeps
	// all but the block (a few KiB) that straddles the limit.
	if size < limit/2 {
		t.Fatalf("trimmed too much: retained events estimated at %d bytes, limit %d", size, limit)
	}
	if oldest > last {
		t.Fatalf("every event trimmed: oldest %d, last %d", oldest, last)
	}
	for _, c := range e.allCollections() {
		if c.snapshotSeq.Load()+1 < oldest {
			t.Fatalf("%s: snapshot covers %d, log trimmed up to %d", c.desc.Name, c.snapshotSeq.Load(), oldest-1)
		}
	}

	// A crash after the trim: every record is still there, the trim held,
	// and the log from the oldest retained event to the last has no hole.
	e.crashForTest()
	e = open(t, dir)
	if got := state(t, e); !mapsEqual(got, want) {
		t.Fatal("state differs after a crash following a trim by size")
	}
	res, err := e.Search("a", &Query{Vector: firstVector, K: 1})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != "r00000" {
		t.Fatalf("record whose event was trimmed not searchable: %+v %v", res, err)
	}
	retained, err := e.OldestSeq()
	if err != nil {
		t.Fatal(err)
	}
	if retained < oldest || e.LastSeq() != last {
		t.Fatalf("after reopening the log holds %d to %d, before it held %d to %d", retained, e.LastSeq(), oldest, last)
	}
	var gap *feed.GapError
	if _, err := e.Feed().Subscribe(retained-2, feed.Filter{}); !errors.As(err, &gap) || gap.Oldest != retained {
		t.Fatalf("subscribing before the oldest retained event: %v, want a gap from %d", err, retained)
	}
	sub, err := e.Feed().Subscribe(retained-1, feed.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for next := retained; next <= last; {
		entries, err := sub.Next(readCtx, 1000)
		if err != nil {
			t.Fatalf("reading the log from %d: %v", next, err)
		}
		for _, en := range entries {
			if en.Seq() != next || en.Event.RecordID != idAt[next] {
				t.Fatalf("log read seq %d (record %q), want seq %d (record %q)", en.Seq(), en.Event.RecordID, next, idAt[next])
			}
			next++
		}
	}
}
