// Package engine is Hippo's core: collections, records, the write path and
// recovery. It sits between the HTTP API and the store.
//
// Invariants (docs/design/write-path.md explains them):
//
//   - One goroutine, the committer, assigns sequence numbers and commits; seq
//     order is commit order and has no gaps.
//   - A write is answered only after its group was synced to the store, and
//     after memory (id map, node table, index storage) reflects it, so a read
//     sent after the answer sees it.
//   - Memory never reflects a write that is not durable.
//   - Search covers the linked HNSW graph plus an exact scan of the nodes not
//     yet linked, so indexing may trail the log without hiding records.
//
// Locking: Engine.mu guards the collection map. Each Collection's mu guards its
// id map and node table; the committer takes it exclusively to apply a group,
// searches take it shared. Collection.linkMu serialises linking with
// snapshotting, so a snapshot sees a graph that is not changing.
package engine
