package hnsw

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/hippo-db/hippo/internal/index"
)

// Link inserts node id, already appended, into the graph; once it returns,
// Search can find the node. Linking a node that is linked, or being linked by
// another goroutine, does nothing. Link is safe concurrently with every
// method, including other Link calls: a parallel build calls it from one
// goroutine per core. It panics if id >= Len().
func (ix *Index) Link(id uint32) {
	if id >= ix.count.Load() {
		panic(fmt.Sprintf("hnsw: Link(%d) of an index of %d nodes", id, ix.count.Load()))
	}
	c, slot := ix.node(id)
	st := &c.state[slot]
	if !index.Claim(st, stateLinking, stateLinking|stateLinked) {
		return
	}
	ix.linkMu.RLock()
	defer ix.linkMu.RUnlock()

	level := ix.levelOf(id)
	c.levels[slot] = uint8(level)
	if level > 0 {
		c.upper[slot] = make([]uint32, level*ix.strideUp)
		ix.upperWords.Add(int64(level * ix.strideUp))
	}

	e := ix.entry.Load()
	if _, top := unpackEntry(e); level > top {
		// The node will become the entry point. Holding entryMu for the
		// whole insertion keeps two such nodes from racing, which would
		// leave the upper layers of one of them unreachable. It serialises
		// little: a node tops the graph with probability M^-(top+1), so
		// after the first few hundred nodes this almost never happens.
		ix.entryMu.Lock()
		defer ix.entryMu.Unlock()
		e = ix.entry.Load()
		if e == 0 {
			st.Or(stateLinked)
			ix.entry.Store(packEntry(id, level))
			return
		}
	}

	s := ix.getSearcher()
	defer ix.putSearcher(s)
	q := ix.vector(id)
	ep, top := unpackEntry(e)
	cur := index.Candidate{Dist: ix.distance(q, ix.vector(ep)), ID: ep}
	for layer := top; layer > level; layer-- {
		cur = ix.greedy(q, cur, layer)
	}

	// Phase 1: find and store the node's own neighbours, top layer down.
	// Nobody can reach the node yet, so nobody else writes its lists.
	s.seeds = append(s.seeds[:0], cur)
	start := min(level, top)
	for layer := start; layer >= 0; layer-- {
		ix.searchLayer(s, q, ix.efConstruction, layer, false, nil)
		s.sorted = s.res.DrainSorted(s.sorted)
		// The whole beam seeds the next layer down, as in the paper.
		s.seeds = append(s.seeds[:0], s.sorted...)
		s.layers[layer] = ix.selectNeighbours(s, append(s.layers[layer][:0], s.sorted...), ix.m)
		list := ix.list(c, slot, layer)
		for i, nb := range s.layers[layer] {
			atomic.StoreUint32(&list[1+i], nb.ID)
		}
		atomic.StoreUint32(&list[0], uint32(len(s.layers[layer])))
	}

	// Phase 2: link back. From here on the node is reachable.
	for layer := start; layer >= 0; layer-- {
		for _, nb := range s.layers[layer] {
			ix.addLink(s, nb.ID, id, nb.Dist, layer)
		}
	}
	st.Or(stateLinked)
	if level > top {
		ix.entry.Store(packEntry(id, level))
	}
}

// levelOf draws node id's top layer from the exponentially decaying
// distribution floor(-ln(U)·mL), mL = 1/ln(M). U is a hash of the seed and the
// id rather than a shared random stream, so levels do not depend on the order
// of concurrent Link calls and need no lock.
func (ix *Index) levelOf(id uint32) int {
	x := uint64(ix.seed) ^ (uint64(id)+1)*0x9e3779b97f4a7c15
	// splitmix64 finaliser.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	u := (float64(x>>11) + 1) / (1 << 53) // in (0, 1]
	return min(int(-math.Log(u)*ix.levelMult), maxLayers-1)
}

// selectNeighbours keeps at most max of cands, which are sorted by ascending
// distance to a base node, using the HNSW heuristic (the paper's algorithm
// 4): a candidate is kept only if it is closer to the base than to every
// candidate kept before it. Links then point in different directions rather
// than all into the nearest cluster, which keeps clusters connected. With
// keepPruned the rejected candidates fill the remaining places, closest
// first. It works in place and returns a prefix of cands.
func (ix *Index) selectNeighbours(s *searcher, cands []index.Candidate, max int) []index.Candidate {
	if len(cands) <= max {
		return cands
	}
	kept := cands[:0]
	s.pruned = s.pruned[:0]
	for i, c := range cands {
		if len(kept) == max {
			if ix.keepPruned {
				s.pruned = append(s.pruned, cands[i:]...)
			}
			break
		}
		cv := ix.vector(c.ID)
		good := true
		for _, k := range kept {
			if ix.distance(cv, ix.vector(k.ID)) < c.Dist {
				good = false
				break
			}
		}
		if good {
			kept = append(kept, c) // len(kept) <= i: never overwrites unread candidates
		} else if ix.keepPruned {
			s.pruned = append(s.pruned, c)
		}
	}
	if ix.keepPruned {
		for _, c := range s.pruned {
			if len(kept) == max {
				break
			}
			kept = append(kept, c)
		}
	}
	return kept
}

// addLink adds x, at distance dist, to y's list on layer. If the list is full
// the heuristic re-selects it from its members and x, which may drop x.
func (ix *Index) addLink(s *searcher, y, x uint32, dist float32, layer int) {
	c, slot := ix.node(y)
	mu := &c.locks[slot]
	mu.Lock()
	defer mu.Unlock()
	list := ix.list(c, slot, layer)
	// Plain reads are fine under the lock: every writer holds it.
	n := int(list[0])
	if n < len(list)-1 {
		atomic.StoreUint32(&list[1+n], x)
		atomic.StoreUint32(&list[0], uint32(n+1))
		return
	}
	yv := ix.vector(y)
	cands := append(s.scratch[:0], index.Candidate{Dist: dist, ID: x})
	for _, nb := range list[1 : 1+n] {
		cands = append(cands, index.Candidate{Dist: ix.distance(yv, ix.vector(nb)), ID: nb})
	}
	slices.SortFunc(cands, func(a, b index.Candidate) int { return cmp.Compare(a.Dist, b.Dist) })
	kept := ix.selectNeighbours(s, cands, len(list)-1)
	// Concurrent readers may see a mix of old and new ids; every id they can
	// see is a valid node, which is all navigation needs.
	for i, k := range kept {
		atomic.StoreUint32(&list[1+i], k.ID)
	}
	atomic.StoreUint32(&list[0], uint32(len(kept)))
	s.scratch = cands
}
