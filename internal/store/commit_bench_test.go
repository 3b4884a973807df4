package store

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkCommit measures one synced commit of a group of 784-dimension
// records on the real filesystem: the floor under every acknowledged write.
// log=without leaves the change log's events out, to show what the log
// costs a write with no subscriber.
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{1, 250, 1000} {
		for _, withLog := range []bool{true, false} {
			name := fmt.Sprintf("%d/log=with", n)
			if !withLog {
				name = fmt.Sprintf("%d/log=without", n)
			}
			b.Run(name, func(b *testing.B) { benchmarkCommit(b, n, withLog) })
		}
	}
}

func benchmarkCommit(b *testing.B, n int, withLog bool) {
	s, err := OpenPebble(b.TempDir(), PebbleOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	commit := s.Commit
	if !withLog {
		commit = func(events []Event) error { return commitRecordsOnly(s, events) }
	}
	v := make([]float32, 784)
	seq := uint64(0)
	b.SetBytes(int64(n * 784 * 4))
	for b.Loop() {
		events := make([]Event, n)
		for i := range events {
			seq++
			id := fmt.Sprint(seq)
			events[i] = Event{Seq: seq, Op: OpRecordUpserted, Time: t0, Collection: Collection{ID: 1, Name: "c"},
				RecordID: id, Record: &Record{ID: id, Vector: v, CreatedAt: t0, UpdatedAt: t0, Seq: seq}}
		}
		if err := commit(events); err != nil {
			b.Fatal(err)
		}
	}
}

// commitRecordsOnly commits what Commit does for upserts, without their log
// entries: the baseline that shows what the change log costs a write. It
// copies Commit's upsert branch; keep the two alike.
func commitRecordsOnly(s *Pebble, events []Event) error {
	b := s.db.NewBatchWithSize(batchSize(events))
	defer b.Close()
	var buf []byte
	for i := range events {
		buf = appendRecord(buf[:0], events[i].Record)
		b.Set(recordKey(events[i].Collection.ID, events[i].RecordID), buf, nil)
	}
	b.Set(keyLastSeq, binary.BigEndian.AppendUint64(nil, events[len(events)-1].Seq), nil)
	return b.Commit(pebble.Sync)
}
