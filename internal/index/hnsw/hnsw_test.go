package hnsw

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/vec"
)

// build appends every row of data and links them from threads goroutines.
func build(t testing.TB, data *dataset.Matrix, cfg Config, threads int) *Index {
	t.Helper()
	cfg.Dim = data.Dim
	ix := New(cfg)
	for i := range data.Rows {
		if id := ix.Append(data.Row(i)); id != uint32(i) {
			t.Fatalf("Append #%d returned id %d", i, id)
		}
	}
	linkAll(ix, 0, uint32(data.Rows), threads)
	return ix
}

func linkAll(ix *Index, from, to uint32, threads int) {
	var wg sync.WaitGroup
	for w := range threads {
		wg.Go(func() {
			for id := from + uint32(w); id < to; id += uint32(threads) {
				ix.Link(id)
			}
		})
	}
	wg.Wait()
}

// recall returns the mean fraction of Scan's exact top k that Search finds.
func recall(t testing.TB, ix *Index, queries *dataset.Matrix, k, ef int, accept func(uint32) bool) float64 {
	t.Helper()
	hits, want := 0, 0
	for q := range queries.Rows {
		exact := ix.Scan(queries.Row(q), k, 0, uint32(ix.Len()), accept)
		got := ix.Search(queries.Row(q), k, ef, accept)
		if !slices.IsSortedFunc(got, func(a, b Result) int { return cmpFloat(a.Distance, b.Distance) }) {
			t.Fatalf("query %d: results not sorted: %v", q, got)
		}
		for _, e := range exact {
			if slices.ContainsFunc(got, func(r Result) bool { return r.ID == e.ID }) {
				hits++
			}
		}
		want += len(exact)
	}
	return float64(hits) / float64(want)
}

func cmpFloat(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sized returns n, or a fifth of it under the race detector.
func sized(n int) int {
	if raceEnabled {
		return n / 5
	}
	return n
}

func TestRecallClustered(t *testing.T) {
	n := sized(5000)
	all := dataset.Clustered(n+200, 64, 50, 1)
	train, queries := all.Slice(0, n), all.Slice(n, n+200)
	ix := build(t, train, Config{Seed: 1}, 2)
	for _, tc := range []struct {
		ef   int
		want float64
	}{{16, 0.80}, {64, 0.95}, {256, 0.99}} {
		r := recall(t, ix, queries, 10, tc.ef, nil)
		t.Logf("ef=%d recall@10=%.4f", tc.ef, r)
		if r < tc.want {
			t.Errorf("ef=%d: recall@10 %.4f, want ≥ %.2f", tc.ef, r, tc.want)
		}
	}
}

func TestRecallUniform(t *testing.T) {
	n := sized(3000)
	rng := rand.New(rand.NewPCG(2, 2))
	data := dataset.NewMatrix(n+100, 24)
	for i := range data.Data {
		data.Data[i] = rng.Float32()
	}
	train, queries := data.Slice(0, n), data.Slice(n, n+100)
	ix := build(t, train, Config{M: 8, EfConstruction: 100, Seed: 2}, 1)
	if r := recall(t, ix, queries, 10, 100, nil); r < 0.95 {
		t.Errorf("recall@10 %.4f, want ≥ 0.95", r)
	}
	// Dot-product distance works as well (the engine negates Dot).
	negDot := func(a, b []float32) float32 { return -vec.Dot(a, b) }
	ix = build(t, train, Config{EfConstruction: 100, Distance: negDot, Seed: 2}, 2)
	if r := recall(t, ix, queries, 10, 100, nil); r < 0.9 {
		t.Errorf("dot: recall@10 %.4f, want ≥ 0.9", r)
	}
}

func TestKeepPruned(t *testing.T) {
	n := sized(2000)
	all := dataset.Clustered(n+100, 32, 20, 3)
	ix := build(t, all.Slice(0, n), Config{Seed: 3, KeepPruned: true}, 2)
	if r := recall(t, ix, all.Slice(n, n+100), 10, 64, nil); r < 0.95 {
		t.Errorf("recall@10 %.4f, want ≥ 0.95", r)
	}
}

func TestScanExact(t *testing.T) {
	data := dataset.Clustered(700, 8, 5, 4)
	ix := New(Config{Dim: 8})
	for i := range data.Rows {
		ix.Append(data.Row(i))
	}
	ix.Delete(3)
	ix.Delete(10)
	accept := func(id uint32) bool { return id%7 != 0 }
	q := data.Row(5)
	for _, tc := range []struct {
		k        int
		from, to uint32
		accept   func(uint32) bool
	}{{10, 0, 700, nil}, {10, 0, 700, accept}, {700, 0, 700, nil}, {5, 100, 200, nil}, {5, 650, 1 << 30, accept}, {3, 20, 20, nil}} {
		var want []Result
		for id := tc.from; id < min(tc.to, 700); id++ {
			if id == 3 || id == 10 || (tc.accept != nil && !tc.accept(id)) {
				continue
			}
			want = append(want, Result{ID: id, Distance: vec.L2Squared(q, data.Row(int(id)))})
		}
		slices.SortStableFunc(want, func(a, b Result) int { return cmpFloat(a.Distance, b.Distance) })
		want = want[:min(tc.k, len(want))]
		got := ix.Scan(q, tc.k, tc.from, tc.to, tc.accept)
		if len(got) != len(want) {
			t.Fatalf("%+v: %d results, want %d", tc, len(got), len(want))
		}
		for i := range got {
			// Equal distances may come in either order.
			if got[i].Distance != want[i].Distance {
				t.Fatalf("%+v: result %d = %v, want %v", tc, i, got[i], want[i])
			}
		}
	}
	if got := ix.Scan(q, 0, 0, 700, nil); got != nil {
		t.Fatalf("k=0: %v", got)
	}
	// Nothing is linked: Search finds nothing while Scan does.
	if got := ix.Search(q, 10, 10, nil); len(got) != 0 {
		t.Fatalf("Search before Link: %v", got)
	}
}

func TestDeleteAndAccept(t *testing.T) {
	n := sized(3000)
	all := dataset.Clustered(n+50, 32, 30, 5)
	train, queries := all.Slice(0, n), all.Slice(n, n+50)
	ix := build(t, train, Config{Seed: 5}, 2)
	for id := uint32(0); id < uint32(n); id += 2 {
		ix.Delete(id)
	}
	ix.Delete(1 << 31) // out of range: ignored
	if !ix.Deleted(0) || ix.Deleted(1) || ix.Deleted(1<<31) {
		t.Fatal("Deleted disagrees with Delete")
	}
	accept := func(id uint32) bool { return id%3 != 0 }
	for q := range queries.Rows {
		for _, got := range [][]Result{
			ix.Search(queries.Row(q), 10, 64, nil),
			ix.Search(queries.Row(q), 10, 64, accept),
			ix.Scan(queries.Row(q), 10, 0, uint32(n), accept),
		} {
			if len(got) != 10 {
				t.Fatalf("query %d: %d results", q, len(got))
			}
			for _, r := range got {
				if r.ID%2 == 0 {
					t.Fatalf("query %d: deleted node %d returned", q, r.ID)
				}
			}
		}
		for _, r := range ix.Search(queries.Row(q), 10, 64, accept) {
			if !accept(r.ID) {
				t.Fatalf("query %d: rejected node %d returned", q, r.ID)
			}
		}
	}
	// Tombstones keep the graph navigable: recall over the live half holds.
	if r := recall(t, ix, queries, 10, 64, accept); r < 0.9 {
		t.Errorf("recall@10 with deletes and filter %.4f, want ≥ 0.9", r)
	}
	// Everything deleted: no answers, no hang.
	for id := range uint32(n) {
		ix.Delete(id)
	}
	if got := ix.Search(queries.Row(0), 10, 64, nil); len(got) != 0 {
		t.Fatalf("all deleted: %v", got)
	}
}

func TestSmall(t *testing.T) {
	ix := New(Config{Dim: 2})
	if ix.Search([]float32{0, 0}, 5, 10, nil) != nil || ix.Len() != 0 {
		t.Fatal("empty index answers")
	}
	a := ix.Append([]float32{1, 1})
	if ix.Linked(a) {
		t.Fatal("linked before Link")
	}
	ix.Link(a)
	ix.Link(a) // no-op
	if !ix.Linked(a) || ix.Linked(7) {
		t.Fatal("Linked wrong")
	}
	got := ix.Search([]float32{0, 0}, 5, 1, nil)
	if len(got) != 1 || got[0] != (Result{ID: a, Distance: 2}) {
		t.Fatalf("one node: %v", got)
	}
	b := ix.Append([]float32{0, 0})
	ix.Link(b)
	c := ix.Append([]float32{5, 5}) // appended, not linked
	got = ix.Search([]float32{0, 0}, 5, 1, nil)
	if len(got) != 2 || got[0].ID != b || got[1].ID != a {
		t.Fatalf("two nodes: %v", got)
	}
	if got := ix.Search([]float32{0, 0}, 0, 10, nil); got != nil {
		t.Fatalf("k=0: %v", got)
	}
	if v := ix.Vector(c); !slices.Equal(v, []float32{5, 5}) || cap(v) != 2 {
		t.Fatalf("Vector = %v (cap %d)", v, cap(v))
	}
	mustPanic(t, "Append wrong dim", func() { ix.Append([]float32{1}) })
	mustPanic(t, "Search wrong dim", func() { ix.Search([]float32{1}, 1, 1, nil) })
	mustPanic(t, "Link out of range", func() { ix.Link(99) })
	mustPanic(t, "Vector out of range", func() { ix.Vector(99) })
	mustPanic(t, "Dim 0", func() { New(Config{}) })
}

func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", name)
		}
	}()
	f()
}

func TestLevels(t *testing.T) {
	ix := New(Config{Dim: 1, M: 16, Seed: 9})
	counts := make([]int, maxLayers)
	const n = 200000
	for id := range uint32(n) {
		counts[ix.levelOf(id)]++
	}
	// P(level ≥ l) = M^-l.
	if got := float64(n-counts[0]) / n; got < 0.055 || got > 0.070 {
		t.Errorf("P(level ≥ 1) = %.4f, want about 1/16", got)
	}
	if ix.levelOf(123) != New(Config{Dim: 1, M: 16, Seed: 9}).levelOf(123) {
		t.Error("levels not deterministic")
	}
}

func TestChunkGrowth(t *testing.T) {
	// Wide vectors give small chunks: 1100 nodes of 2048 dimensions fill
	// several.
	all := dataset.Clustered(1100, 2048, 10, 6)
	ix := build(t, all, Config{M: 8, EfConstruction: 40, Seed: 6}, 2)
	if chunks := len(*ix.chunks.Load()); chunks < 3 || chunks != (1100+1<<ix.chunkShift-1)>>ix.chunkShift {
		t.Fatalf("%d chunks of %d nodes", chunks, 1<<ix.chunkShift)
	}
	size := uint32(1) << ix.chunkShift
	for _, id := range []uint32{0, size - 1, size, 1099} {
		if !slices.Equal(ix.Vector(id), all.Row(int(id))) {
			t.Fatalf("vector %d differs", id)
		}
		if got := ix.Search(all.Row(int(id)), 1, 32, nil); len(got) != 1 || got[0].Distance != 0 {
			t.Fatalf("self search %d: %v", id, got)
		}
	}
	if mb := ix.MemoryBytes(); mb < 1100*2048*4 || mb > 2*1100*2048*4 {
		t.Fatalf("MemoryBytes %d", mb)
	}
}

func TestSearchAllocs(t *testing.T) {
	all := dataset.Clustered(sized(2000), 32, 10, 7)
	ix := build(t, all, Config{Seed: 7}, 1)
	q := all.Row(17)
	accept := func(id uint32) bool { return id%2 == 0 }
	ix.Search(q, 10, 64, nil) // warm the searcher
	if a := testing.AllocsPerRun(200, func() { ix.Search(q, 10, 64, nil) }); a != 1 {
		t.Errorf("Search: %v allocations per run, want 1 (the answer)", a)
	}
	if a := testing.AllocsPerRun(200, func() { ix.Search(q, 10, 64, accept) }); a != 1 {
		t.Errorf("Search with accept: %v allocations per run, want 1", a)
	}
	if a := testing.AllocsPerRun(50, func() { ix.Scan(q, 10, 0, uint32(ix.Len()), accept) }); a != 1 {
		t.Errorf("Scan: %v allocations per run, want 1", a)
	}
}
