package hnsw

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
)

// TestConcurrent runs everything at once: one appender, two linkers, two
// searchers, a deleter and a snapshotter. Run it with -race.
//
// With int8 quantization the appender learns the ranges three times during
// the run (at 32, 256 and 2,048 nodes), replacing the codes under the
// searchers.
func TestConcurrent(t *testing.T) {
	t.Run("float32", func(t *testing.T) { testConcurrent(t, Quantization{}) })
	t.Run("int8", func(t *testing.T) { testConcurrent(t, Quantization{Int8: true, Symmetric: true, TrainSize: 32}) })
	t.Run("int8-asymmetric", func(t *testing.T) { testConcurrent(t, Quantization{Int8: true, TrainSize: 32}) })
}

func testConcurrent(t *testing.T, quant Quantization) {
	n := 3000
	if testing.Short() {
		n = 1000
	}
	all := dataset.Clustered(n+50, 16, 10, 13)
	data, queries := all.Slice(0, n), all.Slice(n, n+50)
	ix := New(Config{Dim: 16, M: 4, EfConstruction: 32, Seed: 13, Quantization: quant})
	// Small chunks, so that the directory is replaced many times while
	// readers use it.
	ix.chunkShift, ix.chunkMask = 6, 63

	appended := make(chan uint32, n)
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() { // the single appender
		for i := range n {
			appended <- ix.Append(data.Row(i))
		}
		close(appended)
	})
	for range 2 { // linkers
		wg.Go(func() {
			for id := range appended {
				ix.Link(id)
				if id%5 == 0 {
					ix.Link(id) // no-op
				}
			}
		})
	}
	var readers sync.WaitGroup
	for w := range 2 { // searchers
		readers.Go(func() {
			for i := 0; !done.Load(); i++ {
				q := queries.Row((i + w) % queries.Rows)
				for _, r := range ix.Search(q, 5, 20, func(id uint32) bool { return id%3 != 0 }) {
					if r.ID%3 == 0 || !ix.Linked(r.ID) {
						t.Errorf("Search returned %d", r.ID)
						return
					}
				}
				ix.Scan(q, 5, uint32(max(ix.Len()-100, 0)), uint32(ix.Len()), nil)
			}
		})
	}
	readers.Go(func() { // deleter and snapshotter
		for i := 0; !done.Load(); i++ {
			if l := ix.Len(); l > 0 {
				ix.Delete(uint32(i*7) % uint32(l))
			}
			if i%50 == 0 {
				var buf bytes.Buffer
				if _, err := ix.WriteTo(&buf); err != nil {
					t.Error(err)
					return
				}
				if _, err := Read(&buf, nil); err != nil {
					t.Errorf("snapshot taken during the build: %v", err)
					return
				}
			}
			ix.MemoryBytes()
		}
	})
	wg.Wait()
	done.Store(true)
	readers.Wait()

	for id := range uint32(n) {
		if !ix.Linked(id) {
			t.Fatalf("node %d not linked", id)
		}
	}
	if quant.Int8 && ix.Quantizer() == nil {
		t.Error("quantization never trained")
	}
	if r := recall(t, ix, queries, 10, 64, nil); r < 0.9 {
		t.Errorf("recall@10 after a concurrent build %.4f, want ≥ 0.9", r)
	}
}
