package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hippo-db/hippo/client"
	"github.com/hippo-db/hippo/internal/dataset"
)

func TestServerIndex(t *testing.T) {
	ix, err := ServerIndex("hnsw-int8")
	if err != nil || ix.Name != "hnsw-int8" || ix.Spec.Type != client.IndexHNSW || ix.Spec.Quantization != client.QuantizationInt8 {
		t.Errorf("hnsw-int8: %+v, %v", ix, err)
	}
	ix, err = ServerIndex("hnsw")
	if err != nil || ix.Spec.Type != client.IndexHNSW || ix.Spec.Quantization != "" || ix.Spec.M != 16 || ix.Spec.EfConstruction != 200 {
		t.Errorf("hnsw: %+v, %v", ix, err)
	}
	ix, err = ServerIndex("ivfpq")
	if err != nil || ix.Spec.Type != client.IndexIVFPQ || ix.Spec.NList != 1024 || ix.Spec.M != 261 {
		t.Errorf("ivfpq: %+v, %v", ix, err)
	}
	if _, err := ServerIndex("lsh"); err == nil {
		t.Error("unknown index: no error")
	}
}

// TestRunServer runs the end-to-end benchmark small, against the real
// binary, on two indexes: the search sweep on both, the rest on the first.
func TestRunServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	dir := t.TempDir()
	binary := buildHippo(t, dir)
	all := dataset.Clustered(6100, 16, 30, 1)
	train, test := all.Slice(0, 6000), all.Slice(6000, 6100)
	truth, err := dataset.BruteForce(train, test, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ixs []Index
	for _, name := range []string{"hnsw", "hnsw-int8"} {
		ix, err := ServerIndex(name)
		if err != nil {
			t.Fatal(err)
		}
		ixs = append(ixs, ix)
	}
	var progress strings.Builder
	rep, err := Run(train, test, truth, Options{Binary: binary, Dir: dir, Indexes: ixs, Efs: []int{64}, Clients: []int{1, 2},
		Repeats: 1, K: 10, Queries: test.Rows, Gets: 100, Transports: []string{"http1"}}, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	var tables strings.Builder
	rep.WriteTables(&tables)
	t.Log(tables.String())
	if len(rep.Indexes) != 2 || rep.Indexes[0].Index != "hnsw" || rep.Indexes[1].Index != "hnsw-int8" {
		t.Fatalf("indexes: %+v", rep.Indexes)
	}
	if len(rep.Sweep) != 4 {
		t.Fatalf("sweep: %+v", rep.Sweep)
	}
	// CPU times come in clock ticks (10 ms): a short pass may see none,
	// all the passes together must.
	var serverCPU, clientCPU time.Duration
	for i, p := range rep.Sweep {
		if want := ixs[i/2].Name; p.Index != want || p.Transport != "http1" || p.Recall < 0.9 || p.QPS <= 0 || p.ServerCPU < 0 || p.ClientCPU < 0 {
			t.Errorf("sweep point %d: %+v, want index %s, recall ≥ 0.9", i, p, want)
		}
		serverCPU += p.ServerCPU
		clientCPU += p.ClientCPU
	}
	if serverCPU <= 0 || clientCPU <= 0 {
		t.Errorf("CPU per query: server %v, clients %v in all; want both above zero", serverCPU, clientCPU)
	}
	for _, row := range []string{"| hnsw | http1 | 2 | 64 |", "| hnsw-int8 | http1 | 1 | 64 |", "hnsw-int8: server RSS per vector", "figure (on the hnsw server)"} {
		if !strings.Contains(tables.String(), row) {
			t.Errorf("tables lack %q", row)
		}
	}
	if len(rep.Writes) == 0 || len(rep.Gets) != 2 || rep.Restart <= 0 || rep.KillIndexed <= 0 {
		t.Errorf("the rest did not run on the first server: %+v", rep)
	}
}

// buildHippo builds the hippo binary into dir and returns its path.
func buildHippo(t *testing.T, dir string) string {
	t.Helper()
	binary := filepath.Join(dir, "hippo")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/hippo")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	return binary
}
