package kmeans

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/vec"
)

// TestRecoversClusters: on well-separated clusters every point's nearest
// trained centroid is within the noise of its true centre.
func TestRecoversClusters(t *testing.T) {
	for _, dim := range []int{4, 40} {
		rng := rand.New(rand.NewPCG(1, uint64(dim)))
		const k, per = 8, 100
		centres := make([]float32, k*dim)
		for i := range centres {
			centres[i] = float32(rng.NormFloat64() * 20)
		}
		data := make([]float32, 0, k*per*dim)
		for range per {
			for c := range k {
				for i := range dim {
					data = append(data, centres[c*dim+i]+float32(rng.NormFloat64()*0.1))
				}
			}
		}
		got := NewCentroids(Train(data, dim, Options{K: k, Seed: 1}), dim)
		for c := range k {
			_, d := got.Nearest(centres[c*dim:(c+1)*dim], make([]float32, k))
			if d > 0.01*float32(dim) {
				t.Errorf("dim %d: centre %d is %v from the nearest centroid", dim, c, d)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	data := dataset.Clustered(3000, 16, 20, 2).Data
	a := Train(data, 16, Options{K: 50, Seed: 3, Threads: 1})
	b := Train(data, 16, Options{K: 50, Seed: 3, Threads: 4})
	if !slices.Equal(a, b) {
		t.Fatal("result depends on the number of threads")
	}
	if c := Train(data, 16, Options{K: 50, Seed: 4}); slices.Equal(a, c) {
		t.Fatal("seed ignored")
	}
}

// TestLloydImproves: the iterations lower the mean squared distance to the
// nearest centroid.
func TestLloydImproves(t *testing.T) {
	data := dataset.Clustered(4000, 24, 64, 5).Data
	cost := func(rows []float32) float64 {
		c := NewCentroids(rows, 24)
		scratch := make([]float32, c.K)
		var s float64
		for i := 0; i < len(data); i += 24 {
			_, d := c.Nearest(data[i:i+24], scratch)
			s += float64(d)
		}
		return s
	}
	seeded := cost(Train(data, 24, Options{K: 64, Seed: 5, Iterations: 1}))
	trained := cost(Train(data, 24, Options{K: 64, Seed: 5, Iterations: 10}))
	if !(trained < seeded) {
		t.Fatalf("cost after 10 iterations %v, after 1 %v", trained, seeded)
	}
}

// TestDegenerate: duplicate points, K equal to the number of points, and
// empty clusters that must be split.
func TestDegenerate(t *testing.T) {
	same := make([]float32, 100*3)
	for i := range same {
		same[i] = 7
	}
	for _, c := range slices.Collect(slices.Chunk(Train(same, 3, Options{K: 5, Seed: 1}), 3)) {
		for _, v := range c {
			if math.Abs(float64(v)-7) > 0.1 {
				t.Fatalf("centroid %v for points all at 7", c)
			}
		}
	}
	two := []float32{0, 0, 10, 10}
	got := Train(two, 2, Options{K: 2, Seed: 1})
	if !(slices.Equal(got, two) || slices.Equal(got, []float32{10, 10, 0, 0})) {
		t.Fatalf("K = n: %v", got)
	}
	// Mostly one point with a few outliers: seeding picks duplicates of the
	// common point, whose clusters go empty and are split.
	data := make([]float32, 0, 2*1000)
	for i := range 1000 {
		if i%100 == 0 {
			data = append(data, float32(i), -float32(i))
		} else {
			data = append(data, 1, 1)
		}
	}
	c := NewCentroids(Train(data, 2, Options{K: 12, Seed: 2, SeedSample: 1000}), 2)
	for i := 0; i < 1000; i += 100 {
		if _, d := c.Nearest([]float32{float32(i), -float32(i)}, make([]float32, 12)); d > 1 && i > 0 {
			t.Errorf("outlier %d is %v from its nearest centroid", i, d)
		}
	}
	for _, f := range []func(){
		func() { Train(make([]float32, 6), 3, Options{K: 3}) },
		func() { Train(make([]float32, 7), 3, Options{K: 1}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

// TestNearestPaths: the transposed path (small Dim) and the row path agree.
func TestNearestPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 7))
	for _, dim := range []int{1, 3, 8, smallDim - 1, smallDim, 100} {
		rows := make([]float32, 256*dim)
		for i := range rows {
			rows[i] = rng.Float32()
		}
		c := NewCentroids(rows, dim)
		scratch := make([]float32, 256)
		for range 50 {
			x := make([]float32, dim)
			for i := range x {
				x[i] = rng.Float32()
			}
			k, d := c.Nearest(x, scratch)
			want, wantD := 0, float32(math.Inf(1))
			for j := range 256 {
				if dj := vec.L2Squared(x, c.Row(j)); dj < wantD {
					want, wantD = j, dj
				}
			}
			if k != want && math.Abs(float64(vec.L2Squared(x, c.Row(k))-wantD)) > 1e-5 {
				t.Fatalf("dim %d: nearest %d (%v), want %d (%v)", dim, k, d, want, wantD)
			}
			if math.Abs(float64(d-wantD)) > 1e-4*float64(dim) {
				t.Fatalf("dim %d: distance %v, want %v", dim, d, wantD)
			}
		}
		if c.Nearest(make([]float32, dim), scratch); testing.AllocsPerRun(20, func() { c.Nearest(rows[:dim], scratch) }) != 0 {
			t.Fatalf("dim %d: Nearest allocates", dim)
		}
	}
}

func BenchmarkTrain(b *testing.B) {
	data := dataset.Clustered(20000, 128, 100, 8).Data
	for b.Loop() {
		Train(data, 128, Options{K: 256, Seed: 1, Iterations: 5})
	}
}

func BenchmarkNearestSmall(b *testing.B) {
	rows := dataset.Clustered(256, 4, 10, 9).Data
	c := NewCentroids(rows, 4)
	x, scratch := []float32{0.1, 0.2, 0.3, 0.4}, make([]float32, 256)
	b.ReportAllocs()
	for b.Loop() {
		c.Nearest(x, scratch)
	}
}

func TestNearestAll(t *testing.T) {
	for _, dim := range []int{3, 40} {
		data := dataset.Clustered(101, dim, 5, 10).Data
		c := NewCentroids(dataset.Clustered(70, dim, 5, 11).Data, dim)
		got, dist := make([]int32, 101), make([]float32, 101)
		c.NearestAll(data, got, dist)
		scratch := make([]float32, c.K)
		for i := range 101 {
			k, d := c.Nearest(data[i*dim:(i+1)*dim], scratch)
			if int(got[i]) != k || dist[i] != d {
				t.Fatalf("dim %d point %d: NearestAll %d (%v), Nearest %d (%v)", dim, i, got[i], dist[i], k, d)
			}
		}
	}
}

// BenchmarkAssign compares assigning points one at a time with NearestAll's
// blocks, at the size of IVF-PQ's coarse quantizer on Fashion-MNIST.
func BenchmarkAssign(b *testing.B) {
	const dim, k, n = 784, 1024, 256
	c := NewCentroids(dataset.Clustered(k, dim, 50, 12).Data, dim)
	points := dataset.Clustered(n, dim, 50, 13).Data
	out := make([]int32, n)
	b.Run("one-by-one", func(b *testing.B) {
		for b.Loop() {
			for i := range n {
				k, _ := c.Nearest(points[i*dim:(i+1)*dim], nil)
				out[i] = int32(k)
			}
		}
	})
	b.Run("blocked", func(b *testing.B) {
		for b.Loop() {
			c.NearestAll(points, out, nil)
		}
	})
}
