package index

import "sync/atomic"

// Claim sets the bits set in a node's state word unless any of the bits in
// unless is already set, and reports whether it set them: how one goroutine
// takes a node for some work (linking, encoding) that others must skip.
func Claim(state *atomic.Uint32, set, unless uint32) bool {
	for {
		old := state.Load()
		if old&unless != 0 {
			return false
		}
		if state.CompareAndSwap(old, old|set) {
			return true
		}
	}
}
