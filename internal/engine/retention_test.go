package engine

import (
	"fmt"
	"testing"
	"time"
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
