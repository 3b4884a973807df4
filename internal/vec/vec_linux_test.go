//go:build linux

package vec

import (
	"math"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"unsafe"
)

// guardedFloats returns a slice of at least n float32s that ends exactly where
// an inaccessible page begins, so that reading one element past its end
// faults.
func guardedFloats(t *testing.T, n int) []float32 {
	t.Helper()
	page := syscall.Getpagesize()
	size := (4*n + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, size+page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[size:], syscall.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), size/4)
}

// TestKernelsStopAtGuardPage runs every kernel on vectors that end at a
// page boundary followed by an unmapped page: a tail that loads a whole
// vector register instead of a masked one crashes the test binary.
func TestKernelsStopAtGuardPage(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	lengths := testLengths()
	longest := slices.Max(lengths)
	bufA, bufB := guardedFloats(t, longest), guardedFloats(t, longest)
	for i := range bufA {
		bufA[i], bufB[i] = rng.Float32(), rng.Float32()
	}
	for _, f := range kernelFuncs() {
		t.Run(f.name, func(t *testing.T) {
			for _, n := range lengths {
				a, b := bufA[len(bufA)-n:], bufB[len(bufB)-n:]
				want, magnitude := f.reference(a, b)
				if got := f.kernel(a, b); math.Abs(float64(got)-want) > tolerance(n, magnitude) {
					t.Fatalf("n=%d: got %v, want %v", n, got, want)
				}
			}
		})
	}
}

func TestScaleStopsAtGuardPage(t *testing.T) {
	lengths := testLengths()
	buf := guardedFloats(t, slices.Max(lengths))
	for _, k := range supportedKernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range lengths {
				v := buf[len(buf)-n:]
				for i := range v {
					v[i] = float32(i)
				}
				k.scale(v, 2)
				for i := range v {
					if v[i] != float32(2*i) {
						t.Fatalf("n=%d: v[%d] = %v, want %v", n, i, v[i], 2*i)
					}
				}
			}
		})
	}
}

func TestAddScaledStopsAtGuardPage(t *testing.T) {
	lengths := testLengths()
	dstBuf := guardedFloats(t, slices.Max(lengths))
	xBuf := guardedFloats(t, slices.Max(lengths))
	for _, k := range addScaledKernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range lengths {
				dst, x := dstBuf[len(dstBuf)-n:], xBuf[len(xBuf)-n:]
				for i := range dst {
					dst[i], x[i] = float32(i), 1
				}
				k.fn(dst, x, 2)
				for i := range dst {
					if dst[i] != float32(i+2) {
						t.Fatalf("n=%d: dst[%d] = %v", n, i, dst[i])
					}
				}
			}
		})
	}
}

func TestArgMinStopsAtGuardPage(t *testing.T) {
	lengths := testLengths()[1:]
	buf := guardedFloats(t, slices.Max(lengths))
	for name, k := range argMinKernels() {
		t.Run(name, func(t *testing.T) {
			for _, n := range lengths {
				s := buf[len(buf)-n:]
				for i := range s {
					s[i] = float32(n - i)
				}
				if got := k(s); got != n-1 {
					t.Fatalf("n=%d: got %d", n, got)
				}
			}
		})
	}
}
