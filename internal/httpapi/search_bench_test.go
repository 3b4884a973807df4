package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/dataset"
	"github.com/hippo-db/hippo/internal/engine"
)

// BenchmarkSearchFashionMNIST measures one search request through the
// handler (decode, plan, HNSW, encode) on the 60,000 Fashion-MNIST vectors,
// without the network. The data set comes from `make deps`.
func BenchmarkSearchFashionMNIST(b *testing.B) {
	train, test, err := dataset.FashionMNIST()
	if err != nil {
		b.Skip(err)
	}
	a, e := benchAPI(b, 784)
	batch := make([]engine.RecordInput, 0, engine.MaxBatchRecords)
	for i := range train.Rows {
		batch = append(batch, engine.RecordInput{ID: strconv.Itoa(i), Vector: train.Row(i)})
		if len(batch) == cap(batch) {
			if _, err := e.Upsert(b.Context(), "c", batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for {
		info, _ := e.Collection("c")
		if info.Stats.Pending == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]any{"vector_b64": b64(test.Row(i)), "k": 10, "ef": 64, "include": []string{}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/collections/c/search", bytes.NewReader(bodies[i%len(bodies)])))
		if rec.Code != 200 {
			b.Fatal(rec.Body.String())
		}
		i++
	}
}

// BenchmarkSearchBodyDecode decodes a search body with a 784-dimension
// vector_b64, whole through encoding/json and with the vector cut out
// (decodeCutVector), into the engine's query.
func BenchmarkSearchBodyDecode(b *testing.B) {
	v := make([]float32, 784)
	for i := range v {
		v[i] = float32(i)
	}
	body := []byte(`{"vector_b64":"` + b64(v) + `","k":10,"ef":64}`)
	for _, d := range []struct {
		name   string
		decode func([]byte, *wireSearch) error
	}{
		{"whole", func(data []byte, s *wireSearch) error { return decodeStrict(data, s) }},
		{"cut", decodeCutVector[wireSearch]},
	} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var s wireSearch
				if err := d.decode(body, &s); err != nil {
					b.Fatal(err)
				}
				if _, _, err := s.query(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
