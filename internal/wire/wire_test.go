package wire

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/store"
)

func testRecord(dim int) *store.Record {
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, dim)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	t0 := time.Date(2026, 11, 22, 8, 0, 0, 123456789, time.UTC)
	return &store.Record{ID: "doc-42", Vector: v, Text: "a note", Metadata: json.RawMessage(`{"k":"v"}`),
		CreatedAt: t0, UpdatedAt: t0, Seq: 7}
}

// The base64 form decodes to the vector's little-endian float32 bits, at
// every length around the encoder's chunk boundaries.
func TestAppendVectorB64(t *testing.T) {
	for _, dim := range []int{0, 1, 2, 3, 191, 192, 193, 383, 384, 385, 1000} {
		v := testRecord(dim).Vector
		b := AppendVectorB64([]byte("x"), v)
		if b[0] != 'x' {
			t.Fatalf("dim %d: the prefix was overwritten", dim)
		}
		raw, err := base64.StdEncoding.DecodeString(string(b[1:]))
		if err != nil || len(raw) != 4*dim {
			t.Fatalf("dim %d: %d bytes, %v", dim, len(raw), err)
		}
		for i, f := range v {
			if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != f {
				t.Fatalf("dim %d: element %d is %v, want %v", dim, i, got, f)
			}
		}
	}
}

// An event with its record is valid JSON with the record's fields.
func TestAppendEvent(t *testing.T) {
	rec := testRecord(384)
	e := &store.Event{Seq: 7, Op: store.OpRecordUpserted, Collection: store.Collection{Name: "c"}, RecordID: rec.ID, Time: rec.UpdatedAt, Record: rec}
	for _, b64 := range []bool{false, true} {
		var got struct {
			Seq    uint64
			Type   string
			Record struct {
				ID        string
				Vector    []float32
				VectorB64 string `json:"vector_b64"`
				Text      string
				Metadata  map[string]string
				Seq       uint64
			}
		}
		if err := json.Unmarshal(AppendEvent(nil, e, rec, b64), &got); err != nil {
			t.Fatal(err)
		}
		if got.Seq != 7 || got.Type != "record.upserted" || got.Record.ID != rec.ID || got.Record.Text != rec.Text ||
			got.Record.Metadata["k"] != "v" || got.Record.Seq != 7 {
			t.Fatalf("b64 %v: %+v", b64, got)
		}
		if b64 && len(got.Record.VectorB64) != base64.StdEncoding.EncodedLen(4*384) {
			t.Fatalf("vector_b64 of %d characters", len(got.Record.VectorB64))
		}
		if !b64 && len(got.Record.Vector) != 384 {
			t.Fatalf("vector of %d elements", len(got.Record.Vector))
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	rec := testRecord(384)
	e := &store.Event{Seq: 7, Op: store.OpRecordUpserted, Collection: store.Collection{Name: "c"}, RecordID: rec.ID, Time: rec.UpdatedAt, Record: rec}
	for _, bc := range []struct {
		name string
		b64  bool
	}{{"vector", false}, {"vector_b64", true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				AppendEvent(nil, e, rec, bc.b64)
			}
		})
	}
}
