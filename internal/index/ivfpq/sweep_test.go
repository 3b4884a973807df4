package ivfpq_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/annbench"
	"github.com/hippo-db/hippo/internal/index/ivfpq"
)

// TestFashionMNISTSweep measures IVF-PQ on Fashion-MNIST: build time, memory
// per vector and recall@10/QPS swept over nprobe. It runs only when
// HIPPO_ANNBENCH is set:
//
//	HIPPO_ANNBENCH=1 go test -run FashionMNISTSweep -v -timeout 1h ./internal/index/ivfpq
//
// HIPPO_ANNBENCH_NLIST, _M, _RERANK, _ITERS, _TRAIN (comma-separated lists
// for NLIST and M: every combination is built) and _NPROBES change the
// defaults (1024, 196, 0, 10, default train size, 8,16,32,64,128).
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
	truth, err := dataset.GroundTruth(train, test, 10)
	if err != nil {
		t.Fatal(err)
	}
	list := func(name, def string) []int {
		s := os.Getenv("HIPPO_ANNBENCH_" + name)
		if s == "" {
			s = def
		}
		var out []int
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out
	}
	one := func(name string, def int) int { return list(name, strconv.Itoa(def))[0] }
	for _, nlist := range list("NLIST", "1024") {
		for _, m := range list("M", "196") {
			cfg := ivfpq.Config{Metric: index.L2, NList: nlist, M: m, Rerank: one("RERANK", 0),
				Iterations: one("ITERS", 10), TrainSize: one("TRAIN", 0), Seed: 1}
			rep, err := annbench.RunIndex(train, test, truth, annbench.Spec{
				Name: fmt.Sprintf("IVF-PQ nlist=%d m=%d rerank=%d", nlist, m, cfg.Rerank), Knob: "nprobe",
				New:     func(dim int) index.Index { c := cfg; c.Dim = dim; return ivfpq.New(c) },
				Efs:     list("NPROBES", "8,16,32,64,128"),
				Threads: 2, Repeats: one("REPEATS", 3),
			}, testWriter{t})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			rep.WriteTable(&b)
			t.Logf("\n%s", b.String())
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
