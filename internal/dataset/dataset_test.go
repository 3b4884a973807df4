package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// idxBytes encodes an unsigned-byte IDX file with the given dimensions.
func idxBytes(dims []uint32, data []byte) []byte {
	b := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func TestReadIDX(t *testing.T) {
	data := []byte{0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255}
	m, err := ReadIDX(bytes.NewReader(idxBytes([]uint32{3, 2, 2}, data)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 3 || m.Dim != 4 {
		t.Fatalf("shape %d×%d, want 3×4", m.Rows, m.Dim)
	}
	if got, want := m.Row(2), []float32{252, 253, 254, 255}; !slices.Equal(got, want) {
		t.Fatalf("row 2 = %v, want %v", got, want)
	}
	if cap(m.Row(0)) != 4 {
		t.Fatalf("Row capacity %d, want 4", cap(m.Row(0)))
	}

	labels, err := ReadIDX(bytes.NewReader(idxBytes([]uint32{3}, []byte{7, 8, 9})))
	if err != nil || labels.Rows != 3 || labels.Dim != 1 || labels.Data[2] != 9 {
		t.Fatalf("labels: %+v, %v", labels, err)
	}
}

func TestReadIDXBad(t *testing.T) {
	good := idxBytes([]uint32{2, 2}, []byte{1, 2, 3, 4})
	for name, in := range map[string][]byte{
		"empty":        nil,
		"short header": good[:3],
		"magic":        append([]byte{1}, good[1:]...),
		"float type":   append([]byte{0, 0, 0x0d}, good[3:]...),
		"no dims":      {0, 0, 8, 0},
		"short dims":   good[:6],
		"short data":   good[:len(good)-1],
		"huge claim":   idxBytes([]uint32{1 << 31, 1 << 20}, []byte{1, 2, 3}),
		"huge row":     idxBytes([]uint32{1, 1 << 16, 1 << 16}, []byte{1}),
		"zero rows":    idxBytes([]uint32{5, 0}, nil),
	} {
		if _, err := ReadIDX(bytes.NewReader(in)); !errors.Is(err, ErrBadIDX) {
			t.Errorf("%s: err = %v, want ErrBadIDX", name, err)
		}
	}
}

func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]uint32{2, 2}, []byte{1, 2, 3, 4}))
	f.Add(idxBytes([]uint32{1}, []byte{9}))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadIDX(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(m.Data) != m.Rows*m.Dim || len(m.Data) > len(in) {
			t.Fatalf("%d values for %d×%d from %d bytes", len(m.Data), m.Rows, m.Dim, len(in))
		}
	})
}

func writeGzip(t *testing.T, path string, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFashionMNISTFromDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(DirEnv, dir)
	if _, _, err := FashionMNIST(); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("empty dir: err = %v, want ErrNotInstalled", err)
	} else if !bytes.Contains([]byte(err.Error()), []byte("apt-get install -y dataset-fashion-mnist")) {
		t.Fatalf("error %q does not say how to install", err)
	}
	pixels := make([]byte, 3*28*28)
	for i := range pixels {
		pixels[i] = byte(i)
	}
	writeGzip(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), idxBytes([]uint32{3, 28, 28}, pixels))
	// The loader sniffs compression, so an uncompressed file under the .gz
	// name loads too.
	os.WriteFile(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), idxBytes([]uint32{1, 28, 28}, pixels[:784]), 0o644)
	train, test, err := FashionMNIST()
	if err != nil {
		t.Fatal(err)
	}
	if train.Rows != 3 || train.Dim != 784 || test.Rows != 1 || test.Dim != 784 {
		t.Fatalf("shapes %d×%d and %d×%d", train.Rows, train.Dim, test.Rows, test.Dim)
	}
	if train.Row(1)[0] != float32(784%256) || !slices.Equal(test.Row(0), train.Row(0)) {
		t.Fatal("pixel values not preserved")
	}
}

// TestFashionMNISTInstalled checks the real files when the package is present.
func TestFashionMNISTInstalled(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow; skipped in -short and -race runs")
	}
	train, test, err := FashionMNIST()
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if train.Rows != 60000 || test.Rows != 10000 || train.Dim != 784 {
		t.Fatalf("shapes %d×%d, %d×%d", train.Rows, train.Dim, test.Rows, test.Dim)
	}
}

// naiveKNN is the simplest possible exact search, to check BruteForce against.
func naiveKNN(train, test *Matrix, k int) [][]int32 {
	out := make([][]int32, test.Rows)
	for q := range test.Rows {
		ids := make([]int32, train.Rows)
		dist := make([]float64, train.Rows)
		for i := range ids {
			ids[i] = int32(i)
			for j := range train.Dim {
				d := float64(test.Row(q)[j]) - float64(train.Row(i)[j])
				dist[i] += d * d
			}
		}
		slices.SortStableFunc(ids, func(a, b int32) int {
			switch {
			case dist[a] < dist[b]:
				return -1
			case dist[a] > dist[b]:
				return 1
			}
			return 0
		})
		out[q] = ids[:min(k, len(ids))]
	}
	return out
}

func TestBruteForce(t *testing.T) {
	// Integer-valued data makes every distance exact in float32 and float64,
	// so the two computations must agree id for id, ties included.
	all := Clustered(300+70, 12, 5, 1)
	for i, v := range all.Data {
		all.Data[i] = float32(math.Round(float64(v) * 4))
	}
	train, test := all.Slice(0, 300), all.Slice(300, 370)
	for _, k := range []int{1, 10, 299, 300, 400} {
		got, err := BruteForce(train, test, k)
		if err != nil {
			t.Fatal(err)
		}
		want := naiveKNN(train, test, k)
		for q := range want {
			if !slices.Equal(got[q], want[q]) {
				t.Fatalf("k=%d query %d: got %v, want %v", k, q, got[q], want[q])
			}
		}
	}
	if _, err := BruteForce(train, NewMatrix(1, 3), 1); err == nil {
		t.Fatal("dimension mismatch accepted")
	}
	if _, err := BruteForce(train, test, 0); err == nil {
		t.Fatal("k=0 accepted")
	}
}

func TestGroundTruthCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", cache)
	all := Clustered(500, 8, 4, 2)
	train, test := all.Slice(0, 450), all.Slice(450, 500)
	want, _ := BruteForce(train, test, 5)

	got, err := GroundTruth(train, test, 5)
	if err != nil || !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("first call: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "hippo", "groundtruth-*-k5.bin"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	// A valid cache file is what GroundTruth returns: plant a different,
	// well-formed answer and check it comes back.
	planted := make([][]int32, len(want))
	for q := range planted {
		planted[q] = []int32{4, 3, 2, 1, 0}
	}
	if err := writeGroundTruth(files[0], planted, 5); err != nil {
		t.Fatal(err)
	}
	if got, _ := GroundTruth(train, test, 5); !slices.EqualFunc(got, planted, slices.Equal) {
		t.Fatal("cache not used")
	}
	// A corrupt cache file is ignored and rewritten.
	b, _ := os.ReadFile(files[0])
	b[20] ^= 1
	os.WriteFile(files[0], b, 0o644)
	if got, _ := GroundTruth(train, test, 5); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatal("corrupt cache used")
	}
	if got, err := readGroundTruth(files[0], test.Rows, 5, train.Rows); err != nil || !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("cache not rewritten: %v", err)
	}
	// Other data gets another file.
	train.Data[0]++
	if _, err := GroundTruth(train, test, 5); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(cache, "hippo", "groundtruth-*")); len(files) != 2 {
		t.Fatalf("cache files after changing data: %v", files)
	}
	// Fewer train rows than k: rows are short and padding round-trips.
	small := train.Slice(0, 3)
	first, _ := GroundTruth(small, test, 5)
	second, err := GroundTruth(small, test, 5)
	if err != nil || len(second[0]) != 3 || !slices.EqualFunc(first, second, slices.Equal) {
		t.Fatalf("small train: %v %v", second[0], err)
	}
}

func TestRecall(t *testing.T) {
	truth := [][]int32{{1, 2, 3}, {4, 5, 6}}
	f := func(got [][]int32, k int, want float64) {
		t.Helper()
		if r := Recall(got, truth, k); math.Abs(r-want) > 1e-12 {
			t.Errorf("Recall(%v, k=%d) = %v, want %v", got, k, r, want)
		}
	}
	f([][]int32{{1, 2, 3}, {4, 5, 6}}, 3, 1)
	f([][]int32{{3, 2, 1}, {6, 5, 4}}, 3, 1) // order within the top k does not matter
	f([][]int32{{1, 9, 9}, {9, 9, 9}}, 3, 1.0/6)
	f([][]int32{{1, 1, 1}, {4}}, 3, 2.0/6) // duplicates count once; short answers score less
	f([][]int32{{2, 1}, {5, 4}}, 1, 0)     // only the first k of each side count
	f([][]int32{{1}}, 2, 1.0/4)            // missing queries score zero
	f(nil, 3, 0)
	if r := Recall(nil, nil, 10); r != 1 {
		t.Errorf("no queries: %v", r)
	}
	if r := Recall([][]int32{{0, 1}}, [][]int32{{1}}, 10); r != 1 {
		t.Errorf("short truth: %v", r)
	}
}

func TestClustered(t *testing.T) {
	a, b := Clustered(100, 16, 3, 7), Clustered(100, 16, 3, 7)
	if !slices.Equal(a.Data, b.Data) {
		t.Fatal("same seed, different data")
	}
	if c := Clustered(100, 16, 3, 8); slices.Equal(a.Data, c.Data) {
		t.Fatal("different seed, same data")
	}
	if a.Rows != 100 || a.Dim != 16 || len(a.Data) != 1600 {
		t.Fatalf("shape %d×%d", a.Rows, a.Dim)
	}
}
