package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func argMinKernels() map[string]func([]float32) int {
	ks := map[string]func([]float32) int{"generic": argMinGeneric, "dispatch": ArgMin}
	if useAVX512 {
		ks["avx512"] = argMinAVX512
	}
	if useAVX2FMA {
		ks["avx2"] = argMinAVX2
	}
	return ks
}

// TestArgMin puts the minimum at every position, with duplicates of it
// later (the first must win), -0 against +0, and values past len(s) that
// are smaller still (they must not be seen).
func TestArgMin(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for name, k := range argMinKernels() {
		t.Run(name, func(t *testing.T) {
			for _, n := range testLengths()[1:] {
				for pos := range n {
					s := make([]float32, n, n+64)
					for i := range s {
						s[i] = rng.Float32() + 1
					}
					s[pos] = 0.5
					if pos+3 < n {
						s[pos+3] = 0.5
					}
					for range 64 {
						s = append(s, -1)
					}
					if got := k(s[:n]); got != pos {
						t.Fatalf("n=%d: minimum at %d, got %d", n, pos, got)
					}
				}
				zeros := make([]float32, n)
				zeros[n-1] = float32(math.Copysign(0, -1))
				if got := k(zeros); got != 0 {
					t.Fatalf("n=%d: zeros: got %d", n, got)
				}
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic on an empty slice")
		}
	}()
	ArgMin(nil)
}

func BenchmarkArgMin(b *testing.B) {
	rng := rand.New(rand.NewPCG(43, 44))
	s := randomVector(rng, 1024)
	for name, k := range argMinKernels() {
		for _, n := range []int{256, 1024} {
			b.Run(fmt.Sprintf("impl=%s/n=%d", name, n), func(b *testing.B) {
				for b.Loop() {
					k(s[:n])
				}
			})
		}
	}
}
