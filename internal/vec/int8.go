package vec

// Kernels over 8-bit codes, for scalar-quantized vectors (package hnsw keeps
// one uint8 code per dimension next to the float32 vector). Two forms are
// provided because an index may quantize the query too (symmetric, integer
// arithmetic throughout) or keep it in float32 (asymmetric):
//
//   - DotUint8Int8: unsigned codes against signed bytes, exact in int32. With
//     AVX-512 VNNI one VPDPBUSD multiplies and sums 64 byte pairs.
//   - DotFloatUint8: float32 against unsigned codes, each code converted to
//     float32 exactly.
//
// Both are dot products: L2 distances between quantized vectors are derived
// from them by the caller (‖a-b‖² = ‖a‖² + ‖b‖² - 2a·b with per-vector norms
// stored at encoding time), which keeps one kernel per form for every metric.

// MaxInt8Len is the longest input DotUint8Int8 accepts: every term is at
// most 255·128 in magnitude, so 65,536 of them cannot overflow an int32.
const MaxInt8Len = 1 << 16

// DotUint8Int8 returns the exact sum over i < len(a) of a[i]*b[i], with a's
// elements unsigned (0..255) and b's signed (-128..127). It reads len(a)
// elements of b and panics if b is shorter than a or len(a) > MaxInt8Len.
// It is safe for concurrent use and does not allocate; every implementation
// returns the same value.
func DotUint8Int8(a []uint8, b []int8) int32 {
	if len(b) < len(a) || len(a) > MaxInt8Len {
		panic("vec: DotUint8Int8: len(b) < len(a) or len(a) > MaxInt8Len")
	}
	if useAVX512VNNI {
		return dotUint8Int8AVX512(a, b)
	}
	if useAVX2FMA {
		n := len(a) &^ 15
		return dotUint8Int8AVX2(a[:n], b) + dotUint8Int8Generic(a[n:], b[n:])
	}
	return dotUint8Int8Generic(a, b)
}

// DotFloatUint8 returns the sum over i < len(a) of a[i]*float32(c[i]). It
// reads len(a) elements of c and panics if c is shorter than a. Like Dot it
// matches the exact value within float32 rounding, the summation order
// depending only on len(a) and the implementation. It is safe for
// concurrent use and does not allocate.
func DotFloatUint8(a []float32, c []uint8) float32 {
	if len(c) < len(a) {
		panic("vec: DotFloatUint8: len(c) < len(a)")
	}
	if useAVX512BW {
		return dotFloatUint8AVX512(a, c)
	}
	if useAVX2FMA {
		n := len(a) &^ 7
		return dotFloatUint8AVX2(a[:n], c) + dotFloatUint8Generic(a[n:], c[n:])
	}
	return dotFloatUint8Generic(a, c)
}

// LookupSum returns the sum over s < len(codes) of table[256·s + codes[s]]:
// the inner loop of a product-quantization search, which adds up one entry
// per subspace of a per-query distance table. It panics if table is shorter
// than 256·len(codes). The AVX-512 kernel gathers 16 entries per
// instruction and sums them in 16 lanes, so its rounding differs from the
// pure-Go kernel's; the result depends only on the values. It is safe for
// concurrent use and does not allocate.
func LookupSum(table []float32, codes []uint8) float32 {
	if len(table) < 256*len(codes) {
		panic("vec: LookupSum: table shorter than 256·len(codes)")
	}
	if useAVX512BW {
		return lookupSumAVX512(table, codes)
	}
	if useAVX2FMA {
		n := len(codes) &^ 7
		return lookupSumAVX2(table, codes[:n]) + lookupSumGeneric(table[256*n:], codes[n:])
	}
	return lookupSumGeneric(table, codes)
}

// lookupSumGeneric is the portable LookupSum. The table rows are addressed
// as fixed-size arrays so that indexing by a byte needs no bounds check;
// four accumulators hide the latency of the dependent adds.
func lookupSumGeneric(table []float32, codes []uint8) float32 {
	m := len(codes)
	table = table[:256*m]
	var s0, s1, s2, s3 float32
	s := 0
	for ; s+4 <= m; s += 4 {
		s0 += (*[256]float32)(table[s*256:])[codes[s]]
		s1 += (*[256]float32)(table[(s+1)*256:])[codes[s+1]]
		s2 += (*[256]float32)(table[(s+2)*256:])[codes[s+2]]
		s3 += (*[256]float32)(table[(s+3)*256:])[codes[s+3]]
	}
	for ; s < m; s++ {
		s0 += (*[256]float32)(table[s*256:])[codes[s]]
	}
	return (s0 + s1) + (s2 + s3)
}

// Int8Implementation returns the name of the kernel set chosen at start-up
// for DotUint8Int8: "avx512-vnni", "avx2" or "generic". The AVX-512 kernel
// needs AVX512F, BW, VL and VNNI; a CPU with AVX-512 but without VNNI uses
// the AVX2 one. DotFloatUint8 and LookupSum use AVX-512 without VNNI.
func Int8Implementation() string {
	switch {
	case useAVX512VNNI:
		return "avx512-vnni"
	case useAVX2FMA:
		return "avx2"
	}
	return "generic"
}

// dotUint8Int8Generic is the portable DotUint8Int8. Four accumulators, as in
// the float kernels, keep the adds independent.
func dotUint8Int8Generic(a []uint8, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i <= len(a)-4; i += 4 {
		s0 += int32(a[i]) * int32(b[i])
		s1 += int32(a[i+1]) * int32(b[i+1])
		s2 += int32(a[i+2]) * int32(b[i+2])
		s3 += int32(a[i+3]) * int32(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += int32(a[i]) * int32(b[i])
	}
	return s0 + s1 + s2 + s3
}

// dotFloatUint8Generic is the portable DotFloatUint8.
func dotFloatUint8Generic(a []float32, c []uint8) float32 {
	c = c[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i <= len(a)-4; i += 4 {
		s0 += a[i] * float32(c[i])
		s1 += a[i+1] * float32(c[i+1])
		s2 += a[i+2] * float32(c[i+2])
		s3 += a[i+3] * float32(c[i+3])
	}
	for ; i < len(a); i++ {
		s0 += a[i] * float32(c[i])
	}
	return (s0 + s1) + (s2 + s3)
}
