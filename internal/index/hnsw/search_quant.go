package hnsw

import (
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/hippo-db/hippo/internal/index"
)

// codeView is what a quantized search reads of one code generation, loaded
// once per search: covered first, then the chunk directory, so that every
// node below covered has its chunk in the directory.
type codeView struct {
	set     *codeSet
	chunks  []*codeChunk
	covered uint32
	stride  int
}

func (cs *codeSet) view() codeView {
	covered := cs.covered.Load()
	return codeView{set: cs, chunks: *cs.chunks.Load(), covered: covered, stride: cs.stride}
}

// approx returns the code distance from the prepared query to node id, or
// the exact distance for a node appended after the generation was replaced
// (rare; both estimate the same quantity, so they can be compared).
func (ix *Index) approx(s *searcher, v *codeView, q []float32, id uint32) float32 {
	if id >= v.covered {
		return ix.distance(q, ix.vector(id))
	}
	c := v.chunks[id>>ix.chunkShift]
	off := int(id & ix.chunkMask)
	return s.query.Distance(c.codes[off*v.stride:(off+1)*v.stride:(off+1)*v.stride], c.bias[off])
}

// searchQuantized is Search on a quantized index: the descent through the
// upper layers and the beam search on layer 0 use code distances, which
// read a quarter of the bytes of the float32 vectors, then the best
// candidates are re-ranked with exact distances, so the distances returned
// are exact. s is the caller's searcher; the entry point e is not 0.
func (ix *Index) searchQuantized(s *searcher, cs *codeSet, e uint64, q []float32, k, ef int, accept func(uint32) bool) []Result {
	cs.quantizer.Prepare(q, &s.query)
	v := cs.view()
	id, top := unpackEntry(e)
	cur := index.Candidate{Dist: ix.approx(s, &v, q, id), ID: id}
	for layer := top; layer > 0; layer-- {
		cur = ix.greedyCodes(s, &v, q, cur, layer)
	}
	s.seeds = append(s.seeds[:0], cur)
	ix.searchCodes(s, &v, q, ef, accept)

	// Re-rank. The candidates' float32 vectors are mostly not in cache:
	// start loading the first lines of all of them, then the whole of the
	// next one while computing each.
	s.sorted = s.res.DrainSorted(s.sorted)
	cands := s.sorted
	if r := ix.quantization.Rerank; r > 0 && len(cands) > max(r, k) {
		cands = cands[:max(r, k)]
	}
	dir := *ix.chunks.Load()
	vectorLines := min((ix.dim*4+63)/64, 64)
	for _, c := range cands {
		prefetch(unsafe.Pointer(&dir[c.ID>>ix.chunkShift].vectors[int(c.ID&ix.chunkMask)*ix.dim]), 2)
	}
	res := s.res[:0]
	for i, c := range cands {
		if i+1 < len(cands) {
			next := cands[i+1].ID
			prefetch(unsafe.Pointer(&dir[next>>ix.chunkShift].vectors[int(next&ix.chunkMask)*ix.dim]), vectorLines)
		}
		off := int(c.ID&ix.chunkMask) * ix.dim
		d := ix.distance(q, dir[c.ID>>ix.chunkShift].vectors[off:off+ix.dim:off+ix.dim])
		res.Offer(index.Candidate{Dist: d, ID: c.ID}, k)
	}
	out := res.Results(k)
	s.res = res
	return out
}

// greedyCodes is greedy on code distances.
func (ix *Index) greedyCodes(s *searcher, v *codeView, q []float32, cur index.Candidate, layer int) index.Candidate {
	for changed := true; changed; {
		changed = false
		c, slot := ix.node(cur.ID)
		list := ix.list(c, slot, layer)
		n := min(int(atomic.LoadUint32(&list[0])), len(list)-1)
		for i := 1; i <= n; i++ {
			nb := atomic.LoadUint32(&list[i])
			if d := ix.approx(s, v, q, nb); d < cur.Dist {
				cur = index.Candidate{Dist: d, ID: nb}
				changed = true
			}
		}
	}
	return cur
}

// searchCodes is searchLayer for a query on layer 0 with code distances. It
// is a copy rather than a variant of searchLayer because this loop is the
// hot path: choosing the distance through a function value or a branch per
// neighbour measured slower than the duplication costs in code.
func (ix *Index) searchCodes(s *searcher, v *codeView, q []float32, ef int, accept func(uint32) bool) {
	s.startSearch(int(ix.count.Load()))
	s.cand = s.cand[:0]
	s.res = s.res[:0]
	lower := float32(math.Inf(1))
	for _, c := range s.seeds {
		if s.visit(c.ID) {
			continue
		}
		s.cand.Push(c)
		if ix.eligible(c.ID, accept) {
			s.res.Push(c)
			if len(s.res) > ef {
				s.res.Pop()
			}
		}
	}
	if len(s.res) == ef {
		lower = s.res[0].Dist
	}
	dir := *ix.chunks.Load()
	codeLines := v.stride / 64
	listLines := min((ix.stride0*4+63)/64, 4)
	for len(s.cand) > 0 {
		c := s.cand.Pop()
		if c.Dist > lower {
			break
		}
		ch, slot := dir[c.ID>>ix.chunkShift], int(c.ID&ix.chunkMask)
		list := ch.links[slot*ix.stride0 : (slot+1)*ix.stride0]
		n := min(int(atomic.LoadUint32(&list[0])), len(list)-1)
		batch := s.batch[:0]
		for i := 1; i <= n; i++ {
			nb := atomic.LoadUint32(&list[i])
			if s.visit(nb) {
				continue
			}
			if int(nb>>ix.chunkShift) >= len(dir) {
				dir = *ix.chunks.Load()
			}
			batch = append(batch, nb)
		}
		s.batch = batch
		if len(s.cand) > 0 {
			next := s.cand[0].ID
			prefetch(unsafe.Pointer(&dir[next>>ix.chunkShift].links[int(next&ix.chunkMask)*ix.stride0]), listLines)
		}
		// A code is a few cache lines (13 at 784 dimensions): fetch all
		// of every neighbour's at once, so their misses overlap.
		for _, nb := range batch {
			if nb < v.covered {
				prefetch(unsafe.Pointer(&v.chunks[nb>>ix.chunkShift].codes[int(nb&ix.chunkMask)*v.stride]), codeLines)
			}
		}
		for _, nb := range batch {
			d := ix.approx(s, v, q, nb)
			if d >= lower {
				continue
			}
			s.cand.Push(index.Candidate{Dist: d, ID: nb})
			if !ix.eligibleIn(dir[nb>>ix.chunkShift], nb, accept) {
				continue
			}
			if len(s.res) < ef {
				s.res.Push(index.Candidate{Dist: d, ID: nb})
				if len(s.res) == ef {
					lower = s.res[0].Dist
				}
			} else {
				s.res.ReplaceTop(index.Candidate{Dist: d, ID: nb})
				lower = s.res[0].Dist
			}
		}
	}
}
