package hnsw

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/vec"
)

// unitRows normalises every row in place, for the cosine metric.
func unitRows(m *dataset.Matrix) *dataset.Matrix {
	for i := range m.Rows {
		vec.Normalize(m.Row(i))
	}
	return m
}

// TestQuantizedRecall builds quantized indexes for every metric and variant
// and checks recall against exact Scan, and that the distances Search
// returns are the exact ones (re-ranking), in ascending order.
func TestQuantizedRecall(t *testing.T) {
	n := sized(4000)
	variants := map[string]Quantization{
		"symmetric":           {Int8: true, Symmetric: true, TrainSize: 256},
		"asymmetric":          {Int8: true, TrainSize: 256},
		"asymmetric-global":   {Int8: true, Global: true, TrainSize: 256},
		"symmetric-trimmed":   {Int8: true, Symmetric: true, Quantile: 0.001, TrainSize: 256},
		"symmetric-rerank-2k": {Int8: true, Symmetric: true, Rerank: 20, TrainSize: 256},
	}
	for _, metric := range []index.Metric{index.L2, index.Dot, index.Cosine} {
		all := dataset.Clustered(n+100, 48, 30, 21)
		if metric == index.Cosine {
			unitRows(all)
		}
		train, queries := all.Slice(0, n), all.Slice(n, n+100)
		for name, q := range variants {
			t.Run(metric.String()+"/"+name, func(t *testing.T) {
				ix := build(t, train, Config{Metric: metric, M: 12, EfConstruction: 100, Seed: 21, Quantization: q}, 2)
				if ix.Quantizer() == nil {
					t.Fatal("not trained")
				}
				if r := recall(t, ix, queries, 10, 80, nil); r < 0.95 {
					t.Errorf("recall@10 at ef=80: %.4f, want ≥ 0.95", r)
				}
				dist := metric.Distance()
				for i := range 10 {
					q := queries.Row(i)
					for _, r := range ix.Search(q, 10, 40, nil) {
						if want := dist(q, ix.Vector(r.ID)); r.Distance != want {
							t.Fatalf("node %d: distance %v, want exact %v", r.ID, r.Distance, want)
						}
					}
				}
			})
		}
	}
}

// TestQuantizedMatchesFloatOnIntegers: on data whose values are small
// integers, per-dimension ranges (steps of 1 or less) encode every value
// exactly, so the code distances equal the exact ones up to float32
// rounding, and the quantized search returns what the float32 search does.
// (The data and build are deterministic, so rounding cannot make this
// flaky.)
func TestQuantizedMatchesFloatOnIntegers(t *testing.T) {
	all := dataset.Clustered(sized(2000)+20, 24, 10, 22)
	for i, v := range all.Data {
		all.Data[i] = float32(int(v*20+1000) % 200) // 0 … 199
	}
	data, queries := all.Slice(0, all.Rows-20), all.Slice(all.Rows-20, all.Rows)
	plain := build(t, data, Config{Seed: 22}, 1)
	quant := build(t, data, Config{Seed: 22, Quantization: Quantization{Int8: true, TrainSize: 100}}, 1)
	for i := range queries.Rows {
		q := queries.Row(i)
		a, b := plain.Search(q, 10, 50, nil), quant.Search(q, 10, 50, nil)
		if !slices.Equal(a, b) {
			t.Fatalf("query %d: float32 %v, int8 %v", i, a, b)
		}
	}
}

func TestTrainingSchedule(t *testing.T) {
	all := dataset.Clustered(5000, 8, 5, 23)
	ix := New(Config{Dim: 8, Quantization: Quantization{Int8: true, Symmetric: true, TrainSize: 64}})
	var trainings []uint32
	var last *codeSet
	for i := range all.Rows {
		ix.Append(all.Row(i))
		cs := ix.codes.Load()
		if cs != last {
			trainings = append(trainings, cs.trainedAt)
			last = cs
		}
		if cs != nil && cs.covered.Load() != uint32(ix.Len()) {
			t.Fatalf("after %d appends codes cover %d", ix.Len(), cs.covered.Load())
		}
	}
	if !slices.Equal(trainings, []uint32{64, 512, 4096}) {
		t.Fatalf("trained at %v, want [64 512 4096]", trainings)
	}
	ix.Retrain()
	if cs := ix.codes.Load(); cs == last || cs.trainedAt != 5000 || cs.covered.Load() != 5000 {
		t.Fatal("Retrain did not replace the codes")
	}
	// An index without quantization ignores Retrain.
	plain := New(Config{Dim: 8})
	plain.Append(all.Row(0))
	plain.Retrain()
	if plain.Quantizer() != nil {
		t.Fatal("Retrain quantized a plain index")
	}
}

// TestUntrainedSearch: below TrainSize the index searches on float32.
func TestUntrainedSearch(t *testing.T) {
	all := dataset.Clustered(320, 16, 4, 24)
	data, queries := all.Slice(0, 300), all.Slice(300, 320)
	ix := build(t, data, Config{Seed: 24, Quantization: Quantization{Int8: true}}, 1)
	if ix.Quantizer() != nil {
		t.Fatal("trained below TrainSize")
	}
	if r := recall(t, ix, queries, 5, 50, nil); r < 0.98 {
		t.Fatalf("recall %.3f", r)
	}
}

func TestQuantizedSearchAllocs(t *testing.T) {
	all := dataset.Clustered(sized(2000), 32, 10, 25)
	for _, sym := range []bool{false, true} {
		ix := build(t, all, Config{Seed: 25, Quantization: Quantization{Int8: true, Symmetric: sym, TrainSize: 500}}, 1)
		q := all.Row(17)
		ix.Search(q, 10, 64, nil)
		if a := testing.AllocsPerRun(200, func() { ix.Search(q, 10, 64, nil) }); a != 1 {
			t.Errorf("symmetric=%t: %v allocations per run, want 1 (the answer)", sym, a)
		}
	}
}

func TestQuantizedSnapshot(t *testing.T) {
	all := dataset.Clustered(1220, 20, 8, 26)
	data, queries := all.Slice(0, 1200), all.Slice(1200, 1220)
	for _, tc := range []struct {
		name  string
		quant Quantization
		n     int
	}{
		{"trained", Quantization{Int8: true, Symmetric: true, TrainSize: 100, Rerank: 30}, 1200},
		{"asymmetric", Quantization{Int8: true, Global: true, Quantile: 0.01, TrainSize: 100}, 1200},
		{"untrained", Quantization{Int8: true, TrainSize: 5000}, 1200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := build(t, data.Slice(0, tc.n-50), Config{Metric: index.Dot, Seed: 26, Quantization: tc.quant}, 2)
			for i := tc.n - 50; i < tc.n; i++ {
				ix.Append(data.Row(i))
			}
			ix.Delete(7)
			var buf bytes.Buffer
			if _, err := ix.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			got, err := Read(bytes.NewReader(buf.Bytes()), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Config().Quantization != ix.Config().Quantization || got.Config().Metric != index.Dot || got.nextTrain != ix.nextTrain {
				t.Fatalf("config %+v (next %d), want %+v (next %d)", got.Config(), got.nextTrain, ix.Config(), ix.nextTrain)
			}
			if (got.Quantizer() == nil) != (ix.Quantizer() == nil) {
				t.Fatal("quantizer lost or invented")
			}
			for q := range queries.Rows {
				if a, b := ix.Search(queries.Row(q), 10, 30, nil), got.Search(queries.Row(q), 10, 30, nil); !slices.Equal(a, b) {
					t.Fatalf("query %d: %v != %v", q, a, b)
				}
			}
			var again bytes.Buffer
			got.WriteTo(&again)
			if !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Fatal("second snapshot differs")
			}
			// Every byte of the quantization section is checked.
			b := buf.Bytes()
			for i := headerSize; i < headerSize+4+quantFixedSize+8; i++ {
				c := slices.Clone(b)
				c[i] ^= 0x04
				if _, err := Read(bytes.NewReader(c), nil); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("flip at %d: %v", i, err)
				}
			}
		})
	}
}
