package cli

import (
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
	"github.com/hippo-db/hippo/internal/index/hnsw/annbench"
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
	fs := flag.NewFlagSet("hippo bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	only := fs.String("only", "ann,server", "which benchmarks: ann (in-process index), server (end to end)")
	efs := intList{16, 32, 48, 64, 96, 128, 256}
	fs.Var(&efs, "efs", "ef values to sweep, comma-separated")
	serverEfs := intList{32, 64, 96, 128}
	fs.Var(&serverEfs, "server-efs", "ef values to sweep end to end")
	clients := intList{1, 4}
	fs.Var(&clients, "clients", "concurrent clients for the end-to-end sweep")
	repeats := fs.Int("repeats", 3, "passes per figure; the median is reported")
	queries := fs.Int("queries", 10000, "queries per pass (at most 10,000)")
	gets := fs.Int("gets", 20000, "get-by-id requests per pass")
	threads := fs.Int("threads", runtime.GOMAXPROCS(0), "goroutines building the in-process index")
	keep := fs.Bool("keep", false, "keep the end-to-end data directory")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hippo bench [flags]\n\nMeasures Hippo on Fashion-MNIST (apt-get install dataset-fashion-mnist)\n"+
			"and prints Markdown tables. Ground truth is computed once and cached.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	say := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	train, test, err := dataset.FashionMNIST()
	if err != nil {
		say("hippo bench: %v", err)
		return 1
	}
	say("Fashion-MNIST: %d base vectors, %d queries, %d dimensions; kernels %s", train.Rows, test.Rows, train.Dim, vec.Implementation())
	say("ground truth (cached after the first run)…")
	truth, err := dataset.GroundTruth(train, test, 10)
	if err != nil {
		say("hippo bench: %v", err)
		return 1
	}
	if *queries < test.Rows {
		test = &dataset.Matrix{Rows: *queries, Dim: test.Dim, Data: test.Data[:*queries*test.Dim]}
		truth = truth[:*queries]
	}
	fmt.Fprintf(stdout, "# hippo bench\n\nMachine: %d CPUs (GOMAXPROCS), %s/%s, kernels %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, vec.Implementation())
	for _, part := range strings.Split(*only, ",") {
		switch strings.TrimSpace(part) {
		case "ann":
			rep, err := annbench.Run(train, test, truth, annbench.Options{Threads: *threads, Efs: efs, Repeats: *repeats}, stderr)
			if err != nil {
				say("hippo bench: ann: %v", err)
				return 1
			}
			fmt.Fprintf(stdout, "\nIn process, HNSW M=16 ef_construction=200, build on %d threads, search on 1 thread\n\n", *threads)
			rep.WriteTable(stdout)
		case "server":
			self, err := os.Executable()
			if err != nil {
				say("hippo bench: %v", err)
				return 1
			}
			dir, err := os.MkdirTemp("", "hippo-bench")
			if err != nil {
				say("hippo bench: %v", err)
				return 1
			}
			if *keep {
				say("data directory: %s", dir)
			} else {
				defer os.RemoveAll(dir)
			}
			rep, err := bench.Run(train, test, truth, bench.Options{Binary: self, Dir: dir, Efs: serverEfs, Clients: clients,
				Repeats: *repeats, K: 10, Queries: test.Rows, Gets: *gets}, stderr)
			if err != nil {
				say("hippo bench: server: %v", err)
				return 1
			}
			rep.WriteTables(stdout)
		default:
			say("hippo bench: unknown benchmark %q (ann, server)", part)
			return 2
		}
	}
	return 0
}
