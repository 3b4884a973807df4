package cli

import (
	"bytes"
	"strings"
	"testing"
)

// Bad sizes are refused before anything is opened, with the flag named.
// The bad --cache-mib, checked after them, keeps serve from starting if
// they were let through.
func TestServeRefusesNegativeFeedMemory(t *testing.T) {
	for _, flag := range []string{"--feed-memory-events=-1", "--feed-memory-bytes=-1"} {
		var stdout, stderr bytes.Buffer
		code := serve([]string{"--data-dir", t.TempDir(), "--cache-mib=0", flag}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "--feed-memory-bytes: want 0 (the default) or more") {
			t.Fatalf("%s: exit %d, %q", flag, code, stderr.String())
		}
	}
}
