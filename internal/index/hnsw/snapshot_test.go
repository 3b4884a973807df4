package hnsw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"slices"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/index"
)

// snapshotIndex builds a small index with every kind of node: linked,
// appended but not linked, deleted, and upper layers.
func snapshotIndex(t testing.TB) (*Index, *dataset.Matrix) {
	all := dataset.Clustered(600+20, 16, 8, 11)
	train, queries := all.Slice(0, 600), all.Slice(600, 620)
	ix := build(t, train.Slice(0, 550), Config{M: 6, EfConstruction: 50, Seed: 11, KeepPruned: true}, 2)
	for i := 550; i < 600; i++ {
		ix.Append(train.Row(i))
	}
	for id := uint32(0); id < 600; id += 9 {
		ix.Delete(id)
	}
	return ix, queries
}

func TestSnapshotRoundTrip(t *testing.T) {
	ix, queries := snapshotIndex(t)
	var buf bytes.Buffer
	n, err := ix.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d", n, err, buf.Len())
	}
	buf.WriteString("trailing data that Read must not consume")
	r := bytes.NewReader(buf.Bytes())
	got, err := Read(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "trailing data that Read must not consume" {
		t.Fatalf("Read consumed past the snapshot: %q left", rest)
	}
	if got.Len() != ix.Len() || got.Config().M != 6 || got.Config().EfConstruction != 50 || !got.Config().KeepPruned || got.entry.Load() != ix.entry.Load() {
		t.Fatalf("config or entry differ: %+v", got.Config())
	}
	for id := range uint32(ix.Len()) {
		if got.Linked(id) != ix.Linked(id) || got.Deleted(id) != ix.Deleted(id) || !slices.Equal(got.Vector(id), ix.Vector(id)) ||
			got.levelOf(id) != ix.levelOf(id) {
			t.Fatalf("node %d differs", id)
		}
	}
	accept := func(id uint32) bool { return id%4 != 1 }
	for q := range queries.Rows {
		for _, ef := range []int{10, 40} {
			if a, b := ix.Search(queries.Row(q), 10, ef, nil), got.Search(queries.Row(q), 10, ef, nil); !slices.Equal(a, b) {
				t.Fatalf("query %d ef %d: %v != %v", q, ef, a, b)
			}
			if a, b := ix.Search(queries.Row(q), 5, ef, accept), got.Search(queries.Row(q), 5, ef, accept); !slices.Equal(a, b) {
				t.Fatalf("query %d ef %d with accept: %v != %v", q, ef, a, b)
			}
		}
	}
	// The loaded index goes on growing: link the tail and search again.
	linkAll(got, 0, uint32(got.Len()), 2)
	if res := got.Search(queries.Row(0), 10, 40, nil); len(res) != 10 {
		t.Fatalf("after linking the tail: %v", res)
	}
	// A second snapshot of the loaded index is byte-identical.
	var again bytes.Buffer
	linkAll(ix, 0, uint32(ix.Len()), 1)
	if _, err := ix.WriteTo(&again); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bytes.NewReader(again.Bytes()), nil); err != nil {
		t.Fatal(err)
	}

	// Empty index.
	buf.Reset()
	New(Config{Dim: 3}).WriteTo(&buf)
	if e, err := Read(&buf, nil); err != nil || e.Len() != 0 || e.Search([]float32{1, 2, 3}, 1, 1, nil) != nil {
		t.Fatalf("empty: %v", err)
	}
}

func TestReadCorrupt(t *testing.T) {
	ix, _ := snapshotIndex(t)
	var buf bytes.Buffer
	ix.WriteTo(&buf)
	b := buf.Bytes()
	check := func(name string, in []byte) {
		t.Helper()
		if _, err := Read(bytes.NewReader(in), nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	for _, n := range []int{0, 1, 7, 8, headerSize - 1, headerSize, headerSize + 1, len(b) / 2, len(b) - 4, len(b) - 1} {
		check("truncated", b[:n])
	}
	for i := 0; i < len(b); i += 97 {
		c := slices.Clone(b)
		c[i] ^= 0x10
		check("bit flip", c)
	}
	// Errors from the reader itself are passed on.
	boom := errors.New("boom")
	if _, err := Read(io.MultiReader(bytes.NewReader(b[:100]), errReader{boom}), nil); !errors.Is(err, boom) {
		t.Fatalf("reader error: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func FuzzRead(f *testing.F) {
	small := build(f, dataset.Clustered(40, 3, 3, 12), Config{M: 2, EfConstruction: 8, Seed: 12}, 1)
	small.Append([]float32{1, 2, 3})
	small.Delete(5)
	var buf bytes.Buffer
	small.WriteTo(&buf)
	f.Add(buf.Bytes())
	buf.Reset()
	New(Config{Dim: 1}).WriteTo(&buf)
	f.Add(buf.Bytes())
	quant := build(f, dataset.Clustered(40, 3, 3, 13), Config{M: 2, EfConstruction: 8, Seed: 13, Metric: index.Cosine,
		Quantization: Quantization{Int8: true, Symmetric: true, TrainSize: 16}}, 1)
	buf.Reset()
	quant.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRead(in) })
}

func fuzzRead(in []byte) {
	{
		readAndUse(in)
		// The checksums stop almost every mutation at the door. Fix them up
		// so that the structural checks behind them get fuzzed too.
		if len(in) >= headerSize+4 {
			in = slices.Clone(in)
			binary.LittleEndian.PutUint32(in[headerSize-4:], crc32.Checksum(in[:headerSize-4], index.Castagnoli))
			binary.LittleEndian.PutUint32(in[len(in)-4:], crc32.Checksum(in[:len(in)-4], index.Castagnoli))
			readAndUse(in)
		}
	}
}

// readAndUse reads a snapshot and, if it loads, checks that it is usable.
func readAndUse(in []byte) {
	ix, err := Read(bytes.NewReader(in), nil)
	if err != nil {
		return
	}
	q := make([]float32, ix.dim)
	ix.Search(q, 3, 10, nil)
	ix.Scan(q, 3, 0, uint32(ix.Len()), nil)
	if ix.Len() > 0 {
		ix.Link(uint32(ix.Len() - 1))
		ix.Search(q, 3, 10, nil)
	}
}
