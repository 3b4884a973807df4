package hnsw

import (
	"runtime"

	"github.com/hippo-db/hippo/internal/index/scalar"
)

// candidate is a node and its distance to the current query.
type candidate struct {
	dist float32
	id   uint32
}

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

	cand    minHeap     // nodes to expand, closest first
	res     maxHeap     // best nodes found, farthest on top
	seeds   []candidate // where searchLayer starts
	batch   []uint32    // unvisited neighbours of the node being expanded
	sorted  []candidate // searchLayer's results, ascending
	pruned  []candidate // candidates the heuristic rejected
	scratch []candidate // lists being re-selected by addLink
	layers  [maxLayers][]candidate
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

// minHeap is a binary heap of candidates, closest on top.
type minHeap []candidate

func (h *minHeap) push(c candidate) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].dist <= c.dist {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = c
	*h = s
}

func (h *minHeap) pop() candidate {
	s := *h
	top := s[0]
	n := len(s) - 1
	last := s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s[r].dist < s[l].dist {
			c = r
		}
		if last.dist <= s[c].dist {
			break
		}
		s[i] = s[c]
		i = c
	}
	if n > 0 {
		s[i] = last
	}
	*h = s
	return top
}

// maxHeap is a binary heap of candidates, farthest on top.
type maxHeap []candidate

func (h *maxHeap) push(c candidate) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].dist >= c.dist {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = c
	*h = s
}

func (h *maxHeap) pop() candidate {
	s := *h
	top := s[0]
	n := len(s) - 1
	last := s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s[r].dist > s[l].dist {
			c = r
		}
		if last.dist >= s[c].dist {
			break
		}
		s[i] = s[c]
		i = c
	}
	if n > 0 {
		s[i] = last
	}
	*h = s
	return top
}

// replaceTop replaces the farthest candidate with c, which must be closer.
func (h maxHeap) replaceTop(c candidate) {
	n := len(h)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		ch := l
		if r := l + 1; r < n && h[r].dist > h[l].dist {
			ch = r
		}
		if c.dist >= h[ch].dist {
			break
		}
		h[i] = h[ch]
		i = ch
	}
	h[i] = c
}

// drainSorted empties h into dst (reusing its storage) in ascending order.
func (h *maxHeap) drainSorted(dst []candidate) []candidate {
	n := len(*h)
	if cap(dst) < n {
		dst = make([]candidate, n, n+n/2)
	}
	dst = dst[:n]
	for i := n - 1; i >= 0; i-- {
		dst[i] = h.pop()
	}
	return dst
}
