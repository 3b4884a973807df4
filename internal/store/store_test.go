package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func openMem(t *testing.T, fs vfs.FS) *Pebble {
	t.Helper()
	s, err := OpenPebble("db", PebbleOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 123, time.UTC)

func rec(id string, seq uint64, v ...float32) *Record {
	return &Record{ID: id, Vector: v, Text: "text of " + id, Metadata: []byte(`{"k":1}`), CreatedAt: t0, UpdatedAt: t0.Add(time.Second), Seq: seq}
}

func TestCodecRoundTrip(t *testing.T) {
	coll := Collection{ID: 3, Name: "c", Dimension: 2, Metric: "l2", Index: IndexSpec{Type: "hnsw", M: 16, EfConstruction: 200, Ef: 64}, CreatedAt: t0}
	for _, e := range []Event{
		{Seq: 1, Op: OpCollectionCreated, Time: t0, Collection: coll},
		{Seq: 2, Op: OpRecordUpserted, Time: t0, Collection: Collection{ID: 3, Name: "c"}, RecordID: "a", Record: rec("a", 2, 1.5, -2)},
		{Seq: 3, Op: OpRecordUpserted, Time: t0, Collection: Collection{ID: 3, Name: "c"}, RecordID: "empty", Record: &Record{ID: "empty", Vector: []float32{}, CreatedAt: t0, UpdatedAt: t0, Seq: 3}},
		{Seq: 4, Op: OpRecordDeleted, Time: t0, Collection: Collection{ID: 3, Name: "c"}, RecordID: "a"},
		{Seq: 5, Op: OpCollectionDeleted, Time: t0, Collection: Collection{ID: 3, Name: "c"}},
	} {
		b, err := appendEvent(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		e.Record = nil // the log does not keep it
		got, err := decodeEvent(e.Seq, b)
		if err != nil {
			t.Fatalf("%s: %v", e.Op, err)
		}
		if !reflect.DeepEqual(*got, e) {
			t.Fatalf("%s round trip:\n got %+v\nwant %+v", e.Op, got, e)
		}
		// Every truncation is an error, never a panic or a wrong value.
		for n := range len(b) {
			if _, err := decodeEvent(e.Seq, b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s truncated to %d bytes: %v", e.Op, n, err)
			}
		}
	}
}

func TestPebbleCommitReadAndSnapshot(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	id1, _ := s.NextCollectionID()
	id2, _ := s.NextCollectionID()
	c1 := Collection{ID: id1, Name: "one", Dimension: 2, Metric: "l2", CreatedAt: t0}
	c2 := Collection{ID: id2, Name: "two", Dimension: 2, Metric: "l2", CreatedAt: t0}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Commit([]Event{
		{Seq: 1, Op: OpCollectionCreated, Time: t0, Collection: c1},
		{Seq: 2, Op: OpCollectionCreated, Time: t0, Collection: c2},
	}))
	var batch []Event
	for i := range 10 {
		for _, c := range []Collection{c1, c2} {
			id := fmt.Sprintf("r%d", i)
			seq := uint64(3 + len(batch))
			batch = append(batch, Event{Seq: seq, Op: OpRecordUpserted, Time: t0, Collection: c, RecordID: id, Record: rec(id, seq, float32(i), 0)})
		}
	}
	must(s.Commit(batch))
	snap, _ := s.Snapshot()
	must(s.Commit([]Event{
		{Seq: 23, Op: OpRecordDeleted, Time: t0, Collection: c2, RecordID: "r3"},
		{Seq: 24, Op: OpCollectionDeleted, Time: t0, Collection: c1},
	}))
	if last, _ := s.LastSeq(); last != 24 {
		t.Fatalf("last seq %d", last)
	}
	if _, err := s.Get(id1, "r1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("records of a deleted collection remain: %v", err)
	}
	if r, err := s.Get(id2, "r1"); err != nil || r.Vector[0] != 1 || r.Seq != 6 {
		t.Fatalf("other collection's record: %+v %v", r, err)
	}
	count := func(sn Snapshot, c uint64, after string) (n int) {
		for _, err := range sn.Records(c, after) {
			must(err)
			n++
		}
		return n
	}
	// The snapshot still sees the state before the deletes.
	if n := count(snap, id1, ""); n != 10 {
		t.Fatalf("snapshot sees %d records of the deleted collection", n)
	}
	if n := count(snap, id2, "r5"); n != 4 { // r6..r9
		t.Fatalf("records after r5: %d", n)
	}
	now, _ := s.Snapshot()
	if n := count(now, id2, ""); n != 9 {
		t.Fatalf("now: %d records", n)
	}
	now.Close()
	var seqs []uint64
	for e, err := range s.Events(20) {
		must(err)
		seqs = append(seqs, e.Seq)
	}
	if fmt.Sprint(seqs) != "[20 21 22 23 24]" {
		t.Fatalf("events from 20: %v", seqs)
	}
	snap.Close()
	colls, _ := s.Collections()
	if len(colls) != 1 || colls[0].Name != "two" {
		t.Fatalf("collections %+v", colls)
	}
	must(s.Close())

	// Reopened: state kept, collection ids never reused.
	s = openMem(t, fs)
	defer s.Close()
	if last, _ := s.LastSeq(); last != 24 {
		t.Fatalf("reopened last seq %d", last)
	}
	if id, _ := s.NextCollectionID(); id <= id2 {
		t.Fatalf("collection id %d reused", id)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	e := Event{Seq: 2, Op: OpRecordUpserted, Time: t0, Collection: Collection{ID: 3, Name: "c"}, RecordID: "a", Record: rec("a", 2, 1, 2)}
	b, _ := appendEvent(nil, &e)
	f.Add(b)
	e = Event{Seq: 1, Op: OpCollectionCreated, Time: t0, Collection: Collection{ID: 3, Name: "c", Dimension: 2}}
	b, _ = appendEvent(nil, &e)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodeEvent(9, data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not marked corrupt: %v", err)
			}
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := appendEvent(nil, ev)
		if err != nil {
			return
		}
		ev2, err := decodeEvent(9, again)
		if err != nil || !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("unstable: %+v vs %+v (%v)", ev, ev2, err)
		}
	})
}

func TestTrimAndEventBytes(t *testing.T) {
	s, err := OpenPebble(t.TempDir(), PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	coll := Collection{ID: 1, Name: "c"}
	var events []Event
	for seq := uint64(1); seq <= 2000; seq++ {
		events = append(events, Event{Seq: seq, Op: OpRecordDeleted, Time: t0.Add(time.Duration(seq) * time.Second), Collection: coll, RecordID: fmt.Sprint("record-", seq)})
	}
	if err := s.Commit(events); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil { // size estimates count flushed data
		t.Fatal(err)
	}
	all, _ := s.EventBytes(1, 2001)
	half, _ := s.EventBytes(1001, 2001)
	if all == 0 || half == 0 || half >= all {
		t.Fatalf("estimates: all %d, second half %d", all, half)
	}
	tm, seq, ok, err := s.EventTime(1500)
	if err != nil || !ok || seq != 1500 || !tm.Equal(t0.Add(1500*time.Second)) {
		t.Fatalf("event time: %v %d %v %v", tm, seq, ok, err)
	}
	if oldest, _ := s.OldestSeq(); oldest != 1 {
		t.Fatalf("oldest %d", oldest)
	}
	if err := s.TrimEvents(1200); err != nil {
		t.Fatal(err)
	}
	if oldest, _ := s.OldestSeq(); oldest != 1200 {
		t.Fatalf("oldest after trim %d", oldest)
	}
	if err := s.TrimEvents(2001); err != nil {
		t.Fatal(err)
	}
	if oldest, _ := s.OldestSeq(); oldest != 2001 {
		t.Fatalf("oldest of an empty log %d, want last+1", oldest)
	}
}
