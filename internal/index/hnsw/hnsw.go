package hnsw

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hippo-db/hippo/internal/index"
)

// Config describes an index. The zero values of M and EfConstruction select
// the defaults; Dim is required.
type Config struct {
	// Dim is the length of every vector; at least 1.
	Dim int
	// M is the most neighbours a node keeps on each upper layer; layer 0 keeps
	// up to 2*M. Default 16, at least 2.
	M int
	// EfConstruction is the beam width of the search that finds a new node's
	// neighbours. Larger builds slower and finds better neighbours. Default 200.
	EfConstruction int
	// Metric names the distance. It is what the int8 codes approximate, and
	// nil Distance means Metric.Distance(). Default index.L2.
	Metric index.Metric
	// Distance returns the dissimilarity of two Dim-long vectors: smaller is
	// closer, and it must be safe to call concurrently. It must compute
	// Metric (it exists so that callers may pass their own function value of
	// it); nil means Metric.Distance().
	Distance func(a, b []float32) float32
	// Quantization enables int8 scalar quantization; the zero value keeps
	// float32 only. See the package documentation.
	Quantization Quantization
	// Seed makes node levels reproducible: the same seed gives every node id
	// the same level whatever the order or concurrency of Link calls.
	Seed int64
	// KeepPruned fills a node's neighbour list up to its capacity with
	// candidates the selection heuristic rejected (keepPrunedConnections in
	// the HNSW paper). It raises the average degree: a little better recall
	// per hop, more distance computations per query.
	KeepPruned bool
}

// Quantization configures int8 scalar quantization of an index. Searches
// then walk the graph on distances computed from 8-bit codes (one per
// dimension, ranges learned from the data by package scalar) and re-rank
// the best candidates with the exact float32 vectors, which are kept. The
// graph itself is built on the float32 vectors.
type Quantization struct {
	// Int8 turns quantization on.
	Int8 bool
	// Symmetric quantizes queries too and computes code distances in
	// integers (scalar.Options.Symmetric).
	Symmetric bool
	// Global learns one range for all dimensions instead of one per
	// dimension (scalar.Options.Global).
	Global bool
	// Quantile trims the learned ranges (scalar.Options.Quantile); 0 takes
	// the sample's minimum and maximum.
	Quantile float64
	// TrainSize is how many nodes must be appended before the ranges are
	// learned; until then searches use float32 distances. They are learned
	// again at 8 and 64 times TrainSize, from a sample of up to
	// trainSample nodes spread over the whole index. Default 1024.
	TrainSize int
	// Rerank is how many of the best candidates by code distance are
	// re-ranked with exact distances; 0 (the default) re-ranks all ef of
	// them.
	Rerank int
}

// DefaultTrainSize is Quantization.TrainSize's default; maxTrainSize its
// largest value.
const (
	DefaultTrainSize = 1024
	maxTrainSize     = 1 << 24
)

// Result is one answer of Search or Scan.
type Result = index.Result

// Node state bits, in chunk.state.
const (
	stateLinking uint32 = 1 << iota // a Link call has claimed the node
	stateLinked                     // Link has finished: the node can be returned by Search
	stateDeleted                    // tombstone: never returned, still navigable
)

// maxLayers bounds node levels (0..maxLayers-1). With M=16 a level of 16 has
// probability 16^-16 per node, so the cap never bites in practice; it bounds
// what Read accepts and what a searcher preallocates.
const maxLayers = 16

// Index is a hierarchical navigable small world graph over float32 vectors
// (Malkov & Yashunin, 2016). See the package documentation for what may run
// concurrently with what. An Index is created by New or Read; the zero value
// is not usable.
type Index struct {
	dim            int
	m, m0          int // list capacities: upper layers, layer 0
	efConstruction int
	seed           int64
	keepPruned     bool
	levelMult      float64
	metric         index.Metric
	distance       func(a, b []float32) float32
	quantization   Quantization

	chunkShift uint   // a chunk holds 1<<chunkShift nodes
	chunkMask  uint32 // (1<<chunkShift)-1
	stride0    int    // uint32 words per node on layer 0: count, then m0 ids
	strideUp   int    // uint32 words per node per upper layer: count, then m ids

	// count is the number of appended nodes. Only Append stores it, after the
	// node's vector is in place.
	count atomic.Uint32
	// chunks is the chunk directory. Append replaces it (copy-on-grow) when it
	// adds a chunk; chunks are never moved or freed, so a loaded directory
	// stays valid, it may only be too short for nodes appended since.
	chunks atomic.Pointer[[]*chunk]

	// entry is the entry point: (level+1)<<32 | id, or 0 while no node is
	// linked. Only stored with entryMu held.
	entry   atomic.Uint64
	entryMu sync.Mutex

	// linkMu is held shared by Link and exclusively by WriteTo, so a snapshot
	// never sees half-linked nodes.
	linkMu sync.RWMutex

	upperWords atomic.Int64 // uint32 words held in upper-layer lists, for MemoryBytes

	// codes holds the int8 codes when quantization is on and trained; nil
	// before. Only the appender (Append, Retrain) replaces it.
	codes atomic.Pointer[codeSet]
	// nextTrain is the Len at which Append next learns the ranges; 0 when
	// it never will. Only the appender uses it.
	nextTrain uint32

	searchers struct {
		sync.Mutex
		free []*searcher // scratch reused by Search, Scan and Link
	}
}

// chunk stores the nodes id>>chunkShift == its position in the directory.
// Arrays are allocated at full size when the chunk is created.
type chunk struct {
	// vectors holds the node vectors back to back. A slot is written once by
	// Append before count is published, then only read.
	vectors []float32
	// links holds the layer-0 neighbour list of each node, stride0 words per
	// node: a count, then the ids. Words are read with atomic loads without
	// any lock and written with atomic stores under the node's lock.
	links []uint32
	// upper holds, per node, its lists for layers 1..level, strideUp words
	// each, laid out like links. The slice is set once by Link before the
	// node is reachable on any layer; its words follow the rules of links.
	upper [][]uint32
	// levels is the node's top layer, set by Link before the node is reachable.
	levels []uint8
	// state holds the state bits.
	state []atomic.Uint32
	// locks serialise writers of a node's lists (all layers).
	locks []sync.Mutex
}

// New returns an empty index. It panics if cfg.Dim < 1 or cfg.M is 1 or
// negative: a configuration is checked by the caller before it gets here.
func New(cfg Config) *Index {
	if cfg.Dim < 1 {
		panic(fmt.Sprintf("hnsw: Dim = %d", cfg.Dim))
	}
	if cfg.M == 0 {
		cfg.M = 16
	}
	if cfg.M < 2 {
		panic(fmt.Sprintf("hnsw: M = %d, want at least 2", cfg.M))
	}
	if cfg.EfConstruction <= 0 {
		cfg.EfConstruction = 200
	}
	if !cfg.Metric.Valid() {
		panic(fmt.Sprintf("hnsw: metric %d", cfg.Metric))
	}
	if cfg.Distance == nil {
		cfg.Distance = cfg.Metric.Distance()
	}
	if cfg.Quantization.Int8 {
		if cfg.Quantization.TrainSize <= 0 {
			cfg.Quantization.TrainSize = DefaultTrainSize
		}
		if cfg.Quantization.Rerank < 0 || cfg.Quantization.TrainSize > maxTrainSize ||
			!(cfg.Quantization.Quantile >= 0 && cfg.Quantization.Quantile <= 0.1) || cfg.Dim > maxSnapshotDim {
			panic(fmt.Sprintf("hnsw: quantization %+v", cfg.Quantization))
		}
	} else {
		cfg.Quantization = Quantization{}
	}
	ix := &Index{
		dim:            cfg.Dim,
		m:              cfg.M,
		m0:             2 * cfg.M,
		efConstruction: cfg.EfConstruction,
		seed:           cfg.Seed,
		keepPruned:     cfg.KeepPruned,
		levelMult:      1 / math.Log(float64(cfg.M)),
		metric:         cfg.Metric,
		distance:       cfg.Distance,
		quantization:   cfg.Quantization,
		stride0:        1 + 2*cfg.M,
		strideUp:       1 + cfg.M,
	}
	// Aim for chunks of about 4 MiB, 64 to 4096 nodes: big enough that the
	// directory stays short, small enough that a tiny index (or a lying
	// snapshot header) does not reserve much.
	perNode := cfg.Dim*4 + ix.stride0*4
	ix.chunkShift = 6
	for ix.chunkShift < 12 && (2<<ix.chunkShift)*perNode <= 4<<20 {
		ix.chunkShift++
	}
	ix.chunkMask = 1<<ix.chunkShift - 1
	dir := make([]*chunk, 0, 16)
	ix.chunks.Store(&dir)
	if cfg.Quantization.Int8 {
		ix.nextTrain = uint32(cfg.Quantization.TrainSize)
	}
	return ix
}

// Config returns the configuration the index was built with, defaults filled in.
func (ix *Index) Config() Config {
	return Config{Dim: ix.dim, M: ix.m, EfConstruction: ix.efConstruction, Metric: ix.metric, Distance: ix.distance,
		Seed: ix.seed, KeepPruned: ix.keepPruned, Quantization: ix.quantization}
}

func (ix *Index) newChunk() *chunk {
	n := 1 << ix.chunkShift
	return &chunk{
		vectors: make([]float32, n*ix.dim),
		links:   make([]uint32, n*ix.stride0),
		upper:   make([][]uint32, n),
		levels:  make([]uint8, n),
		state:   make([]atomic.Uint32, n),
		locks:   make([]sync.Mutex, n),
	}
}

// node returns the chunk and slot of an appended node.
func (ix *Index) node(id uint32) (*chunk, int) {
	return (*ix.chunks.Load())[id>>ix.chunkShift], int(id & ix.chunkMask)
}

// vector is Vector without the range check, for the hot paths.
func (ix *Index) vector(id uint32) []float32 {
	c := (*ix.chunks.Load())[id>>ix.chunkShift]
	off := int(id&ix.chunkMask) * ix.dim
	return c.vectors[off : off+ix.dim : off+ix.dim]
}

// list returns a node's neighbour list on a layer it has: the count word, then
// the capacity.
func (ix *Index) list(c *chunk, slot, layer int) []uint32 {
	if layer == 0 {
		off := slot * ix.stride0
		return c.links[off : off+ix.stride0 : off+ix.stride0]
	}
	off := (layer - 1) * ix.strideUp
	return c.upper[slot][off : off+ix.strideUp : off+ix.strideUp]
}

// Append copies v into the index and returns its id: 0, 1, 2, ... in call
// order. The node is not reachable through the graph until Link(id), but Scan
// sees it at once. Append calls must be serialised by the caller (one
// writer); Append is safe concurrently with every other method. It panics if
// len(v) != Dim or the index already holds 2^32-1 nodes.
func (ix *Index) Append(v []float32) uint32 {
	if len(v) != ix.dim {
		panic(fmt.Sprintf("hnsw: Append of a %d-dimensional vector to a %d-dimensional index", len(v), ix.dim))
	}
	id := ix.count.Load()
	if id == math.MaxUint32 {
		panic("hnsw: index full")
	}
	copy(ix.slot(id), v)
	if cs := ix.codes.Load(); cs != nil {
		cs.encode(ix, id, v)
	}
	ix.count.Store(id + 1)
	if ix.nextTrain != 0 && id+1 >= ix.nextTrain {
		ix.train()
	}
	return id
}

// slot returns the vector storage of the next node, id, adding a chunk if
// needed. Only the single appender calls it.
func (ix *Index) slot(id uint32) []float32 {
	dir := *ix.chunks.Load()
	if ci := int(id >> ix.chunkShift); ci == len(dir) {
		// Appending may write into the backing array that readers share, but
		// only past the length they loaded, so they never see the write.
		dir = append(dir, ix.newChunk())
		ix.chunks.Store(&dir)
	}
	return ix.vector(id)
}

// Len returns the number of nodes appended, linked or not.
func (ix *Index) Len() int { return int(ix.count.Load()) }

// Vector returns node id's vector. The slice aliases the index's storage: it
// must not be modified, and stays valid for the life of the index. It panics
// if id >= Len().
func (ix *Index) Vector(id uint32) []float32 {
	if id >= ix.count.Load() {
		panic(fmt.Sprintf("hnsw: Vector(%d) of an index of %d nodes", id, ix.count.Load()))
	}
	return ix.vector(id)
}

func (ix *Index) state(id uint32) uint32 {
	if id >= ix.count.Load() {
		return 0
	}
	c, slot := ix.node(id)
	return c.state[slot].Load()
}

// Delete marks node id deleted: Search and Scan never return it again, but
// it stays in the graph, so searches still route through it. Deleting twice,
// or an id >= Len(), does nothing. Safe concurrently with every method.
func (ix *Index) Delete(id uint32) {
	if id >= ix.count.Load() {
		return
	}
	c, slot := ix.node(id)
	c.state[slot].Or(stateDeleted)
}

// Deleted reports whether node id has been deleted.
func (ix *Index) Deleted(id uint32) bool { return ix.state(id)&stateDeleted != 0 }

// Linked reports whether Link(id) has finished, so that Search can return it.
func (ix *Index) Linked(id uint32) bool { return ix.state(id)&stateLinked != 0 }

// MemoryBytes returns the approximate number of bytes the index holds:
// vectors, int8 codes, neighbour lists and per-node bookkeeping, including
// the unused tail of the last chunk.
func (ix *Index) MemoryBytes() int64 {
	chunks := int64(len(*ix.chunks.Load()))
	perNode := int64(ix.dim*4 + ix.stride0*4 + int(unsafe.Sizeof([]uint32(nil))) + 1 + 4 + int(unsafe.Sizeof(sync.Mutex{})))
	total := chunks*(int64(1)<<ix.chunkShift)*perNode + chunks*8 + ix.upperWords.Load()*4
	if cs := ix.codes.Load(); cs != nil {
		total += cs.memoryBytes(ix)
	}
	ix.searchers.Lock()
	for _, s := range ix.searchers.free {
		total += int64(len(s.marks)) * 2
	}
	ix.searchers.Unlock()
	return total
}

// packEntry and unpackEntry encode the entry point in a uint64 so that it can
// be loaded atomically; 0 means none.
func packEntry(id uint32, level int) uint64 { return uint64(level+1)<<32 | uint64(id) }

func unpackEntry(e uint64) (id uint32, level int) { return uint32(e), int(e>>32) - 1 }
