// Package hnsw is Hippo's approximate nearest-neighbour index: a hierarchical
// navigable small world graph (Malkov & Yashunin, "Efficient and robust
// approximate nearest neighbor search using Hierarchical Navigable Small World
// graphs", 2016) over float32 vectors with a caller-supplied distance.
//
// # Life of a node
//
// Append copies a vector in and returns its dense id (0, 1, 2, ...). Scan sees
// the node at once; Search sees it only after Link(id) has inserted it into the
// graph. Delete tombstones a node: it is never returned again but stays in the
// graph, so that searches keep routing through it. Nothing is ever removed;
// compaction is rebuilding.
//
// # Storage
//
// Nodes live in chunks of 64 to 4096 nodes (about 4 MiB of vectors each),
// reached through a directory that Append replaces copy-on-grow. Chunks never
// move, so vectors are contiguous within a chunk, Vector slices stay valid for
// the life of the index and readers never race with growth. Per node a chunk
// holds the vector, the layer-0 neighbour list (a count then 2M ids, fixed
// capacity), the upper-layer lists (allocated by Link for nodes whose level is
// above 0, M ids per layer), the level, a state word and a mutex.
//
// # Invariants and what guards them
//
//   - count (Len) is stored only by Append, after the vector is in place; a
//     node's vector never changes after that. Append calls are serialised by
//     the caller; everything else may run concurrently with everything.
//   - A node's neighbour-list words are written only with the node's mutex
//     held, by atomic stores, and are read by searches with atomic loads and
//     no lock. A reader can thus see a list mid-update, mixing old and new ids,
//     but every id it can see is an appended node with a vector, which is all
//     navigation needs. The count is clamped to the capacity on read.
//   - A Link holds at most one node mutex at a time, so node mutexes cannot
//     deadlock.
//   - Link writes a new node's level, upper-list storage and own lists before
//     the node's id is stored into any other list (phase 1, then phase 2), so
//     whoever reaches the node through an atomic load sees all of them.
//   - A node appears on layer l of another node's list only if its level is at
//     least l; the entry point is a node of the highest level linked so far.
//     Searches therefore never ask for a layer a node does not have.
//   - The entry point is stored only with entryMu held. A Link whose node will
//     become the entry point holds entryMu throughout; other Links do not take
//     it.
//   - State bits (linking, linked, deleted) are atomic. Search returns a node
//     only when it is linked and not deleted; building links to every node,
//     deleted or half-linked, so the graph stays connected.
//   - Link holds linkMu shared and WriteTo exclusively, so a snapshot contains
//     only fully linked nodes and lists that refer only to them.
//
// # Building
//
// Link follows the paper: a level drawn with mL = 1/ln(M) (hashed from the
// seed and the id, so it does not depend on scheduling), a greedy descent to
// the node's top layer, then on each layer a beam search of width
// efConstruction whose whole result seeds the layer below, the neighbour
// selection heuristic (optionally keeping pruned candidates), and reverse
// links that re-run the heuristic on a full list. Layer 0 lists hold 2M ids,
// upper ones M; a new node itself picks at most M on every layer, as in
// hnswlib.
//
// # Performance
//
// Searching high-dimensional vectors is bound by memory latency: at 784
// dimensions a vector is 49 cache lines and most are not in cache. The beam
// search therefore collects a node's unvisited neighbours first and issues
// prefetches (PREFETCHT0, in prefetch_amd64.s; a no-op elsewhere) for all of
// them, for the whole next vector while computing the current one, and for
// the list of the next candidate. Visited marks (epoch-stamped, 2 bytes per
// node), the two heaps and the selection buffers live in a searcher taken
// from a per-index free list, so a warm Search allocates only the slice it
// returns. The distance function is called through Config.Distance; the
// kernels live in package vec.
//
// # Int8 quantization
//
// With Config.Quantization.Int8 the index also keeps, per node, an 8-bit code
// per dimension (package scalar) padded to a multiple of 64 bytes, and a
// float32 constant. Search then descends the upper layers and runs the
// layer-0 beam search on code distances — a 784-dimension code is 13 cache
// lines where the float32 vector is 49 — and re-ranks the best candidates
// (Quantization.Rerank, by default all ef of them) with exact float32
// distances, which are what it returns. The float32 vectors stay: Link
// builds the graph on them, and Scan, Vector and re-ranking use them.
//
// The quantizer's ranges are learned by Append, on the appender's goroutine,
// when Len reaches TrainSize, and again at 8 and 64 times TrainSize, from up
// to 8,192 nodes spread over the index; Retrain forces it. Each training
// computes a complete new generation of codes and publishes it with one
// atomic store, so a search sees one generation throughout; nodes appended
// after its generation was replaced are measured exactly. Until the first
// training, Search uses float32 distances.
//
// By default queries are quantized too (Quantization.Symmetric) and code
// distances are exact integer dot products (VPDPBUSD with AVX-512 VNNI). On
// Fashion-MNIST this searched 1.7x as many queries per second as float32 at
// the same recall, and 1.2x as many as keeping the query in float32, whose
// approximation is better before re-ranking but measured the same after it.
//
// # Snapshots
//
// WriteTo and Read store and load the whole index with checksums; the format is
// described next to WriteTo in snapshot.go. The quantizer is stored, the
// codes are recomputed by Read. Read never panics on bad input and
// reports it with an error wrapping ErrCorrupt.
package hnsw
