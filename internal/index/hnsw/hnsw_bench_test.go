package hnsw_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index/annbench"
	"github.com/hippo-db/hippo/internal/index/hnsw"
)

// BenchmarkFashionMNIST is the product benchmark: it builds the 60,000
// Fashion-MNIST vectors (M=16, efConstruction=200, 2 goroutines) and sweeps
// ef over the 10,000 queries on one goroutine, k=10, against exact ground
// truth. Run it with
//
//	go test -run '^$' -bench FashionMNIST -benchtime 1x ./internal/index/hnsw
//
// Each ef is a sub-benchmark reporting recall, qps and cpu-qps (queries per
// second of the measuring thread's CPU time, steadier on a shared machine).
// The table printed at the end adds the build time and memory and, with
// -count N, takes the median of the N passes at each ef (the index is built
// once). It is skipped when the data set is not installed
// (apt-get install -y dataset-fashion-mnist).
func BenchmarkFashionMNIST(b *testing.B) {
	train, test, err := dataset.FashionMNIST()
	if errors.Is(err, dataset.ErrNotInstalled) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	const k = 10
	truth, err := dataset.GroundTruth(train, test, k)
	if err != nil {
		b.Fatal(err)
	}
	ix, rep := annbench.BuildReport(train, annbench.Options{M: 16, EfConstruction: 200, Threads: 2, K: k, Seed: 1})
	rep.Queries = test.Rows
	ids := make([]int32, test.Rows*k)
	annbench.Measure(ix, test.Slice(0, 500), truth, k, 16, ids) // warm up
	for _, ef := range annbench.DefaultEfs {
		var passes []annbench.Point
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) {
			var p annbench.Point
			for b.Loop() {
				p = annbench.Measure(ix, test, truth, k, ef, ids)
			}
			b.ReportMetric(p.Recall, "recall")
			b.ReportMetric(p.QPS, "qps")
			b.ReportMetric(p.CPUQPS, "cpu-qps")
			passes = append(passes, p) // one per -count
		})
		if len(passes) > 0 {
			rep.Points = append(rep.Points, annbench.Median(passes))
		}
	}
	// The parent of sub-benchmarks cannot report metrics, so the build
	// figures are in the table only.
	rep.WriteTable(os.Stdout)
}

// BenchmarkSearch measures one query on synthetic clustered data, without the
// Fashion-MNIST files: 20,000 × 128, M=16, ef=64.
func BenchmarkSearch(b *testing.B) {
	all := dataset.Clustered(20000+100, 128, 100, 1)
	ix, _, _ := annbench.Build(all.Slice(0, 20000), hnsw.Config{Seed: 1}, 2)
	queries := all.Slice(20000, 20100)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ix.Search(queries.Row(i%queries.Rows), 10, 64, nil)
		i++
	}
}

// BenchmarkLink measures inserting into a growing index on one goroutine:
// 128 dims, M=16, efConstruction=200.
func BenchmarkLink(b *testing.B) {
	all := dataset.Clustered(50000, 128, 100, 2)
	ix := hnsw.New(hnsw.Config{Dim: 128, Seed: 2})
	for i := range 2000 { // a non-trivial graph to insert into
		ix.Link(ix.Append(all.Row(i)))
	}
	b.ReportAllocs()
	i := 2000
	for b.Loop() {
		ix.Link(ix.Append(all.Row(i % all.Rows)))
		i++
	}
}
