//go:build !amd64 || purego

package hnsw

import "unsafe"

// prefetch is a no-op where there is no assembly version.
func prefetch(p unsafe.Pointer, lines int) {}
