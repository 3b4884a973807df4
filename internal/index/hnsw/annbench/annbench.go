// Package annbench measures an HNSW index the way ANN benchmarks do: build
// time and memory per vector, then recall@k and single-thread queries per
// second swept over ef, printed as a table. The Go benchmark in package hnsw
// and the `hippo bench` command both use it, so they print the same numbers.
package annbench

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index/hnsw"
)

// Options configures Run. Zero fields take the defaults noted.
type Options struct {
	M              int   // default 16
	EfConstruction int   // default 200
	Threads        int   // goroutines linking the build; default GOMAXPROCS
	K              int   // neighbours per query; default 10
	Efs            []int // ef values to sweep; default DefaultEfs
	Repeats        int   // query passes per ef, median reported; default 3
	Seed           int64
	KeepPruned     bool // see hnsw.Config.KeepPruned
	// Distance must match the ground truth; nil means vec.L2Squared.
	Distance func(a, b []float32) float32
}

// DefaultEfs is the ef sweep used when Options.Efs is empty.
var DefaultEfs = []int{16, 32, 48, 64, 96, 128, 256}

// Point is the measurement at one ef.
type Point struct {
	Ef     int
	Recall float64 // recall@K against the ground truth
	QPS    float64 // queries per second on one goroutine (wall time), median of the passes
	// CPUQPS is queries per second of CPU time of the measuring thread: what
	// QPS would be on an idle core. 0 where it cannot be measured.
	CPUQPS float64
}

// Report is what Run measured.
type Report struct {
	Vectors, Dim, Queries, K int
	M, EfConstruction        int
	Threads                  int
	Build                    time.Duration // wall time
	BuildCPU                 time.Duration // CPU time of the process during the build; 0 if unknown
	// IndexBytesPerVector is Index.MemoryBytes over the vector count;
	// HeapBytesPerVector is the growth of the Go heap across the build, after
	// a collection, over the vector count.
	IndexBytesPerVector, HeapBytesPerVector float64
	Points                                  []Point
}

func (o *Options) fill() {
	if o.M == 0 {
		o.M = 16
	}
	if o.EfConstruction == 0 {
		o.EfConstruction = 200
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.K <= 0 {
		o.K = 10
	}
	if len(o.Efs) == 0 {
		o.Efs = DefaultEfs
	}
	if o.Repeats <= 0 {
		o.Repeats = 3
	}
}

// Build appends every row of train to a new index and links them from
// threads goroutines. It returns the index, the wall time taken and the CPU
// time the process used meanwhile (0 where unknown).
func Build(train *dataset.Matrix, cfg hnsw.Config, threads int) (ix *hnsw.Index, wall, cpu time.Duration) {
	cfg.Dim = train.Dim
	startCPU := processCPU()
	start := time.Now()
	ix = hnsw.New(cfg)
	for i := range train.Rows {
		ix.Append(train.Row(i))
	}
	var next atomic.Uint32
	var wg sync.WaitGroup
	for range max(threads, 1) {
		wg.Go(func() {
			for {
				id := next.Add(1) - 1
				if int(id) >= train.Rows {
					return
				}
				ix.Link(id)
			}
		})
	}
	wg.Wait()
	return ix, time.Since(start), processCPU() - startCPU
}

// Measure runs every query once through Search on the calling goroutine, k
// neighbours at the given ef, and returns recall@k against truth and the
// queries per second. ids is scratch for the answers (queries×k), reused
// when large enough; pass nil to allocate.
func Measure(ix *hnsw.Index, queries *dataset.Matrix, truth [][]int32, k, ef int, ids []int32) Point {
	if cap(ids) < queries.Rows*k {
		ids = make([]int32, queries.Rows*k)
	}
	ids = ids[:queries.Rows*k]
	counts := make([]int, queries.Rows)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	startCPU := threadCPU()
	start := time.Now()
	for q := range queries.Rows {
		res := ix.Search(queries.Row(q), k, ef, nil)
		for i, r := range res {
			ids[q*k+i] = int32(r.ID)
		}
		counts[q] = len(res)
	}
	elapsed := time.Since(start)
	cpu := threadCPU() - startCPU
	hits, want := 0, 0
	for q := range queries.Rows {
		hits += dataset.Hits(ids[q*k:q*k+counts[q]], truth[q], k)
		want += min(k, len(truth[q]))
	}
	p := Point{Ef: ef, Recall: float64(hits) / float64(max(want, 1)), QPS: float64(queries.Rows) / elapsed.Seconds()}
	if cpu > 0 {
		p.CPUQPS = float64(queries.Rows) / cpu.Seconds()
	}
	return p
}

// Run builds an index over train, sweeps opt.Efs over the test queries and
// returns the measurements. If progress is non-nil, it prints each figure as
// it is measured.
func Run(train, test *dataset.Matrix, truth [][]int32, opt Options, progress io.Writer) (*Report, error) {
	opt.fill()
	if train.Dim != test.Dim {
		return nil, fmt.Errorf("annbench: train has %d dimensions, test %d", train.Dim, test.Dim)
	}
	if len(truth) != test.Rows {
		return nil, fmt.Errorf("annbench: %d ground-truth rows for %d queries", len(truth), test.Rows)
	}
	if progress == nil {
		progress = io.Discard
	}
	ix, rep := BuildReport(train, opt)
	rep.Queries = test.Rows
	fmt.Fprintf(progress, "built %d×%d (M=%d, efConstruction=%d) on %d threads in %.2fs (%.2fs CPU), %.0f bytes/vector\n",
		train.Rows, train.Dim, opt.M, opt.EfConstruction, opt.Threads, rep.Build.Seconds(), rep.BuildCPU.Seconds(), rep.HeapBytesPerVector)

	ids := make([]int32, test.Rows*opt.K)
	Measure(ix, test.Slice(0, min(test.Rows, 500)), truth, opt.K, opt.Efs[0], ids) // warm caches and searchers
	for _, ef := range opt.Efs {
		passes := make([]Point, opt.Repeats)
		for i := range passes {
			passes[i] = Measure(ix, test, truth, opt.K, ef, ids)
		}
		p := Median(passes)
		rep.Points = append(rep.Points, p)
		fmt.Fprintf(progress, "ef=%d recall@%d=%.4f qps=%.0f cpu-qps=%.0f\n", ef, opt.K, p.Recall, p.QPS, p.CPUQPS)
	}
	runtime.KeepAlive(ix)
	return rep, nil
}

// BuildReport builds an index over train as Run does and returns it with a
// report whose build and memory fields are filled in; Queries and Points are
// left for the caller.
func BuildReport(train *dataset.Matrix, opt Options) (*hnsw.Index, *Report) {
	opt.fill()
	rep := &Report{Vectors: train.Rows, Dim: train.Dim, K: opt.K, M: opt.M, EfConstruction: opt.EfConstruction, Threads: opt.Threads}
	before := heapInUse()
	ix, wall, cpu := Build(train, hnsw.Config{M: opt.M, EfConstruction: opt.EfConstruction, Distance: opt.Distance, Seed: opt.Seed, KeepPruned: opt.KeepPruned}, opt.Threads)
	rep.Build, rep.BuildCPU = wall, cpu
	rep.HeapBytesPerVector = float64(heapInUse()-before) / float64(max(train.Rows, 1))
	rep.IndexBytesPerVector = float64(ix.MemoryBytes()) / float64(max(train.Rows, 1))
	return ix, rep
}

// Median returns the passes' point with the median QPS, and the median CPU
// QPS; recall is the same in every pass of one index and ef.
func Median(passes []Point) Point {
	by := func(f func(Point) float64) Point {
		s := slices.Clone(passes)
		slices.SortFunc(s, func(a, b Point) int { return cmp.Compare(f(a), f(b)) })
		return s[len(s)/2]
	}
	p := by(func(p Point) float64 { return p.QPS })
	p.CPUQPS = by(func(p Point) float64 { return p.CPUQPS }).CPUQPS
	return p
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// WriteTable prints the report as a plain-text table.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "HNSW, %d vectors × %d dims, %d queries, k=%d, M=%d, efConstruction=%d\n",
		r.Vectors, r.Dim, r.Queries, r.K, r.M, r.EfConstruction)
	fmt.Fprintf(w, "build: %.2f s on %d threads (%.2f s CPU); memory: %.0f bytes/vector (heap growth), %.0f (index estimate)\n",
		r.Build.Seconds(), r.Threads, r.BuildCPU.Seconds(), r.HeapBytesPerVector, r.IndexBytesPerVector)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "ef\trecall@%d\tQPS (1 thread)\tQPS (thread CPU time)\t\n", r.K)
	for _, p := range r.Points {
		fmt.Fprintf(tw, "%d\t%.4f\t%.0f\t%.0f\t\n", p.Ef, p.Recall, p.QPS, p.CPUQPS)
	}
	return tw.Flush()
}
