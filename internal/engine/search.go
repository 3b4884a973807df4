package engine

import (
	"fmt"
	"math"
	"slices"

	"github.com/hippo-db/hippo/internal/filter"
	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/vec"
)

// Query is one k-nearest-neighbour search.
type Query struct {
	Vector []float32
	K      int
	Ef     int            // 0: the collection's default
	Filter *filter.Filter // nil: every record
}

// Hit is one search result.
type Hit struct {
	ID       string
	Distance float32
	Metadata map[string]any // shared and read-only
}

// Plan names how a search was executed, for stats and tests.
type Plan string

const (
	PlanExact Plan = "exact"
	PlanHNSW  Plan = "hnsw"
	PlanIVFPQ Plan = "ivfpq"
)

// selectivitySample is how many nodes are sampled to estimate how many
// records a filter matches.
const selectivitySample = 256

func sqrt32(d float32) float32 { return float32(math.Sqrt(float64(max(d, 0)))) }

// validateQuery checks q against the collection and returns the vector in
// index space (normalised for cosine).
func (c *Collection) validateQuery(q *Query) ([]float32, error) {
	if q.K < 1 || q.K > MaxK {
		return nil, invalidf("k must be between 1 and %d, got %d", MaxK, q.K)
	}
	if q.Ef < 0 || q.Ef > MaxEf {
		return nil, invalidf("ef must be between 1 and %d, got %d", MaxEf, q.Ef)
	}
	if len(q.Vector) != c.desc.Dimension {
		return nil, &Error{Kind: ErrInvalid,
			Message: fmt.Sprintf("query vector has %d dimensions, collection %q has %d", len(q.Vector), c.desc.Name, c.desc.Dimension),
			Details: map[string]any{"expected": c.desc.Dimension, "got": len(q.Vector)}}
	}
	var norm float64
	for i, f := range q.Vector {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, invalidf("query vector[%d] is not a finite number", i)
		}
		norm += float64(f) * float64(f)
	}
	if c.desc.Metric != "cosine" {
		return q.Vector, nil
	}
	if norm == 0 {
		return nil, invalidf("a zero query vector has no direction (metric cosine)")
	}
	v := append([]float32(nil), q.Vector...)
	vec.Normalize(v)
	return v, nil
}

// search runs q and returns the hits in ascending distance.
func (c *Collection) search(q *Query) ([]Hit, Plan, error) {
	v, err := c.validateQuery(q)
	if err != nil {
		return nil, "", err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	results, plan := c.searchLocked(v, q)
	hits := make([]Hit, len(results))
	for i, r := range results {
		n := &c.mu.nodes[r.ID]
		hits[i] = Hit{ID: n.id, Distance: c.toDistance(r.Distance), Metadata: n.meta}
	}
	return hits, plan, nil
}

func (c *Collection) searchLocked(v []float32, q *Query) ([]index.Result, Plan) {
	end := uint32(c.index.Len())
	k := q.K
	var accept func(uint32) bool
	if q.Filter != nil {
		nodes := c.mu.nodes
		f := q.Filter
		accept = func(id uint32) bool { return f.Match(nodes[id].meta) }
	}
	exact := func() ([]index.Result, Plan) { return c.index.Scan(v, k, 0, end, accept), PlanExact }
	if !c.hasGraph() || c.mu.live <= exactThreshold {
		return exact()
	}
	// ef is the hnsw beam width, at least k; for ivfpq it is the number of
	// lists probed (nprobe), which has nothing to do with k.
	ivf := c.desc.Index.Type == "ivfpq"
	ef, maxEf := q.Ef, MaxEf
	if ivf {
		maxEf = c.desc.Index.NList
		if ef == 0 {
			ef = c.desc.Index.NProbe
		}
	} else {
		if ef == 0 {
			ef = c.desc.Index.Ef
		}
		ef = max(ef, k)
	}
	ef = min(ef, maxEf)
	if accept != nil {
		s := c.selectivityLocked(accept, end)
		if s < 0.05 || s*float64(c.mu.live) < 4*float64(max(ef, k)) {
			return exact()
		}
		// Only a fraction s of the visited nodes (of the probed lists'
		// entries) can enter the answer: widen the search so about as many
		// of them do as without a filter.
		ef = min(int(float64(ef)/s), maxEf)
	}
	linked := min(c.linkedBelow.Load(), end)
	results := c.index.Search(v, k, ef, accept)
	if linked < end {
		results = mergeResults(results, c.index.Scan(v, k, linked, end, accept), k)
	}
	if len(results) < k && len(results) < c.mu.live {
		// The graph walk came up short (a filter, tombstones): never return
		// fewer than k when k records match.
		return exact()
	}
	if ivf {
		return results, PlanIVFPQ
	}
	return results, PlanHNSW
}

// selectivityLocked estimates the fraction of live records accept admits.
func (c *Collection) selectivityLocked(accept func(uint32) bool, end uint32) float64 {
	step := max(end/selectivitySample, 1)
	var live, matched int
	for id := uint32(0); id < end; id += step {
		if c.index.Deleted(id) {
			continue
		}
		live++
		if accept(id) {
			matched++
		}
	}
	if live == 0 {
		return 1
	}
	return float64(matched) / float64(live)
}

// mergeResults merges two ascending result lists into the k best, dropping
// duplicates (a node linked after the tail scan began appears in both).
func mergeResults(a, b []index.Result, k int) []index.Result {
	out := make([]index.Result, 0, min(k, len(a)+len(b)))
	out = append(out, a...)
	for _, r := range b {
		if !slices.ContainsFunc(a, func(x index.Result) bool { return x.ID == r.ID }) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(x, y index.Result) int {
		switch {
		case x.Distance < y.Distance:
			return -1
		case x.Distance > y.Distance:
			return 1
		}
		return int(x.ID) - int(y.ID)
	})
	return out[:min(k, len(out))]
}
