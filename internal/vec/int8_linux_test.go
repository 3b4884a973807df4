//go:build linux

package vec

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// TestInt8KernelsStopAtGuardPage runs the 8-bit kernels on inputs that end
// where an unmapped page begins: a tail that loads a whole register instead
// of a masked one crashes the test binary.
func TestInt8KernelsStopAtGuardPage(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	lengths := testLengths()
	longest := slices.Max(lengths)
	floats := guardedFloats(t, longest)
	bytesA := guardedFloats(t, longest/4+1)
	bytesB := guardedFloats(t, longest/4+1)
	a := unsafe.Slice((*uint8)(unsafe.Pointer(&bytesA[0])), 4*len(bytesA))
	b := unsafe.Slice((*int8)(unsafe.Pointer(&bytesB[0])), 4*len(bytesB))
	for i := range a {
		a[i], b[i] = uint8(rng.UintN(256)), int8(rng.IntN(256)-128)
	}
	for i := range floats {
		floats[i] = rng.Float32()
	}
	for _, k := range supportedInt8Kernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range lengths {
				x, y := a[len(a)-n:], b[len(b)-n:]
				if got, want := k.dotUint8Int8(x, y), dotUint8Int8Reference(x, y); int64(got) != want {
					t.Fatalf("n=%d: got %d, want %d", n, got, want)
				}
				f := floats[len(floats)-n:]
				want, magnitude := dotFloatUint8Reference(f, x)
				if got := k.dotFloatUint8(f, x); abs64(float64(got)-want) > tolerance(n, magnitude) {
					t.Fatalf("n=%d: got %v, want %v", n, got, want)
				}
			}
		})
	}
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestLookupSumStopsAtGuardPage(t *testing.T) {
	lengths := testLengths()
	longest := slices.Max(lengths)
	mem := guardedFloats(t, longest/4+1)
	codes := unsafe.Slice((*uint8)(unsafe.Pointer(&mem[0])), 4*len(mem))
	table := guardedFloats(t, 256*longest)
	for i := range codes {
		codes[i] = 255
	}
	for i := range table {
		table[i] = 1
	}
	for name, k := range lookupSumKernels() {
		t.Run(name, func(t *testing.T) {
			for _, n := range lengths {
				// The last code's entry is the table's last element.
				if got := k(table[len(table)-256*n:], codes[len(codes)-n:]); got != float32(n) {
					t.Fatalf("n=%d: got %v", n, got)
				}
			}
		})
	}
}
