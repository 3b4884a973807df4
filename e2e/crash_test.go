package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hippo-db/hippo/client"
)

const (
	crashWriters  = 4
	crashKeys     = 40 // per writer
	crashDim      = 8
	crashCycles   = 12
	absent        = "absent"
	crashColl     = "crash"
	crashMaxBatch = 4
)

// version is what a record holds: its vector and text derive from it, so
// what the server returns can be checked in full.
// Distinct (writer, key, version) give distinct vectors, so a search for one
// version's vector at distance 0 can only find that record.
func versionVector(writer, key, version int) []float32 {
	v := make([]float32, crashDim)
	v[0], v[1], v[2] = float32(writer), float32(key), float32(version)
	for i := 3; i < crashDim; i++ {
		v[i] = float32((writer+key+version)%7 + i)
	}
	return v
}

func versionText(writer, key, version int) string {
	return fmt.Sprintf("w%d-k%d-v%d", writer, key, version)
}

func keyID(writer, key int) string { return fmt.Sprintf("w%d-k%02d", writer, key) }

// writerModel is what one writer knows: the state of each of its keys as of
// its last acknowledged write, and the write in flight when the server died.
type writerModel struct {
	acked    map[string]string // id → text of the acknowledged version, or absent
	inflight map[string]string // id → state it would have if the in-flight write landed
	next     int               // next version number
}

// TestCrashLosesNothingAcknowledged runs concurrent writers (single upserts,
// atomic batches, deletes) against the real server, kills it with SIGKILL at
// random moments, restarts it, and checks that every acknowledged write is
// there, that an unacknowledged write is either wholly there or wholly
// absent, and that nothing else changed.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	models := make([]*writerModel, crashWriters)
	for w := range models {
		models[w] = &writerModel{acked: map[string]string{}, inflight: map[string]string{}}
		for k := range crashKeys {
			models[w].acked[keyID(w, k)] = absent
		}
	}
	srv := start(t, dir)
	c := srv.client(t)
	if _, _, err := c.CreateCollection(context.Background(), crashColl, client.CollectionSpec{Dimension: crashDim, Metric: client.MetricL2}); err != nil {
		t.Fatal(err)
	}
	totalAcked := 0
	for cycle := range crashCycles {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		for w := range crashWriters {
			seed := r.Uint64()
			wg.Go(func() {
				n := runWriter(ctx, c, w, models[w], rand.New(rand.NewPCG(seed, uint64(w))))
				mu.Lock()
				totalAcked += n
				mu.Unlock()
			})
		}
		time.Sleep(time.Duration(50+r.IntN(400)) * time.Millisecond)
		srv.kill()
		cancel()
		wg.Wait()

		srv = start(t, dir)
		c = srv.client(t)
		verifyAfterCrash(t, cycle, c, models)
	}
	if totalAcked < 100 {
		t.Fatalf("only %d writes were acknowledged over %d cycles: the test proved little", totalAcked, crashCycles)
	}
	t.Logf("%d acknowledged writes survived %d kills", totalAcked, crashCycles)
}

// runWriter writes until the server dies or ctx ends, keeping the model. It
// returns how many writes were acknowledged.
func runWriter(ctx context.Context, c *client.Client, w int, m *writerModel, r *rand.Rand) int {
	acked := 0
	for ctx.Err() == nil {
		clear(m.inflight)
		var err error
		switch p := r.IntN(10); {
		case p < 5: // one upsert
			k := r.IntN(crashKeys)
			m.next++
			id := keyID(w, k)
			m.inflight[id] = versionText(w, k, m.next)
			_, err = c.Upsert(ctx, crashColl, client.Record{ID: id, Vector: versionVector(w, k, m.next),
				Text: versionText(w, k, m.next), Metadata: map[string]any{"writer": w, "version": m.next}})
		case p < 8: // an atomic batch of distinct keys
			m.next++
			var recs []client.Record
			for _, k := range r.Perm(crashKeys)[:1+r.IntN(crashMaxBatch)] {
				id := keyID(w, k)
				m.inflight[id] = versionText(w, k, m.next)
				recs = append(recs, client.Record{ID: id, Vector: versionVector(w, k, m.next), Text: versionText(w, k, m.next)})
			}
			_, _, err = c.UpsertBatch(ctx, crashColl, recs)
		default: // delete
			k := r.IntN(crashKeys)
			id := keyID(w, k)
			if m.acked[id] == absent {
				continue
			}
			m.inflight[id] = absent
			_, err = c.Delete(ctx, crashColl, id)
		}
		if err != nil {
			return acked // the server is gone: the write stays in flight
		}
		for id, st := range m.inflight {
			m.acked[id] = st
		}
		clear(m.inflight)
		acked++
	}
	return acked
}

// verifyAfterCrash compares the restarted server with the models, then folds
// what it found into them (an in-flight write is now decided).
func verifyAfterCrash(t *testing.T, cycle int, c *client.Client, models []*writerModel) {
	t.Helper()
	ctx := context.Background()
	found := map[string]*client.Record{}
	for rec, err := range c.Export(ctx, crashColl) {
		if err != nil {
			t.Fatalf("cycle %d: export: %v", cycle, err)
		}
		found[rec.ID] = rec
	}
	for w, m := range models {
		landed, notLanded := 0, 0
		for id, want := range m.acked {
			got := absent
			if rec := found[id]; rec != nil {
				got = rec.Text
				delete(found, id)
				// The vector must be the one of that version.
				var rw, k, v int
				fmt.Sscanf(rec.Text, "w%d-k%d-v%d", &rw, &k, &v)
				if !slices.Equal(rec.Vector, versionVector(rw, k, v)) {
					t.Fatalf("cycle %d: %s has text %s but another version's vector", cycle, id, rec.Text)
				}
			}
			flight, inFlight := m.inflight[id]
			switch {
			case got == want && (!inFlight || flight == want):
			case got == want:
				notLanded++
			case inFlight && got == flight:
				landed++
			default:
				t.Fatalf("cycle %d: %s is %q; acknowledged %q, in flight %q", cycle, id, got, want, flight)
			}
			m.acked[id] = got
		}
		if landed > 0 && notLanded > 0 {
			t.Fatalf("cycle %d: writer %d's in-flight batch landed in part (%d of %d)", cycle, w, landed, landed+notLanded)
		}
		clear(m.inflight)
	}
	if len(found) > 0 {
		t.Fatalf("cycle %d: records nobody wrote: %v", cycle, found)
	}
	// The index agrees with the store: every record is found by its vector.
	for _, m := range models {
		for id, st := range m.acked {
			if st == absent {
				continue
			}
			var w, k, v int
			fmt.Sscanf(st, "w%d-k%d-v%d", &w, &k, &v)
			res, err := c.Search(ctx, crashColl, client.SearchRequest{Vector: versionVector(w, k, v), K: 1})
			if err != nil || len(res.Results) != 1 || res.Results[0].ID != id || res.Results[0].Distance != 0 {
				t.Fatalf("cycle %d: search for %s (%s): %+v %v", cycle, id, st, res, err)
			}
		}
	}
}
