package hnsw_test

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index/annbench"
	"github.com/hippo-db/hippo/internal/index/hnsw"
)

// TestFashionMNISTSweep is the Fashion-MNIST benchmark as a tunable test,
// for profiling and comparing variants. It runs only when HIPPO_ANNBENCH is
// set:
//
//	HIPPO_ANNBENCH=1 go test -run FashionMNISTSweep -v -timeout 1h ./internal/index/hnsw
//
// HIPPO_ANNBENCH_EFS (comma-separated), _REPEATS, _THREADS, _M, _EFC and
// _KEEP_PRUNED=1 change the defaults. HIPPO_ANNBENCH_INT8=1 searches with
// int8 codes, learned from the whole index after it is built or loaded;
// _SYM=1, _GLOBAL=1, _RERANK=n and _QUANTILE=p choose the variant. HIPPO_ANNBENCH_INDEX=path loads the
// index from a snapshot at path if there is one, and saves it there after
// building otherwise, so that search changes can be measured on one graph.
func TestFashionMNISTSweep(t *testing.T) {
	if os.Getenv("HIPPO_ANNBENCH") == "" {
		t.Skip("set HIPPO_ANNBENCH=1 to run")
	}
	train, test, err := dataset.FashionMNIST()
	if errors.Is(err, dataset.ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	env := func(name string, def int) int { return envInt("HIPPO_ANNBENCH_"+name, def) }
	k := 10
	truth, err := dataset.GroundTruth(train, test, k)
	if err != nil {
		t.Fatal(err)
	}
	opt := annbench.Options{M: env("M", 16), EfConstruction: env("EFC", 200), Threads: env("THREADS", 2),
		K: k, Repeats: env("REPEATS", 3), Seed: 1}
	if s := os.Getenv("HIPPO_ANNBENCH_EFS"); s != "" {
		for _, f := range strings.Split(s, ",") {
			ef, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			opt.Efs = append(opt.Efs, ef)
		}
	}
	opt.KeepPruned = os.Getenv("HIPPO_ANNBENCH_KEEP_PRUNED") == "1"
	path := os.Getenv("HIPPO_ANNBENCH_INDEX")
	var ix *hnsw.Index
	if f, err := os.Open(path); err == nil {
		ix, err = hnsw.Read(bufio.NewReader(f), nil)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("loaded %s", path)
	} else {
		var rep *annbench.Report
		ix, rep = annbench.BuildReport(train, opt)
		t.Logf("build %.2fs wall, %.2fs CPU on %d threads; %.0f bytes/vector (heap growth), %.0f (index estimate)",
			rep.Build.Seconds(), rep.BuildCPU.Seconds(), opt.Threads, rep.HeapBytesPerVector, rep.IndexBytesPerVector)
		if path != "" {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ix.WriteTo(f); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	if env("INT8", 0) == 1 {
		q := hnsw.Quantization{Int8: true, Symmetric: env("SYM", 0) == 1, Global: env("GLOBAL", 0) == 1, Rerank: env("RERANK", 0)}
		if v, err := strconv.ParseFloat(os.Getenv("HIPPO_ANNBENCH_QUANTILE"), 64); err == nil {
			q.Quantile = v
		}
		start := time.Now()
		hnsw.SetQuantizationForTest(ix, q)
		t.Logf("quantized %+v in %v; %.0f bytes/vector (index estimate)", q, time.Since(start), float64(ix.MemoryBytes())/float64(ix.Len()))
	}
	efs := opt.Efs
	if len(efs) == 0 {
		efs = annbench.DefaultEfs
	}
	ids := make([]int32, test.Rows*k)
	annbench.Measure(ix, test.Slice(0, 500), truth, k, efs[0], ids)
	for _, ef := range efs {
		passes := make([]annbench.Point, opt.Repeats)
		for i := range passes {
			passes[i] = annbench.Measure(ix, test, truth, k, ef, ids)
		}
		p := annbench.Median(passes)
		t.Logf("ef=%4d recall@10=%.4f qps=%6.0f cpu-qps=%6.0f", ef, p.Recall, p.QPS, p.CPUQPS)
	}
}

// envInt returns the integer in environment variable name, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
