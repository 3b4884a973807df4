//go:build !purego

package hnsw

import "unsafe"

// prefetch asks the CPU to start loading the given number of 64-byte cache
// lines from p into cache, without waiting for them. It never faults, so p
// may point anywhere. See searchLayer for what it buys.
//
//go:noescape
func prefetch(p unsafe.Pointer, lines int)
