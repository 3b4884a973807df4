package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hippo-db/hippo/client"
)

// TestSessionAgainstServer drives the real server over one WebSocket
// session of the Go client: a subscription whose events arrive between the
// answers of concurrent operations, errors that leave the session usable,
// resumption in a new session, access checks per operation, and the close
// code of a server shutdown.
func TestSessionAgainstServer(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	srv := start(t, dir, "--listen", addr+"?auth=none&class=read")
	c := srv.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := c.CreateCollection(ctx, "docs", client.CollectionSpec{Dimension: 3, Metric: client.MetricL2}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sub, from, err := s.Subscribe(ctx, client.SubscribeOptions{Collections: []string{"docs"}, Records: true})
	if err != nil || sub == "" || from == 0 {
		t.Fatalf("subscribe: %q %d %v", sub, from, err)
	}

	// Writers on the session and over HTTP, readers on the session, all at
	// once; a consumer takes the events meanwhile.
	const writers, perWriter, viaHTTP = 4, 50, 20
	want := writers*perWriter + viaHTTP + 1 // and one delete
	events := make(chan *client.Event, want)
	consumed := make(chan error, 1)
	go func() {
		for ev := range s.Events() {
			if ev.Err != nil || ev.Subscription != sub {
				consumed <- fmt.Errorf("session event %+v", ev)
				return
			}
			events <- ev.Event
			if len(events) == want {
				consumed <- nil
				return
			}
		}
		consumed <- fmt.Errorf("events ended: %v", s.Err())
	}()
	var mu sync.Mutex
	acked := map[uint64]string{}
	ack := func(seq uint64, id string) {
		mu.Lock()
		acked[seq] = id
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := fmt.Sprintf("w%d-%02d", w, i)
				seq, err := s.Upsert(ctx, "docs", client.Record{ID: id, Vector: []float32{float32(w), float32(i), 1}, Text: id})
				if err != nil {
					t.Errorf("upsert %s: %v", id, err)
					return
				}
				ack(seq, id)
				if _, err := s.Search(ctx, "docs", client.SearchRequest{Vector: []float32{float32(w), float32(i), 1}, K: 1}); err != nil {
					t.Errorf("search: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range viaHTTP {
			id := fmt.Sprintf("http-%02d", i)
			seq, err := c.Upsert(ctx, "docs", client.Record{ID: id, Vector: []float32{9, float32(i), 9}})
			if err != nil {
				t.Errorf("http upsert: %v", err)
				return
			}
			ack(seq, id)
		}
	})
	wg.Wait()
	got, err := s.Get(ctx, "docs", "w1-07")
	if err != nil || got.Text != "w1-07" || !slices.Equal(got.Vector, []float32{1, 7, 1}) {
		t.Fatalf("get: %+v %v", got, err)
	}
	seq, err := s.Delete(ctx, "docs", "w0-00")
	if err != nil {
		t.Fatal(err)
	}
	ack(seq, "w0-00")
	if err := <-consumed; err != nil {
		t.Fatal(err)
	}
	close(events)
	var last uint64
	for ev := range events {
		if ev.Seq <= last || acked[ev.Seq] != ev.ID || ev.Collection != "docs" {
			t.Fatalf("event %+v after seq %d (acked %q)", ev, last, acked[ev.Seq])
		}
		last = ev.Seq
		if ev.Type == client.EventRecordUpserted && ev.Record != nil && ev.Record.ID != ev.ID {
			t.Fatalf("event %d carries record %q", ev.Seq, ev.Record.ID)
		}
	}
	if last != seq {
		t.Fatalf("last event %d, last write %d", last, seq)
	}

	// Refusals are answers; the session goes on.
	if _, err := s.Get(ctx, "docs", "missing"); !client.IsNotFound(err) {
		t.Fatalf("get missing: %v", err)
	}
	var herr *client.Error
	if _, err := s.Upsert(ctx, "docs", client.Record{ID: "short", Vector: []float32{1}}); !errors.As(err, &herr) || herr.Code != client.CodeInvalidArgument {
		t.Fatalf("upsert of the wrong dimension: %v", err)
	}
	if pos, err := s.Unsubscribe(ctx, sub); err != nil || pos != last {
		t.Fatalf("unsubscribe: %d %v (last %d)", pos, err, last)
	}
	s.Close()

	// A new session resumes after the last event seen.
	if _, err := c.Upsert(ctx, "docs", client.Record{ID: "later", Vector: []float32{0, 0, 0}}); err != nil {
		t.Fatal(err)
	}
	s2, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, _, err := s2.Subscribe(ctx, client.SubscribeOptions{From: &last}); err != nil {
		t.Fatal(err)
	}
	if ev := <-s2.Events(); ev.Event == nil || ev.Event.ID != "later" || ev.Event.Seq != last+1 {
		t.Fatalf("resumed with %+v", ev)
	}

	// On the read-only TCP listener, the socket opens and reads pass;
	// writes are refused one by one.
	ro, err := client.New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	s3, err := ro.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if _, err := s3.Get(ctx, "docs", "later"); err != nil {
		t.Fatalf("read-only get: %v", err)
	}
	if _, err := s3.Delete(ctx, "docs", "later"); !errors.As(err, &herr) || herr.Code != client.CodePermissionDenied {
		t.Fatalf("read-only delete: %v", err)
	}

	// Shutdown closes sessions with 1001, going away.
	srv.stop()
	select {
	case <-s2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session still open after shutdown")
	}
	var ce *client.CloseError
	if !errors.As(s2.Err(), &ce) || ce.Code != 1001 {
		t.Fatalf("after shutdown: %v", s2.Err())
	}
}
