package pq

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/vec"
)

func TestSubspaces(t *testing.T) {
	for _, tc := range []struct {
		dim, m int
		want   []int
	}{{8, 4, []int{0, 2, 4, 6, 8}}, {10, 4, []int{0, 3, 6, 8, 10}}, {5, 5, []int{0, 1, 2, 3, 4, 5}}, {7, 1, []int{0, 7}}} {
		if got := subspaces(tc.dim, tc.m); !slices.Equal(got, tc.want) {
			t.Errorf("subspaces(%d, %d) = %v, want %v", tc.dim, tc.m, got, tc.want)
		}
	}
}

func train(t testing.TB, dim, m int) (*Quantizer, *dataset.Matrix) {
	t.Helper()
	data := dataset.Clustered(3000, dim, 30, 1)
	q, err := Train(data.Data, dim, m, TrainOptions{Iterations: 6, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return q, data
}

// TestEncode: decoding a code gives a vector much closer to the original
// than the data's spread, and more subspaces are more accurate.
func TestEncode(t *testing.T) {
	var prev float64 = math.Inf(1)
	for _, m := range []int{2, 5, 10, 20} {
		q, data := train(t, 20, m)
		code, back, scratch := make([]uint8, m), make([]float32, 20), make([]float32, K)
		var err, spread float64
		for i := range 500 {
			x := data.Row(i)
			q.Encode(x, code, scratch)
			q.Decode(code, back)
			err += float64(vec.L2Squared(x, back))
			spread += float64(vec.L2Squared(x, data.Row(i+1)))
		}
		t.Logf("M=%d: mean squared error %.3f, spread %.3f", m, err/500, spread/500)
		if err > 0.5*spread || err > prev {
			t.Errorf("M=%d: error %v (previous %v), spread %v", m, err, prev, spread)
		}
		prev = err
	}
}

// TestTableSum: Sum over Table is the inner product with the decoded vector.
func TestTableSum(t *testing.T) {
	for _, m := range []int{1, 3, 7, 16} {
		q, data := train(t, 16, m)
		table, code, back, scratch := make([]float32, m*K), make([]uint8, m), make([]float32, 16), make([]float32, K)
		for i := range 50 {
			x, y := data.Row(i), data.Row(i+100)
			q.Table(x, table)
			q.Encode(y, code, scratch)
			q.Decode(code, back)
			got, want := Sum(table, code), vec.Dot(x, back)
			if math.Abs(float64(got-want)) > 1e-4*(1+math.Abs(float64(want))) {
				t.Fatalf("M=%d: Sum %v, decoded dot %v", m, got, want)
			}
		}
		if a := testing.AllocsPerRun(50, func() { q.Table(data.Row(1), table); Sum(table, code); q.Encode(data.Row(2), code, scratch) }); a != 0 {
			t.Errorf("M=%d: %v allocations", m, a)
		}
	}
}

func TestTrainErrors(t *testing.T) {
	for _, tc := range []struct{ n, dim, m int }{{300, 4, 0}, {300, 4, 5}, {100, 4, 2}} {
		if _, err := Train(make([]float32, tc.n*tc.dim), tc.dim, tc.m, TrainOptions{}); err == nil {
			t.Errorf("%+v accepted", tc)
		}
	}
}

func TestMarshal(t *testing.T) {
	q, data := train(t, 10, 4)
	b, _ := q.AppendBinary([]byte("x"))
	if len(b) != 1+EncodedSize(10) {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := Unmarshal(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.AppendBinary(nil)
	if !bytes.Equal(again, b[1:]) {
		t.Fatal("not byte-identical")
	}
	c1, c2, s := make([]uint8, 4), make([]uint8, 4), make([]float32, K)
	q.Encode(data.Row(7), c1, s)
	got.Encode(data.Row(7), c2, s)
	if !slices.Equal(c1, c2) {
		t.Fatal("codes differ")
	}
	for name, mutate := range map[string]func([]byte) []byte{
		"short": func(b []byte) []byte { return b[:len(b)-1] },
		"m":     func(b []byte) []byte { b[4] = 11; return b },
		"nan":   func(b []byte) []byte { copy(b[8:], []byte{0, 0, 0xc0, 0x7f}); return b },
		"empty": func(b []byte) []byte { return nil },
	} {
		if _, err := Unmarshal(mutate(slices.Clone(b[1:]))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func BenchmarkSum(b *testing.B) {
	for _, m := range []int{98, 196} {
		table := make([]float32, m*K)
		code := make([]uint8, m)
		for i := range code {
			code[i] = uint8(i * 37)
		}
		b.Run("M="+string(rune('0'+m/100))+string(rune('0'+m/10%10))+string(rune('0'+m%10)), func(b *testing.B) {
			var s float32
			for b.Loop() {
				s += Sum(table, code)
			}
			_ = s
		})
	}
}

func BenchmarkTable(b *testing.B) {
	q, data := train(b, 784/8*8, 98)
	table := make([]float32, 98*K)
	for b.Loop() {
		q.Table(data.Row(0), table)
	}
}
