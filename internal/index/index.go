// Package index defines what the engine needs from a vector index, so that
// a collection can hold any of Hippo's index types (hnsw, ivfpq) behind one
// interface, and the distance metrics and candidate heaps they share. The
// indexes themselves live in the subpackages; each is usable and testable on
// its own.
//
// # Node life cycle common to every index
//
// Append copies a vector in and returns a dense id (0, 1, 2, …). Scan sees
// the node at once and computes exact distances. Search, the approximate
// search, sees it only after Link(id). Delete tombstones a node: it is never
// returned again. Append calls are serialised by the caller (one writer);
// every other method may run concurrently with every other, including with
// Append.
package index

import (
	"fmt"
	"io"

	"github.com/hippo-db/hippo/internal/vec"
)

// Result is one answer of Search or Scan: a node id and its distance to the
// query in the index's metric (smaller is closer).
type Result struct {
	ID       uint32
	Distance float32
}

// Index is a vector index as the engine uses it. *hnsw.Index and
// *ivfpq.Index implement it; see their documentation for what ef means to
// each and for their concurrency guarantees, which are those of the package
// documentation above.
type Index interface {
	// Append copies v (Dim long) in and returns its id.
	Append(v []float32) uint32
	// Link makes node id visible to Search.
	Link(id uint32)
	// Delete tombstones node id.
	Delete(id uint32)
	// Deleted reports whether node id was deleted.
	Deleted(id uint32) bool
	// Linked reports whether Link(id) has finished.
	Linked(id uint32) bool
	// Len returns the number of nodes appended.
	Len() int
	// Vector returns node id's vector, or the index's approximation of it
	// for indexes that do not keep vectors (see each index).
	Vector(id uint32) []float32
	// Search returns up to k approximate nearest neighbours of q among the
	// linked, not deleted nodes accepted by accept (nil accepts all). ef is
	// the index's effort knob: the beam width for hnsw, the number of lists
	// probed for ivfpq.
	Search(q []float32, k, ef int, accept func(id uint32) bool) []Result
	// Scan returns the exact k nearest neighbours of q among the nodes
	// from ≤ id < to, linked or not, not deleted and accepted.
	Scan(q []float32, k int, from, to uint32, accept func(id uint32) bool) []Result
	// WriteTo writes a snapshot that the index package's Read loads.
	WriteTo(w io.Writer) (int64, error)
	// MemoryBytes returns the approximate memory the index holds.
	MemoryBytes() int64
}

// Metric names how an index measures dissimilarity. The zero value is L2.
type Metric uint8

const (
	// L2 is the squared Euclidean distance ‖a-b‖².
	L2 Metric = iota
	// Dot is the negated inner product -a·b, so that smaller is closer.
	Dot
	// Cosine is 1 - a·b; vectors (and queries) must have unit length, which
	// the engine ensures by normalising them on the way in.
	Cosine
)

// ParseMetric maps the API's names ("l2", "dot", "cosine") to a Metric.
func ParseMetric(name string) (Metric, error) {
	switch name {
	case "l2":
		return L2, nil
	case "dot":
		return Dot, nil
	case "cosine":
		return Cosine, nil
	}
	return 0, fmt.Errorf("unknown metric %q", name)
}

// String returns the API's name of m.
func (m Metric) String() string {
	switch m {
	case L2:
		return "l2"
	case Dot:
		return "dot"
	case Cosine:
		return "cosine"
	}
	return fmt.Sprintf("metric(%d)", uint8(m))
}

// Valid reports whether m is one of the defined metrics.
func (m Metric) Valid() bool { return m <= Cosine }

// Distance returns m's distance function over float32 vectors. The
// functions are safe for concurrent use and do not allocate.
func (m Metric) Distance() func(a, b []float32) float32 {
	switch m {
	case Dot:
		return negDot
	case Cosine:
		return cosineDistance
	}
	return vec.L2Squared
}

func negDot(a, b []float32) float32         { return -vec.Dot(a, b) }
func cosineDistance(a, b []float32) float32 { return 1 - vec.Dot(a, b) }
