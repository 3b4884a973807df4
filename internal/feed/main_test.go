package feed

import (
	"testing"

	"github.com/hippo-db/hippo/internal/leaktest"
)

// TestMain fails the package if a test leaves goroutines running: a hub's
// reader that was not closed, or a subscriber still waiting on one.
func TestMain(m *testing.M) {
	leaktest.Main(m)
}
