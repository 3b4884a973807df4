package httpapi

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hippo-db/hippo/internal/engine"
)

func benchAPI(b *testing.B, dim int, index ...string) (*API, *engine.Engine) {
	e, err := engine.Open(engine.Options{Dir: b.TempDir(), SnapshotInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	a := New(e, Options{})
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("PUT", "/v1/collections/c", strings.NewReader(fmt.Sprintf(`{"dimension":%d,"metric":"l2","index":{"type":%q}}`, dim, append(index, "hnsw")[0]))))
	if rec.Code != 201 {
		b.Fatal(rec.Body.String())
	}
	return a, e
}

func ndjson784(n int, prefix string) []byte {
	r := rand.New(rand.NewPCG(1, 1))
	var buf bytes.Buffer
	v := make([]float32, 784)
	for i := range n {
		for j := range v {
			v[j] = float32(r.IntN(256))
		}
		fmt.Fprintf(&buf, `{"id":"%s%d","vector_b64":"%s"}`+"\n", prefix, i, b64(v))
	}
	return buf.Bytes()
}

// BenchmarkImport1k measures one /import of 1,000 784-dimension records,
// handler to durable commit, without the network; "flat" leaves out the
// background graph building that competes for the CPUs.
func BenchmarkImport1k(b *testing.B) {
	for _, index := range []string{"hnsw", "flat"} {
		b.Run(index, func(b *testing.B) { benchImport(b, index) })
	}
}

func benchImport(b *testing.B, index string) {
	a, _ := benchAPI(b, 784, index)
	body := ndjson784(1000, "r")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/collections/c/import", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Body.String())
		}
	}
}

// BenchmarkGetRecord measures GET of one 784-dimension record.
func BenchmarkGetRecord(b *testing.B) {
	a, _ := benchAPI(b, 784)
	req := httptest.NewRequest("POST", "/v1/collections/c/import", bytes.NewReader(ndjson784(100, "r")))
	req.Header.Set("Content-Type", "application/x-ndjson")
	a.ServeHTTP(httptest.NewRecorder(), req)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/v1/collections/c/records/r%d?vector_b64=1", i%100), nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Body.String())
		}
		i++
	}
}
