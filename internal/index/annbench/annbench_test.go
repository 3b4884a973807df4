package annbench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/ivfpq"
)

func TestRun(t *testing.T) {
	all := dataset.Clustered(2000+50, 16, 10, 1)
	train, test := all.Slice(0, 2000), all.Slice(2000, 2050)
	truth, err := dataset.BruteForce(train, test, 10)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := Run(train, test, truth, Options{Efs: []int{10, 64}, Repeats: 2, Threads: 2}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Vectors != 2000 || rep.Dim != 16 || rep.Queries != 50 || rep.K != 10 || rep.M != 16 || rep.EfConstruction != 200 || len(rep.Points) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if p := rep.Points[1]; p.Ef != 64 || p.Recall < 0.95 || p.QPS <= 0 {
		t.Fatalf("ef=64 point %+v", p)
	}
	if rep.Build <= 0 || rep.IndexBytesPerVector < 16*4 {
		t.Fatalf("build %v, %.0f bytes/vector", rep.Build, rep.IndexBytesPerVector)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, want := range []string{"2000 vectors × 16 dims", "recall@10", "QPS (1 thread)"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	rows := 0
	for _, line := range strings.Split(table.String(), "\n") {
		if f := strings.Fields(line); len(f) == 4 && (f[0] == "10" || f[0] == "64") {
			rows++
		}
	}
	if rows != 2 {
		t.Errorf("table has %d ef rows, want 2:\n%s", rows, table.String())
	}
	if !strings.Contains(progress.String(), "ef=64 recall@10=") {
		t.Errorf("progress: %s", progress.String())
	}
	if _, err := Run(train, test, truth[:3], Options{}, nil); err == nil {
		t.Error("short ground truth accepted")
	}
}

func TestMedian(t *testing.T) {
	p := Median([]Point{{QPS: 3, CPUQPS: 10}, {QPS: 1, CPUQPS: 30}, {QPS: 2, CPUQPS: 20}})
	if p.QPS != 2 || p.CPUQPS != 20 {
		t.Fatalf("Median = %+v", p)
	}
}

func TestRunIndex(t *testing.T) {
	all := dataset.Clustered(3000+50, 16, 10, 2)
	train, test := all.Slice(0, 3000), all.Slice(3000, 3050)
	truth, err := dataset.BruteForce(train, test, 10)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunIndex(train, test, truth, Spec{
		Name: "IVF-PQ test", Knob: "nprobe", Efs: []int{2, 16}, Repeats: 1, Threads: 2,
		New: func(dim int) index.Index {
			return ivfpq.New(ivfpq.Config{Dim: dim, NList: 16, M: 8, TrainSize: 1000, Rerank: 50, Seed: 2})
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Points) != 2 || rep.Points[1].Recall < 0.9 || rep.IndexBytesPerVector <= 0 || rep.Build <= 0 {
		t.Fatalf("report %+v", rep)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, want := range []string{"IVF-PQ test, 3000 vectors × 16 dims", "nprobe", "recall@10"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}
