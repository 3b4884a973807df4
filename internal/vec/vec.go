package vec

import "math"

// The exported functions branch on the useAVX512 and useAVX2FMA flags and
// call the chosen kernel directly. The alternative, a package-level function
// value set at start-up, measured slower where it matters: Hippo's indexes
// hold L2Squared and Dot as function values (the configured distance), so the
// wrapper cannot be inlined, and calling it then costs an indirect call to
// L2Squared plus a second indirect call, through an ABI wrapper, to the
// assembly. Through such a function value the branches cost 0.25 ns per call
// over calling the kernel itself, the function variable 1.2-2 ns (about 20%
// of a 128-dimension distance). Called directly in a loop the two measured
// within noise of each other. The flags never change after initialization,
// so the branches are always predicted; in builds without assembly they are
// constants and the compiler removes the branches altogether.

// L2Squared returns the squared Euclidean distance between a and b, the sum
// over i < len(a) of (a[i]-b[i])². It reads len(a) elements of b and panics
// if b is shorter than a. It is safe for concurrent use and does not allocate.
func L2Squared(a, b []float32) float32 {
	if len(b) < len(a) {
		panic("vec: len(b) < len(a)")
	}
	if useAVX512 {
		return l2SquaredAVX512(a, b)
	}
	if useAVX2FMA {
		return l2SquaredAVX2(a, b)
	}
	return l2SquaredGeneric(a, b)
}

// Dot returns the inner product of a and b, the sum over i < len(a) of
// a[i]*b[i]. It reads len(a) elements of b and panics if b is shorter than a.
// It is safe for concurrent use and does not allocate.
func Dot(a, b []float32) float32 {
	if len(b) < len(a) {
		panic("vec: len(b) < len(a)")
	}
	if useAVX512 {
		return dotAVX512(a, b)
	}
	if useAVX2FMA {
		return dotAVX2(a, b)
	}
	return dotGeneric(a, b)
}

// Normalize scales v in place to unit Euclidean length and returns the length
// it had before. A vector of zeros is left unchanged and Normalize returns 0.
// The elements of v must be finite; if any is NaN or ±Inf the result and the
// contents of v afterwards are unspecified, and a norm above the largest
// float32 is returned as +Inf. Normalize does not allocate; it writes v, so
// it must not run concurrently with other uses of v.
func Normalize(v []float32) float32 {
	sum := Dot(v, v)
	// Below 2⁻¹⁰⁰ some squares may have lost precision as float32 subnormals.
	if sum >= 0x1p-100 && sum <= math.MaxFloat32 {
		norm := float32(math.Sqrt(float64(sum)))
		scale(v, 1/norm)
		return norm
	}
	// The float32 sum of squares is tiny (v is all zeros, or its elements are
	// so small that their squares underflow), overflowed to +Inf (elements
	// above about 1e19), or is NaN. Squares of float32 values neither
	// underflow nor overflow in float64, so redo the work there; this path is
	// rare and not worth a fast kernel.
	return normalizeWide(v)
}

// normalizeWide is Normalize computed in float64.
func normalizeWide(v []float32) float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return 0
	}
	norm := math.Sqrt(sum)
	for i, x := range v {
		v[i] = float32(float64(x) / norm)
	}
	return float32(norm)
}

// scale multiplies every element of v by f.
func scale(v []float32, f float32) {
	if useAVX512 {
		scaleAVX512(v, f)
		return
	}
	if useAVX2FMA {
		scaleAVX2(v, f)
		return
	}
	scaleGeneric(v, f)
}

// Implementation returns the name of the kernel set chosen at start-up:
// "avx512", "avx2-fma" or "generic". It is meant for logs and metrics.
func Implementation() string {
	switch {
	case useAVX512:
		return "avx512"
	case useAVX2FMA:
		return "avx2-fma"
	}
	return "generic"
}

// AddScaled adds a·x to dst element by element: dst[i] += a*x[i] for
// i < len(dst) (the BLAS "axpy"). It reads len(dst) elements of x and panics
// if x is shorter. The assembly kernels fuse each multiply with its add, so
// results may differ from the pure-Go kernel's in the last bit. It does not
// allocate; it writes dst, so dst must not be used concurrently.
func AddScaled(dst, x []float32, a float32) {
	if len(x) < len(dst) {
		panic("vec: AddScaled: len(x) < len(dst)")
	}
	if useAVX512 {
		addScaledAVX512(dst, x, a)
		return
	}
	if useAVX2FMA {
		addScaledAVX2(dst, x, a)
		return
	}
	addScaledGeneric(dst, x, a)
}

// ArgMin returns the index of the smallest element of s, the first one if
// several are equal (-0 and +0 count as equal). It panics if s is empty;
// the result is unspecified if s contains NaNs. It does not allocate.
// Indexes use it to pick the nearest of many centroids from their distances.
func ArgMin(s []float32) int {
	if len(s) == 0 {
		panic("vec: ArgMin of an empty slice")
	}
	if useAVX512 {
		return argMinAVX512(s)
	}
	if useAVX2FMA {
		return argMinAVX2(s)
	}
	return argMinGeneric(s)
}
