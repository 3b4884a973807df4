//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

// useAVX512 and useAVX2FMA select the kernels the exported functions call.
// They are set during package initialization and only read afterwards.
// golang.org/x/sys/cpu reports AVX2 and AVX-512 only when the operating
// system also saves the wider registers on context switches.
var (
	useAVX512  = cpu.X86.HasAVX512F
	useAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
)

// Implemented in vec_amd64.s. They read len(a) elements of b without checking
// its length, and must only be called when the CPU has the features named.

// l2SquaredAVX2 requires AVX2 and FMA.
//
//go:noescape
func l2SquaredAVX2(a, b []float32) float32

// dotAVX2 requires AVX2 and FMA.
//
//go:noescape
func dotAVX2(a, b []float32) float32

// scaleAVX2 requires AVX2.
//
//go:noescape
func scaleAVX2(v []float32, f float32)

// l2SquaredAVX512 requires AVX512F.
//
//go:noescape
func l2SquaredAVX512(a, b []float32) float32

// dotAVX512 requires AVX512F.
//
//go:noescape
func dotAVX512(a, b []float32) float32

// scaleAVX512 requires AVX512F.
//
//go:noescape
func scaleAVX512(v []float32, f float32)

// addScaledAVX2 requires AVX2 and FMA.
//
//go:noescape
func addScaledAVX2(dst, x []float32, a float32)

// addScaledAVX512 requires AVX512F.
//
//go:noescape
func addScaledAVX512(dst, x []float32, a float32)

// argMinAVX2 requires AVX2; len(s) ≥ 1.
//
//go:noescape
func argMinAVX2(s []float32) int

// argMinAVX512 requires AVX512F; len(s) ≥ 1.
//
//go:noescape
func argMinAVX512(s []float32) int
