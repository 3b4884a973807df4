package engine

import (
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/leaktest"
)

func runtimeGosched() { time.Sleep(time.Millisecond) }

// TestMain fails the package if a test leaves goroutines running: the
// committer, snapshotter, retention loop and indexers of an engine it did
// not close, or the store's and feed's.
func TestMain(m *testing.M) {
	leaktest.Main(m)
}
