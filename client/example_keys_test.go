package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/hippo-db/hippo/client"
)

// An administrator makes a read-only key for an agent's collections over the
// admin socket; the agent uses it over TCP.
func ExampleClient_CreateKey() {
	ctx := context.Background()
	admin, err := client.New("unix:hippo-data/admin.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()
	key, token, err := admin.CreateKey(ctx, client.KeySpec{Name: "recall", Scope: "read", Collections: []string{"agent-*"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", key.ID) // the token is shown this once: hand it over now

	agent, err := client.New("http://127.0.0.1:7700", client.WithHeader("Authorization", "Bearer "+token))
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close()
	if _, err := agent.Get(ctx, "agent-7", "memory-1"); err != nil {
		log.Print(err) // a 403 for collections beyond agent-*, a 401 once revoked
	}

	if err := admin.RevokeKey(ctx, key.ID); err != nil {
		log.Fatal(err)
	}
}
