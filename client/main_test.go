package client

import (
	"testing"

	"github.com/hippo-db/hippo/internal/leaktest"
)

// TestMain fails the run if goroutines started by the client (the producers
// of ImportRecords and SearchBatch, a WebSocket's reader) or by the test
// servers outlive the tests. goleak (internal/leaktest) is a test dependency only: the client
// itself imports the standard library alone (TestImportsOnlyStandardLibrary).
func TestMain(m *testing.M) {
	leaktest.Main(m)
}
