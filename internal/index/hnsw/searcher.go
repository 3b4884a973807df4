package hnsw

import (
	"runtime"

	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/scalar"
)

// searcher is the scratch space of one search or Link: visited marks, the two
// heaps of the beam search and buffers for neighbour selection. Searchers are
// kept on a free list and reused, so a steady-state Search allocates only its
// answer.
type searcher struct {
	// marks[id] == epoch means id was visited by the current search. Bumping
	// epoch forgets every mark in O(1); marks are cleared only when the 16-bit
	// epoch wraps, once every 65,535 searches. 16 bits keep the array small
	// and cache-friendly: 2 bytes per node.
	marks []uint16
	epoch uint16

	cand    index.MinHeap     // nodes to expand, closest first
	res     index.MaxHeap     // best nodes found, farthest on top
	seeds   []index.Candidate // where searchLayer starts
	batch   []uint32          // unvisited neighbours of the node being expanded
	sorted  []index.Candidate // searchLayer's results, ascending
	pruned  []index.Candidate // candidates the heuristic rejected
	scratch []index.Candidate // lists being re-selected by addLink
	layers  [maxLayers][]index.Candidate
	query   scalar.Query // the prepared query of a quantized search
}

// startSearch forgets all visits, sizing marks for an index of n nodes.
func (s *searcher) startSearch(n int) {
	if len(s.marks) < n {
		s.marks = make([]uint16, n+n/4)
		s.epoch = 0
	}
	s.epoch++
	if s.epoch == 0 {
		clear(s.marks)
		s.epoch = 1
	}
}

// visit marks id visited and reports whether it already was.
func (s *searcher) visit(id uint32) bool {
	if int(id) >= len(s.marks) {
		// A node appended and linked since the search started.
		s.grow(int(id) + 1)
	}
	if s.marks[id] == s.epoch {
		return true
	}
	s.marks[id] = s.epoch
	return false
}

func (s *searcher) grow(n int) {
	marks := make([]uint16, n+n/4)
	copy(marks, s.marks)
	s.marks = marks
}

func (ix *Index) getSearcher() *searcher {
	ix.searchers.Lock()
	if n := len(ix.searchers.free); n > 0 {
		s := ix.searchers.free[n-1]
		ix.searchers.free = ix.searchers.free[:n-1]
		ix.searchers.Unlock()
		return s
	}
	ix.searchers.Unlock()
	return new(searcher)
}

// putSearcher returns s to the free list. The list is bounded so that a burst
// of concurrent searches does not pin their scratch forever. A plain list is
// used rather than a sync.Pool because the pool drops its contents at every
// garbage collection, and the visited marks of a large index are worth keeping.
func (ix *Index) putSearcher(s *searcher) {
	ix.searchers.Lock()
	if len(ix.searchers.free) < 2*runtime.GOMAXPROCS(0) {
		ix.searchers.free = append(ix.searchers.free, s)
	}
	ix.searchers.Unlock()
}
