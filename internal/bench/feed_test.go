package bench

import (
	"flag"
	"strings"
	"testing"
	"time"
)

var feedFull = flag.Bool("feed.full", false, "run the change-feed benchmark at full size and print its tables")

// TestRunFeed runs the change-feed benchmark against the real binary, small
// (or, with -feed.full, at full size), and checks that it measures something.
func TestRunFeed(t *testing.T) {
	if testing.Short() && !*feedFull {
		t.Skip("builds and starts the server")
	}
	dir := t.TempDir()
	binary := buildHippo(t, dir)
	opt := FeedOptions{Binary: binary, Dir: dir}
	if !*feedFull {
		opt = FeedOptions{Binary: binary, Dir: dir, Subscribers: 300, Repeats: 1, Rate: 200, PassTime: time.Second,
			FanoutSubs: 10, Writers: 4, StreamsPerConn: 100, MaxFanoutRate: 1000}
	}
	var progress strings.Builder
	rep, err := RunFeed(opt, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	var tables strings.Builder
	rep.WriteTables(&tables)
	t.Log(tables.String())
	if len(rep.Memory) != 2 || len(rep.Latency) != 6 || len(rep.Fanout) != 4 {
		t.Fatalf("report: %+v", rep)
	}
	for _, l := range rep.Latency {
		if l.Deliveries == 0 || l.P50 <= 0 || l.P99 < l.P50 {
			t.Fatalf("latency: %+v", l)
		}
	}
	for _, f := range rep.Fanout {
		if len(f.Tried) == 0 {
			t.Fatalf("fan-out: %+v", f)
		}
	}
	for i, p := range rep.WriteCost.Passes {
		if p.PerSec <= 0 || p.ServerCPU <= 0 {
			t.Fatalf("write cost, pass %d: %+v", i, rep.WriteCost)
		}
	}
}
