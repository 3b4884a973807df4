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
// # Snapshots
//
// WriteTo and Read store and load the whole index with checksums; the format is
// described next to WriteTo in snapshot.go. Read never panics on bad input and
// reports it with an error wrapping ErrCorrupt.
package hnsw
