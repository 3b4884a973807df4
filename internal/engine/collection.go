package engine

import (
	"sync"
	"sync/atomic"

	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/hnsw"
	"github.com/hippo-db/hippo/internal/index/ivfpq"
	"github.com/hippo-db/hippo/internal/store"
	"github.com/hippo-db/hippo/internal/vec"
)

// linkChunk is how many nodes the indexer links before publishing progress
// and releasing linkMu, so snapshots and shutdown never wait long.
const linkChunk = 256

// node is the in-memory entry of one record version. Its fields never change
// after the node is appended, except meta, which is dropped when the version
// is replaced or deleted (under Collection.mu).
type node struct {
	id        string
	meta      map[string]any
	createdAt int64 // unix nanoseconds, carried over to later versions
}

// Collection is the in-memory state of one collection: the vector index, the
// node table and the id map. Writes come only from the engine's committer.
type Collection struct {
	desc store.Collection
	// index is an *hnsw.Index (types hnsw and flat, which only scans it) or
	// an *ivfpq.Index (type ivfpq).
	index index.Index
	// toDistance converts an index distance into the API's distance.
	toDistance func(float32) float32

	mu struct {
		sync.RWMutex
		ids        map[string]uint32 // record id → current node
		nodes      []node            // by node id
		live       int               // records present
		appliedSeq uint64            // last seq applied to this collection
	}

	// linkMu is held by the indexer while it links a chunk and by snapshots,
	// so a snapshot sees a graph that does not change under it.
	linkMu sync.Mutex
	// linkedBelow: every node below it is linked into the graph (or was
	// deleted before it was linked). Nodes at or above it form the tail that
	// search scans exactly.
	linkedBelow atomic.Uint32
	// snapshotSeq and snapshotLinked are the appliedSeq and linkedBelow of
	// the last snapshot written or loaded.
	snapshotSeq    atomic.Uint64
	snapshotLinked atomic.Uint32

	wake    chan struct{} // buffered(1): new nodes to link
	stop    chan struct{} // closed to stop the indexer
	stopped chan struct{} // closed when the indexer has returned
}

func distanceFor(metric string) (indexDistance func(a, b []float32) float32, toAPI func(float32) float32) {
	m := metricOf(metric)
	if m == index.L2 {
		return m.Distance(), sqrt32
	}
	// Cosine: vectors are normalised on the way in, so 1 - dot is 1 - cos.
	return m.Distance(), identity
}

// metricOf maps a validated metric name to the index package's metric.
func metricOf(metric string) index.Metric {
	m, err := index.ParseMetric(metric)
	if err != nil {
		return index.L2 // descriptors are validated when created
	}
	return m
}

func identity(d float32) float32 { return d }

// newIndex returns an empty index for a collection descriptor.
func newIndex(desc store.Collection) index.Index {
	dist, _ := distanceFor(desc.Metric)
	spec := desc.Index
	if spec.Type == "ivfpq" {
		return ivfpq.New(ivfpq.Config{
			Dim:      desc.Dimension,
			Metric:   metricOf(desc.Metric),
			Distance: dist,
			NList:    spec.NList,
			M:        spec.M,
			Rerank:   spec.Rerank,
			Seed:     int64(desc.ID),
		})
	}
	cfg := hnsw.Config{
		Dim:            desc.Dimension,
		M:              max(spec.M, 2),
		EfConstruction: max(spec.EfConstruction, 1),
		Metric:         metricOf(desc.Metric),
		Distance:       dist,
		Seed:           int64(desc.ID),
	}
	if spec.Quantization == "int8" {
		cfg.Quantization = hnsw.Quantization{Int8: true, Symmetric: true}
	}
	return hnsw.New(cfg)
}

// hasGraph reports whether the collection's index is searched through
// Search (and so needs Link); flat collections are only ever scanned.
func (c *Collection) hasGraph() bool { return c.desc.Index.Type != "flat" }

func newCollection(desc store.Collection, idx index.Index) *Collection {
	_, toAPI := distanceFor(desc.Metric)
	if idx == nil {
		idx = newIndex(desc)
	}
	c := &Collection{
		desc:       desc,
		index:      idx,
		toDistance: toAPI,
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	c.mu.ids = make(map[string]uint32)
	return c
}

// Descriptor returns the collection's durable descriptor.
func (c *Collection) Descriptor() store.Collection { return c.desc }

// applyUpsertLocked installs a new version of a record. c.mu must be held.
func (c *Collection) applyUpsertLocked(r *store.Record, meta map[string]any) {
	if old, ok := c.mu.ids[r.ID]; ok {
		c.index.Delete(old)
		c.mu.nodes[old].meta = nil
		c.mu.live--
	}
	v := r.Vector
	if c.desc.Metric == "cosine" {
		v = append([]float32(nil), v...)
		vec.Normalize(v)
	}
	n := c.index.Append(v)
	if int(n) != len(c.mu.nodes) {
		panic("engine: index and node table out of step") // a bug, not bad input
	}
	c.mu.nodes = append(c.mu.nodes, node{id: r.ID, meta: meta, createdAt: r.CreatedAt.UnixNano()})
	c.mu.ids[r.ID] = n
	c.mu.live++
	c.mu.appliedSeq = max(c.mu.appliedSeq, r.Seq)
}

// applyDeleteLocked removes a record. c.mu must be held.
func (c *Collection) applyDeleteLocked(id string, seq uint64) {
	if n, ok := c.mu.ids[id]; ok {
		c.index.Delete(n)
		c.mu.nodes[n].meta = nil
		delete(c.mu.ids, id)
		c.mu.live--
	}
	c.mu.appliedSeq = max(c.mu.appliedSeq, seq)
}

// notifyIndexer tells the indexer there may be nodes to link.
func (c *Collection) notifyIndexer() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// startIndexer links appended nodes into the graph (hnsw) or the inverted
// lists (ivfpq, whose first Link past its training size trains it) in the
// background, using up to workers goroutines per chunk. Flat collections
// have no graph.
func (c *Collection) startIndexer(workers int) {
	if !c.hasGraph() {
		close(c.stopped)
		return
	}
	go func() {
		defer close(c.stopped)
		for {
			select {
			case <-c.stop:
				return
			case <-c.wake:
			}
			for c.linkNextChunk(workers) {
				select {
				case <-c.stop:
					return
				default:
				}
			}
		}
	}()
}

// linkNextChunk links up to linkChunk nodes of the tail and reports whether
// there may be more.
func (c *Collection) linkNextChunk(workers int) bool {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	from := c.linkedBelow.Load()
	end := uint32(c.index.Len())
	if from >= end {
		return false
	}
	to := min(end, from+linkChunk)
	var next atomic.Uint32
	next.Store(from)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				id := next.Add(1) - 1
				if id >= to {
					return
				}
				if !c.index.Deleted(id) {
					c.index.Link(id)
				}
			}
		})
	}
	wg.Wait()
	c.linkedBelow.Store(to)
	return true
}

// stopIndexer stops the indexer and waits for it.
func (c *Collection) stopIndexer() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.stopped
}

// Info is a point-in-time description of a collection with its statistics.
type Info struct {
	store.Collection
	Count int
	Stats Stats
}

// Stats describes the state of a collection's index.
type Stats struct {
	Nodes        int   `json:"nodes"`         // versions in the index, including tombstones
	DeletedNodes int   `json:"deleted_nodes"` // tombstones kept for graph navigation
	Indexed      int   `json:"indexed"`       // nodes linked into the graph
	Pending      int   `json:"pending"`       // nodes waiting to be linked (searched exactly)
	MemoryBytes  int64 `json:"memory_bytes"`  // approximate memory of vectors and graph
	// BytesPerVector is MemoryBytes over Nodes: what one more vector costs,
	// including the index's fixed parts spread over the vectors it holds.
	BytesPerVector float64 `json:"bytes_per_vector"`
	AppliedSeq     uint64  `json:"applied_seq"`  // last change applied to this collection
	SnapshotSeq    uint64  `json:"snapshot_seq"` // seq covered by the last index snapshot
}

func (c *Collection) info() Info {
	c.mu.RLock()
	defer c.mu.RUnlock()
	nodes := len(c.mu.nodes)
	linked := int(c.linkedBelow.Load())
	if !c.hasGraph() {
		linked = 0
	}
	memory := c.index.MemoryBytes()
	return Info{
		Collection: c.desc,
		Count:      c.mu.live,
		Stats: Stats{
			Nodes:          nodes,
			DeletedNodes:   nodes - c.mu.live,
			Indexed:        linked,
			Pending:        nodes - linked,
			MemoryBytes:    memory,
			BytesPerVector: float64(memory) / float64(max(nodes, 1)),
			AppliedSeq:     c.mu.appliedSeq,
			SnapshotSeq:    c.snapshotSeq.Load(),
		},
	}
}
