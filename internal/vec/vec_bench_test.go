package vec

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchDims are common embedding sizes; 784 (MNIST) is not a multiple of 64
// and so also exercises the kernels' tails.
var benchDims = []int{128, 384, 768, 784, 1536}

// sink keeps the compiler from discarding benchmarked results.
var sink float32

// BenchmarkKernels measures every implementation this CPU can run, called
// directly, and the exported functions ("dispatch"), whose difference from
// the fastest implementation is the cost of choosing at run time.
func BenchmarkKernels(b *testing.B) {
	sets := append(supportedKernels(), kernels{name: "dispatch", l2Squared: L2Squared, dot: Dot})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, op := range []string{"L2Squared", "Dot"} {
		for _, k := range sets {
			kernel := k.l2Squared
			if op == "Dot" {
				kernel = k.dot
			}
			for _, dim := range benchDims {
				x, y := randomVector(rng, dim), randomVector(rng, dim)
				b.Run(fmt.Sprintf("%s/impl=%s/dim=%d", op, k.name, dim), func(b *testing.B) {
					b.SetBytes(int64(2 * 4 * dim)) // both vectors are read once
					b.ReportAllocs()
					for b.Loop() {
						sink += kernel(x, y)
					}
				})
			}
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dim := range benchDims {
		v := randomVector(rng, dim)
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			b.SetBytes(int64(4 * dim))
			b.ReportAllocs()
			for b.Loop() {
				// Normalizing a unit vector again takes the same path as
				// normalizing a fresh one.
				sink += Normalize(v)
			}
		})
	}
}
