// Package leaktest is the goroutine-leak check of packages whose tests
// start goroutines: their TestMain calls Main.
package leaktest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// settle is how long goroutines may take to wind down after the tests
// pass (a closed server's connections, an engine's background work) on a
// loaded machine; goleak alone waits less than half a second.
const settle = 5 * time.Second

// Main runs the tests and, if they pass, fails the package when goroutines
// other than the runtime's and the testing package's are still running
// after settle, printing their stacks.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(settle)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "leaked goroutines: %v\n", err)
				code = 1
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	os.Exit(code)
}
