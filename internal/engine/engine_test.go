package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/hippo-db/hippo/internal/filter"
	"github.com/hippo-db/hippo/internal/store"
)

var ctx = context.Background()

func open(t *testing.T, dir string) *Engine {
	t.Helper()
	e, err := Open(Options{Dir: dir, SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mustCreate(t *testing.T, e *Engine, name string, spec CollectionSpec) {
	t.Helper()
	if _, _, _, err := e.CreateCollection(ctx, name, spec); err != nil {
		t.Fatal(err)
	}
}

func mustUpsert(t *testing.T, e *Engine, coll string, recs ...RecordInput) uint64 {
	t.Helper()
	seq, err := e.Upsert(ctx, coll, recs)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func randVec(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

// clustered returns n vectors around a few centres, like real embeddings.
func clustered(r *rand.Rand, n, dim int) [][]float32 {
	centres := make([][]float32, 16)
	for i := range centres {
		centres[i] = randVec(r, dim)
	}
	out := make([][]float32, n)
	for i := range out {
		c := centres[r.IntN(len(centres))]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + float32(r.NormFloat64())*0.3
		}
		out[i] = v
	}
	return out
}

func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
}

func TestCollectionLifecycle(t *testing.T) {
	e := open(t, t.TempDir())
	spec := CollectionSpec{Dimension: 4, Metric: "l2"}
	info, created, seq, err := e.CreateCollection(ctx, "a", spec)
	if err != nil || !created || seq != 1 {
		t.Fatalf("create: %v %v %d", err, created, seq)
	}
	if info.Index.Type != "hnsw" || info.Index.M != DefaultM || info.Index.Ef != DefaultEf {
		t.Fatalf("defaults not filled: %+v", info.Index)
	}
	// Identical: no new event.
	_, created, seq, err = e.CreateCollection(ctx, "a", spec)
	if err != nil || created || seq != 0 {
		t.Fatalf("identical create: %v %v %d", err, created, seq)
	}
	_, _, _, err = e.CreateCollection(ctx, "a", CollectionSpec{Dimension: 5, Metric: "l2"})
	wantKind(t, err, ErrConflict)
	for _, bad := range []struct {
		name string
		spec CollectionSpec
	}{
		{"b", CollectionSpec{Dimension: 0, Metric: "l2"}},
		{"b", CollectionSpec{Dimension: MaxDimension + 1, Metric: "l2"}},
		{"b", CollectionSpec{Dimension: 3, Metric: "hamming"}},
		{"b", CollectionSpec{Dimension: 3, Metric: "l2", Index: store.IndexSpec{Type: "lsh"}}},
		{"b", CollectionSpec{Dimension: 3, Metric: "l2", Index: store.IndexSpec{M: 1000}}},
		{"b/c", CollectionSpec{Dimension: 3, Metric: "l2"}},
		{"", CollectionSpec{Dimension: 3, Metric: "l2"}},
	} {
		_, _, _, err := e.CreateCollection(ctx, bad.name, bad.spec)
		wantKind(t, err, ErrInvalid)
	}
	if got := len(e.Collections()); got != 1 {
		t.Fatalf("rejected creates changed state: %d collections", got)
	}
	mustUpsert(t, e, "a", RecordInput{ID: "x", Vector: []float32{1, 2, 3, 4}})
	seq, err = e.DeleteCollection(ctx, "a")
	if err != nil || seq != 3 {
		t.Fatalf("delete: %v %d", err, seq)
	}
	_, err = e.DeleteCollection(ctx, "a")
	wantKind(t, err, ErrNotFound)
	// A new collection of the same name starts empty.
	mustCreate(t, e, "a", CollectionSpec{Dimension: 2, Metric: "dot"})
	_, err = e.Get("a", "x")
	wantKind(t, err, ErrNotFound)
}

func TestRecordsSeqAndVersions(t *testing.T) {
	e := open(t, t.TempDir())
	mustCreate(t, e, "c", CollectionSpec{Dimension: 2, Metric: "l2"})
	s1 := mustUpsert(t, e, "c", RecordInput{ID: "a", Vector: []float32{1, 1}, Text: "one", Metadata: json.RawMessage(`{"k": 1}`)})
	first, err := e.Get("c", "a")
	if err != nil {
		t.Fatal(err)
	}
	s2 := mustUpsert(t, e, "c", RecordInput{ID: "a", Vector: []float32{2, 2}, Text: "two"},
		RecordInput{ID: "b", Vector: []float32{3, 3}})
	if s1 != 2 || s2 != 4 {
		t.Fatalf("seqs %d %d, want 2 and 4 (one per record)", s1, s2)
	}
	got, _ := e.Get("c", "a")
	if got.Text != "two" || got.Metadata != nil || !got.CreatedAt.Equal(first.CreatedAt) || got.Seq != 3 {
		t.Fatalf("update: %+v (first %+v)", got, first)
	}
	if !got.UpdatedAt.After(first.UpdatedAt) && !got.UpdatedAt.Equal(first.UpdatedAt) {
		t.Fatal("updated_at went back")
	}
	seq, err := e.Delete(ctx, "c", "a")
	if err != nil || seq != 5 {
		t.Fatalf("delete: %v %d", err, seq)
	}
	_, err = e.Delete(ctx, "c", "a")
	wantKind(t, err, ErrNotFound)
	if info, _ := e.Collection("c"); info.Count != 1 {
		t.Fatalf("count %d", info.Count)
	}
	// Bad records change nothing, and a bad record fails its whole batch.
	for _, bad := range []RecordInput{
		{ID: "", Vector: []float32{1, 1}},
		{ID: string(make([]byte, MaxIDBytes+1)), Vector: []float32{1, 1}},
		{ID: "\xff", Vector: []float32{1, 1}},
		{ID: "z", Vector: []float32{1}},
		{ID: "z"},
		{ID: "z", Vector: []float32{float32(nan()), 1}},
		{ID: "z", Vector: []float32{1, 1}, Metadata: json.RawMessage(`[1]`)},
		{ID: "z", Vector: []float32{1, 1}, Metadata: json.RawMessage(`{"a":`)},
		{ID: "z", Vector: []float32{1, 1}, Metadata: json.RawMessage(`{"a":"` + string(make([]byte, MaxMetadataBytes)) + `"}`)},
	} {
		_, err := e.Upsert(ctx, "c", []RecordInput{{ID: "ok", Vector: []float32{0, 0}}, bad})
		if err == nil {
			t.Fatalf("accepted %+v", bad.ID)
		}
	}
	if _, err := e.Get("c", "ok"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a batch with a bad record was partly applied")
	}
	if e.LastSeq() != 5 {
		t.Fatalf("rejected writes moved seq to %d", e.LastSeq())
	}
}

func nan() float64 { var z float64; return z / z }

func TestConcurrentWritersGetGaplessSeqs(t *testing.T) {
	e := open(t, t.TempDir())
	mustCreate(t, e, "c", CollectionSpec{Dimension: 8, Metric: "l2"})
	const writers, each = 8, 50
	var mu sync.Mutex
	var seqs []uint64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range each {
				seq := mustUpsert(t, e, "c", RecordInput{ID: fmt.Sprintf("w%d-%d", w, i), Vector: randVec(r, 8)})
				mu.Lock()
				seqs = append(seqs, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i)+2 {
			t.Fatalf("seq %d at %d: not gapless and unique", s, i)
		}
	}
	if info, _ := e.Collection("c"); info.Count != writers*each {
		t.Fatalf("count %d", info.Count)
	}
}

// bruteForce returns the ids of the k nearest vectors by L2.
func bruteForce(vs map[string][]float32, q []float32, k int, keep func(string) bool) []string {
	type cand struct {
		id string
		d  float64
	}
	var cs []cand
	for id, v := range vs {
		if keep != nil && !keep(id) {
			continue
		}
		var d float64
		for i := range v {
			x := float64(v[i] - q[i])
			d += x * x
		}
		cs = append(cs, cand{id, d})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].d < cs[j].d || cs[i].d == cs[j].d && cs[i].id < cs[j].id })
	var out []string
	for i := 0; i < k && i < len(cs); i++ {
		out = append(out, cs[i].id)
	}
	return out
}

func hitIDs(hits []Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func recallOf(got, want []string) float64 {
	n := 0
	for _, g := range got {
		if slices.Contains(want, g) {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

// loadClustered fills collection c with n clustered vectors and a "group"
// metadata field i%100, and returns them by id.
func loadClustered(t *testing.T, e *Engine, c string, n, dim int, seed uint64) map[string][]float32 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 2))
	vs := map[string][]float32{}
	var batch []RecordInput
	for i, v := range clustered(r, n, dim) {
		id := fmt.Sprintf("r%05d", i)
		vs[id] = v
		batch = append(batch, RecordInput{ID: id, Vector: v, Metadata: json.RawMessage(fmt.Sprintf(`{"group": %d}`, i%100))})
		if len(batch) == MaxBatchRecords {
			mustUpsert(t, e, c, batch...)
			batch = nil
		}
	}
	if len(batch) > 0 {
		mustUpsert(t, e, c, batch...)
	}
	return vs
}

func TestSearchSeesEveryAcknowledgedWrite(t *testing.T) {
	e := open(t, t.TempDir())
	mustCreate(t, e, "c", CollectionSpec{Dimension: 16, Metric: "l2"})
	loadClustered(t, e, "c", 3000, 16, 1)
	// Right after each acknowledged write, before the indexer can link it,
	// a search for its exact vector must find it first.
	r := rand.New(rand.NewPCG(9, 9))
	for i := range 50 {
		v := randVec(r, 16)
		for j := range v {
			v[j] += 10 // far from everything else
		}
		id := fmt.Sprintf("new%d", i)
		mustUpsert(t, e, "c", RecordInput{ID: id, Vector: v})
		res, err := e.Search("c", &Query{Vector: v, K: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 1 || res.Hits[0].ID != id || res.Hits[0].Distance != 0 {
			t.Fatalf("write %d not visible: %+v", i, res.Hits)
		}
	}
}

func TestSearchRecallAndPlans(t *testing.T) {
	e := open(t, t.TempDir())
	for _, metric := range []string{"l2", "cosine", "dot"} {
		mustCreate(t, e, metric, CollectionSpec{Dimension: 24, Metric: metric})
	}
	vs := loadClustered(t, e, "l2", 4000, 24, 3)
	e.waitIndexedForTest()
	r := rand.New(rand.NewPCG(4, 4))
	var total float64
	const queries = 100
	for range queries {
		q := vs[fmt.Sprintf("r%05d", r.IntN(4000))]
		res, err := e.Search("l2", &Query{Vector: q, K: 10, Ef: 100})
		if err != nil {
			t.Fatal(err)
		}
		if res.Plan != PlanHNSW || len(res.Hits) != 10 {
			t.Fatalf("plan %s, %d hits", res.Plan, len(res.Hits))
		}
		if !slices.IsSortedFunc(res.Hits, func(a, b Hit) int { return cmpF(a.Distance, b.Distance) }) {
			t.Fatal("hits not ordered by distance")
		}
		total += recallOf(hitIDs(res.Hits), bruteForce(vs, q, 10, nil))
	}
	if recall := total / queries; recall < 0.95 {
		t.Fatalf("recall@10 = %.3f", recall)
	}

	// Distances follow the API's definitions.
	mustUpsert(t, e, "cosine", RecordInput{ID: "x", Vector: []float32{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}})
	mustUpsert(t, e, "dot", RecordInput{ID: "x", Vector: []float32{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}})
	q := make([]float32, 24)
	q[0], q[1] = 3, 3
	res, _ := e.Search("cosine", &Query{Vector: q, K: 1})
	if d := res.Hits[0].Distance; d < 0.2928 || d > 0.2930 { // 1 - cos 45°
		t.Fatalf("cosine distance %v", d)
	}
	res, _ = e.Search("dot", &Query{Vector: q, K: 1})
	if res.Hits[0].Distance != -6 {
		t.Fatalf("dot distance %v", res.Hits[0].Distance)
	}
	res, _ = e.Search("l2", &Query{Vector: vs["r00007"], K: 1})
	if res.Hits[0].Distance != 0 {
		t.Fatalf("l2 distance to itself %v", res.Hits[0].Distance)
	}

	for _, bad := range []Query{{Vector: q, K: 0}, {Vector: q, K: MaxK + 1}, {Vector: q[:3], K: 1}, {Vector: q, K: 1, Ef: -1}} {
		_, err := e.Search("l2", &bad)
		wantKind(t, err, ErrInvalid)
	}
	_, err := e.Search("cosine", &Query{Vector: make([]float32, 24), K: 1})
	wantKind(t, err, ErrInvalid)
}

func cmpF(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestFilteredSearchReturnsKWhenKMatch(t *testing.T) {
	e := open(t, t.TempDir())
	mustCreate(t, e, "c", CollectionSpec{Dimension: 16, Metric: "l2"})
	vs := loadClustered(t, e, "c", 5000, 16, 5)
	e.waitIndexedForTest()
	groupOf := func(id string) int {
		var n int
		fmt.Sscanf(id, "r%05d", &n)
		return n % 100
	}
	r := rand.New(rand.NewPCG(6, 6))
	for _, tc := range []struct {
		filter string
		keep   func(string) bool
		plan   Plan
		want   int
	}{
		{`{"group": 7}`, func(id string) bool { return groupOf(id) == 7 }, PlanExact, 10},
		{`{"group": {"$in": [1, 2]}}`, func(id string) bool { g := groupOf(id); return g == 1 || g == 2 }, PlanExact, 10},
		{`{"group": {"$lt": 60}}`, func(id string) bool { return groupOf(id) < 60 }, PlanHNSW, 10},
		{`{"$and": [{"group": 3}, {"group": {"$exists": true}}]}`, func(id string) bool { return groupOf(id) == 3 }, PlanExact, 10},
		{`{"group": 1000}`, func(string) bool { return false }, PlanExact, 0},
	} {
		f, err := filter.Parse([]byte(tc.filter))
		if err != nil {
			t.Fatal(err)
		}
		var total float64
		for range 20 {
			q := randVec(r, 16)
			res, err := e.Search("c", &Query{Vector: q, K: 10, Filter: f})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Hits) != tc.want {
				t.Fatalf("%s: %d hits, want %d", tc.filter, len(res.Hits), tc.want)
			}
			if res.Plan != tc.plan {
				t.Fatalf("%s: plan %s, want %s", tc.filter, res.Plan, tc.plan)
			}
			for _, h := range res.Hits {
				if !tc.keep(h.ID) {
					t.Fatalf("%s: hit %s does not match", tc.filter, h.ID)
				}
			}
			if tc.want > 0 {
				total += recallOf(hitIDs(res.Hits), bruteForce(vs, q, 10, tc.keep))
			}
		}
		if tc.want > 0 && total/20 < 0.9 {
			t.Fatalf("%s: recall %.3f", tc.filter, total/20)
		}
	}
	// Exactly 3 matches: 3 results even though k is 10.
	for i := range 3 {
		mustUpsert(t, e, "c", RecordInput{ID: fmt.Sprintf("rare%d", i), Vector: randVec(r, 16), Metadata: json.RawMessage(`{"rare": true}`)})
	}
	f, _ := filter.Parse([]byte(`{"rare": true}`))
	res, _ := e.Search("c", &Query{Vector: randVec(r, 16), K: 10, Filter: f})
	if len(res.Hits) != 3 {
		t.Fatalf("rare: %d hits", len(res.Hits))
	}
}

// state captures what a client can observe, for comparing across restarts.
func state(t *testing.T, e *Engine) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, info := range e.Collections() {
		recs, next, err := e.List(info.Name, "", MaxListLimit)
		if err != nil {
			t.Fatal(err)
		}
		for next != "" {
			var more []*store.Record
			more, next, err = e.List(info.Name, next, MaxListLimit)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, more...)
		}
		for _, r := range recs {
			out[info.Name+"/"+r.ID] = fmt.Sprintf("%v|%s|%s|%d", r.Vector, r.Text, r.Metadata, r.Seq)
		}
		out[info.Name] = fmt.Sprintf("count=%d", info.Count)
	}
	return out
}

// searchAll runs the same queries and returns their answers as strings.
func searchAll(t *testing.T, e *Engine, coll string, queries [][]float32) []string {
	t.Helper()
	var out []string
	for _, q := range queries {
		res, err := e.Search(coll, &Query{Vector: q, K: 5, Ef: 200})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(hitIDs(res.Hits)))
	}
	return out
}

func TestReopenFromSnapshotRebuildAndReplay(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	mustCreate(t, e, "c", CollectionSpec{Dimension: 8, Metric: "cosine"})
	mustCreate(t, e, "f", CollectionSpec{Dimension: 8, Metric: "l2", Index: store.IndexSpec{Type: "flat"}})
	loadClustered(t, e, "c", 2500, 8, 7)
	loadClustered(t, e, "f", 300, 8, 8)
	e.waitIndexedForTest()
	queries := clustered(rand.New(rand.NewPCG(1, 1)), 20, 8)
	wantState := state(t, e)
	wantSearch := searchAll(t, e, "c", queries)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// 1. From the snapshot written at Close: nothing to link again.
	e = open(t, dir)
	info, _ := e.Collection("c")
	if info.Stats.SnapshotSeq == 0 || info.Stats.Pending != 0 {
		t.Fatalf("not loaded from snapshot: %+v", info.Stats)
	}
	if got := state(t, e); !mapsEqual(got, wantState) {
		t.Fatal("state differs after reopening from snapshot")
	}
	if got := searchAll(t, e, "c", queries); !slices.Equal(got, wantSearch) {
		t.Fatalf("search differs after snapshot load:\n%v\n%v", got, wantSearch)
	}

	// 2. Writes after the snapshot, then a crash: replay from the log.
	mustUpsert(t, e, "c", RecordInput{ID: "late", Vector: []float32{1, 2, 3, 4, 5, 6, 7, 8}, Metadata: json.RawMessage(`{"late":true}`)})
	if _, err := e.Delete(ctx, "c", "r00001"); err != nil {
		t.Fatal(err)
	}
	mustUpsert(t, e, "c", RecordInput{ID: "r00002", Vector: []float32{8, 7, 6, 5, 4, 3, 2, 1}})
	mustCreate(t, e, "new", CollectionSpec{Dimension: 2, Metric: "dot"})
	mustUpsert(t, e, "new", RecordInput{ID: "n", Vector: []float32{1, 2}})
	wantState = state(t, e)
	e.crashForTest()
	e = open(t, dir)
	if got := state(t, e); !mapsEqual(got, wantState) {
		t.Fatal("state differs after crash and replay")
	}
	res, _ := e.Search("c", &Query{Vector: []float32{1, 2, 3, 4, 5, 6, 7, 8}, K: 1})
	if res.Hits[0].ID != "late" || res.Hits[0].Metadata["late"] != true {
		t.Fatalf("replayed record not searchable: %+v", res.Hits)
	}
	e.Close()

	// 3. A corrupt snapshot is ignored and the collection rebuilt.
	snaps, _ := filepath.Glob(filepath.Join(dir, "index", "*.snap"))
	if len(snaps) != 3 {
		t.Fatalf("want 3 snapshots, have %v", snaps)
	}
	for _, s := range snaps {
		data, _ := os.ReadFile(s)
		data[len(data)/2] ^= 0xff
		os.WriteFile(s, data, 0o640)
	}
	e = open(t, dir)
	if got := state(t, e); !mapsEqual(got, wantState) {
		t.Fatal("state differs after rebuilding from records")
	}
	e.waitIndexedForTest()
	if got := searchAll(t, e, "c", queries[:5]); len(got) != 5 {
		t.Fatal("search after rebuild")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestModel runs random operations against the engine and a plain map, with
// crashes and clean restarts in between, and compares what a client sees.
func TestModel(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	r := rand.New(rand.NewPCG(42, 42))
	type rec struct {
		vec  []float32
		text string
	}
	model := map[string]map[string]rec{}
	names := []string{"a", "b", "c"}
	for step := range 1500 {
		name := names[r.IntN(len(names))]
		switch p := r.IntN(100); {
		case p < 3:
			_, err := e.DeleteCollection(ctx, name)
			if (model[name] == nil) != errors.Is(err, ErrNotFound) {
				t.Fatalf("step %d delete collection: %v", step, err)
			}
			delete(model, name)
		case p < 8:
			_, _, _, err := e.CreateCollection(ctx, name, CollectionSpec{Dimension: 3, Metric: "l2"})
			if err != nil {
				t.Fatal(err)
			}
			if model[name] == nil {
				model[name] = map[string]rec{}
			}
		case p < 70:
			id := fmt.Sprintf("id%d", r.IntN(40))
			v := randVec(r, 3)
			txt := fmt.Sprint(step)
			_, err := e.Upsert(ctx, name, []RecordInput{{ID: id, Vector: v, Text: txt}})
			if (model[name] == nil) != errors.Is(err, ErrNotFound) {
				t.Fatalf("step %d upsert: %v", step, err)
			}
			if model[name] != nil {
				model[name][id] = rec{v, txt}
			}
		case p < 90:
			id := fmt.Sprintf("id%d", r.IntN(40))
			_, err := e.Delete(ctx, name, id)
			_, exists := model[name][id]
			if exists == (err != nil) {
				t.Fatalf("step %d delete %s/%s: %v (exists %v)", step, name, id, err, exists)
			}
			delete(model[name], id)
		case p < 95:
			e.crashForTest()
			e = open(t, dir)
		default:
			e.Close()
			e = open(t, dir)
		}
		if step%50 != 0 {
			continue
		}
		for cname, recs := range model {
			info, err := e.Collection(cname)
			if err != nil || info.Count != len(recs) {
				t.Fatalf("step %d: %s count %d, model %d (%v)", step, cname, info.Count, len(recs), err)
			}
			for id, want := range recs {
				got, err := e.Get(cname, id)
				if err != nil || got.Text != want.text || !slices.Equal(got.Vector, want.vec) {
					t.Fatalf("step %d: %s/%s = %+v, %v", step, cname, id, got, err)
				}
				res, err := e.Search(cname, &Query{Vector: want.vec, K: 1})
				if err != nil || len(res.Hits) == 0 || res.Hits[0].Distance != 0 {
					t.Fatalf("step %d: search for %s/%s: %+v %v", step, cname, id, res, err)
				}
			}
		}
		if len(e.Collections()) != len(model) {
			t.Fatalf("step %d: %d collections, model %d", step, len(e.Collections()), len(model))
		}
	}
}
