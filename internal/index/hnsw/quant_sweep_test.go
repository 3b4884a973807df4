package hnsw_test

import (
	"os"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index/annbench"
	"github.com/hippo-db/hippo/internal/index/hnsw"
)

// TestQuantizationSweep compares the int8 variants (asymmetric or symmetric,
// per-dimension or global ranges, trimmed or not) with float32 on one graph
// of synthetic clustered data, where quantization loses information (on
// Fashion-MNIST, whose values are the integers 0-255, per-dimension ranges
// are lossless). It runs only when HIPPO_ANNBENCH is set:
//
//	HIPPO_ANNBENCH=1 go test -run QuantizationSweep -v -timeout 1h ./internal/index/hnsw
//
// HIPPO_ANNBENCH_DIM (default 768), _N (50,000) and _REPEATS change the set;
// _SKEW=f multiplies the first sixteenth of the dimensions by f.
func TestQuantizationSweep(t *testing.T) {
	if os.Getenv("HIPPO_ANNBENCH") == "" {
		t.Skip("set HIPPO_ANNBENCH=1 to run")
	}
	env := func(name string, def int) int { return envInt("HIPPO_ANNBENCH_"+name, def) }
	dim, n, queries := env("DIM", 768), env("N", 50000), 1000
	all := dataset.Clustered(n+queries, dim, 100, 7)
	if skew := env("SKEW", 0); skew > 0 {
		// Dimensions of very different spreads: the first sixteenth are
		// skew times wider, which per-dimension ranges absorb and one
		// global step does not.
		for r := range all.Rows {
			row := all.Row(r)
			for i := range dim / 16 {
				row[i] *= float32(skew)
			}
		}
	}
	train, test := all.Slice(0, n), all.Slice(n, n+queries)
	truth, err := dataset.BruteForce(train, test, 10)
	if err != nil {
		t.Fatal(err)
	}
	ix, rep := annbench.BuildReport(train, annbench.Options{Threads: 2, Seed: 7})
	t.Logf("clustered %d×%d: build %.2fs", n, dim, rep.Build.Seconds())
	efs := []int{16, 32, 64, 128}
	variants := []struct {
		name string
		q    hnsw.Quantization
	}{
		{"float32", hnsw.Quantization{}},
		{"asym per-dim", hnsw.Quantization{Int8: true}},
		{"asym global", hnsw.Quantization{Int8: true, Global: true}},
		{"asym per-dim q=0.001", hnsw.Quantization{Int8: true, Quantile: 0.001}},
		{"sym", hnsw.Quantization{Int8: true, Symmetric: true}},
		{"sym q=0.001", hnsw.Quantization{Int8: true, Symmetric: true, Quantile: 0.001}},
		{"sym rerank=2k", hnsw.Quantization{Int8: true, Symmetric: true, Rerank: 20}},
	}
	ids := make([]int32, test.Rows*10)
	for _, v := range variants {
		hnsw.SetQuantizationForTest(ix, v.q)
		annbench.Measure(ix, test, truth, 10, efs[0], ids)
		for _, ef := range efs {
			passes := make([]annbench.Point, env("REPEATS", 3))
			for i := range passes {
				passes[i] = annbench.Measure(ix, test, truth, 10, ef, ids)
			}
			p := annbench.Median(passes)
			t.Logf("%-22s ef=%4d recall@10=%.4f qps=%6.0f cpu-qps=%6.0f", v.name, ef, p.Recall, p.QPS, p.CPUQPS)
		}
	}
}
