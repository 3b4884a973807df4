package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hippo-db/hippo/client"
)

func Example() {
	ctx := context.Background()
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, _, err = c.CreateCollection(ctx, "docs", client.CollectionSpec{
		Dimension: 3,
		Metric:    client.MetricCosine,
		Index:     client.IndexSpec{Type: client.IndexHNSW, M: 16, EfConstruction: 200},
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Upsert(ctx, "docs", client.Record{
		ID:       "greeting",
		Vector:   []float32{0.1, 0.7, 0.2},
		Text:     "hello, world",
		Metadata: map[string]any{"lang": "en"},
	})
	if err != nil {
		log.Fatal(err)
	}
	answer, err := c.Search(ctx, "docs", client.SearchRequest{
		Vector:  []float32{0.1, 0.6, 0.3},
		K:       5,
		Filter:  map[string]any{"lang": "en"},
		Include: []string{client.IncludeText},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, result := range answer.Results {
		fmt.Printf("%s %.3f %s\n", result.ID, result.Distance, result.Text)
	}
}

func ExampleIndexSpec() {
	ctx := context.Background()
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// HNSW walked on int8 codes, re-ranked with the float32 vectors: faster
	// searches, exact distances, about a quarter more memory.
	_, _, err = c.CreateCollection(ctx, "fast", client.CollectionSpec{
		Dimension: 768,
		Metric:    client.MetricCosine,
		Index:     client.IndexSpec{Type: client.IndexHNSW, Quantization: client.QuantizationInt8},
	})
	if err != nil {
		log.Fatal(err)
	}
	// IVF-PQ: codes of 96 bytes per vector instead of 3,072 bytes of
	// float32; approximate distances.
	_, _, err = c.CreateCollection(ctx, "small", client.CollectionSpec{
		Dimension: 768,
		Metric:    client.MetricCosine,
		Index:     client.IndexSpec{Type: client.IndexIVFPQ, NList: 1024, M: 96, NProbe: 32},
	})
	if err != nil {
		log.Fatal(err)
	}
	// For an IVF-PQ collection a search's Ef is the number of lists probed.
	answer, err := c.Search(ctx, "small", client.SearchRequest{Vector: make([]float32, 768), K: 10, Ef: 64})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(answer.Results))
}

func ExampleNew() {
	// A server on a Unix socket, over HTTP/1.1 on up to 8 connections,
	// with an API key, and a bound on every call without a deadline.
	c, err := client.New("unix:///run/hippo/hippo.sock",
		client.WithHTTP1Pool(8),
		client.WithHeader("Authorization", "Bearer "+os.Getenv("HIPPO_API_KEY")),
		client.WithTimeout(10*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

func ExampleIsNotFound() {
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	record, err := c.Get(context.Background(), "docs", "maybe")
	switch {
	case client.IsNotFound(err):
		fmt.Println("no such record")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println(record.Text)
	}
}

func ExampleError() {
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for {
		_, err := c.Upsert(ctx, "docs", client.Record{ID: "a", Vector: []float32{1, 2, 3}})
		var herr *client.Error
		if errors.As(err, &herr) && herr.Code == client.CodeRateLimited {
			time.Sleep(herr.RetryAfter)
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		break
	}
}

func ExampleClient_List() {
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	for record, err := range c.List(context.Background(), "docs", &client.ListOptions{PageSize: 500}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(record.ID)
	}
}

func ExampleClient_Export() {
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	// Count the records of one kind, reading one consistent snapshot.
	n := 0
	for record, err := range c.Export(context.Background(), "docs") {
		if err != nil {
			log.Fatal(err)
		}
		if record.Metadata["kind"] == "fact" {
			n++
		}
	}
	fmt.Println(n, "facts")
}

func ExampleClient_Import() {
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	// An NDJSON file of any size, such as one written from Export.
	f, err := os.Open("docs.ndjson")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	result, err := c.Import(context.Background(), "docs", f, &client.ImportOptions{OnError: "skip"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("imported %d, failed %d\n", result.Imported, result.Failed)
	for _, lineErr := range result.Errors {
		fmt.Printf("line %d: %s: %s\n", lineErr.Line, lineErr.Code, lineErr.Message)
	}
}

func ExampleClient_ImportRecords() {
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	// A million generated records, encoded and sent as they are produced.
	records := func(yield func(client.Record) bool) {
		for i := range 1_000_000 {
			v := []float32{float32(i % 7), float32(i % 11), float32(i % 13)}
			if !yield(client.Record{ID: fmt.Sprint("gen-", i), Vector: v}) {
				return
			}
		}
	}
	result, err := c.ImportRecords(context.Background(), "docs", records, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("imported", result.Imported)
}

func ExampleClient_SearchBatch() {
	c, err := client.New("localhost:7700")
	if err != nil {
		log.Fatal(err)
	}
	queries := [][]float32{{0.1, 0.2, 0.3}, {0.3, 0.2, 0.1}, {0.5, 0.5, 0.5}}
	requests := func(yield func(client.SearchRequest) bool) {
		for _, q := range queries {
			if !yield(client.SearchRequest{Vector: q, K: 3}) {
				return
			}
		}
	}
	i := 0
	for answer, err := range c.SearchBatch(context.Background(), "docs", requests) {
		// After a failed query the loop goes on with the next; after a
		// failure of the whole batch it ends.
		if err != nil {
			fmt.Printf("query %d: %v\n", i, err)
		} else {
			fmt.Printf("query %d: %d results\n", i, len(answer.Results))
		}
		i++
	}
}
