package ivfpq

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/vec"
)

// build appends every row and links them from two goroutines.
func build(t testing.TB, data *dataset.Matrix, cfg Config) *Index {
	t.Helper()
	cfg.Dim = data.Dim
	ix := New(cfg)
	for i := range data.Rows {
		if id := ix.Append(data.Row(i)); id != uint32(i) {
			t.Fatalf("Append #%d returned %d", i, id)
		}
	}
	linkAll(ix, 0, uint32(data.Rows))
	return ix
}

func linkAll(ix *Index, from, to uint32) {
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for id := from + uint32(w); id < to; id += 2 {
				ix.Link(id)
			}
		})
	}
	wg.Wait()
}

// exact returns the true top k by the metric, by brute force over data.
func exact(data *dataset.Matrix, q []float32, k int, metric index.Metric, accept func(uint32) bool) []uint32 {
	dist := metric.Distance()
	var all []Result
	for i := range data.Rows {
		if accept == nil || accept(uint32(i)) {
			all = append(all, Result{ID: uint32(i), Distance: dist(q, data.Row(i))})
		}
	}
	slices.SortFunc(all, func(a, b Result) int {
		if a.Distance != b.Distance {
			if a.Distance < b.Distance {
				return -1
			}
			return 1
		}
		return int(a.ID) - int(b.ID)
	})
	ids := make([]uint32, 0, k)
	for _, r := range all[:min(k, len(all))] {
		ids = append(ids, r.ID)
	}
	return ids
}

func recall(t testing.TB, ix *Index, data, queries *dataset.Matrix, k, nprobe int, accept func(uint32) bool) float64 {
	t.Helper()
	hits, want := 0, 0
	for q := range queries.Rows {
		got := ix.Search(queries.Row(q), k, nprobe, accept)
		if !slices.IsSortedFunc(got, func(a, b Result) int {
			if a.Distance < b.Distance {
				return -1
			} else if a.Distance > b.Distance {
				return 1
			}
			return 0
		}) {
			t.Fatalf("query %d: not sorted: %v", q, got)
		}
		truth := exact(data, queries.Row(q), k, ix.metric, accept)
		for _, r := range got {
			if slices.Contains(truth, r.ID) {
				hits++
			}
			if accept != nil && !accept(r.ID) {
				t.Fatalf("rejected node %d returned", r.ID)
			}
		}
		want += len(truth)
	}
	return float64(hits) / float64(want)
}

func unit(m *dataset.Matrix) *dataset.Matrix {
	for i := range m.Rows {
		vec.Normalize(m.Row(i))
	}
	return m
}

func sized(n int) int {
	if raceEnabled {
		return n / 4
	}
	return n
}

func TestRecall(t *testing.T) {
	n := sized(4000)
	for _, metric := range []index.Metric{index.L2, index.Dot, index.Cosine} {
		all := dataset.Clustered(n+50, 32, 20, 1)
		if metric == index.Cosine {
			unit(all)
		}
		data, queries := all.Slice(0, n), all.Slice(n, n+50)
		for _, rerank := range []int{0, 50} {
			ix := build(t, data, Config{Metric: metric, NList: 16, M: 16, TrainSize: 1000, Rerank: rerank, Seed: 1})
			if !ix.Trained() {
				t.Fatal("not trained")
			}
			// Probing every list leaves only the quantization error.
			all, few := recall(t, ix, data, queries, 10, 16, nil), recall(t, ix, data, queries, 10, 2, nil)
			t.Logf("%s rerank=%d: recall@10 %.3f (nprobe 16), %.3f (nprobe 2)", metric, rerank, all, few)
			floor := 0.7
			if rerank > 0 {
				floor = 0.97
			}
			if all < floor || few > all+0.01 {
				t.Errorf("%s rerank=%d: recall %.3f with every list, %.3f with 2", metric, rerank, all, few)
			}
			if rerank > 0 {
				// Re-ranked distances are exact.
				q := queries.Row(0)
				for _, r := range ix.Search(q, 10, 16, nil) {
					if want := metric.Distance()(q, data.Row(int(r.ID))); r.Distance != want {
						t.Fatalf("distance %v, want exact %v", r.Distance, want)
					}
				}
			}
		}
	}
}

// TestBuffering: before training Link only marks nodes linked and Search is
// exact; the Link that reaches TrainSize trains and encodes everything
// appended so far, linked or not.
func TestBuffering(t *testing.T) {
	all := dataset.Clustered(1650, 16, 10, 2)
	data, queries := all.Slice(0, 1600), all.Slice(1600, 1650)
	ix := New(Config{Dim: 16, NList: 8, M: 4, TrainSize: 1000, Seed: 2})
	ix.chunkShift, ix.chunkMask = 6, 63 // 25 full chunks, whose vectors can go
	for i := range 900 {
		ix.Link(ix.Append(data.Row(i)))
	}
	if ix.Trained() {
		t.Fatal("trained below TrainSize")
	}
	linked := func(id uint32) bool { return id < 900 }
	if r := recall(t, ix, data, queries, 10, 1, linked); r != 1 {
		t.Fatalf("untrained search recall %v, want exact", r)
	}
	for i := 900; i < 1600; i++ {
		ix.Append(data.Row(i))
	}
	// Nodes 900… are appended, not linked: Search must not return them.
	ix.Link(900)
	if !ix.Trained() {
		t.Fatal("not trained at TrainSize")
	}
	for _, q := range []int{0, 1, 2} {
		for _, r := range ix.Search(queries.Row(q), 20, 8, nil) {
			if r.ID > 900 {
				t.Fatalf("unlinked node %d returned", r.ID)
			}
		}
	}
	linkAll(ix, 0, 1600)
	if r := recall(t, ix, data, queries, 10, 8, nil); r < 0.6 {
		t.Fatalf("recall %.3f after training", r)
	}
	// Every node is encoded and no vectors are kept: the 25 chunks are
	// full and their vectors gone. One more node starts a chunk that keeps
	// vectors until it is full and encoded.
	dir := *ix.chunks.Load()
	for i, c := range dir {
		if c.vectors.Load() != nil {
			t.Errorf("chunk %d of %d kept its vectors", i, len(dir))
		}
	}
	ix.Link(ix.Append(data.Row(0)))
	if dir := *ix.chunks.Load(); len(dir) != 26 || dir[25].vectors.Load() == nil {
		t.Error("new chunk without vectors")
	}
	// Vector now returns the decoded approximation.
	v, orig := ix.Vector(5), data.Row(5)
	if d, spread := vec.L2Squared(v, orig), vec.L2Squared(orig, data.Row(6)); d == 0 || d > spread {
		t.Errorf("decoded vector at %v from the original (another vector is at %v)", d, spread)
	}
}

func TestDeleteAndAccept(t *testing.T) {
	all := dataset.Clustered(2050, 16, 10, 3)
	data, queries := all.Slice(0, 2000), all.Slice(2000, 2050)
	ix := build(t, data, Config{NList: 8, M: 8, TrainSize: 1000, Seed: 3})
	for id := uint32(0); id < 2000; id += 3 {
		ix.Delete(id)
	}
	live := func(id uint32) bool { return id%3 != 0 }
	for q := range queries.Rows {
		for _, r := range ix.Search(queries.Row(q), 10, 8, nil) {
			if !live(r.ID) {
				t.Fatalf("deleted node %d returned", r.ID)
			}
		}
		for _, r := range ix.Scan(queries.Row(q), 10, 0, 2000, nil) {
			if !live(r.ID) {
				t.Fatalf("Scan returned deleted node %d", r.ID)
			}
		}
	}
	even := func(id uint32) bool { return id%2 == 0 && live(id) }
	if r := recall(t, ix, data, queries, 10, 8, even); r < 0.5 {
		t.Fatalf("recall with accept %.3f", r)
	}
}

func TestSearchAllocs(t *testing.T) {
	all := dataset.Clustered(sized(3000), 32, 10, 4)
	ix := build(t, all, Config{NList: 16, M: 8, TrainSize: 700, Seed: 4})
	q := all.Row(3)
	ix.Search(q, 10, 4, nil)
	if a := testing.AllocsPerRun(100, func() { ix.Search(q, 10, 4, nil) }); a != 1 {
		t.Errorf("Search: %v allocations, want 1 (the answer)", a)
	}
	if a := testing.AllocsPerRun(20, func() { ix.Scan(q, 10, 0, uint32(ix.Len()), nil) }); a != 1 {
		t.Errorf("Scan: %v allocations, want 1", a)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{Dim: 8}, true},
		{Config{Dim: 0}, false},
		{Config{Dim: 8, M: 9}, false},
		{Config{Dim: 8, NList: MaxNList + 1}, false},
		{Config{Dim: 8, NList: 10, TrainSize: 100}, false},
		{Config{Dim: 8, Rerank: -1}, false},
		{Config{Dim: 8, Metric: 7}, false},
	} {
		cfg := tc.cfg
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
	cfg := Config{Dim: 100}
	cfg.Validate()
	if cfg.NList != DefaultNList || cfg.M != 33 || cfg.TrainSize != 32*DefaultNList || cfg.Iterations != 10 {
		t.Errorf("defaults %+v", cfg)
	}
}

func snapshotIndex(t testing.TB, rerank int) (*Index, *dataset.Matrix) {
	all := dataset.Clustered(1300+20, 12, 8, 5)
	data, queries := all.Slice(0, 1300), all.Slice(1300, 1320)
	ix := build(t, data.Slice(0, 1200), Config{Metric: index.Dot, NList: 8, M: 6, TrainSize: 600, Rerank: rerank, Seed: 5})
	for i := 1200; i < 1300; i++ {
		ix.Append(data.Row(i)) // appended, not linked nor encoded
	}
	for id := uint32(0); id < 1300; id += 11 {
		ix.Delete(id)
	}
	return ix, queries
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, rerank := range []int{0, 20} {
		ix, queries := snapshotIndex(t, rerank)
		var buf bytes.Buffer
		n, err := ix.WriteTo(&buf)
		if err != nil || n != int64(buf.Len()) {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
		buf.WriteString("trailing")
		r := bytes.NewReader(buf.Bytes())
		got, err := Read(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "trailing" {
			t.Fatalf("Read consumed past the snapshot: %q left", rest)
		}
		c1, c2 := ix.Config(), got.Config()
		c1.Distance, c2.Distance = nil, nil
		if fmt.Sprint(c1) != fmt.Sprint(c2) || got.Len() != ix.Len() || !got.Trained() {
			t.Fatalf("config %+v, want %+v", c2, c1)
		}
		for id := range uint32(ix.Len()) {
			if got.Linked(id) != ix.Linked(id) || got.Deleted(id) != ix.Deleted(id) || !slices.Equal(got.Vector(id), ix.Vector(id)) {
				t.Fatalf("node %d differs", id)
			}
		}
		for q := range queries.Rows {
			for _, nprobe := range []int{1, 3, 8} {
				if a, b := ix.Search(queries.Row(q), 10, nprobe, nil), got.Search(queries.Row(q), 10, nprobe, nil); !slices.Equal(a, b) {
					t.Fatalf("query %d nprobe %d: %v != %v", q, nprobe, a, b)
				}
			}
			if a, b := ix.Scan(queries.Row(q), 10, 0, 1300, nil), got.Scan(queries.Row(q), 10, 0, 1300, nil); !slices.Equal(a, b) {
				t.Fatalf("scan %d: %v != %v", q, a, b)
			}
		}
		// Lists grow differently when read, so capacities differ a little.
		if a, b := float64(ix.MemoryBytes()), float64(got.MemoryBytes()); b > 1.1*a || b < 0.9*a {
			t.Errorf("memory %v after loading, %v before", b, a)
		}
		// The loaded index goes on: link the tail, write again.
		linkAll(got, 0, uint32(got.Len()))
		got.Link(got.Append(queries.Row(0)))
		var again bytes.Buffer
		if _, err := got.WriteTo(&again); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(&again, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Untrained and empty indexes.
	for _, n := range []int{0, 10} {
		ix := New(Config{Dim: 3, NList: 4, M: 3})
		for i := range n {
			ix.Link(ix.Append([]float32{float32(i), 1, 2}))
		}
		var buf bytes.Buffer
		ix.WriteTo(&buf)
		got, err := Read(&buf, nil)
		if err != nil || got.Len() != n || got.Trained() {
			t.Fatalf("untrained %d: %v", n, err)
		}
		if a, b := ix.Search([]float32{1, 1, 1}, 3, 1, nil), got.Search([]float32{1, 1, 1}, 3, 1, nil); !slices.Equal(a, b) {
			t.Fatalf("untrained: %v != %v", a, b)
		}
	}
}

func TestReadCorrupt(t *testing.T) {
	ix, _ := snapshotIndex(t, 0)
	var buf bytes.Buffer
	ix.WriteTo(&buf)
	b := buf.Bytes()
	check := func(name string, in []byte) {
		t.Helper()
		if _, err := Read(bytes.NewReader(in), nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	for _, n := range []int{0, 7, 8, headerSize - 1, headerSize, headerSize + 1, len(b) / 2, len(b) - 4, len(b) - 1} {
		check("truncated", b[:n])
	}
	for i := 0; i < len(b); i += 61 {
		c := slices.Clone(b)
		c[i] ^= 0x10
		check("bit flip", c)
	}
	boom := errors.New("boom")
	if _, err := Read(io.MultiReader(bytes.NewReader(b[:100]), errReader{boom}), nil); !errors.Is(err, boom) {
		t.Fatalf("reader error: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestConcurrent runs an appender, two linkers (one of whose Links trains
// the index mid-run), two searchers, a deleter and a snapshotter at once.
// Run it with -race.
func TestConcurrent(t *testing.T) {
	n := sized(4000)
	all := dataset.Clustered(n+20, 16, 10, 6)
	data, queries := all.Slice(0, n), all.Slice(n, n+20)
	ix := New(Config{Dim: 16, NList: 16, M: 8, TrainSize: n / 2, Iterations: 4, Seed: 6})
	ix.chunkShift, ix.chunkMask = 6, 63 // many chunks, many dropped

	appended := make(chan uint32, n)
	var done atomic.Bool
	var wg, readers sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			appended <- ix.Append(data.Row(i))
		}
		close(appended)
	})
	for range 2 {
		wg.Go(func() {
			for id := range appended {
				ix.Link(id)
			}
		})
	}
	for w := range 2 {
		readers.Go(func() {
			for i := 0; !done.Load(); i++ {
				q := queries.Row((i + w) % queries.Rows)
				for _, r := range ix.Search(q, 5, 4, func(id uint32) bool { return id%3 != 0 }) {
					if r.ID%3 == 0 || !ix.Linked(r.ID) {
						t.Errorf("Search returned %d", r.ID)
						return
					}
				}
				ix.Scan(q, 5, uint32(max(ix.Len()-100, 0)), uint32(ix.Len()), nil)
				if l := ix.Len(); l > 0 {
					ix.Vector(uint32(i % l))
				}
			}
		})
	}
	readers.Go(func() {
		for i := 0; !done.Load(); i++ {
			if l := ix.Len(); l > 0 {
				ix.Delete(uint32(i*7) % uint32(l))
			}
			if i%40 == 0 {
				var buf bytes.Buffer
				if _, err := ix.WriteTo(&buf); err != nil {
					t.Error(err)
					return
				}
				if _, err := Read(&buf, nil); err != nil {
					t.Errorf("snapshot taken during the build: %v", err)
					return
				}
			}
			ix.MemoryBytes()
		}
	})
	wg.Wait()
	done.Store(true)
	readers.Wait()
	if !ix.Trained() {
		t.Fatal("never trained")
	}
	for id := range uint32(n) {
		if !ix.Linked(id) {
			t.Fatalf("node %d not linked", id)
		}
	}
}

func FuzzRead(f *testing.F) {
	small := build(f, dataset.Clustered(300, 3, 3, 7), Config{NList: 4, M: 3, TrainSize: 256, Iterations: 2, Seed: 7})
	small.Append([]float32{1, 2, 3})
	small.Delete(5)
	var buf bytes.Buffer
	small.WriteTo(&buf)
	f.Add(buf.Bytes())
	buf.Reset()
	New(Config{Dim: 2, NList: 2, M: 1}).WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		readAndUse(in)
		// Fix the checksums up so that the checks behind them get fuzzed.
		if len(in) >= headerSize+4 {
			in = slices.Clone(in)
			le := binaryLE
			le.PutUint32(in[headerSize-4:], crcOf(in[:headerSize-4]))
			le.PutUint32(in[len(in)-4:], crcOf(in[:len(in)-4]))
			readAndUse(in)
		}
	})
}

func readAndUse(in []byte) {
	ix, err := Read(bytes.NewReader(in), nil)
	if err != nil {
		return
	}
	q := make([]float32, ix.dim)
	ix.Search(q, 3, 2, nil)
	ix.Scan(q, 3, 0, uint32(ix.Len()), nil)
	for id := range uint32(min(ix.Len(), 50)) {
		ix.Vector(id)
		ix.Link(id)
	}
	ix.Search(q, 3, 2, nil)
	ix.MemoryBytes()
}

// TestDeletedBeforeTraining: whole chunks deleted before the index trains
// lose their vectors; training must skip them, and wait while too few
// vectors are left.
func TestDeletedBeforeTraining(t *testing.T) {
	all := dataset.Clustered(2000, 8, 10, 9)
	ix := New(Config{Dim: 8, NList: 8, M: 4, TrainSize: 600, Seed: 9})
	ix.chunkShift, ix.chunkMask = 6, 63
	for i := range 1500 {
		ix.Append(all.Row(i))
	}
	for id := uint32(0); id < 1280; id++ { // 20 whole chunks
		ix.Delete(id)
	}
	if (*ix.chunks.Load())[0].vectors.Load() != nil {
		t.Fatal("vectors of a deleted chunk kept")
	}
	ix.Link(1400)
	if ix.Trained() {
		t.Fatal("trained on 220 vectors, below the codebooks' 256")
	}
	for i := 1500; i < 2000; i++ {
		ix.Append(all.Row(i))
	}
	linkAll(ix, 0, 2000)
	if !ix.Trained() {
		t.Fatal("not trained")
	}
	live := func(id uint32) bool { return id >= 1280 }
	data := all.Slice(0, 2000)
	if r := recall(t, ix, data, all.Slice(1900, 1950), 10, 8, live); r < 0.6 {
		t.Fatalf("recall %.3f", r)
	}
}

// A list reserved for one entry (training saw one node in its cell) grows
// when more arrive.
func TestListGrowsFromOne(t *testing.T) {
	var l invList
	const m = 3
	l.reserve(1, m)
	for i := range 40 {
		code := []uint8{uint8(i), uint8(i + 1), uint8(i + 2)}
		if pos := l.add(uint32(100+i), code, float32(i), m); pos != uint32(i) {
			t.Fatalf("entry %d at position %d", i, pos)
		}
	}
	d := l.data.Load()
	if d.n.Load() != 40 || d.ids[39] != 139 || d.codes[39*m+2] != 41 || d.extra[39] != 39 || d.ids[0] != 100 {
		t.Fatalf("list after 40 adds: n %d, ids %v", d.n.Load(), d.ids[:d.n.Load()])
	}
}
