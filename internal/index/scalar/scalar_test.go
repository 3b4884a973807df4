package scalar

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hippo-db/hippo/internal/index"
)

func randomRows(rng *rand.Rand, n, dim int) [][]float32 {
	rows := make([][]float32, n)
	for j := range rows {
		rows[j] = make([]float32, dim)
		for i := range rows[j] {
			// Dimensions with different offsets and spreads.
			rows[j][i] = float32(i%7) - 3 + float32(rng.NormFloat64())*float32(1+i%5)
		}
	}
	return rows
}

func train(t testing.TB, rows [][]float32, opts Options) *Quantizer {
	t.Helper()
	q, err := Train(len(rows[0]), len(rows), func(i int) []float32 { return rows[i] }, opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func allOptions() []Options {
	var out []Options
	for _, m := range []index.Metric{index.L2, index.Dot, index.Cosine} {
		for _, sym := range []bool{false, true} {
			for _, global := range []bool{false, true} {
				out = append(out, Options{Metric: m, Symmetric: sym, Global: global})
			}
		}
	}
	return out
}

func TestSelectNth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 10, 100, 1001} {
		for range 20 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(rng.IntN(n/2 + 1)) // duplicates
			}
			sorted := slices.Sorted(slices.Values(v))
			k := rng.IntN(n)
			if got := selectNth(slices.Clone(v), k); got != sorted[k] {
				t.Fatalf("n=%d k=%d: %v, want %v", n, k, got, sorted[k])
			}
		}
	}
}

// TestEncodeRoundTrip checks that decoding is within half a step of every
// value inside the learned range, and clamps outside it.
func TestEncodeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dim := range []int{1, 7, 64, 65, 300} {
		rows := randomRows(rng, 200, dim)
		for _, opts := range allOptions() {
			q := train(t, rows, opts)
			if q.Stride()%64 != 0 || q.Stride() < dim || q.Stride() >= dim+64 {
				t.Fatalf("stride %d for dim %d", q.Stride(), dim)
			}
			code := make([]uint8, q.Stride())
			for i := range code {
				code[i] = 0xee
			}
			back := make([]float32, dim)
			for _, x := range rows {
				q.Encode(x, code)
				if slices.ContainsFunc(code[dim:], func(c uint8) bool { return c != 0 }) {
					t.Fatal("padding not zeroed")
				}
				q.Decode(code, back)
				for i := range dim {
					lo, step := q.Range(i)
					// Inside the range the error is at most half a step.
					want := min(max(x[i], lo), lo+255*step)
					if d := math.Abs(float64(back[i] - want)); d > float64(step)*0.5001+1e-6 {
						t.Fatalf("%+v dim %d: %v decoded as %v (range %v+255·%v)", opts, i, x[i], back[i], lo, step)
					}
				}
			}
		}
	}
}

func TestTrainRanges(t *testing.T) {
	rows := [][]float32{{0, 5, -1}, {10, 5, 1}, {5, 5, 0}}
	q := train(t, rows, Options{})
	for i, want := range [][2]float32{{0, 10.0 / 255}, {5, 0}, {-1, 2.0 / 255}} {
		if lo, step := q.Range(i); lo != want[0] || step != want[1] {
			t.Errorf("dim %d: %v, %v; want %v", i, lo, step, want)
		}
	}
	g := train(t, rows, Options{Global: true})
	if lo, step := g.Range(1); lo != -1 || step != 11.0/255 {
		t.Errorf("global: %v, %v", lo, step)
	}
	s := train(t, rows, Options{Symmetric: true})
	if lo, step := s.Range(2); lo != -1 || step != 10.0/255 {
		t.Errorf("symmetric: %v, %v", lo, step)
	}
	// A quantile trims outliers.
	many := make([][]float32, 1000)
	for i := range many {
		many[i] = []float32{float32(i)}
	}
	many[500][0] = 1e6
	tq := train(t, many, Options{Quantile: 0.01})
	if lo, step := tq.Range(0); lo != 9 || lo+255*step > 991 {
		t.Errorf("trimmed range %v + 255·%v", lo, step)
	}
}

// reference computes, in float64, the quantity each mode approximates the
// distance with: the exact distance from x to the decoded vector
// (asymmetric), or its symmetric-mode counterpart in which x is replaced by
// its own decoded vector in the cross term.
func reference(q *Quantizer, x []float32, code []uint8) float64 {
	dim := q.Dim()
	dec := make([]float32, dim)
	q.Decode(code, dec)
	xq := slices.Clone(x)
	if q.Options().Symmetric {
		c := make([]uint8, q.Stride())
		q.Encode(x, c)
		q.Decode(c, xq)
	}
	var d float64
	switch q.Options().Metric {
	case index.L2:
		var xx, cross, cc float64
		for i := range dim {
			lo := float64(q.lo[i])
			a, aq, b := float64(x[i])-lo, float64(xq[i])-lo, float64(dec[i])-lo
			xx += a * a
			cross += aq * b
			cc += b * b
		}
		d = xx - 2*cross + cc
	default:
		var dot float64
		for i := range dim {
			// x·lo exact, the rest through the (possibly quantized) query.
			lo := float64(q.lo[i])
			dot += float64(x[i])*lo + float64(xq[i])*(float64(dec[i])-lo)
		}
		d = -dot
		if q.Options().Metric == index.Cosine {
			d++
		}
	}
	return d
}

func TestDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, dim := range []int{1, 13, 128, 300} {
		rows := randomRows(rng, 100, dim)
		queries := randomRows(rng, 10, dim)
		for _, opts := range allOptions() {
			q := train(t, rows, opts)
			var qq Query
			code := make([]uint8, q.Stride())
			for _, x := range queries {
				q.Prepare(x, &qq)
				for _, y := range rows[:20] {
					bias := q.Encode(y, code)
					got := float64(qq.Distance(code, bias))
					want := reference(q, x, code)
					var scale float64
					for i := range dim {
						scale += math.Abs(float64(x[i]))*10 + float64(x[i])*float64(x[i]) + 100
					}
					if math.Abs(got-want) > 1e-5*scale {
						t.Fatalf("%+v dim %d: distance %v, want %v", opts, dim, got, want)
					}
				}
			}
		}
	}
}

// TestDistanceApproximates checks that the approximate L2 distances of both
// modes rank like the exact ones on the whole: the error is small relative
// to the spread of the distances.
func TestDistanceApproximates(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	rows := randomRows(rng, 500, 64)
	for _, sym := range []bool{false, true} {
		q := train(t, rows, Options{Symmetric: sym})
		var qq Query
		code := make([]uint8, q.Stride())
		var worst, spread float64
		for _, x := range rows[:20] {
			q.Prepare(x, &qq)
			for _, y := range rows {
				var exact float64
				for i := range x {
					d := float64(x[i] - y[i])
					exact += d * d
				}
				got := float64(qq.Distance(code, q.Encode(y, code)))
				worst = max(worst, math.Abs(got-exact))
				spread = max(spread, exact)
			}
		}
		if worst > 0.02*spread {
			t.Errorf("symmetric=%t: worst error %v with distances up to %v", sym, worst, spread)
		}
	}
}

func TestMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	rows := randomRows(rng, 50, 33)
	for _, opts := range allOptions() {
		opts.Quantile = 0.01
		q := train(t, rows, opts)
		b, _ := q.AppendBinary([]byte("prefix"))
		if len(b) != 6+EncodedSize(33) {
			t.Fatalf("%d bytes", len(b))
		}
		got, err := Unmarshal(b[6:])
		if err != nil {
			t.Fatal(err)
		}
		if got.Options() != q.Options() || !slices.Equal(got.lo, q.lo) || !slices.Equal(got.step, q.step) {
			t.Fatalf("round trip: %+v != %+v", got, q)
		}
		again, _ := got.AppendBinary(nil)
		if !bytes.Equal(again, b[6:]) {
			t.Fatal("not byte-identical")
		}
	}
	good, _ := train(t, rows, Options{Symmetric: true}).AppendBinary(nil)
	bad := func(name string, mutate func(b []byte) []byte) {
		b := mutate(slices.Clone(good))
		if _, err := Unmarshal(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	bad("short", func(b []byte) []byte { return b[:len(b)-1] })
	bad("long", func(b []byte) []byte { return append(b, 0) })
	bad("metric", func(b []byte) []byte { b[0] = 9; return b })
	bad("flags", func(b []byte) []byte { b[1] |= 4; return b })
	bad("dim", func(b []byte) []byte { b[4] = 0; return b })
	bad("quantile", func(b []byte) []byte { b[15] = 0x40; return b })
	bad("nan step", func(b []byte) []byte { copy(b[fixedSize+4*33:], []byte{0, 0, 0xc0, 0x7f}); return b })
	bad("unequal steps", func(b []byte) []byte { b[fixedSize+4*33+4*5]++; return b })
}

func FuzzUnmarshal(f *testing.F) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, opts := range allOptions()[:4] {
		b, _ := train(f, randomRows(rng, 10, 5), opts).AppendBinary(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// Whatever loads must be usable.
		x := make([]float32, q.Dim())
		code := make([]uint8, q.Stride())
		var qq Query
		q.Prepare(x, &qq)
		qq.Distance(code, q.Encode(x, code))
	})
}

func TestPrepareNoAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	rows := randomRows(rng, 50, 100)
	for _, sym := range []bool{false, true} {
		q := train(t, rows, Options{Symmetric: sym})
		var qq Query
		code := make([]uint8, q.Stride())
		q.Prepare(rows[0], &qq)
		if n := testing.AllocsPerRun(100, func() {
			q.Prepare(rows[1], &qq)
			qq.Distance(code, q.Encode(rows[2], code))
		}); n != 0 {
			t.Errorf("symmetric=%t: %v allocations", sym, n)
		}
	}
}
