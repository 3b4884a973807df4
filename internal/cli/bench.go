package cli

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/hippo-db/hippo/internal/bench"
	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/annbench"
	"github.com/hippo-db/hippo/internal/index/hnsw"
	"github.com/hippo-db/hippo/internal/index/ivfpq"
	"github.com/hippo-db/hippo/internal/vec"
)

// intList is a comma-separated list of integers.
type intList []int

func (l *intList) String() string { return fmt.Sprint([]int(*l)) }
func (l *intList) Set(s string) error {
	*l = nil
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		*l = append(*l, n)
	}
	return nil
}

func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "subscribers" {
		return benchSubscribers(args[1:], os.Stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("hippo bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	only := fs.String("only", "ann,server,feed", "which benchmarks: ann (in-process indexes), server (end to end), feed (change-feed subscribers, latency, fan-out, write cost); also given as arguments")
	indexes := fs.String("indexes", "hnsw,hnsw-int8,ivfpq", "indexes the ann benchmark builds: hnsw (float32), hnsw-int8, ivfpq")
	efs := intList{16, 32, 48, 64, 96, 128, 256}
	fs.Var(&efs, "efs", "ef values to sweep, comma-separated")
	nprobes := intList{8, 16, 32, 64, 128}
	fs.Var(&nprobes, "nprobes", "IVF-PQ nprobe values to sweep")
	ivfConfigs := ivfList{{1024, 261, 0}, {256, 261, 0}, {1024, 196, 0}, {1024, 98, 100}}
	fs.Var(&ivfConfigs, "ivfpq", "IVF-PQ settings to build, nlist/m[/rerank] comma-separated")
	serverIndexes := fs.String("server-index", "hnsw", "indexes the end-to-end search sweep runs on, one server each: "+bench.ServerIndexes)
	serverTransports := fs.String("server-transport", "h2c", "client transports of the end-to-end search sweep: "+bench.SweepTransports)
	searchOnly := fs.Bool("search-only", false, "end to end: only the import and the search sweep (no gets, writes, small imports, restarts)")
	serverEfs := intList{32, 64, 96, 128}
	fs.Var(&serverEfs, "server-efs", "ef values to sweep end to end")
	clients := intList{1, 4}
	fs.Var(&clients, "clients", "concurrent clients for the end-to-end sweep")
	repeats := fs.Int("repeats", 3, "passes per figure; the median is reported")
	queries := fs.Int("queries", 10000, "queries per pass (at most 10,000)")
	gets := fs.Int("gets", 20000, "get-by-id requests per pass")
	threads := fs.Int("threads", runtime.GOMAXPROCS(0), "goroutines building the in-process index")
	keep := fs.Bool("keep", false, "keep the end-to-end data directory")
	binary := fs.String("binary", "", "the hippo binary the server and feed benchmarks start (default: this one), to compare builds in one run")
	feedSubs := fs.Int("feed-subscribers", 10000, "idle subscribers of the feed's memory figure")
	feedHTTP1 := fs.Bool("feed-http1", true, "also measure the feed's memory per subscriber over HTTP/1.1 (a connection each)")
	feedShared := fs.Bool("feed-shared-cpus", false, "write cost: let the server, the writers and the subscribers share every CPU (by default the server and writers are held to CPU 0, the subscribers to the others)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hippo bench [flags] [ann] [server] [feed]\n\n"+
			"Measures Hippo and prints Markdown tables (docs/benchmarks.md).\n\n"+
			"  ann     in-process indexes on Fashion-MNIST (apt-get install dataset-fashion-mnist);\n"+
			"          ground truth is computed once and cached\n"+
			"  server  the real server on a Unix socket, on the same data\n"+
			"  feed    the change feed of the real server: memory per idle subscriber\n"+
			"          (10,000 by default, HTTP/2 and HTTP/1.1), commit-to-delivery latency\n"+
			"          at 1,000 writes/s, the highest event rate 100 subscribers sustain, and\n"+
			"          write throughput without and with subscribers; random data, about 20 minutes\n"+
			"  subscribers --socket PATH --n N [--per-conn N] [--http1 | --large-windows] [--records]\n"+
			"          not a benchmark: the feed benchmark's subscriber process, which opens\n"+
			"          N event streams, says \"ready\", answers \"wait SEQ\" lines and ends with its input\n\n"+
			"Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		*only = strings.Join(fs.Args(), ",")
	}
	say := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	var parts []string
	needData := false
	for _, part := range strings.Split(*only, ",") {
		switch part = strings.TrimSpace(part); part {
		case "ann", "server":
			needData = true
		case "feed":
		default:
			say("hippo bench: unknown benchmark %q (ann, server, feed)", part)
			return 2
		}
		parts = append(parts, part)
	}
	// tool is this binary, which runs the feed benchmark's subscriber
	// process; self is the one the benchmarks start as the server.
	tool, err := os.Executable()
	if err != nil {
		say("hippo bench: %v", err)
		return 1
	}
	self := cmp.Or(*binary, tool)
	// tempDir makes a data directory, and returns what removes it (unless
	// --keep).
	tempDir := func() (string, func(), error) {
		dir, err := os.MkdirTemp("", "hippo-bench")
		if err != nil {
			return "", nil, err
		}
		if *keep {
			say("data directory: %s", dir)
			return dir, func() {}, nil
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	var train, test *dataset.Matrix
	var truth [][]int32
	if needData {
		var err error
		if train, test, err = dataset.FashionMNIST(); err != nil {
			say("hippo bench: %v", err)
			return 1
		}
		say("Fashion-MNIST: %d base vectors, %d queries, %d dimensions; kernels %s", train.Rows, test.Rows, train.Dim, vec.Implementation())
		say("ground truth (cached after the first run)…")
		if truth, err = dataset.GroundTruth(train, test, 10); err != nil {
			say("hippo bench: %v", err)
			return 1
		}
		if *queries < test.Rows {
			test = &dataset.Matrix{Rows: *queries, Dim: test.Dim, Data: test.Data[:*queries*test.Dim]}
			truth = truth[:*queries]
		}
	}
	fmt.Fprintf(stdout, "# hippo bench\n\nMachine: %d CPUs (GOMAXPROCS), %s/%s, kernels %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, vec.Implementation())
	for _, part := range parts {
		switch part {
		case "ann":
			specs, err := annSpecs(*indexes, efs, nprobes, ivfConfigs, *threads, *repeats)
			if err != nil {
				say("hippo bench: %v", err)
				return 2
			}
			fmt.Fprintf(stdout, "\nIn process, build on %d threads, search on 1 thread\n", *threads)
			for _, spec := range specs {
				rep, err := annbench.RunIndex(train, test, truth, spec, stderr)
				if err != nil {
					say("hippo bench: ann: %v", err)
					return 1
				}
				fmt.Fprintln(stdout)
				rep.WriteTable(stdout)
			}
		case "server":
			var ixs []bench.Index
			for _, name := range strings.Split(*serverIndexes, ",") {
				ix, err := bench.ServerIndex(strings.TrimSpace(name))
				if err != nil {
					say("hippo bench: %v", err)
					return 2
				}
				ixs = append(ixs, ix)
			}
			dir, remove, err := tempDir()
			if err != nil {
				say("hippo bench: %v", err)
				return 1
			}
			defer remove()
			rep, err := bench.Run(train, test, truth, bench.Options{Binary: self, Dir: dir, Indexes: ixs, Efs: serverEfs, Clients: clients,
				Repeats: *repeats, K: 10, Queries: test.Rows, Gets: *gets, SearchOnly: *searchOnly,
				Transports: strings.Split(strings.ReplaceAll(*serverTransports, " ", ""), ",")}, stderr)
			if err != nil {
				say("hippo bench: server: %v", err)
				return 1
			}
			rep.WriteTables(stdout)
		case "feed":
			dir, remove, err := tempDir()
			if err != nil {
				say("hippo bench: %v", err)
				return 1
			}
			defer remove()
			rep, err := bench.RunFeed(bench.FeedOptions{Binary: self, Tool: tool, Dir: dir, Repeats: *repeats, Subscribers: *feedSubs,
				SkipHTTP1: !*feedHTTP1, SharedCPUs: *feedShared}, stderr)
			if err != nil {
				say("hippo bench: feed: %v", err)
				return 1
			}
			rep.WriteTables(stdout)
		}
	}
	return 0
}

// ivfSetting is one IVF-PQ configuration of the ann benchmark.
type ivfSetting struct{ nlist, m, rerank int }

// ivfList is a comma-separated list of nlist/m[/rerank] settings.
type ivfList []ivfSetting

func (l *ivfList) String() string {
	var parts []string
	for _, c := range *l {
		parts = append(parts, fmt.Sprintf("%d/%d/%d", c.nlist, c.m, c.rerank))
	}
	return strings.Join(parts, ",")
}

func (l *ivfList) Set(s string) error {
	*l = nil
	for _, f := range strings.Split(s, ",") {
		parts := strings.Split(strings.TrimSpace(f), "/")
		if len(parts) < 2 || len(parts) > 3 {
			return fmt.Errorf("%q is not nlist/m or nlist/m/rerank", f)
		}
		var vals [3]int
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || (i < 2 && n < 1) {
				return fmt.Errorf("%q is not nlist/m or nlist/m/rerank", f)
			}
			vals[i] = n
		}
		*l = append(*l, ivfSetting{nlist: vals[0], m: vals[1], rerank: vals[2]})
	}
	return nil
}

// annSpecs returns the indexes the ann benchmark builds, in order.
func annSpecs(names string, efs, nprobes intList, ivf ivfList, threads, repeats int) ([]annbench.Spec, error) {
	var specs []annbench.Spec
	for _, name := range strings.Split(names, ",") {
		switch name = strings.TrimSpace(name); name {
		case "hnsw", "hnsw-int8":
			cfg := hnsw.Config{M: 16, EfConstruction: 200, Seed: 1}
			title := "HNSW float32, M=16, efConstruction=200"
			if name == "hnsw-int8" {
				cfg.Quantization = hnsw.Quantization{Int8: true, Symmetric: true}
				title = "HNSW int8 (symmetric, re-ranked), M=16, efConstruction=200"
			}
			specs = append(specs, annbench.Spec{Name: title, Knob: "ef", Efs: efs, Threads: threads, Repeats: repeats,
				New: func(dim int) index.Index { c := cfg; c.Dim = dim; return hnsw.New(c) }})
		case "ivfpq":
			for _, s := range ivf {
				cfg := ivfpq.Config{NList: s.nlist, M: s.m, Rerank: s.rerank, Seed: 1}
				title := fmt.Sprintf("IVF-PQ nlist=%d m=%d", s.nlist, s.m)
				if s.rerank > 0 {
					title += fmt.Sprintf(", float32 vectors kept, re-rank %d", s.rerank)
				} else {
					title += ", codes only"
				}
				specs = append(specs, annbench.Spec{Name: title, Knob: "nprobe", Efs: nprobes, Threads: threads, Repeats: repeats,
					New: func(dim int) index.Index { c := cfg; c.Dim = dim; return ivfpq.New(c) }})
			}
		default:
			return nil, fmt.Errorf("unknown index %q (hnsw, hnsw-int8, ivfpq)", name)
		}
	}
	return specs, nil
}

// benchSubscribers is `hippo bench subscribers`: the feed benchmark's
// subscriber process (bench.ServeSubscribers).
func benchSubscribers(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hippo bench subscribers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt bench.SubscriberOptions
	fs.StringVar(&opt.Socket, "socket", "", "the server's Unix socket")
	fs.IntVar(&opt.N, "n", 1, "event streams to open")
	fs.IntVar(&opt.PerConn, "per-conn", 25, "HTTP/2 streams per connection")
	fs.BoolVar(&opt.HTTP1, "http1", false, "a HTTP/1.1 connection per stream instead of HTTP/2")
	fs.BoolVar(&opt.LargeWindows, "large-windows", false, "HTTP/2 with a browser's flow control (16 MiB stream windows, updated when half is read) rather than the Go transport's (an update per 4 KiB read)")
	fs.BoolVar(&opt.Records, "records", false, "receive the records, not only the events")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if opt.Socket == "" || opt.N < 1 || opt.PerConn < 1 || opt.HTTP1 && opt.LargeWindows || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "hippo bench subscribers: --socket PATH and --n N ≥ 1 are needed, at most one of --http1 and --large-windows, and nothing else")
		return 2
	}
	if err := bench.ServeSubscribers(opt, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "hippo bench subscribers: %v\n", err)
		return 1
	}
	return 0
}
