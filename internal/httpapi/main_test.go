package httpapi

import (
	"testing"

	"github.com/hippo-db/hippo/internal/leaktest"
)

// TestMain fails the package if a test leaves goroutines running: a
// WebSocket session's or event stream's, a test server's connections, or the
// engine under an API that was not shut down.
func TestMain(m *testing.M) {
	leaktest.Main(m)
}
