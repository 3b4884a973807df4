package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// int8Kernels is one implementation of the 8-bit kernels, wrapped so that
// each takes any length the way the exported functions do.
type int8Kernels struct {
	name          string
	dotUint8Int8  func(a []uint8, b []int8) int32
	dotFloatUint8 func(a []float32, c []uint8) float32
}

// supportedInt8Kernels returns every implementation this CPU can run, the
// preferred first, then the exported functions. The AVX2 kernels take only
// whole blocks; like the exported functions, the wrappers finish the tail
// with the generic code.
func supportedInt8Kernels() []int8Kernels {
	var sets []int8Kernels
	if useAVX512VNNI {
		sets = append(sets, int8Kernels{"avx512-vnni", dotUint8Int8AVX512, dotFloatUint8AVX512})
	}
	if useAVX2FMA {
		sets = append(sets, int8Kernels{"avx2",
			func(a []uint8, b []int8) int32 {
				n := len(a) &^ 15
				return dotUint8Int8AVX2(a[:n], b) + dotUint8Int8Generic(a[n:], b[n:])
			},
			func(a []float32, c []uint8) float32 {
				n := len(a) &^ 7
				return dotFloatUint8AVX2(a[:n], c) + dotFloatUint8Generic(a[n:], c[n:])
			}})
	}
	return append(sets,
		int8Kernels{"generic", dotUint8Int8Generic, dotFloatUint8Generic},
		int8Kernels{"dispatch", DotUint8Int8, DotFloatUint8})
}

func randomCodes(rng *rand.Rand, n int) ([]uint8, []int8) {
	a, b := make([]uint8, n), make([]int8, n)
	for i := range a {
		a[i], b[i] = uint8(rng.UintN(256)), int8(rng.IntN(256)-128)
	}
	return a, b
}

func dotUint8Int8Reference(a []uint8, b []int8) int64 {
	var s int64
	for i := range a {
		s += int64(a[i]) * int64(b[i])
	}
	return s
}

func dotFloatUint8Reference(a []float32, c []uint8) (sum, magnitude float64) {
	for i := range a {
		p := float64(a[i]) * float64(c[i])
		sum += p
		magnitude += math.Abs(p)
	}
	return sum, magnitude
}

func TestInt8Implementation(t *testing.T) {
	sets := supportedInt8Kernels()
	if got, want := Int8Implementation(), sets[0].name; got != want && len(sets) > 2 {
		t.Errorf("Int8Implementation() = %q, want the fastest supported, %q", got, want)
	}
	t.Logf("8-bit kernels: %s", Int8Implementation())
}

// TestDotUint8Int8 holds every implementation to the exact integer result,
// on random inputs, on the extremes (which would overflow 16-bit pair sums)
// and with one non-zero element at each position.
func TestDotUint8Int8(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, k := range supportedInt8Kernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range testLengths() {
				for range 5 {
					a, b := randomCodes(rng, n)
					if got, want := k.dotUint8Int8(a, b), dotUint8Int8Reference(a, b); int64(got) != want {
						t.Fatalf("n=%d: got %d, want %d", n, got, want)
					}
				}
				for _, ext := range []int8{-128, 127} {
					a, b := make([]uint8, n), make([]int8, n)
					for i := range a {
						a[i], b[i] = 255, ext
					}
					if got, want := k.dotUint8Int8(a, b), dotUint8Int8Reference(a, b); int64(got) != want {
						t.Fatalf("n=%d, all 255×%d: got %d, want %d", n, ext, got, want)
					}
				}
				for i := range n {
					a, b := make([]uint8, n), make([]int8, n)
					a[i], b[i] = 200, -3
					if got := k.dotUint8Int8(a, b); got != -600 {
						t.Fatalf("n=%d, element %d alone: got %d, want -600", n, i, got)
					}
				}
			}
		})
	}
}

func TestDotUint8Int8Longest(t *testing.T) {
	a, b := make([]uint8, MaxInt8Len), make([]int8, MaxInt8Len)
	for i := range a {
		a[i], b[i] = 255, -128
	}
	for _, k := range supportedInt8Kernels() {
		if got, want := k.dotUint8Int8(a, b), dotUint8Int8Reference(a, b); int64(got) != want {
			t.Errorf("%s: got %d, want %d", k.name, got, want)
		}
	}
}

func TestDotFloatUint8(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, k := range supportedInt8Kernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range testLengths() {
				for range 5 {
					a := randomVector(rng, n)
					c, _ := randomCodes(rng, n)
					want, magnitude := dotFloatUint8Reference(a, c)
					if got := k.dotFloatUint8(a, c); math.Abs(float64(got)-want) > tolerance(n, magnitude) {
						t.Fatalf("n=%d: got %v, want %v", n, got, want)
					}
				}
				// Small integers: exact whatever the order.
				for i := range n {
					a, c := make([]float32, n), make([]uint8, n)
					a[i], c[i] = -3, 200
					if got := k.dotFloatUint8(a, c); got != -600 {
						t.Fatalf("n=%d, element %d alone: got %v, want -600", n, i, got)
					}
				}
			}
		})
	}
}

// TestInt8KernelsReadOnlyLenA puts values just past len(a) that would change
// the result if a kernel read them.
func TestInt8KernelsReadOnlyLenA(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, k := range supportedInt8Kernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range testLengths() {
				a, b := randomCodes(rng, n+64)
				f := randomVector(rng, n+64)
				for i := n; i < n+64; i++ {
					a[i], b[i], f[i] = 255, 127, float32(math.NaN())
				}
				if got, want := k.dotUint8Int8(a[:n], b), dotUint8Int8Reference(a[:n], b[:n]); int64(got) != want {
					t.Fatalf("n=%d: got %d, want %d: read past len(a)", n, got, want)
				}
				if got := k.dotFloatUint8(f[:n], a); math.IsNaN(float64(got)) {
					t.Fatalf("n=%d: read past len(a)", n)
				}
			}
		})
	}
}

func TestInt8ShortPanics(t *testing.T) {
	for name, fn := range map[string]func(){
		"DotUint8Int8 short":  func() { DotUint8Int8(make([]uint8, 9), make([]int8, 8, 16)) },
		"DotUint8Int8 long":   func() { DotUint8Int8(make([]uint8, MaxInt8Len+1), make([]int8, MaxInt8Len+1)) },
		"DotFloatUint8 short": func() { DotFloatUint8(make([]float32, 9), make([]uint8, 8, 16)) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
}

func TestInt8NoAllocations(t *testing.T) {
	a, b := make([]uint8, 784), make([]int8, 784)
	f := make([]float32, 784)
	for name, fn := range map[string]func(){
		"DotUint8Int8":  func() { DotUint8Int8(a, b) },
		"DotFloatUint8": func() { DotFloatUint8(f, a) },
	} {
		if allocs := testing.AllocsPerRun(100, fn); allocs != 0 {
			t.Errorf("%s allocates %v times per call", name, allocs)
		}
	}
}

var sinkInt int32

// BenchmarkInt8Kernels measures the 8-bit kernels of every implementation
// this CPU can run at the common embedding sizes; SetBytes counts the codes
// read (the bytes an index streams from memory per distance).
func BenchmarkInt8Kernels(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range supportedInt8Kernels() {
		for _, dim := range benchDims {
			x, y := randomCodes(rng, dim)
			f := randomVector(rng, dim)
			b.Run(fmt.Sprintf("DotUint8Int8/impl=%s/dim=%d", k.name, dim), func(b *testing.B) {
				b.SetBytes(int64(dim))
				b.ReportAllocs()
				for b.Loop() {
					sinkInt += k.dotUint8Int8(x, y)
				}
			})
			b.Run(fmt.Sprintf("DotFloatUint8/impl=%s/dim=%d", k.name, dim), func(b *testing.B) {
				b.SetBytes(int64(dim))
				b.ReportAllocs()
				for b.Loop() {
					sink += k.dotFloatUint8(f, x)
				}
			})
		}
	}
}

func lookupSumKernels() map[string]func([]float32, []uint8) float32 {
	ks := map[string]func([]float32, []uint8) float32{"generic": lookupSumGeneric, "dispatch": LookupSum}
	if useAVX512BW {
		ks["avx512"] = lookupSumAVX512
	}
	if useAVX2FMA {
		ks["avx2"] = func(t []float32, c []uint8) float32 {
			n := len(c) &^ 7
			return lookupSumAVX2(t, c[:n]) + lookupSumGeneric(t[256*n:], c[n:])
		}
	}
	return ks
}

func lookupSumReference(table []float32, codes []uint8) (sum, magnitude float64) {
	for s, c := range codes {
		v := float64(table[256*s+int(c)])
		sum += v
		magnitude += math.Abs(v)
	}
	return sum, magnitude
}

// TestLookupSum checks every implementation against a float64 reference on
// random tables, exactly on integer tables (with one entry per position, to
// catch a lane that reads the wrong row), and that nothing past len(codes)
// is read.
func TestLookupSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	for name, k := range lookupSumKernels() {
		t.Run(name, func(t *testing.T) {
			for _, n := range testLengths() {
				table := randomVector(rng, 256*n+256*64)
				codes, _ := randomCodes(rng, n+64)
				for i := 256 * n; i < len(table); i++ {
					table[i] = float32(math.NaN())
				}
				want, magnitude := lookupSumReference(table, codes[:n])
				if got := k(table, codes[:n]); math.Abs(float64(got)-want) > tolerance(n, magnitude) {
					t.Fatalf("n=%d: got %v, want %v", n, got, want)
				}
				ints := make([]float32, 256*n)
				for i := range ints {
					ints[i] = float32(i % 1000)
				}
				for s := range n {
					c := make([]uint8, n)
					c[s] = uint8(rng.UintN(256))
					want, _ := lookupSumReference(ints, c)
					if got := k(ints, c); float64(got) != want {
						t.Fatalf("n=%d, code %d at %d: got %v, want %v", n, c[s], s, got, want)
					}
				}
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic with a short table")
		}
	}()
	LookupSum(make([]float32, 255), []uint8{0})
}

func BenchmarkLookupSum(b *testing.B) {
	rng := rand.New(rand.NewPCG(53, 54))
	for name, k := range lookupSumKernels() {
		for _, m := range []int{98, 196, 261} {
			table := randomVector(rng, 256*m)
			codes, _ := randomCodes(rng, m)
			b.Run(fmt.Sprintf("impl=%s/m=%d", name, m), func(b *testing.B) {
				for b.Loop() {
					sink += k(table, codes)
				}
			})
		}
	}
}
