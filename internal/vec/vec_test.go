package vec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// testLengths covers every length up to 70, which exercises each kernel's
// tail handling for every remainder modulo 4, 8, 16, 32 and 64, plus the
// common embedding sizes and their neighbours.
func testLengths() []int {
	var lengths []int
	for n := 0; n <= 70; n++ {
		lengths = append(lengths, n)
	}
	return append(lengths, 127, 128, 129, 383, 384, 768, 784, 1535, 1536)
}

// l2SquaredReference and dotReference compute in float64, one element at a
// time. They also return the sum of the absolute values of the terms, which
// scales the rounding error a float32 kernel may make.
func l2SquaredReference(a, b []float32) (sum, magnitude float64) {
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		sum += d * d
	}
	return sum, sum
}

func dotReference(a, b []float32) (sum, magnitude float64) {
	for i := range a {
		p := float64(a[i]) * float64(b[i])
		sum += p
		magnitude += math.Abs(p)
	}
	return sum, magnitude
}

// tolerance bounds the error of a float32 kernel over n elements relative to
// the magnitude of its terms. Every kernel keeps at least four independent
// partial sums, so no sum has more than about n/4 additions before the
// partial sums are combined; each addition, and the rounding of each term,
// contributes at most one unit roundoff (2⁻²⁴). The bound is loose enough
// for every summation order and tight enough to catch a lost or duplicated
// element: at 1536 elements it is about 1/27 of one average term.
func tolerance(n int, magnitude float64) float64 {
	return float64(n/4+8) * 0x1p-24 * magnitude
}

func randomVector(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = rng.Float32()*2 - 1
	}
	return v
}

// kernels is one implementation of the package's kernels, for calling each
// directly rather than through the exported functions' dispatch.
type kernels struct {
	name      string
	l2Squared func(a, b []float32) float32
	dot       func(a, b []float32) float32
	scale     func(v []float32, f float32)
}

// supportedKernels returns every implementation this CPU can run, in the
// order the exported functions prefer them.
func supportedKernels() []kernels {
	var sets []kernels
	if useAVX512 {
		sets = append(sets, kernels{"avx512", l2SquaredAVX512, dotAVX512, scaleAVX512})
	}
	if useAVX2FMA {
		sets = append(sets, kernels{"avx2-fma", l2SquaredAVX2, dotAVX2, scaleAVX2})
	}
	return append(sets, kernels{"generic", l2SquaredGeneric, dotGeneric, scaleGeneric})
}

type kernelFunc struct {
	name      string
	kernel    func(a, b []float32) float32
	reference func(a, b []float32) (sum, magnitude float64)
}

// kernelFuncs lists, for every implementation this CPU can run, its two
// distance kernels, called directly rather than through the exported
// dispatch, and then the exported functions themselves.
func kernelFuncs() []kernelFunc {
	var funcs []kernelFunc
	for _, k := range supportedKernels() {
		funcs = append(funcs,
			kernelFunc{k.name + "/L2Squared", k.l2Squared, l2SquaredReference},
			kernelFunc{k.name + "/Dot", k.dot, dotReference},
		)
	}
	return append(funcs,
		kernelFunc{"dispatch/L2Squared", L2Squared, l2SquaredReference},
		kernelFunc{"dispatch/Dot", Dot, dotReference},
	)
}

func TestImplementations(t *testing.T) {
	sets := supportedKernels()
	names := make([]string, len(sets))
	for i, k := range sets {
		names[i] = k.name
	}
	t.Logf("supported: %v; chosen: %s", names, Implementation())
	if got, want := Implementation(), sets[0].name; got != want {
		t.Errorf("Implementation() = %q, want the fastest supported, %q", got, want)
	}
	if last := sets[len(sets)-1]; last.name != "generic" {
		t.Errorf("last supported implementation is %q, want generic", last.name)
	}
}

func TestKernelsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range kernelFuncs() {
		t.Run(f.name, func(t *testing.T) {
			for _, n := range testLengths() {
				for range 5 {
					a, b := randomVector(rng, n), randomVector(rng, n)
					want, magnitude := f.reference(a, b)
					got := f.kernel(a, b)
					if diff := math.Abs(float64(got) - want); diff > tolerance(n, magnitude) {
						t.Fatalf("n=%d: got %v, want %v (diff %.3g, tolerance %.3g)",
							n, got, want, diff, tolerance(n, magnitude))
					}
				}
			}
		})
	}
}

// TestKernelsExact uses small integers, whose products and sums are exact in
// float32, so every kernel must return exactly the reference whatever its
// summation order. A lost, duplicated or misplaced element fails here even
// where it would hide inside TestKernelsMatchReference's tolerance.
func TestKernelsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	integers := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.IntN(17) - 8)
		}
		return v
	}
	for _, f := range kernelFuncs() {
		t.Run(f.name, func(t *testing.T) {
			for _, n := range testLengths() {
				a, b := integers(n), integers(n)
				want, _ := f.reference(a, b)
				if got := f.kernel(a, b); float64(got) != want {
					t.Fatalf("n=%d: got %v, want %v", n, got, want)
				}
				// One non-zero element at each position finds the lane or
				// tail element that is dropped or counted twice.
				for i := range n {
					a, b := make([]float32, n), make([]float32, n)
					a[i], b[i] = 3, 2
					want, _ := f.reference(a, b)
					if got := f.kernel(a, b); float64(got) != want {
						t.Fatalf("n=%d, element %d alone: got %v, want %v", n, i, got, want)
					}
				}
			}
		})
	}
}

// TestKernelsReadOnlyLenA puts NaNs just past len(a) in both backing arrays:
// a kernel that reads beyond the slices' length returns NaN.
func TestKernelsReadOnlyLenA(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, f := range kernelFuncs() {
		t.Run(f.name, func(t *testing.T) {
			for _, n := range testLengths() {
				a := append(randomVector(rng, n), make([]float32, 64)...)
				b := append(randomVector(rng, n), make([]float32, 64)...)
				for i := n; i < len(a); i++ {
					a[i], b[i] = float32(math.NaN()), float32(math.NaN())
				}
				if got := f.kernel(a[:n], b[:n]); math.IsNaN(float64(got)) {
					t.Fatalf("n=%d: read past len(a)", n)
				}
				// b may be longer than a; only len(a) elements count.
				if got := f.kernel(a[:n], b); math.IsNaN(float64(got)) {
					t.Fatalf("n=%d with longer b: read past len(a)", n)
				}
			}
		})
	}
}

// TestScaleKernels checks that every implementation's scale multiplies each
// element of v, and nothing past its end, by f. Each product is rounded once
// whatever the implementation, so the results must be bit-identical.
func TestScaleKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, k := range supportedKernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range testLengths() {
				f := rng.Float32() * 3
				v := append(randomVector(rng, n), make([]float32, 64)...)
				for i := n; i < len(v); i++ {
					v[i] = -42
				}
				want := slices.Clone(v)
				for i := range n {
					want[i] *= f
				}
				k.scale(v[:n], f)
				for i := range v {
					if v[i] != want[i] {
						t.Fatalf("n=%d: v[%d] = %v after scaling by %v, want %v", n, i, v[i], f, want[i])
					}
				}
			}
		})
	}
}

func TestShortBPanics(t *testing.T) {
	for _, f := range []struct {
		name string
		fn   func(a, b []float32) float32
	}{{"L2Squared", L2Squared}, {"Dot", Dot}} {
		t.Run(f.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic with len(b) < len(a)")
				}
			}()
			f.fn(make([]float32, 9), make([]float32, 8, 16))
		})
	}
}

func TestNormalize(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	check := func(t *testing.T, v []float32) {
		t.Helper()
		original := slices.Clone(v)
		sumSquares, _ := dotReference(v, v)
		wantNorm := math.Sqrt(sumSquares)
		norm := Normalize(v)
		if diff := math.Abs(float64(norm) - wantNorm); diff > 1e-6*wantNorm {
			t.Fatalf("n=%d: norm %v, want %v", len(v), norm, wantNorm)
		}
		for i := range v {
			want := float64(original[i]) / wantNorm
			if diff := math.Abs(float64(v[i]) - want); diff > 1e-6 {
				t.Fatalf("n=%d: v[%d] = %v, want %v", len(v), i, v[i], want)
			}
		}
		if length, _ := dotReference(v, v); math.Abs(length-1) > 1e-5 {
			t.Fatalf("n=%d: squared length after Normalize %v, want 1", len(v), length)
		}
	}
	t.Run("random", func(t *testing.T) {
		for _, n := range testLengths()[1:] {
			check(t, randomVector(rng, n))
		}
	})
	// Squares of these underflow or overflow float32.
	for _, scale := range []float32{1e-30, 1e-20, 1e20, 1e30} {
		t.Run("scale", func(t *testing.T) {
			v := randomVector(rng, 384)
			for i := range v {
				v[i] *= scale
			}
			check(t, v)
		})
	}
	t.Run("zero", func(t *testing.T) {
		for _, n := range []int{0, 1, 7, 384} {
			v := make([]float32, n)
			if norm := Normalize(v); norm != 0 {
				t.Errorf("n=%d: norm %v, want 0", n, norm)
			}
			if slices.ContainsFunc(v, func(x float32) bool { return x != 0 }) {
				t.Errorf("n=%d: zero vector changed to %v", n, v)
			}
		}
	})
}

func TestNoAllocations(t *testing.T) {
	a, b := make([]float32, 768), make([]float32, 768)
	a[0] = 1
	for name, fn := range map[string]func(){
		"L2Squared": func() { L2Squared(a, b) },
		"Dot":       func() { Dot(a, b) },
		"Normalize": func() { Normalize(a) },
	} {
		if allocs := testing.AllocsPerRun(100, fn); allocs != 0 {
			t.Errorf("%s allocates %v times per call", name, allocs)
		}
	}
}

// TestKernelsSymmetric checks the exact identities doc.go promises, which
// indexes rely on when they cache or compare distances.
func TestKernelsSymmetric(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, k := range supportedKernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range testLengths() {
				a, b := randomVector(rng, n), randomVector(rng, n)
				if ab, ba := k.l2Squared(a, b), k.l2Squared(b, a); ab != ba {
					t.Fatalf("n=%d: L2Squared(a, b) = %v, L2Squared(b, a) = %v", n, ab, ba)
				}
				if ab, ba := k.dot(a, b), k.dot(b, a); ab != ba {
					t.Fatalf("n=%d: Dot(a, b) = %v, Dot(b, a) = %v", n, ab, ba)
				}
				if aa := k.l2Squared(a, a); aa != 0 {
					t.Fatalf("n=%d: L2Squared(a, a) = %v, want 0", n, aa)
				}
			}
		})
	}
}
