package engine

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/filter"
	"github.com/hippo-db/hippo/internal/index/hnsw"
	"github.com/hippo-db/hippo/internal/index/ivfpq"
	"github.com/hippo-db/hippo/internal/store"
)

// waitLinked waits until every node of the collection is linked (the
// indexer of an ivfpq collection also trains it).
func waitLinked(t *testing.T, e *Engine, name string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, err := e.Collection(name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Stats.Pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d nodes still pending", name, info.Stats.Pending)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// meanRecall searches for n stored vectors and returns recall@10 against
// brute force, checking the plan and the order of the hits.
func meanRecall(t *testing.T, e *Engine, coll string, vs map[string][]float32, n, ef int, plan Plan) float64 {
	t.Helper()
	r := rand.New(rand.NewPCG(21, 22))
	ids := make([]string, 0, len(vs))
	for id := range vs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var total float64
	for range n {
		q := vs[ids[r.IntN(len(ids))]]
		res, err := e.Search(coll, &Query{Vector: q, K: 10, Ef: ef})
		if err != nil {
			t.Fatal(err)
		}
		if res.Plan != plan || len(res.Hits) != 10 {
			t.Fatalf("%s: plan %s with %d hits, want %s", coll, res.Plan, len(res.Hits), plan)
		}
		if !slices.IsSortedFunc(res.Hits, func(a, b Hit) int { return cmpF(a.Distance, b.Distance) }) {
			t.Fatalf("%s: hits not ordered by distance", coll)
		}
		total += recallOf(hitIDs(res.Hits), bruteForce(vs, q, 10, nil))
	}
	return total / float64(n)
}

func TestQuantizedHNSWCollection(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	mustCreate(t, e, "q", CollectionSpec{Dimension: 32, Metric: "l2", Index: store.IndexSpec{Quantization: "int8"}})
	mustCreate(t, e, "plain", CollectionSpec{Dimension: 32, Metric: "l2"})
	info, _ := e.Collection("q")
	if info.Index.Type != "hnsw" || info.Index.Quantization != "int8" || info.Index.M != DefaultM {
		t.Fatalf("spec %+v", info.Index)
	}
	// 3,000 vectors: the ranges are learned at 1,024 while loading.
	vs := loadClustered(t, e, "q", 3000, 32, 11)
	loadClustered(t, e, "plain", 3000, 32, 11)
	waitLinked(t, e, "q")
	waitLinked(t, e, "plain")
	c := e.collection("q")
	if c.index.(*hnsw.Index).Quantizer() == nil {
		t.Fatal("collection index not quantized")
	}
	if r := meanRecall(t, e, "q", vs, 100, 100, PlanHNSW); r < 0.95 {
		t.Fatalf("recall@10 %.3f", r)
	}
	// Re-ranking makes the distances exact: the nearest to a stored vector
	// is itself at 0.
	res, _ := e.Search("q", &Query{Vector: vs["r00042"], K: 1})
	if res.Hits[0].ID != "r00042" || res.Hits[0].Distance != 0 {
		t.Fatalf("self search: %+v", res.Hits)
	}
	// Codes cost a quarter of the vectors on top of them.
	qi, _ := e.Collection("q")
	pi, _ := e.Collection("plain")
	if extra := qi.Stats.BytesPerVector - pi.Stats.BytesPerVector; extra < 32 || extra > 32*4 {
		t.Errorf("bytes per vector: %.0f quantized, %.0f plain", qi.Stats.BytesPerVector, pi.Stats.BytesPerVector)
	}

	queries := clustered(rand.New(rand.NewPCG(2, 2)), 20, 32)
	wantSearch, wantState := searchAll(t, e, "q", queries), state(t, e)
	e.Close()

	// The snapshot restores the quantizer and the codes.
	e = open(t, dir)
	info, _ = e.Collection("q")
	if info.Stats.SnapshotSeq == 0 || info.Stats.Pending != 0 {
		t.Fatalf("not loaded from snapshot: %+v", info.Stats)
	}
	if got := searchAll(t, e, "q", queries); !slices.Equal(got, wantSearch) {
		t.Fatalf("search differs after snapshot load:\n%v\n%v", got, wantSearch)
	}
	if got := state(t, e); !mapsEqual(got, wantState) {
		t.Fatal("state differs after reopening")
	}
	e.Close()

	// Without a usable snapshot the collection is rebuilt, quantized again.
	corruptSnapshots(t, dir)
	e = open(t, dir)
	waitLinked(t, e, "q")
	if c := e.collection("q"); c.index.(*hnsw.Index).Quantizer() == nil {
		t.Fatal("rebuilt index not quantized")
	}
	if r := meanRecall(t, e, "q", vs, 50, 100, PlanHNSW); r < 0.95 {
		t.Fatalf("recall@10 after rebuild %.3f", r)
	}
}

func corruptSnapshots(t *testing.T, dir string) {
	t.Helper()
	snaps, _ := filepath.Glob(filepath.Join(dir, "index", "*.snap"))
	if len(snaps) == 0 {
		t.Fatal("no snapshots")
	}
	for _, s := range snaps {
		data, _ := os.ReadFile(s)
		data[len(data)/2] ^= 0xff
		os.WriteFile(s, data, 0o640)
	}
}

func TestIVFPQCollection(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	spec := store.IndexSpec{Type: "ivfpq", NList: 32, M: 8, NProbe: 8}
	mustCreate(t, e, "p", CollectionSpec{Dimension: 16, Metric: "l2", Index: spec})
	spec.Rerank = 40
	mustCreate(t, e, "pr", CollectionSpec{Dimension: 16, Metric: "l2", Index: spec})
	mustCreate(t, e, "small", CollectionSpec{Dimension: 16, Metric: "l2", Index: store.IndexSpec{Type: "ivfpq"}})
	info, _ := e.Collection("small")
	if got := info.Index; got.NList != DefaultNList || got.M != 5 || got.NProbe != DefaultNProbe || got.Ef != 0 {
		t.Fatalf("defaults %+v", got)
	}

	// Below its training size an ivfpq collection answers exactly.
	small := loadClustered(t, e, "small", 2000, 16, 12)
	waitLinked(t, e, "small")
	if r := meanRecall(t, e, "small", small, 30, 0, PlanIVFPQ); r != 1 {
		t.Fatalf("untrained recall %.3f, want exact", r)
	}

	// 12,000 vectors: past the training size (max(32·nlist, 9,984)).
	vs := loadClustered(t, e, "p", 12000, 16, 13)
	loadClustered(t, e, "pr", 12000, 16, 13)
	waitLinked(t, e, "p")
	waitLinked(t, e, "pr")
	for _, name := range []string{"p", "pr"} {
		if c := e.collection(name); !c.index.(*ivfpq.Index).Trained() {
			t.Fatalf("%s not trained", name)
		}
	}
	codes, reranked := meanRecall(t, e, "p", vs, 100, 0, PlanIVFPQ), meanRecall(t, e, "pr", vs, 100, 0, PlanIVFPQ)
	t.Logf("recall@10 at nprobe 8: %.3f (codes), %.3f (re-ranked)", codes, reranked)
	if codes < 0.6 || reranked < 0.95 {
		t.Fatalf("recall@10 %.3f (codes), %.3f (re-ranked)", codes, reranked)
	}
	// Probing every list is at least as good.
	if all := meanRecall(t, e, "p", vs, 100, 32, PlanIVFPQ); all < codes-0.01 {
		t.Fatalf("recall %.3f probing every list, %.3f probing 8", all, codes)
	}
	pi, _ := e.Collection("p")
	ri, _ := e.Collection("pr")
	if pi.Stats.BytesPerVector >= 16*4 || ri.Stats.BytesPerVector <= 16*4 {
		t.Errorf("bytes per vector %.0f (codes only), %.0f (vectors kept); a float32 vector is 64", pi.Stats.BytesPerVector, ri.Stats.BytesPerVector)
	}

	// Filters.
	f, _ := filter.Parse([]byte(`{"group": {"$lt": 50}}`))
	for i := range 20 {
		res, err := e.Search("p", &Query{Vector: vs[fmt.Sprintf("r%05d", i*37)], K: 10, Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 10 {
			t.Fatalf("%d hits with a filter", len(res.Hits))
		}
		for _, h := range res.Hits {
			var n int
			fmt.Sscanf(h.ID, "r%05d", &n)
			if n%100 >= 50 {
				t.Fatalf("hit %s does not match the filter", h.ID)
			}
		}
	}

	// Writes after training: upserts replace, deletes remove, both visible.
	far := make([]float32, 16)
	for i := range far {
		far[i] = 50
	}
	mustUpsert(t, e, "p", RecordInput{ID: "r00005", Vector: far})
	if _, err := e.Delete(ctx, "p", "r00006"); err != nil {
		t.Fatal(err)
	}
	res, _ := e.Search("p", &Query{Vector: far, K: 1})
	if res.Hits[0].ID != "r00005" {
		t.Fatalf("updated record not found: %+v", res.Hits)
	}
	res, _ = e.Search("p", &Query{Vector: vs["r00006"], K: 10, Ef: 32})
	if slices.Contains(hitIDs(res.Hits), "r00006") {
		t.Fatal("deleted record found")
	}
	waitLinked(t, e, "p")

	queries := clustered(rand.New(rand.NewPCG(3, 3)), 20, 16)
	wantP, wantR, wantState := searchAll(t, e, "p", queries), searchAll(t, e, "pr", queries), state(t, e)
	e.Close()

	e = open(t, dir)
	for _, name := range []string{"p", "pr", "small"} {
		info, _ := e.Collection(name)
		if info.Stats.SnapshotSeq == 0 || info.Stats.Pending != 0 {
			t.Fatalf("%s not loaded from snapshot: %+v", name, info.Stats)
		}
	}
	if got := searchAll(t, e, "p", queries); !slices.Equal(got, wantP) {
		t.Fatalf("search differs after snapshot load:\n%v\n%v", got, wantP)
	}
	if got := searchAll(t, e, "pr", queries); !slices.Equal(got, wantR) {
		t.Fatalf("re-ranked search differs after snapshot load:\n%v\n%v", got, wantR)
	}
	if got := state(t, e); !mapsEqual(got, wantState) {
		t.Fatal("state differs after reopening")
	}
	e.Close()

	// Rebuilt from the records: trained again.
	corruptSnapshots(t, dir)
	e = open(t, dir)
	waitLinked(t, e, "p")
	if c := e.collection("p"); !c.index.(*ivfpq.Index).Trained() {
		t.Fatal("rebuilt index not trained")
	}
	delete(vs, "r00006")
	vs["r00005"] = far
	if r := meanRecall(t, e, "p", vs, 50, 0, PlanIVFPQ); r < 0.6 {
		t.Fatalf("recall after rebuild %.3f", r)
	}
}

func TestIndexSpecValidation(t *testing.T) {
	e := open(t, t.TempDir())
	for _, tc := range []struct {
		spec store.IndexSpec
		want string // in the error message; "" for success
	}{
		{store.IndexSpec{Quantization: "int8"}, ""},
		{store.IndexSpec{Type: "hnsw", Quantization: "none"}, ""},
		{store.IndexSpec{Quantization: "int4"}, "index.quantization"},
		{store.IndexSpec{Type: "hnsw", NList: 4}, "apply to ivfpq only"},
		{store.IndexSpec{Type: "flat", Quantization: "int8"}, "do not apply to flat"},
		{store.IndexSpec{Type: "ivfpq"}, ""},
		{store.IndexSpec{Type: "ivfpq", NList: 64, M: 8, NProbe: 64, Rerank: 100}, ""},
		{store.IndexSpec{Type: "ivfpq", NList: MaxNList + 1}, "index.nlist"},
		{store.IndexSpec{Type: "ivfpq", NList: -1}, "index.nlist"},
		{store.IndexSpec{Type: "ivfpq", M: 17}, "index.m"},
		{store.IndexSpec{Type: "ivfpq", NList: 8, NProbe: 9}, "index.nprobe"},
		{store.IndexSpec{Type: "ivfpq", Rerank: -1}, "index.rerank"},
		{store.IndexSpec{Type: "ivfpq", Rerank: MaxRerank + 1}, "index.rerank"},
		{store.IndexSpec{Type: "ivfpq", Ef: 10}, "nprobe"},
		{store.IndexSpec{Type: "ivfpq", Quantization: "int8"}, "index.quantization"},
		{store.IndexSpec{Type: "annoy"}, "unknown index type"},
	} {
		name := fmt.Sprintf("c%d", len(e.Collections()))
		_, _, _, err := e.CreateCollection(ctx, name, CollectionSpec{Dimension: 16, Metric: "l2", Index: tc.spec})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.spec, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one about %q", tc.spec, err, tc.want)
		case tc.want != "":
			wantKind(t, err, ErrInvalid)
		}
	}
}

// TestIndexSnapshotMismatch: a snapshot of another index type than the
// descriptor asks for is rejected, never loaded.
func TestIndexSnapshotMismatch(t *testing.T) {
	for _, tc := range []struct{ written, wanted store.IndexSpec }{
		{store.IndexSpec{Type: "hnsw"}, store.IndexSpec{Type: "hnsw", Quantization: "int8"}},
		{store.IndexSpec{Type: "hnsw", Quantization: "int8"}, store.IndexSpec{Type: "ivfpq", NList: 4, M: 2, NProbe: 1}},
		{store.IndexSpec{Type: "ivfpq", NList: 4, M: 2, NProbe: 1}, store.IndexSpec{Type: "ivfpq", NList: 8, M: 2, NProbe: 1}},
		{store.IndexSpec{Type: "ivfpq", NList: 4, M: 2, NProbe: 1}, store.IndexSpec{Type: "hnsw"}},
	} {
		dir := t.TempDir()
		e := open(t, dir)
		mustCreate(t, e, "c", CollectionSpec{Dimension: 4, Metric: "l2", Index: tc.written})
		mustUpsert(t, e, "c", RecordInput{ID: "a", Vector: []float32{1, 2, 3, 4}})
		c := e.collection("c")
		if err := e.writeSnapshot(c); err != nil {
			t.Fatal(err)
		}
		desc := c.desc
		desc.Index = tc.wanted
		if _, err := e.loadSnapshot(desc); err == nil {
			t.Errorf("snapshot of %+v loaded for %+v", tc.written, tc.wanted)
		}
		if _, err := e.loadSnapshot(c.desc); err != nil {
			t.Errorf("snapshot of %+v: %v", tc.written, err)
		}
	}
}
