package dataset

import "math/rand/v2"

// Clustered returns n synthetic dim-dimensional vectors drawn around the given
// number of cluster centres: centres have standard-normal coordinates, and each
// vector is a uniformly chosen centre plus Gaussian noise with standard
// deviation 0.5 per coordinate. The same arguments always give the same
// vectors, on every platform, so results stay comparable across runs. To get
// queries from the same distribution, generate n+queries rows and split them
// with Slice.
func Clustered(n, dim, clusters int, seed int64) *Matrix {
	clusters = max(clusters, 1)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6869707070)) // "hippo"
	centres := NewMatrix(clusters, dim)
	for i := range centres.Data {
		centres.Data[i] = float32(rng.NormFloat64())
	}
	m := NewMatrix(n, dim)
	for i := range n {
		c := centres.Row(rng.IntN(clusters))
		row := m.Row(i)
		for j := range row {
			row[j] = c[j] + float32(0.5*rng.NormFloat64())
		}
	}
	return m
}
