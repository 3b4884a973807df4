//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

// useAVX512BW selects the AVX-512 kernels that need byte-masked loads (BW)
// and 128-bit EVEX forms (VL): DotFloatUint8 and LookupSum.
// useAVX512VNNI selects the AVX-512 DotUint8Int8, which also needs
// VPDPBUSD (VNNI).
var (
	useAVX512BW   = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
	useAVX512VNNI = useAVX512BW && cpu.X86.HasAVX512VNNI
)

// Implemented in int8_amd64.s; they read len(a) elements of b (or c) without
// checking its length and must only be called when the CPU has the features
// named.

// dotUint8Int8AVX512 requires AVX512F, BW, VL and VNNI.
//
//go:noescape
func dotUint8Int8AVX512(a []uint8, b []int8) int32

// dotUint8Int8AVX2 requires AVX2 and len(a) a multiple of 16.
//
//go:noescape
func dotUint8Int8AVX2(a []uint8, b []int8) int32

// dotFloatUint8AVX512 requires AVX512F, BW and VL.
//
//go:noescape
func dotFloatUint8AVX512(a []float32, c []uint8) float32

// dotFloatUint8AVX2 requires AVX2, FMA and len(a) a multiple of 8.
//
//go:noescape
func dotFloatUint8AVX2(a []float32, c []uint8) float32

// lookupSumAVX512 requires AVX512F, BW and VL.
//
//go:noescape
func lookupSumAVX512(table []float32, codes []uint8) float32

// lookupSumAVX2 requires AVX2 and len(codes) a multiple of 8.
//
//go:noescape
func lookupSumAVX2(table []float32, codes []uint8) float32
