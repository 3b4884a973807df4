// Package vec provides float32 distance kernels. The fastest implementation the
// CPU supports is chosen once at start-up; every kernel has a pure-Go reference.
package vec

// L2Squared returns the squared Euclidean distance between a and b.
// a and b must have the same length.
func L2Squared(a, b []float32) float32 { return l2SquaredGeneric(a, b) }

// Dot returns the inner product of a and b. a and b must have the same length.
func Dot(a, b []float32) float32 { return dotGeneric(a, b) }

func l2SquaredGeneric(a, b []float32) float32 {
	var s float32
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}

func dotGeneric(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
