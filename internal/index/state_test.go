package index

import (
	"sync/atomic"
	"testing"
)

func TestClaim(t *testing.T) {
	var st atomic.Uint32
	st.Store(4)
	if !Claim(&st, 1, 1|2) || st.Load() != 5 {
		t.Fatalf("first claim: state %d", st.Load())
	}
	if Claim(&st, 1, 1|2) || st.Load() != 5 {
		t.Fatalf("second claim succeeded: state %d", st.Load())
	}
	st.Store(2)
	if Claim(&st, 1, 1|2) || st.Load() != 2 {
		t.Fatalf("claim over an excluding bit: state %d", st.Load())
	}
}
