// Package ivfpq is an inverted-file index with product-quantized residuals
// (IVF-PQ; Jégou, Douze & Schmid, 2011), for collections that must fit in
// much less memory than their float32 vectors.
//
// # How it searches
//
// A coarse quantizer of NList centroids (k-means, package kmeans) partitions
// the space; every vector is stored in the inverted list of its nearest
// centroid as the product-quantized code (package pq, M bytes) of its
// residual from that centroid, plus one float32 per vector. A search ranks
// the centroids by their distance to the query, scans the nprobe nearest
// lists, and estimates each stored vector's distance from a per-query table
// (asymmetric distance computation: the query is not quantized):
//
//	L2:      ‖q-c-r̂‖² = ‖q-c‖² + (‖r̂‖² + 2c·r̂) - 2q·r̂
//	dot:     -q·x̂ = -(q·c) - q·r̂
//	cosine:  1 - q·x̂
//
// where c is the list's centroid, r̂ the decoded residual, q·r̂ the sum of M
// table entries (pq.Sum), and ‖r̂‖² + 2c·r̂ the float32 stored per vector. The
// table costs Dim multiply-adds of length 256 per query, whatever nprobe.
// For dot and cosine the lists are ranked by q·c.
//
// Search's ef argument is nprobe, clamped to [1, NList]. The answers'
// distances are the estimates, unless the index keeps its float32 vectors
// (Config.Rerank > 0): then the best Rerank candidates by estimate are
// re-ranked with exact distances, which are returned.
//
// # Training
//
// The centroids and codebooks are learned from the data, so nothing can be
// encoded before enough vectors exist. Until then Link only marks nodes
// linked ("buffered"), and Search answers with an exact scan of the linked
// nodes. The first Link once Len reaches TrainSize (default max(32·NList,
// 39·256)) trains, from up to TrainSize vectors spread over the index, on
// all cores: k-means++ seeding and Config.Iterations Lloyd iterations for the
// coarse centroids, then for each of the M subspaces' codebooks on the
// sample's residuals. Deleted nodes are left out; while fewer than
// max(NList, 256) remain, training waits for the next Link. It then encodes every node appended so far, and only
// then switches Search to the lists, so that no buffered node is ever
// missed. Other Link calls wait meanwhile. Training happens once; to learn
// from different data, rebuild the index.
//
// # Memory
//
// Per vector: M code bytes, a 4-byte id and a 4-byte float in its list,
// and 12 bytes of node table (state and list position); per index: the
// centroids (NList·Dim·4 bytes), the codebooks (256·Dim·4 bytes, kept twice:
// by centroid for encoding and by dimension for the tables) and search
// scratch (a 256·M table per idle searcher). The float32 vectors are dropped
// as soon as every node of their chunk (about 512 KiB of vectors) is encoded
// or deleted, unless Rerank > 0 keeps them. Without them Vector
// returns the decoded approximation and Scan ranks by the distance to it:
// Scan is exact only for nodes not yet encoded or with Rerank > 0.
//
// # Concurrency
//
// As for every index (package index): Append calls are serialised by the
// caller; everything else may run concurrently with everything. Node state
// words are atomic. An inverted list is appended to under its mutex and
// read without one: the entry is written, then the list's length is stored
// atomically; a list that outgrows its arrays is copied and the copy
// published with one atomic store, so a reader sees a consistent prefix.
// Link holds linkMu shared and WriteTo exclusively, so snapshots never see a
// half-linked node or a half-trained index.
//
// # Snapshots
//
// WriteTo and Read store and load the whole index, including the lists'
// order, with checksums; see docs/format/ivfpq.md. Read never panics on bad
// input and reports it with an error wrapping ErrCorrupt.
package ivfpq
