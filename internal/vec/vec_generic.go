package vec

// The pure-Go kernels are compiled on every platform: they are the only
// kernels on other architectures and with the purego build tag, the fallback
// on amd64 CPUs without AVX2 and FMA, and the tests run them on every
// machine.
//
// They keep four independent accumulators. A single accumulator makes every
// addition wait for the previous one (3-4 cycles of floating-point add
// latency); four chains keep the adder busy and measured 1.4x (128
// dimensions) to 2x (1536) faster than the one-accumulator loop on amd64.
// Eight chains measured slower than four: the scalar loop is already limited
// by its two loads per element, and the longer body only adds overhead.

// l2SquaredGeneric is the portable L2Squared. It reads len(a) elements of b.
func l2SquaredGeneric(a, b []float32) float32 {
	b = b[:len(a)] // lets the compiler drop the bounds checks on b below
	var s0, s1, s2, s3 float32
	i := 0
	for ; i <= len(a)-4; i += 4 {
		d0 := a[i] - b[i]
		d1 := a[i+1] - b[i+1]
		d2 := a[i+2] - b[i+2]
		d3 := a[i+3] - b[i+3]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(a); i++ {
		d := a[i] - b[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// dotGeneric is the portable Dot. It reads len(a) elements of b.
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i <= len(a)-4; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// scaleGeneric multiplies every element of v by f.
func scaleGeneric(v []float32, f float32) {
	for i := range v {
		v[i] *= f
	}
}

// addScaledGeneric adds a·x to dst.
func addScaledGeneric(dst, x []float32, a float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += a * x[i]
	}
}

// argMinGeneric is the portable ArgMin.
func argMinGeneric(s []float32) int {
	best, m := 0, s[0]
	for i, v := range s {
		if v < m {
			best, m = i, v
		}
	}
	return best
}
