package index

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// randomCandidates returns n candidates with few distinct distances, so that
// ties, which Less breaks by id, are common.
func randomCandidates(r *rand.Rand, n int) []Candidate {
	out := make([]Candidate, n)
	for i := range out {
		out[i] = Candidate{Dist: float32(r.IntN(n/4 + 1)), ID: uint32(r.IntN(1 << 20))}
	}
	return out
}

func sortedCopy(cs []Candidate) []Candidate {
	s := slices.Clone(cs)
	slices.SortFunc(s, func(a, b Candidate) int {
		switch {
		case a.Less(b):
			return -1
		case b.Less(a):
			return 1
		}
		return 0
	})
	return s
}

func TestCandidateLess(t *testing.T) {
	f := func(a, b Candidate, want bool) {
		t.Helper()
		if got := a.Less(b); got != want {
			t.Errorf("%+v.Less(%+v) = %v, want %v", a, b, got, want)
		}
	}
	f(Candidate{1, 9}, Candidate{2, 0}, true)
	f(Candidate{2, 0}, Candidate{1, 9}, false)
	f(Candidate{1, 3}, Candidate{1, 4}, true)
	f(Candidate{1, 4}, Candidate{1, 3}, false)
	f(Candidate{1, 4}, Candidate{1, 4}, false)
}

func TestHeapsOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 7, 64, 1000} {
		cs := randomCandidates(r, n)
		want := sortedCopy(cs)

		var minH MinHeap
		var maxH MaxHeap
		for _, c := range cs {
			minH.Push(c)
			maxH.Push(c)
		}
		for i := range n {
			if got := minH.Pop(); got != want[i] {
				t.Fatalf("n=%d: MinHeap pop %d = %+v, want %+v", n, i, got, want[i])
			}
			if got := maxH.Pop(); got != want[n-1-i] {
				t.Fatalf("n=%d: MaxHeap pop %d = %+v, want %+v", n, i, got, want[n-1-i])
			}
		}
		if len(minH) != 0 || len(maxH) != 0 {
			t.Fatalf("n=%d: %d and %d left after popping everything", n, len(minH), len(maxH))
		}
	}
}

// TestMaxHeapKeepsBestK drives MaxHeap as searches do (topK).
func TestMaxHeapKeepsBestK(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{1, 2, 10, 100} {
		cs := randomCandidates(r, 2000)
		h := topK(nil, cs, k)
		want := sortedCopy(cs)[:k]
		dst := make([]Candidate, 0, 3) // too small for k > 3: DrainSorted grows it
		got := h.DrainSorted(dst)
		if !slices.Equal(got, want) {
			t.Fatalf("k=%d: best %v, want %v", k, got, want)
		}
		if len(h) != 0 {
			t.Fatalf("k=%d: %d left after DrainSorted", k, len(h))
		}
		// Storage large enough is reused.
		for _, c := range want {
			h.Push(c)
		}
		again := h.DrainSorted(got[:0])
		if !slices.Equal(again, want) || &again[0] != &got[0] {
			t.Fatalf("k=%d: second drain %v (reused storage: %v)", k, again, &again[0] == &got[0])
		}
	}
}

func TestHeapsDoNotAllocateWhenWarm(t *testing.T) {
	cs := randomCandidates(rand.New(rand.NewPCG(5, 6)), 256)
	var minH MinHeap
	var maxH MaxHeap
	var sorted []Candidate
	run := func() {
		for _, c := range cs {
			minH.Push(c)
			maxH.Push(c)
		}
		for len(minH) > 0 {
			minH.Pop()
		}
		sorted = maxH.DrainSorted(sorted)
	}
	run()
	if allocs := testing.AllocsPerRun(10, run); allocs != 0 {
		t.Fatalf("%v allocations per run of warm heaps", allocs)
	}
}

// BenchmarkMaxHeapTopK keeps the best 64 of 4,096 candidates. (The loop
// body is a function of its own: with it written inline in the b.Loop
// loop, Go 1.26.8's compiler crashes.)
func BenchmarkMaxHeapTopK(b *testing.B) {
	cs := randomCandidates(rand.New(rand.NewPCG(7, 8)), 4096)
	var h MaxHeap
	b.ReportAllocs()
	for b.Loop() {
		h = topK(h[:0], cs, 64)
	}
}

// topK keeps the k best of cs in h, as a search keeps its answer.
func topK(h MaxHeap, cs []Candidate, k int) MaxHeap {
	for _, c := range cs {
		h.Offer(c, k)
	}
	return h
}

func TestMaxHeapResults(t *testing.T) {
	var h MaxHeap
	for i, d := range []float32{3, 1, 4, 1.5, 9} {
		h.Push(Candidate{Dist: d, ID: uint32(i)})
	}
	got := h.Results(len(h))
	want := []Result{{ID: 1, Distance: 1}, {ID: 3, Distance: 1.5}, {ID: 0, Distance: 3}, {ID: 2, Distance: 4}, {ID: 4, Distance: 9}}
	if len(h) != 0 || !slices.Equal(got, want) {
		t.Fatalf("results %v, heap left %v; want %v and empty", got, h, want)
	}
	// Results(k) keeps the k nearest of a heap that holds more.
	for i, d := range []float32{3, 1, 4, 1.5, 9} {
		h.Push(Candidate{Dist: d, ID: uint32(i)})
	}
	if got := h.Results(2); len(h) != 0 || !slices.Equal(got, want[:2]) {
		t.Fatalf("results of 2: %v, heap left %v; want %v", got, h, want[:2])
	}
}
