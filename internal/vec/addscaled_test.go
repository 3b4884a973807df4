package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

type addScaledKernel struct {
	name string
	fn   func(dst, x []float32, a float32)
}

func addScaledKernels() []addScaledKernel {
	var ks []addScaledKernel
	if useAVX512 {
		ks = append(ks, addScaledKernel{"avx512", addScaledAVX512})
	}
	if useAVX2FMA {
		ks = append(ks, addScaledKernel{"avx2-fma", addScaledAVX2})
	}
	return append(ks, addScaledKernel{"generic", addScaledGeneric}, addScaledKernel{"dispatch", AddScaled})
}

// TestAddScaled checks every element against a float64 reference within
// two roundings (the pure-Go kernel rounds the product and the sum, the
// assembly ones only the fused result), that small integers come out exact,
// and that nothing past len(dst) is written or read.
func TestAddScaled(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, k := range addScaledKernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range testLengths() {
				a := rng.Float32()*4 - 2
				dst := append(randomVector(rng, n), make([]float32, 64)...)
				x := append(randomVector(rng, n), make([]float32, 64)...)
				for i := n; i < len(dst); i++ {
					dst[i], x[i] = -42, float32(math.NaN())
				}
				want := make([]float64, n)
				for i := range want {
					want[i] = float64(dst[i]) + float64(a)*float64(x[i])
				}
				k.fn(dst[:n], x, a)
				for i := range n {
					scale := math.Abs(want[i]) + math.Abs(float64(a)*float64(x[i]))
					if d := math.Abs(float64(dst[i]) - want[i]); d > 2*0x1p-24*scale {
						t.Fatalf("n=%d: dst[%d] = %v, want %v", n, i, dst[i], want[i])
					}
				}
				for i := n; i < len(dst); i++ {
					if dst[i] != -42 {
						t.Fatalf("n=%d: wrote dst[%d]", n, i)
					}
				}
				ints, xs := make([]float32, n), make([]float32, n)
				for i := range ints {
					ints[i], xs[i] = float32(i), float32(i%7)
				}
				k.fn(ints, xs, -3)
				for i := range ints {
					if ints[i] != float32(i-3*(i%7)) {
						t.Fatalf("n=%d: integer dst[%d] = %v", n, i, ints[i])
					}
				}
			}
		})
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("no panic with len(x) < len(dst)")
			}
		}()
		AddScaled(make([]float32, 9), make([]float32, 8, 16), 1)
	}()
	if a := testing.AllocsPerRun(50, func() { AddScaled(make([]float32, 0), nil, 1) }); a != 0 {
		t.Errorf("%v allocations", a)
	}
}

func BenchmarkAddScaled(b *testing.B) {
	rng := rand.New(rand.NewPCG(33, 34))
	for _, k := range addScaledKernels() {
		for _, n := range []int{256, 1024} {
			dst, x := randomVector(rng, n), randomVector(rng, n)
			b.Run(fmt.Sprintf("impl=%s/n=%d", k.name, n), func(b *testing.B) {
				b.SetBytes(int64(12 * n))
				for b.Loop() {
					k.fn(dst, x, 1e-9)
				}
			})
		}
	}
}
