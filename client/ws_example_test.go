package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/hippo-db/hippo/client"
)

func ExampleClient_Session() {
	ctx := context.Background()
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	s, err := c.Session(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// Follow the changes to "docs", including the records written, from
	// now on.
	sub, _, err := s.Subscribe(ctx, client.SubscribeOptions{Collections: []string{"docs"}, Records: true})
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for ev := range s.Events() {
			var gap *client.GapError
			switch {
			case errors.As(ev.Err, &gap):
				fmt.Println("events lost to retention; going on from", gap.Oldest)
			case ev.Err != nil:
				fmt.Println("subscription", ev.Subscription, "ended:", ev.Err)
			default:
				fmt.Println(ev.Event.Seq, ev.Event.Type, ev.Event.ID)
			}
		}
		// The session ended, and s.Err() says why. A new session resumes
		// with client.SubscribeOptions{From: &lastSeq}, lastSeq being the
		// Seq of the last event received.
	}()

	// Operations on the same connection, answered between the events.
	if _, err := s.Upsert(ctx, "docs", client.Record{ID: "a", Vector: []float32{0.1, 0.7, 0.2}}); err != nil {
		log.Fatal(err)
	}
	answer, err := s.Search(ctx, "docs", client.SearchRequest{Vector: []float32{0.1, 0.6, 0.3}, K: 3})
	if err != nil {
		log.Fatal(err)
	}
	for _, result := range answer.Results {
		fmt.Println(result.ID, result.Distance)
	}
	if _, err := s.Unsubscribe(ctx, sub); err != nil {
		log.Fatal(err)
	}
}
