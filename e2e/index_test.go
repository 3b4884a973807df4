package e2e

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hippo-db/hippo/client"
)

// TestIndexSettings creates int8 and IVF-PQ collections through the client's
// typed IndexSpec fields, reads them back and searches them.
func TestIndexSettings(t *testing.T) {
	srv := start(t, t.TempDir())
	c := srv.client(t)
	ctx := context.Background()
	const dim = 16
	specs := map[string]client.IndexSpec{
		"plain": {Type: client.IndexHNSW},
		"int8":  {Type: client.IndexHNSW, Quantization: client.QuantizationInt8},
		// Codes only: distances are estimates, a vector's distance to
		// itself is not 0.
		"pq": {Type: client.IndexIVFPQ, NList: 16, M: 4, NProbe: 4},
		// Re-ranked with the kept float32 vectors: exact distances.
		"pqr": {Type: client.IndexIVFPQ, NList: 16, M: 4, NProbe: 4, Rerank: 50},
	}
	for name, spec := range specs {
		if _, created, err := c.CreateCollection(ctx, name, client.CollectionSpec{Dimension: dim, Metric: client.MetricL2, Index: spec}); err != nil || !created {
			t.Fatalf("create %s: created %v, %v", name, created, err)
		}
	}
	// The typed fields reach the server: the same spec is identical, one
	// differing only in them conflicts.
	if _, created, err := c.CreateCollection(ctx, "int8", client.CollectionSpec{Dimension: dim, Metric: client.MetricL2, Index: specs["int8"]}); err != nil || created {
		t.Errorf("int8 again: created %v, %v; want the existing one", created, err)
	}
	for name, spec := range map[string]client.IndexSpec{
		"int8": {Type: client.IndexHNSW},
		"pq":   {Type: client.IndexIVFPQ, NList: 16, M: 4, NProbe: 4, Rerank: 10},
		"pqr":  {Type: client.IndexIVFPQ, NList: 32, M: 4, NProbe: 4, Rerank: 50},
	} {
		if _, _, err := c.CreateCollection(ctx, name, client.CollectionSpec{Dimension: dim, Metric: client.MetricL2, Index: spec}); !client.IsConflict(err) {
			t.Errorf("%s with %+v: err %v, want a conflict", name, spec, err)
		}
	}

	// Read back: what was asked for, and the server's defaults filled in.
	want := map[string]client.IndexSpec{
		"plain": {Type: client.IndexHNSW, M: 16, EfConstruction: 200, Ef: 64},
		"int8":  {Type: client.IndexHNSW, M: 16, EfConstruction: 200, Ef: 64, Quantization: client.QuantizationInt8},
		"pq":    specs["pq"],
		"pqr":   specs["pqr"],
	}
	for name, w := range want {
		coll, err := c.GetCollection(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(coll.Index, w) {
			t.Errorf("%s: index %+v, want %+v", name, coll.Index, w)
		}
	}

	// 10,000 vectors: past the IVF-PQ training size, max(32·nlist, 9,984).
	const n = 10000
	vectors := clustered(n, dim, 40, rand.New(rand.NewPCG(5, 6)))
	records := func(yield func(client.Record) bool) {
		for i, v := range vectors {
			if !yield(client.Record{ID: fmt.Sprint(i), Vector: v}) {
				return
			}
		}
	}
	for name := range specs {
		if res, err := c.ImportRecords(ctx, name, records, nil); err != nil || res.Imported != n {
			t.Fatalf("import %s: %+v %v", name, res, err)
		}
	}
	stats := map[string]map[string]any{}
	for name := range specs {
		stats[name] = waitNoPending(t, c, name)
	}
	// The int8 codes take memory of their own besides the float32 vectors;
	// codes-only IVF-PQ keeps far less than the vectors.
	bytesPerVector := func(name string) float64 { v, _ := stats[name]["bytes_per_vector"].(float64); return v }
	if bytesPerVector("int8") <= bytesPerVector("plain") {
		t.Errorf("bytes per vector: int8 %.0f, float32 %.0f; the int8 index keeps codes too", bytesPerVector("int8"), bytesPerVector("plain"))
	}
	if bytesPerVector("pq") >= dim*4 || bytesPerVector("pqr") <= dim*4 {
		t.Errorf("bytes per vector: pq %.0f, pqr %.0f; a float32 vector is %d", bytesPerVector("pq"), bytesPerVector("pqr"), dim*4)
	}

	// Each query is a stored vector; it must come back, at distance 0
	// where distances are exact and above 0 where they are PQ estimates.
	const queries = 50
	search := func(name string) (found int) {
		t.Helper()
		for q := range queries {
			id := fmt.Sprint(q * (n / queries))
			res, err := c.Search(ctx, name, client.SearchRequest{Vector: vectors[q*(n/queries)], K: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Results) != 10 {
				t.Fatalf("%s: %d results", name, len(res.Results))
			}
			for rank, r := range res.Results {
				if r.ID != id {
					continue
				}
				found++
				switch exact := name != "pq"; {
				case exact && (rank != 0 || r.Distance != 0):
					t.Errorf("%s: query %s at rank %d, distance %g; want rank 0, distance 0", name, id, rank, r.Distance)
				case !exact && r.Distance <= 0:
					t.Errorf("%s: query %s at distance %g; a PQ estimate is above 0", name, id, r.Distance)
				}
			}
		}
		return found
	}
	for _, name := range []string{"plain", "int8", "pq", "pqr"} {
		if found := search(name); found < queries*9/10 {
			t.Errorf("%s: %d of %d queries found themselves", name, found, queries)
		}
	}
	// ef is IVF-PQ's nprobe per query: for queries between the clusters,
	// probing 1 of 16 lists finds fewer true neighbours than probing all.
	r := rand.New(rand.NewPCG(7, 8))
	recall := func(ef int) float64 {
		t.Helper()
		hits := 0
		for range queries {
			q := make([]float32, dim)
			for j := range q {
				q[j] = r.Float32() * 10
			}
			res, err := c.Search(ctx, "pqr", client.SearchRequest{Vector: q, K: 10, Ef: ef})
			if err != nil {
				t.Fatal(err)
			}
			truth := nearest(vectors, q, 10)
			for _, r := range res.Results {
				if truth[r.ID] {
					hits++
				}
			}
		}
		return float64(hits) / (queries * 10)
	}
	one, all := recall(1), recall(16)
	t.Logf("pqr: recall@10 %.3f probing 1 list, %.3f probing all 16", one, all)
	if all < 0.9 || one >= all {
		t.Errorf("pqr: recall@10 %.3f probing 1 list, %.3f probing all 16", one, all)
	}
}

// nearest returns the ids of the k vectors nearest to q by L2, found by
// brute force.
func nearest(vectors [][]float32, q []float32, k int) map[string]bool {
	type hit struct {
		id   int
		dist float32
	}
	hits := make([]hit, len(vectors))
	for i, v := range vectors {
		var d float32
		for j := range v {
			d += (v[j] - q[j]) * (v[j] - q[j])
		}
		hits[i] = hit{i, d}
	}
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Compare(a.dist, b.dist) })
	out := make(map[string]bool, k)
	for _, h := range hits[:k] {
		out[fmt.Sprint(h.id)] = true
	}
	return out
}

// clustered returns n vectors of dim around k random centres.
func clustered(n, dim, k int, r *rand.Rand) [][]float32 {
	centres := make([][]float32, k)
	for i := range centres {
		centres[i] = make([]float32, dim)
		for j := range centres[i] {
			centres[i][j] = r.Float32() * 10
		}
	}
	out := make([][]float32, n)
	for i := range out {
		c := centres[r.IntN(k)]
		out[i] = make([]float32, dim)
		for j := range out[i] {
			out[i][j] = c[j] + float32(r.NormFloat64())
		}
	}
	return out
}

// waitNoPending waits until no record of coll waits to be indexed, and
// returns the collection's statistics.
func waitNoPending(t *testing.T, c *client.Client, coll string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := c.GetCollection(context.Background(), coll)
		if err != nil {
			t.Fatal(err)
		}
		if info.Stats["pending"] == 0.0 {
			return info.Stats
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still pending after 60 s: %v", coll, info.Stats)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
