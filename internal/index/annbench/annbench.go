// Package annbench measures vector indexes the way ANN benchmarks do: build
// time and memory per vector, then recall@k and single-thread queries per
// second swept over the index's effort knob (ef for HNSW, nprobe for
// IVF-PQ), printed as a table. The Go benchmarks in the index packages and
// the `hippo bench` command both use it, so they print the same numbers.
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
	"github.com/hippo-db/hippo/internal/index"
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
	// Quantization is passed to hnsw.Config.
	Quantization hnsw.Quantization
}

// DefaultEfs is the ef sweep used when Options.Efs is empty.
var DefaultEfs = []int{16, 32, 48, 64, 96, 128, 256}

// Point is the measurement at one setting of the effort knob.
type Point struct {
	Ef     int     // ef, or nprobe
	Recall float64 // recall@K against the ground truth
	QPS    float64 // queries per second on one goroutine (wall time), median of the passes
	// CPUQPS is queries per second of CPU time of the measuring thread: what
	// QPS would be on an idle core. 0 where it cannot be measured.
	CPUQPS float64
}

// Report is what Run or RunIndex measured.
type Report struct {
	// Name describes the index and its build parameters, for the table's
	// title, e.g. "HNSW M=16 efConstruction=200". Run fills it in.
	Name string
	// Knob names the swept parameter: "ef" (the default) or "nprobe".
	Knob                     string
	Vectors, Dim, Queries, K int
	M, EfConstruction        int // HNSW builds only
	Threads                  int
	Build                    time.Duration // wall time
	BuildCPU                 time.Duration // CPU time of the process during the build; 0 if unknown
	// IndexBytesPerVector is MemoryBytes over the vector count;
	// HeapBytesPerVector is the growth of the live Go heap (HeapAlloc after
	// a collection) across the build, over the vector count. Live bytes
	// rather than in-use spans: the allocator's fragmentation (spans kept
	// for small objects) depends on what else the process did.
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

// Build appends every row of train to a new HNSW index and links them from
// threads goroutines. It returns the index, the wall time taken and the CPU
// time the process used meanwhile (0 where unknown).
func Build(train *dataset.Matrix, cfg hnsw.Config, threads int) (ix *hnsw.Index, wall, cpu time.Duration) {
	cfg.Dim = train.Dim
	ix = hnsw.New(cfg)
	wall, cpu = Fill(ix, train, threads)
	return ix, wall, cpu
}

// Fill appends every row of train to ix, which must be empty, and links them
// from threads goroutines, in id order. It returns the wall time taken and
// the CPU time the process used meanwhile (0 where unknown). For an IVF-PQ
// index this includes training, done by the Link that reaches TrainSize.
func Fill(ix index.Index, train *dataset.Matrix, threads int) (wall, cpu time.Duration) {
	startCPU := processCPU()
	start := time.Now()
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
	return time.Since(start), processCPU() - startCPU
}

// Measure runs every query once through Search on the calling goroutine, k
// neighbours at the given ef (nprobe for IVF-PQ), and returns recall@k
// against truth and the queries per second. ids is scratch for the answers
// (queries×k), reused when large enough; pass nil to allocate.
func Measure(ix index.Index, queries *dataset.Matrix, truth [][]int32, k, ef int, ids []int32) Point {
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

// Run builds an HNSW index over train, sweeps opt.Efs over the test queries
// and returns the measurements. If progress is non-nil, it prints each
// figure as it is measured.
func Run(train, test *dataset.Matrix, truth [][]int32, opt Options, progress io.Writer) (*Report, error) {
	opt.fill()
	if err := check(train, test, truth); err != nil {
		return nil, err
	}
	ix, rep := BuildReport(train, opt)
	return rep, sweep(ix, rep, test, truth, opt.Efs, opt.Repeats, progress)
}

func check(train, test *dataset.Matrix, truth [][]int32) error {
	if train.Dim != test.Dim {
		return fmt.Errorf("annbench: train has %d dimensions, test %d", train.Dim, test.Dim)
	}
	if len(truth) != test.Rows {
		return fmt.Errorf("annbench: %d ground-truth rows for %d queries", len(truth), test.Rows)
	}
	return nil
}

// Spec is an index configuration for RunIndex.
type Spec struct {
	Name    string                    // table title, e.g. "IVF-PQ nlist=1024 m=196"
	Knob    string                    // the swept parameter: "ef" or "nprobe"
	New     func(dim int) index.Index // returns an empty index
	Efs     []int                     // values of the knob to sweep
	K       int                       // default 10
	Threads int                       // build goroutines; default GOMAXPROCS
	Repeats int                       // passes per value; default 3
}

// RunIndex builds the index spec describes over train, sweeps its knob over
// the test queries and returns the measurements, printing progress as Run.
func RunIndex(train, test *dataset.Matrix, truth [][]int32, spec Spec, progress io.Writer) (*Report, error) {
	if err := check(train, test, truth); err != nil {
		return nil, err
	}
	opt := Options{K: spec.K, Threads: spec.Threads, Repeats: spec.Repeats, Efs: spec.Efs}
	opt.fill()
	rep := &Report{Name: spec.Name, Knob: spec.Knob, Vectors: train.Rows, Dim: train.Dim, K: opt.K, Threads: opt.Threads}
	before := heapInUse()
	ix := spec.New(train.Dim)
	rep.Build, rep.BuildCPU = Fill(ix, train, opt.Threads)
	measureMemory(ix, rep, before)
	return rep, sweep(ix, rep, test, truth, opt.Efs, opt.Repeats, progress)
}

func measureMemory(ix index.Index, rep *Report, before uint64) {
	rep.HeapBytesPerVector = (float64(heapInUse()) - float64(before)) / float64(max(rep.Vectors, 1))
	rep.IndexBytesPerVector = float64(ix.MemoryBytes()) / float64(max(rep.Vectors, 1))
}

// sweep measures ix at every value of efs, filling rep.Points.
func sweep(ix index.Index, rep *Report, test *dataset.Matrix, truth [][]int32, efs []int, repeats int, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	rep.Queries = test.Rows
	fmt.Fprintf(progress, "%s: built %d×%d on %d threads in %.2fs (%.2fs CPU), %.0f bytes/vector\n",
		rep.title(), rep.Vectors, rep.Dim, rep.Threads, rep.Build.Seconds(), rep.BuildCPU.Seconds(), rep.IndexBytesPerVector)
	ids := make([]int32, test.Rows*rep.K)
	Measure(ix, test.Slice(0, min(test.Rows, 500)), truth, rep.K, efs[0], ids) // warm caches and searchers
	for _, ef := range efs {
		passes := make([]Point, repeats)
		for i := range passes {
			passes[i] = Measure(ix, test, truth, rep.K, ef, ids)
		}
		p := Median(passes)
		rep.Points = append(rep.Points, p)
		fmt.Fprintf(progress, "%s=%d recall@%d=%.4f qps=%.0f cpu-qps=%.0f\n", rep.knob(), ef, rep.K, p.Recall, p.QPS, p.CPUQPS)
	}
	runtime.KeepAlive(ix)
	return nil
}

// BuildReport builds an HNSW index over train as Run does and returns it
// with a report whose build and memory fields are filled in; Queries and
// Points are left for the caller.
func BuildReport(train *dataset.Matrix, opt Options) (*hnsw.Index, *Report) {
	opt.fill()
	rep := &Report{Vectors: train.Rows, Dim: train.Dim, K: opt.K, M: opt.M, EfConstruction: opt.EfConstruction, Threads: opt.Threads}
	before := heapInUse()
	ix, wall, cpu := Build(train, hnsw.Config{M: opt.M, EfConstruction: opt.EfConstruction, Distance: opt.Distance, Seed: opt.Seed,
		KeepPruned: opt.KeepPruned, Quantization: opt.Quantization}, opt.Threads)
	rep.Build, rep.BuildCPU = wall, cpu
	measureMemory(ix, rep, before)
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

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (r *Report) title() string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("HNSW, M=%d, efConstruction=%d", r.M, r.EfConstruction)
}

func (r *Report) knob() string {
	if r.Knob != "" {
		return r.Knob
	}
	return "ef"
}

// WriteTable prints the report as a plain-text table.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s, %d vectors × %d dims, %d queries, k=%d\n", r.title(), r.Vectors, r.Dim, r.Queries, r.K)
	fmt.Fprintf(w, "build: %.2f s on %d threads (%.2f s CPU); memory: %.0f bytes/vector (heap growth), %.0f (index estimate)\n",
		r.Build.Seconds(), r.Threads, r.BuildCPU.Seconds(), r.HeapBytesPerVector, r.IndexBytesPerVector)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\trecall@%d\tQPS (1 thread)\tQPS (thread CPU time)\t\n", r.knob(), r.K)
	for _, p := range r.Points {
		fmt.Fprintf(tw, "%d\t%.4f\t%.0f\t%.0f\t\n", p.Ef, p.Recall, p.QPS, p.CPUQPS)
	}
	return tw.Flush()
}
