// Package pq is product quantization (Jégou, Douze & Schmid, "Product
// quantization for nearest neighbor search", 2011): a vector's dimensions
// are split into M contiguous subspaces, each subspace is quantized to the
// nearest of 256 centroids learned by k-means on a sample, and the vector is
// stored as M bytes, one centroid index per subspace.
//
// Distances are computed without decoding, from a table (asymmetric distance
// computation): for a query q, Table fills table[m·256+k] = q_m·C_m[k], the
// inner product of q's part in subspace m with centroid k of that subspace,
// and Sum adds table entries along a code, which gives q·x̂ for the vector x̂
// the code stands for. Package ivfpq derives L2, dot and cosine distances
// from it.
//
// When Dim is not a multiple of M the first Dim mod M subspaces are one
// dimension wider than the others.
//
// A Quantizer is immutable and safe for concurrent use.
package pq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/hippo-db/hippo/internal/index/kmeans"
	"github.com/hippo-db/hippo/internal/vec"
)

// K is the number of centroids per subspace: one byte per subspace.
const K = 256

// MinTrain is the fewest sample vectors Train accepts: one per centroid.
// Far more (tens per centroid) give better codebooks.
const MinTrain = K

// Quantizer is a trained product quantizer.
type Quantizer struct {
	dim, m int
	// bounds[s] … bounds[s+1]-1 are subspace s's dimensions.
	bounds []int
	// books[s] holds subspace s's 256 centroids.
	books []*kmeans.Centroids
	// cols[i·K + k] is dimension i of centroid k of i's subspace: the
	// layout Table needs to compute 256 inner products with Dim
	// multiply-adds of length 256.
	cols []float32
}

// TrainOptions configures Train.
type TrainOptions struct {
	Iterations int    // Lloyd iterations per subspace; default 10
	Seed       uint64 // makes training reproducible
	Threads    int    // default GOMAXPROCS
}

// Train learns an M-subspace quantizer from the n = len(data)/dim sample
// vectors in data (row-major). It needs 1 ≤ M ≤ dim and n ≥ MinTrain.
func Train(data []float32, dim, m int, opt TrainOptions) (*Quantizer, error) {
	if dim < 1 || m < 1 || m > dim || len(data)%dim != 0 {
		return nil, fmt.Errorf("pq: %d subspaces of %d dimensions", m, dim)
	}
	n := len(data) / dim
	if n < MinTrain {
		return nil, fmt.Errorf("pq: %d training vectors, need at least %d", n, MinTrain)
	}
	bounds := subspaces(dim, m)
	books := make([][]float32, m)
	for s := range m {
		lo, hi := bounds[s], bounds[s+1]
		sub := make([]float32, 0, n*(hi-lo))
		for i := range n {
			sub = append(sub, data[i*dim+lo:i*dim+hi]...)
		}
		books[s] = kmeans.Train(sub, hi-lo, kmeans.Options{K: K, Iterations: opt.Iterations,
			Seed: opt.Seed + uint64(s), Threads: opt.Threads})
	}
	return build(dim, books)
}

// subspaces splits dim dimensions into m contiguous ranges.
func subspaces(dim, m int) []int {
	bounds := make([]int, m+1)
	for s := range m + 1 {
		bounds[s] = s*(dim/m) + min(s, dim%m)
	}
	return bounds
}

// build assembles a quantizer from per-subspace codebooks (K×width each).
func build(dim int, books [][]float32) (*Quantizer, error) {
	m := len(books)
	q := &Quantizer{dim: dim, m: m, bounds: subspaces(dim, m), books: make([]*kmeans.Centroids, m), cols: make([]float32, dim*K)}
	for s, book := range books {
		width := q.bounds[s+1] - q.bounds[s]
		if len(book) != K*width {
			return nil, fmt.Errorf("pq: subspace %d codebook of %d values, want %d", s, len(book), K*width)
		}
		// The subspace's transposed centroids are its slice of q.cols.
		q.books[s] = kmeans.NewCentroidsCols(book, width, q.cols[q.bounds[s]*K:q.bounds[s+1]*K])
	}
	return q, nil
}

// Dim returns the vector length.
func (q *Quantizer) Dim() int { return q.dim }

// M returns the number of subspaces, which is the code length in bytes.
func (q *Quantizer) M() int { return q.m }

// Encode writes x's code (M bytes) into code. scratch must hold at least K
// float32s; Encode does not allocate.
func (q *Quantizer) Encode(x []float32, code []uint8, scratch []float32) {
	for s, book := range q.books {
		k, _ := book.Nearest(x[q.bounds[s]:q.bounds[s+1]], scratch)
		code[s] = uint8(k)
	}
}

// Decode writes the vector a code stands for into x (Dim long).
func (q *Quantizer) Decode(code []uint8, x []float32) {
	for s, book := range q.books {
		copy(x[q.bounds[s]:q.bounds[s+1]], book.Row(int(code[s])))
	}
}

// Table fills table (M·K long) with the inner products of x's subspaces
// with every centroid: table[s·K+k] = x_s·C_s[k].
func (q *Quantizer) Table(x []float32, table []float32) {
	table = table[:q.m*K]
	clear(table)
	for s := range q.m {
		row := table[s*K : (s+1)*K]
		for i := q.bounds[s]; i < q.bounds[s+1]; i++ {
			vec.AddScaled(row, q.cols[i*K:(i+1)*K], x[i])
		}
	}
}

// Sum returns the sum of table[s·K + code[s]] over the M subspaces: the
// inner product of the table's query with the code's vector. It is the
// inner loop of an IVF-PQ search; vec.LookupSum gathers 16 entries per
// instruction with AVX-512.
func Sum(table []float32, code []uint8) float32 { return vec.LookupSum(table, code) }

// ErrCorrupt is wrapped by the errors Unmarshal returns for malformed input.
var ErrCorrupt = errors.New("hippo: product quantizer corrupt")

// EncodedSize returns the length of AppendBinary's output for a quantizer of
// dim dimensions: two words, then K centroids of every subspace.
func EncodedSize(dim int) int { return 8 + 4*K*dim }

// AppendBinary appends the quantizer to b:
//
//	u32 dim
//	u32 M
//	for each subspace s: K × width(s) × f32, centroid by centroid
//
// (little-endian, IEEE-754 bits).
func (q *Quantizer) AppendBinary(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint32(b, uint32(q.dim))
	b = binary.LittleEndian.AppendUint32(b, uint32(q.m))
	for _, book := range q.books {
		for _, v := range book.Rows {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b, nil
}

// Unmarshal restores a quantizer written by AppendBinary, which must fill b
// exactly. Malformed input, including non-finite centroids, gives an error
// wrapping ErrCorrupt.
func Unmarshal(b []byte) (*Quantizer, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	}
	dim, m := int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[4:]))
	if dim < 1 || m < 1 || m > dim || len(b) != EncodedSize(dim) {
		return nil, fmt.Errorf("%w: %d subspaces of %d dimensions in %d bytes", ErrCorrupt, m, dim, len(b))
	}
	bounds := subspaces(dim, m)
	books := make([][]float32, m)
	off := 8
	for s := range m {
		book := make([]float32, K*(bounds[s+1]-bounds[s]))
		for i := range book {
			v := math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("%w: centroid value %v", ErrCorrupt, v)
			}
			book[i] = v
			off += 4
		}
		books[s] = book
	}
	return build(dim, books)
}
