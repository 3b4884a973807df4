package ivfpq

import (
	"fmt"
	"runtime"

	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/pq"
	"github.com/hippo-db/hippo/internal/vec"
)

// Search returns up to k approximate nearest neighbours of q, closest first,
// among the nodes that are linked, not deleted and accepted by accept (nil
// accepts all). nprobe, the ef of other indexes, is how many lists are
// scanned, clamped to [1, NList]: larger is slower and finds more of the
// true neighbours. Before the index is trained Search is an exact scan of
// the linked nodes. The distances returned are estimates from the codes,
// or exact when the index re-ranks (Config.Rerank). accept is called from
// the calling goroutine only, for candidates that would enter the answer.
// Search is safe concurrently with every method and, once warm, allocates
// only the returned slice. It panics if len(q) != Dim.
func (ix *Index) Search(q []float32, k, nprobe int, accept func(id uint32) bool) []Result {
	if len(q) != ix.dim {
		panic(fmt.Sprintf("ivfpq: Search with a %d-dimensional query in a %d-dimensional index", len(q), ix.dim))
	}
	if k <= 0 {
		return nil
	}
	if !ix.ready.Load() {
		return ix.scan(q, k, 0, ix.count.Load(), accept, true)
	}
	m := ix.model.Load()
	s := ix.getSearcher()
	defer ix.putSearcher(s)
	nprobe = min(max(nprobe, 1), ix.nlist)

	// Rank the lists: by ‖q-c‖² for L2, by -q·c otherwise.
	probe := s.probe[:0]
	for l := range ix.nlist {
		c := m.coarse.Row(l)
		var d float32
		if ix.metric == index.L2 {
			d = vec.L2Squared(q, c)
		} else {
			d = -vec.Dot(q, c)
		}
		probe.Offer(index.Candidate{Dist: d, ID: uint32(l)}, nprobe)
	}
	s.probe = probe

	m.pq.Table(q, s.table)
	want := k
	if ix.keepVectors() {
		want = max(k, ix.rerank)
	}
	res := s.res[:0]
	dir := *ix.chunks.Load()
	for _, p := range probe {
		// distance = base + extra + mult·q·r̂ (see the package documentation).
		base, mult := p.Dist, float32(-2)
		switch ix.metric {
		case index.Dot:
			mult = -1
		case index.Cosine:
			base, mult = 1+p.Dist, -1
		}
		d := ix.lists[p.ID].data.Load()
		if d == nil {
			continue
		}
		n := int(d.n.Load())
		ids, codes, extra := d.ids[:n], d.codes[:n*ix.m], d.extra[:n]
		for j, id := range ids {
			dist := base + extra[j] + mult*pq.Sum(s.table, codes[j*ix.m:(j+1)*ix.m])
			if len(res) == want && !(index.Candidate{Dist: dist, ID: id}).Less(res[0]) {
				continue
			}
			if int(id>>ix.chunkShift) >= len(dir) {
				dir = *ix.chunks.Load()
			}
			if dir[id>>ix.chunkShift].state[id&ix.chunkMask].Load()&(stateLinked|stateDeleted) != stateLinked ||
				(accept != nil && !accept(id)) {
				continue
			}
			if len(res) < want {
				res.Push(index.Candidate{Dist: dist, ID: id})
			} else {
				res.ReplaceTop(index.Candidate{Dist: dist, ID: id})
			}
		}
	}
	if ix.keepVectors() {
		// Re-rank with the exact distances; the vectors are kept.
		cands := append(s.sorted[:0], res...)
		s.sorted = cands
		res = res[:0]
		for _, c := range cands {
			ch, slot := ix.node(c.ID)
			res.Offer(index.Candidate{Dist: ix.distance(q, ix.floats(ch, slot)), ID: c.ID}, k)
		}
	}
	out := res.Results(k)
	s.res = res
	return out
}

// Scan returns the k nearest neighbours of q, closest first, among nodes
// from ≤ id < to (to is clamped to Len()), linked or not, skipping deleted
// nodes and those accept rejects. Distances are exact for nodes whose
// float32 vector the index still holds (not yet encoded, or Rerank > 0),
// and otherwise to the vector the node's code stands for. Safe concurrently
// with every method; it allocates only the returned slice. It panics if
// len(q) != Dim.
func (ix *Index) Scan(q []float32, k int, from, to uint32, accept func(id uint32) bool) []Result {
	if len(q) != ix.dim {
		panic(fmt.Sprintf("ivfpq: Scan with a %d-dimensional query in a %d-dimensional index", len(q), ix.dim))
	}
	return ix.scan(q, k, from, min(to, ix.count.Load()), accept, false)
}

func (ix *Index) scan(q []float32, k int, from, to uint32, accept func(uint32) bool, linkedOnly bool) []Result {
	if k <= 0 || from >= to {
		return nil
	}
	s := ix.getSearcher()
	defer ix.putSearcher(s)
	res := s.res[:0]
	dir := *ix.chunks.Load()
	m := ix.model.Load()
	for id := from; id < to; id++ {
		c := dir[id>>ix.chunkShift]
		slot := int(id & ix.chunkMask)
		st := c.state[slot].Load()
		if st&stateDeleted != 0 || (linkedOnly && st&stateLinked == 0) || (accept != nil && !accept(id)) {
			continue
		}
		v := ix.floats(c, slot)
		if v == nil {
			// The chunk's vectors were dropped since the state was loaded:
			// every node of it is now encoded or deleted. The model may
			// have been published since m was loaded, too.
			if st = c.state[slot].Load(); st&stateEncoded == 0 {
				continue
			}
			if m == nil {
				m = ix.model.Load()
			}
			v = s.vector
			ix.decode(m, c.where[slot], v)
		}
		res.Offer(index.Candidate{Dist: ix.distance(q, v), ID: id}, k)
	}
	out := res.Results(k)
	s.res = res
	return out
}

// searcher is the scratch of one search or encoding, reused through a free
// list so that a warm Search allocates only its answer.
type searcher struct {
	probe  index.MaxHeap // lists to scan
	res    index.MaxHeap // best candidates, farthest on top
	sorted []index.Candidate
	table  []float32 // M×256 ADC table
	scores []float32 // max(NList, 256): nearest-centroid scratch
	vector []float32 // Dim: residuals, decoded vectors
	code   []uint8   // M
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
	return &searcher{
		table:  make([]float32, pq.K*ix.m),
		scores: make([]float32, max(ix.nlist, pq.K)),
		vector: make([]float32, ix.dim),
		code:   make([]uint8, ix.m),
	}
}

func (ix *Index) putSearcher(s *searcher) {
	ix.searchers.Lock()
	if len(ix.searchers.free) < 2*runtime.GOMAXPROCS(0) {
		ix.searchers.free = append(ix.searchers.free, s)
	}
	ix.searchers.Unlock()
}
