// Package kmeans clusters float32 vectors with Lloyd's algorithm from a
// k-means++ start (Arthur & Vassilvitskii, "k-means++: the advantages of
// careful seeding", 2007), in parallel, and finds nearest centroids fast.
// Package ivfpq uses it for its coarse quantizer (a few hundred to a few
// thousand centroids of full dimension) and for each product-quantizer
// subspace (256 centroids of a few dimensions).
//
// Everything is deterministic for a given seed and input, whatever the
// number of threads: points are split into fixed ranges and partial sums are
// combined in range order.
package kmeans

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/hippo-db/hippo/internal/vec"
)

// Options configures Train. Zero values take the defaults noted.
type Options struct {
	// K is the number of centroids; required, at most the number of points.
	K int
	// Iterations of Lloyd's algorithm after seeding. Default 10.
	Iterations int
	// Seed makes the result reproducible.
	Seed uint64
	// Threads is how many goroutines share the work. Default GOMAXPROCS.
	Threads int
	// SeedSample bounds how many points k-means++ seeding draws from and
	// measures: default 4·K. Seeding makes K passes over them, which for
	// large data costs memory bandwidth rather than arithmetic (1,024
	// passes over 32,768 vectors of 784 dimensions read 100 GB), and
	// Lloyd's iterations, which always use every point, make up for a
	// smaller seeding sample.
	SeedSample int
}

// chunk is how many points a worker takes at a time; results do not depend
// on it.
const chunk = 256

// Train clusters the n = len(data)/dim points of data (row-major) into K
// centroids and returns them, K×dim row-major. It panics if dim < 1, len(data)
// is not a multiple of dim or there are fewer points than K; a caller checks
// sizes first. Points must be finite.
func Train(data []float32, dim int, opt Options) []float32 {
	if dim < 1 || len(data)%dim != 0 || opt.K < 1 || len(data)/dim < opt.K {
		panic(fmt.Sprintf("kmeans: %d values of dimension %d into %d clusters", len(data), dim, opt.K))
	}
	if opt.Iterations <= 0 {
		opt.Iterations = 10
	}
	if opt.Threads <= 0 {
		opt.Threads = runtime.GOMAXPROCS(0)
	}
	if opt.SeedSample <= 0 {
		opt.SeedSample = 4 * opt.K
	}
	n := len(data) / dim
	rng := rand.New(rand.NewPCG(opt.Seed, 0x6b6d65616e73)) // "kmeans"
	centroids := seed(data, dim, n, opt, rng)
	assign := make([]int32, n)
	for range opt.Iterations {
		c := NewCentroids(centroids, dim)
		sums, counts := c.assignAll(data, assign, opt.Threads)
		for k := range opt.K {
			if counts[k] == 0 {
				continue
			}
			row := centroids[k*dim : (k+1)*dim]
			for i := range row {
				row[i] = float32(sums[k*dim+i] / float64(counts[k]))
			}
		}
		splitEmpty(centroids, dim, counts, rng)
	}
	return centroids
}

// seed picks K initial centroids by k-means++ among up to SeedSample points
// taken evenly from data: each next centroid is a point drawn with
// probability proportional to its squared distance to the nearest centroid
// chosen so far.
func seed(data []float32, dim, n int, opt Options, rng *rand.Rand) []float32 {
	m := min(n, max(opt.SeedSample, opt.K))
	point := func(i int) []float32 {
		j := int(int64(i) * int64(n) / int64(m))
		return data[j*dim : (j+1)*dim]
	}
	centroids := make([]float32, 0, opt.K*dim)
	first := rng.IntN(m)
	centroids = append(centroids, point(first)...)
	d2 := make([]float64, m)
	for i := range d2 {
		d2[i] = math.Inf(1)
	}
	for len(centroids) < opt.K*dim {
		last := centroids[len(centroids)-dim:]
		total := parallelSum(m, opt.Threads, func(from, to int) float64 {
			var s float64
			for i := from; i < to; i++ {
				d2[i] = min(d2[i], float64(vec.L2Squared(point(i), last)))
				s += d2[i]
			}
			return s
		})
		var next int
		if total > 0 && !math.IsInf(total, 0) {
			r := rng.Float64() * total
			for next = 0; next < m-1; next++ {
				if r -= d2[next]; r < 0 {
					break
				}
			}
		} else {
			next = rng.IntN(m) // every point coincides with a centroid
		}
		centroids = append(centroids, point(next)...)
	}
	return centroids
}

// parallelSum runs f over [0, n) split into chunks, on up to threads
// goroutines, and returns the sum of its results added in chunk order.
func parallelSum(n, threads int, f func(from, to int) float64) float64 {
	chunks := (n + chunk - 1) / chunk
	parts := make([]float64, chunks)
	parallel(chunks, threads, func(c int) {
		parts[c] = f(c*chunk, min((c+1)*chunk, n))
	})
	var s float64
	for _, p := range parts {
		s += p
	}
	return s
}

// parallel calls f(0) … f(n-1) from up to threads goroutines.
func parallel(n, threads int, f func(i int)) {
	if threads <= 1 || n <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range min(threads, n) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// assignAll sets assign[i] to point i's nearest centroid and returns the
// per-centroid sums (K×dim, in float64 so that large clusters do not lose
// precision) and counts.
func (c *Centroids) assignAll(data []float32, assign []int32, threads int) ([]float64, []int) {
	n := len(assign)
	chunks := (n + chunk - 1) / chunk
	parallel(chunks, threads, func(ch int) {
		from, to := ch*chunk, min((ch+1)*chunk, n)
		c.NearestAll(data[from*c.Dim:to*c.Dim], assign[from:to], nil)
	})
	sums := make([]float64, c.K*c.Dim)
	counts := make([]int, c.K)
	for i, k := range assign {
		counts[k]++
		row := sums[int(k)*c.Dim : (int(k)+1)*c.Dim]
		for j, v := range data[i*c.Dim : (i+1)*c.Dim] {
			row[j] += float64(v)
		}
	}
	return sums, counts
}

// splitEmpty gives every empty cluster half of a large one: the empty
// centroid becomes a slightly perturbed copy of the large one's, which is
// perturbed the other way, so the next assignment splits its points.
func splitEmpty(centroids []float32, dim int, counts []int, rng *rand.Rand) {
	k := len(counts)
	for j := range k {
		if counts[j] != 0 {
			continue
		}
		// Pick a cluster with probability proportional to its size.
		total := 0
		for _, c := range counts {
			total += c
		}
		r := rng.IntN(total)
		big := 0
		for ; big < k-1; big++ {
			if r -= counts[big]; r < 0 {
				break
			}
		}
		if counts[big] < 2 {
			continue
		}
		src, dst := centroids[big*dim:(big+1)*dim], centroids[j*dim:(j+1)*dim]
		const eps = 1.0 / 1024
		for i, v := range src {
			d := max(abs(v), 1e-3) * eps
			dst[i], src[i] = v+d, v-d
		}
		counts[j] = counts[big] / 2
		counts[big] -= counts[j]
	}
}

func abs(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// Centroids answers nearest-centroid queries. It is immutable and safe for
// concurrent use.
type Centroids struct {
	K, Dim int
	// Rows holds the centroids, K×Dim row-major. It must not be modified.
	Rows []float32
	// For small Dim: the centroids transposed (Dim×K) and their squared
	// norms, so that all K distances are computed with Dim vector
	// multiply-adds of length K (see Nearest).
	cols, norms []float32
}

// smallDim is the dimension below which Nearest uses the transposed layout.
// Below it a call of vec.L2Squared per centroid costs more in call overhead
// than in arithmetic.
const smallDim = 32

// NewCentroids wraps K×dim centroids (K = len(rows)/dim). rows is retained.
func NewCentroids(rows []float32, dim int) *Centroids { return NewCentroidsCols(rows, dim, nil) }

// NewCentroidsCols is NewCentroids that also writes the transposed
// centroids (cols[i·K+k] = dimension i of centroid k) into cols when it is
// not nil (Dim×K long), and uses that storage rather than its own when Dim
// is small: package pq needs the layout for its tables anyway. cols must not
// be modified afterwards.
func NewCentroidsCols(rows []float32, dim int, cols []float32) *Centroids {
	c := &Centroids{K: len(rows) / dim, Dim: dim, Rows: rows}
	if cols == nil && dim < smallDim {
		cols = make([]float32, dim*c.K)
	}
	if cols != nil {
		cols = cols[: dim*c.K : dim*c.K]
		for k := range c.K {
			for i, v := range rows[k*dim : (k+1)*dim] {
				cols[i*c.K+k] = v
			}
		}
	}
	if dim < smallDim {
		c.cols = cols
		c.norms = make([]float32, c.K)
		for k := range c.K {
			row := rows[k*dim : (k+1)*dim]
			c.norms[k] = vec.Dot(row, row)
		}
	}
	return c
}

// Row returns centroid k.
func (c *Centroids) Row(k int) []float32 { return c.Rows[k*c.Dim : (k+1)*c.Dim : (k+1)*c.Dim] }

// Nearest returns the index of the centroid nearest to x (Dim long) by
// squared Euclidean distance, and that distance; ties go to the lower index.
// scratch must hold at least K elements when Dim is small; it is
// overwritten. Nearest does not allocate.
func (c *Centroids) Nearest(x []float32, scratch []float32) (int, float32) {
	if c.cols == nil {
		best, bestD := 0, float32(math.Inf(1))
		for k := range c.K {
			if d := vec.L2Squared(x, c.Rows[k*c.Dim:(k+1)*c.Dim]); d < bestD {
				best, bestD = k, d
			}
		}
		return best, bestD
	}
	// ‖x-c‖² = ‖x‖² + ‖c‖² - 2x·c: start from the norms and add -2x[i]
	// times dimension i of every centroid, K at a time.
	scores := scratch[:c.K]
	copy(scores, c.norms)
	for i, v := range x[:c.Dim] {
		vec.AddScaled(scores, c.cols[i*c.K:(i+1)*c.K], -2*v)
	}
	best := vec.ArgMin(scores)
	return best, max(scores[best]+vec.Dot(x, x), 0)
}

// block is how many points NearestAll measures against each centroid in
// turn. With large Dim the centroids do not fit in the L1 or L2 cache
// (1,024 of 784 dimensions are 3 MiB): taking the points one at a time
// streams every centroid from the L3 cache or memory for every point, while
// a block of 8 reads each centroid once per 8 points, from L1 after the
// first. This measured 1.6x faster for the coarse quantizer of IVF-PQ (1,024
// centroids of 784 dimensions).
const block = 8

// NearestAll sets nearest[i] to the index of the centroid nearest to point i
// of points (len(nearest) points of Dim values, row-major), and dist[i] to
// the squared distance when dist is not nil. Results are those of Nearest.
// It allocates only scratch for the small-Dim path.
func (c *Centroids) NearestAll(points []float32, nearest []int32, dist []float32) {
	n := len(nearest)
	if c.cols != nil {
		scratch := make([]float32, c.K)
		for i := range n {
			k, d := c.Nearest(points[i*c.Dim:(i+1)*c.Dim], scratch)
			nearest[i] = int32(k)
			if dist != nil {
				dist[i] = d
			}
		}
		return
	}
	var best [block]float32
	var bestK [block]int32
	for from := 0; from < n; from += block {
		b := min(block, n-from)
		for j := range b {
			best[j], bestK[j] = float32(math.Inf(1)), 0
		}
		for k := range c.K {
			row := c.Rows[k*c.Dim : (k+1)*c.Dim]
			for j := range b {
				p := points[(from+j)*c.Dim : (from+j+1)*c.Dim]
				if d := vec.L2Squared(p, row); d < best[j] {
					best[j], bestK[j] = d, int32(k)
				}
			}
		}
		copy(nearest[from:from+b], bestK[:b])
		if dist != nil {
			copy(dist[from:from+b], best[:b])
		}
	}
}
