// Package dataset loads and generates the vector data sets used by Hippo's
// benchmarks and recall tests, computes their exact ground truth and measures
// recall against it.
//
// Real data comes from Debian packages installed on the machine (never from the
// network at run time); synthetic data is generated from a fixed seed so that
// every run sees the same vectors.
package dataset

import "fmt"

// Matrix is a dense, row-major matrix of float32 vectors: row i is
// Data[i*Dim : (i+1)*Dim]. The zero value is an empty matrix.
//
// A Matrix is not safe for concurrent modification, but any number of
// goroutines may read it concurrently.
type Matrix struct {
	Rows, Dim int
	Data      []float32
}

// NewMatrix returns a zeroed rows×dim matrix.
func NewMatrix(rows, dim int) *Matrix {
	return &Matrix{Rows: rows, Dim: dim, Data: make([]float32, rows*dim)}
}

// Row returns row i as a slice of m.Data (not a copy). Its capacity is limited
// to Dim so that appending to it cannot overwrite the next row.
func (m *Matrix) Row(i int) []float32 {
	return m.Data[i*m.Dim : (i+1)*m.Dim : (i+1)*m.Dim]
}

// Slice returns rows [from, to) as a Matrix that shares m's storage.
func (m *Matrix) Slice(from, to int) *Matrix {
	if from < 0 || to < from || to > m.Rows {
		panic(fmt.Sprintf("dataset: Slice(%d, %d) of a %d-row matrix", from, to, m.Rows))
	}
	return &Matrix{Rows: to - from, Dim: m.Dim, Data: m.Data[from*m.Dim : to*m.Dim : to*m.Dim]}
}
