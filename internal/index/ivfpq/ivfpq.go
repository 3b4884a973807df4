package ivfpq

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/kmeans"
	"github.com/hippo-db/hippo/internal/index/pq"
	"github.com/hippo-db/hippo/internal/vec"
)

// Config describes an index. Dim is required; zero values of the other
// fields select the defaults noted.
type Config struct {
	// Dim is the length of every vector, 1 to MaxDim.
	Dim int
	// Metric is the distance. Default index.L2.
	Metric index.Metric
	// Distance computes Metric exactly, for Scan and re-ranking; nil means
	// Metric.Distance().
	Distance func(a, b []float32) float32
	// NList is the number of inverted lists (coarse centroids), 1 to
	// MaxNList. More lists make each probe cheaper and need more probes
	// for the same recall; around 4·√n for n vectors is the usual choice.
	// Default DefaultNList.
	NList int
	// M is the number of product-quantizer subspaces, 1 to Dim: each
	// vector is stored in M bytes. Larger M is more accurate and costs
	// memory and scan time linearly. Default Dim/3 (at least 1), one byte
	// per three dimensions: on Fashion-MNIST Dim/4 stopped at recall@10
	// 0.90 however many lists were probed, Dim/3 reached 0.92.
	M int
	// TrainSize is how many vectors must be appended before the first Link
	// trains the index, and the most it trains on. At least max(NList,
	// 256); default max(32·NList, 39·256).
	TrainSize int
	// Iterations of Lloyd's algorithm for the coarse centroids and for
	// every subspace codebook. Default 10.
	Iterations int
	// Rerank, when positive, keeps the float32 vectors and re-ranks the
	// best Rerank candidates (at least k) of every search with exact
	// distances. 0 keeps only the codes. At most MaxRerank.
	Rerank int
	// Seed makes training reproducible.
	Seed int64
}

// Limits and defaults of Config.
const (
	MaxDim       = 1 << 16
	MaxNList     = 1 << 16
	MaxRerank    = 1 << 16
	DefaultNList = 1024
)

// Result is one answer of Search or Scan.
type Result = index.Result

// Node state bits.
const (
	stateLinking  uint32 = 1 << iota // a Link call has claimed the node
	stateLinked                      // Search may return the node
	stateDeleted                     // never returned
	stateEncoding                    // an encoder (Link or training) has claimed the node
	stateEncoded                     // the node's code is in its list; chunk.where is set
	stateDone                        // counted off its chunk's pending: encoded or deleted
)

// Index is an IVF-PQ index. See the package documentation. It is created by
// New or Read; the zero value is not usable.
type Index struct {
	dim, nlist, m int
	trainSize     int
	iterations    int
	rerank        int
	seed          int64
	metric        index.Metric
	distance      func(a, b []float32) float32
	chunkShift    uint
	chunkMask     uint32

	// count is the number of appended nodes, stored by Append after the
	// node's vector is in place.
	count atomic.Uint32
	// chunks is the node chunk directory, replaced copy-on-grow by Append.
	chunks atomic.Pointer[[]*chunk]

	// model is the trained quantizers, nil before training; ready is set
	// once every node appended before training is encoded, and from then on
	// Search uses the lists.
	model   atomic.Pointer[model]
	ready   atomic.Bool
	trainMu sync.Mutex // held while training

	// linkMu is held shared by Link and exclusively by WriteTo.
	linkMu sync.RWMutex

	lists []invList // NList of them

	searchers struct {
		sync.Mutex
		free []*searcher
	}
}

// model is what training learns.
type model struct {
	coarse *kmeans.Centroids
	pq     *pq.Quantizer
}

// chunk holds the per-node state of 1<<chunkShift nodes.
type chunk struct {
	// vectors holds the float32 vectors, written by Append before the node
	// is published. It is set to nil once every node of a full chunk is
	// encoded or deleted, unless the index keeps its vectors.
	vectors atomic.Pointer[[]float32]
	state   []atomic.Uint32
	// where is list<<32 | position of an encoded node's entry, written
	// before stateEncoded is set and never changed after.
	where []uint64
	// pending counts the chunk's slots not yet encoded or deleted,
	// including slots not appended yet.
	pending atomic.Int32
}

// invList is one inverted list.
type invList struct {
	mu   sync.Mutex // serialises appends
	data atomic.Pointer[listData]
}

// listData holds a list's entries up to its capacity; n entries are valid.
// Entries below n never change.
type listData struct {
	ids   []uint32
	codes []uint8   // M bytes per entry
	extra []float32 // ‖r̂‖² + 2c·r̂ for L2, 0 for the other metrics
	n     atomic.Uint32
}

// New returns an empty index. It panics if the configuration is invalid: a
// caller validates it first (see Validate).
func New(cfg Config) *Index {
	if err := cfg.fill(); err != nil {
		panic("ivfpq: " + err.Error())
	}
	ix := &Index{
		dim:        cfg.Dim,
		nlist:      cfg.NList,
		m:          cfg.M,
		trainSize:  cfg.TrainSize,
		iterations: cfg.Iterations,
		rerank:     cfg.Rerank,
		seed:       cfg.Seed,
		metric:     cfg.Metric,
		distance:   cfg.Distance,
		lists:      make([]invList, cfg.NList),
	}
	// Chunks of about 512 KiB of vectors, 64 to 4096 nodes. The vectors are
	// only held until a chunk is full and encoded, and the last chunk's
	// stay for the nodes still to come, so small chunks keep the float32
	// memory of an index that does not keep its vectors small (hnsw uses 4
	// MiB, which would be 53 bytes per vector at 60,000 vectors of 784
	// dimensions).
	ix.chunkShift = 6
	for ix.chunkShift < 12 && (2<<ix.chunkShift)*cfg.Dim*4 <= 512<<10 {
		ix.chunkShift++
	}
	ix.chunkMask = 1<<ix.chunkShift - 1
	dir := make([]*chunk, 0, 16)
	ix.chunks.Store(&dir)
	return ix
}

// Validate fills in cfg's defaults and reports whether the result is a
// valid configuration, with an error naming the field.
func (cfg *Config) Validate() error { return cfg.fill() }

func (cfg *Config) fill() error {
	if cfg.Dim < 1 || cfg.Dim > MaxDim {
		return fmt.Errorf("dimension %d, want 1 to %d", cfg.Dim, MaxDim)
	}
	if !cfg.Metric.Valid() {
		return fmt.Errorf("metric %d", cfg.Metric)
	}
	if cfg.Distance == nil {
		cfg.Distance = cfg.Metric.Distance()
	}
	if cfg.NList == 0 {
		cfg.NList = DefaultNList
	}
	if cfg.NList < 1 || cfg.NList > MaxNList {
		return fmt.Errorf("nlist %d, want 1 to %d", cfg.NList, MaxNList)
	}
	if cfg.M == 0 {
		cfg.M = max(cfg.Dim/3, 1)
	}
	if cfg.M < 1 || cfg.M > cfg.Dim {
		return fmt.Errorf("m %d, want 1 to the dimension, %d", cfg.M, cfg.Dim)
	}
	minTrain := max(cfg.NList, pq.MinTrain)
	if cfg.TrainSize == 0 {
		cfg.TrainSize = max(32*cfg.NList, 39*pq.K)
	}
	if cfg.TrainSize < minTrain || cfg.TrainSize > math.MaxInt32 {
		return fmt.Errorf("train size %d, want at least max(nlist, %d) = %d", cfg.TrainSize, pq.MinTrain, minTrain)
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = 10
	}
	if cfg.Iterations < 1 || cfg.Iterations > 1000 {
		return fmt.Errorf("iterations %d, want 1 to 1000", cfg.Iterations)
	}
	if cfg.Rerank < 0 || cfg.Rerank > MaxRerank {
		return fmt.Errorf("rerank %d, want 0 to %d", cfg.Rerank, MaxRerank)
	}
	return nil
}

// Config returns the configuration the index was built with, defaults
// filled in.
func (ix *Index) Config() Config {
	return Config{Dim: ix.dim, Metric: ix.metric, Distance: ix.distance, NList: ix.nlist, M: ix.m,
		TrainSize: ix.trainSize, Iterations: ix.iterations, Rerank: ix.rerank, Seed: ix.seed}
}

// Trained reports whether the index has been trained and searches its lists.
func (ix *Index) Trained() bool { return ix.ready.Load() }

func (ix *Index) keepVectors() bool { return ix.rerank > 0 }

func (ix *Index) newChunk() *chunk {
	n := 1 << ix.chunkShift
	c := &chunk{state: make([]atomic.Uint32, n), where: make([]uint64, n)}
	v := make([]float32, n*ix.dim)
	c.vectors.Store(&v)
	c.pending.Store(int32(n))
	return c
}

func (ix *Index) node(id uint32) (*chunk, int) {
	return (*ix.chunks.Load())[id>>ix.chunkShift], int(id & ix.chunkMask)
}

// floats returns node id's float32 vector, or nil if its chunk's vectors
// were dropped.
func (ix *Index) floats(c *chunk, slot int) []float32 {
	p := c.vectors.Load()
	if p == nil {
		return nil
	}
	off := slot * ix.dim
	return (*p)[off : off+ix.dim : off+ix.dim]
}

// Append copies v into the index and returns its id: 0, 1, 2, … in call
// order. Scan sees the node at once; Search after Link(id). Append calls
// must be serialised by the caller; Append is safe concurrently with every
// other method. It panics if len(v) != Dim or the index is full.
func (ix *Index) Append(v []float32) uint32 {
	if len(v) != ix.dim {
		panic(fmt.Sprintf("ivfpq: Append of a %d-dimensional vector to a %d-dimensional index", len(v), ix.dim))
	}
	id := ix.count.Load()
	if id == math.MaxUint32 {
		panic("ivfpq: index full")
	}
	dir := *ix.chunks.Load()
	if ci := int(id >> ix.chunkShift); ci == len(dir) {
		dir = append(dir, ix.newChunk())
		ix.chunks.Store(&dir)
	}
	c, slot := ix.node(id)
	copy(ix.floats(c, slot), v)
	ix.count.Store(id + 1)
	return id
}

// Len returns the number of nodes appended.
func (ix *Index) Len() int { return int(ix.count.Load()) }

func (ix *Index) state(id uint32) uint32 {
	if id >= ix.count.Load() {
		return 0
	}
	c, slot := ix.node(id)
	return c.state[slot].Load()
}

// Deleted reports whether node id has been deleted.
func (ix *Index) Deleted(id uint32) bool { return ix.state(id)&stateDeleted != 0 }

// Linked reports whether Link(id) has finished.
func (ix *Index) Linked(id uint32) bool { return ix.state(id)&stateLinked != 0 }

// Delete marks node id deleted: Search and Scan never return it again. Its
// code stays in its list, skipped. Deleting twice, or an id ≥ Len(), does
// nothing. Safe concurrently with every method.
func (ix *Index) Delete(id uint32) {
	if id >= ix.count.Load() {
		return
	}
	c, slot := ix.node(id)
	c.state[slot].Or(stateDeleted)
	ix.markDone(c, slot)
}

// markDone counts a node off its chunk's pending once, and drops the
// chunk's vectors when none is pending and they are not kept.
func (ix *Index) markDone(c *chunk, slot int) {
	if c.state[slot].Or(stateDone)&stateDone != 0 {
		return
	}
	if c.pending.Add(-1) == 0 && !ix.keepVectors() {
		c.vectors.Store(nil)
	}
}

// Vector returns node id's vector: the float32 vector as appended while the
// index holds it (a slice of the index's storage, not to be modified), or
// else the vector its code stands for, in a new slice. A node deleted before
// it was encoded whose vector was dropped has neither: Vector returns zeros.
// It panics if id ≥ Len().
func (ix *Index) Vector(id uint32) []float32 {
	if id >= ix.count.Load() {
		panic(fmt.Sprintf("ivfpq: Vector(%d) of an index of %d nodes", id, ix.count.Load()))
	}
	c, slot := ix.node(id)
	if v := ix.floats(c, slot); v != nil {
		return v
	}
	out := make([]float32, ix.dim)
	if c.state[slot].Load()&stateEncoded != 0 {
		ix.decode(ix.model.Load(), c.where[slot], out)
	}
	return out
}

// decode writes the vector of the entry at where into x.
func (ix *Index) decode(m *model, where uint64, x []float32) {
	list, pos := int(where>>32), int(uint32(where))
	d := ix.lists[list].data.Load()
	m.pq.Decode(d.codes[pos*ix.m:(pos+1)*ix.m], x)
	vec.AddScaled(x, m.coarse.Row(list), 1)
}

// Link makes node id, already appended, searchable. Before the index is
// trained it only marks the node linked (Search scans exactly until then);
// the first Link once Len ≥ TrainSize trains the index, which takes a while
// and uses every core, and other Link calls wait for it. Linking a node that
// is linked or being linked does nothing. Safe concurrently with every
// method. It panics if id ≥ Len().
func (ix *Index) Link(id uint32) {
	if id >= ix.count.Load() {
		panic(fmt.Sprintf("ivfpq: Link(%d) of an index of %d nodes", id, ix.count.Load()))
	}
	c, slot := ix.node(id)
	st := &c.state[slot]
	if !index.Claim(st, stateLinking, stateLinking|stateLinked) {
		return
	}
	ix.linkMu.RLock()
	defer ix.linkMu.RUnlock()
	m := ix.model.Load()
	if m == nil && int(ix.count.Load()) >= ix.trainSize {
		ix.train()
		m = ix.model.Load()
	}
	if m != nil {
		s := ix.getSearcher()
		ix.encode(m, c, slot, id, -1, s)
		ix.putSearcher(s)
	}
	st.Or(stateLinked)
}

// encode computes node id's list (unless list ≥ 0 gives it) and code and
// appends it to the list, unless another encoder has claimed the node. It
// reports whether it encoded.
func (ix *Index) encode(m *model, c *chunk, slot int, id uint32, list int, s *searcher) bool {
	// Load the vector before claiming the node: if the chunk's vectors are
	// gone, every node of it is encoded or deleted and the claim fails; if
	// not, the slice stays valid even if a Delete drops them meanwhile.
	v := ix.floats(c, slot)
	st := &c.state[slot]
	if !index.Claim(st, stateEncoding, stateEncoding|stateDeleted) {
		return false
	}
	if list < 0 {
		list, _ = m.coarse.Nearest(v, s.scores)
	}
	residual := s.vector
	copy(residual, v)
	vec.AddScaled(residual, m.coarse.Row(list), -1)
	code := s.code
	m.pq.Encode(residual, code, s.scores)
	var extra float32
	if ix.metric == index.L2 {
		// ‖r̂‖² + 2c·r̂, so that a search needs only q·r̂ from the table.
		m.pq.Decode(code, residual)
		extra = vec.Dot(residual, residual) + 2*vec.Dot(m.coarse.Row(list), residual)
	}
	pos := ix.lists[list].add(id, code, extra, ix.m)
	c.where[slot] = uint64(list)<<32 | uint64(pos)
	st.Or(stateEncoded)
	ix.markDone(c, slot)
	return true
}

// reserve makes room for capacity entries in an empty list.
func (l *invList) reserve(capacity, m int) {
	if capacity == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.data.Load() == nil {
		l.data.Store(&listData{ids: make([]uint32, capacity), codes: make([]uint8, capacity*m), extra: make([]float32, capacity)})
	}
}

// add appends an entry and returns its position.
func (l *invList) add(id uint32, code []uint8, extra float32, m int) uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.data.Load()
	var n uint32
	if d != nil {
		n = d.n.Load()
	}
	if d == nil || int(n) == len(d.ids) {
		// Grow by half, at least to 16 entries (a list reserved for one
		// entry must still grow): the old arrays stay valid for readers
		// that loaded them.
		capacity := max(16, int(n)+int(n)/2)
		g := &listData{ids: make([]uint32, capacity), codes: make([]uint8, capacity*m), extra: make([]float32, capacity)}
		if d != nil {
			copy(g.ids, d.ids[:n])
			copy(g.codes, d.codes[:int(n)*m])
			copy(g.extra, d.extra[:n])
		}
		g.n.Store(n)
		l.data.Store(g)
		d = g
	}
	d.ids[n] = id
	copy(d.codes[int(n)*m:int(n+1)*m], code)
	d.extra[n] = extra
	d.n.Store(n + 1)
	return n
}

// train learns the coarse centroids and the product quantizer from up to
// TrainSize nodes, publishes them, encodes every node appended so far and
// then switches Search to the lists. Concurrent callers wait for the first.
func (ix *Index) train() {
	ix.trainMu.Lock()
	defer ix.trainMu.Unlock()
	if ix.model.Load() != nil {
		return
	}
	n := int(ix.count.Load())
	// The nodes with a vector: all but those deleted in chunks that were
	// wholly deleted (whose vectors are gone). Nothing is encoded yet.
	var live []uint32
	for id := range uint32(n) {
		c, slot := ix.node(id)
		if c.state[slot].Load()&stateDeleted == 0 && ix.floats(c, slot) != nil {
			live = append(live, id)
		}
	}
	samples := min(len(live), ix.trainSize)
	if samples < max(ix.nlist, pq.MinTrain) {
		return // too many deletions to train yet; the next Link tries again
	}
	data := make([]float32, 0, samples*ix.dim)
	for i := range samples {
		c, slot := ix.node(live[int64(i)*int64(len(live))/int64(samples)])
		data = append(data, ix.floats(c, slot)...)
	}
	threads := runtime.GOMAXPROCS(0)
	coarse := kmeans.NewCentroids(kmeans.Train(data, ix.dim, kmeans.Options{K: ix.nlist, Iterations: ix.iterations,
		Seed: uint64(ix.seed), Threads: threads}), ix.dim)
	// The codebooks are learned on the sample's residuals, computed in
	// place.
	parallel(samples, threads, func(from, to int) {
		lists := make([]int32, to-from)
		coarse.NearestAll(data[from*ix.dim:to*ix.dim], lists, nil)
		for i := from; i < to; i++ {
			vec.AddScaled(data[i*ix.dim:(i+1)*ix.dim], coarse.Row(int(lists[i-from])), -1)
		}
	})
	q, err := pq.Train(data, ix.dim, ix.m, pq.TrainOptions{Iterations: ix.iterations, Seed: uint64(ix.seed) + 1, Threads: threads})
	if err != nil {
		panic("ivfpq: " + err.Error()) // fill checked the sizes
	}
	m := &model{coarse: coarse, pq: q}
	ix.model.Store(m)
	// Assign every node first, so that each list is allocated once at its
	// exact size rather than grown by halves, which would leave a fifth of
	// the memory unused on average. Lists grow by halves from there.
	// Nodes deleted since live was collected are assigned too (their
	// vectors stay readable through the slices loaded here) but not encoded.
	lists := make([]int32, len(live))
	parallel(len(live), threads, func(from, to int) {
		// Copy the vectors into one block (chunks need not be contiguous
		// across their boundary) for NearestAll.
		points := make([]float32, 0, (to-from)*ix.dim)
		for _, id := range live[from:to] {
			c, slot := ix.node(id)
			v := ix.floats(c, slot)
			if v == nil {
				v = make([]float32, ix.dim) // dropped since: deleted, never encoded
			}
			points = append(points, v...)
		}
		coarse.NearestAll(points, lists[from:to], nil)
	})
	sizes := make([]int, ix.nlist)
	for _, l := range lists {
		sizes[l]++
	}
	for l, size := range sizes {
		ix.lists[l].reserve(size, ix.m)
	}
	parallel(len(live), threads, func(from, to int) {
		s := ix.getSearcher()
		defer ix.putSearcher(s)
		for i, id := range live[from:to] {
			c, slot := ix.node(id)
			ix.encode(m, c, slot, id, int(lists[from+i]), s)
		}
	})
	ix.ready.Store(true)
}

// parallel splits [0, n) into ranges of at most 1024 and runs f on them from
// threads goroutines.
func parallel(n, threads int, f func(from, to int)) {
	const step = 1024
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(threads, (n+step-1)/step)) {
		wg.Go(func() {
			for {
				from := int(next.Add(step)) - step
				if from >= n {
					return
				}
				f(from, min(from+step, n))
			}
		})
	}
	wg.Wait()
}

// MemoryBytes returns the approximate memory the index holds: node state,
// float32 vectors still held, list entries (allocated capacity), centroids,
// codebooks and search scratch.
func (ix *Index) MemoryBytes() int64 {
	var total int64
	for _, c := range *ix.chunks.Load() {
		total += int64(len(c.state))*(4+8) + 64
		if p := c.vectors.Load(); p != nil {
			total += int64(len(*p)) * 4
		}
	}
	for i := range ix.lists {
		total += int64(unsafe.Sizeof(invList{}))
		if d := ix.lists[i].data.Load(); d != nil {
			total += int64(len(d.ids))*8 + int64(len(d.codes))
		}
	}
	if m := ix.model.Load(); m != nil {
		total += int64(ix.nlist*ix.dim)*4 + 2*int64(pq.K*ix.dim)*4 // centroids; codebook rows and columns
	}
	ix.searchers.Lock()
	total += int64(len(ix.searchers.free)) * int64(4*(pq.K*ix.m+2*ix.dim+ix.nlist+pq.K))
	ix.searchers.Unlock()
	return total
}
