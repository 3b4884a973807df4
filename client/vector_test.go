package client

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"testing"
)

// decodeVector decodes s as the JSON string member it arrives as.
func decodeVector(s string) ([]float32, error) {
	b, _ := json.Marshal(s)
	var v vectorB64
	err := v.UnmarshalJSON(b)
	return v, err
}

func TestVectorB64Escaped(t *testing.T) {
	var v vectorB64
	if err := json.Unmarshal([]byte(`"AACAPw\u003d\u003d"`), &v); err != nil || !slices.Equal(v, []float32{1}) {
		t.Fatalf("escaped: %v, %v", v, err)
	}
	if err := json.Unmarshal([]byte(`12`), &v); err == nil {
		t.Fatalf("a number decoded as %v", v)
	}
	if err := json.Unmarshal([]byte(`null`), &v); err != nil || v != nil {
		t.Fatalf("null: %v, %v", v, err)
	}
}

func TestVectorB64(t *testing.T) {
	f := func(v []float32, want string) {
		t.Helper()
		got := encodeVector(v)
		if got != want {
			t.Errorf("encodeVector(%v) = %q, want %q", v, got, want)
		}
		back, err := decodeVector(got)
		if err != nil || len(back) != len(v) {
			t.Fatalf("decodeVector(%q) = %v, %v", got, back, err)
		}
		for i := range v {
			if math.Float32bits(back[i]) != math.Float32bits(v[i]) {
				t.Errorf("element %d: %v became %v", i, v[i], back[i])
			}
		}
	}
	f(nil, "")
	f([]float32{1}, "AACAPw==") // 0x3f800000, little-endian
	f([]float32{1, 2}, "AACAPwAAAEA=")
	f([]float32{float32(math.Copysign(0, -1)), float32(math.Inf(-1)), float32(math.NaN()), math.SmallestNonzeroFloat32, math.MaxFloat32},
		"AAAAgAAAgP8AAMB/AQAAAP//f38=")

	for _, bad := range []string{"AACAPw", "AACA", "!!!!", "AACAPwA="} {
		if v, err := decodeVector(bad); err == nil {
			t.Errorf("decodeVector(%q) = %v, want an error", bad, v)
		}
	}
}

func FuzzVectorB64(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = raw[:len(raw)/4*4]
		v := make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
		}
		back, err := decodeVector(encodeVector(v))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(v, back, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
			t.Fatalf("%v became %v", v, back)
		}
	})
}

func TestRecordJSON(t *testing.T) {
	f := func(in string, want []float32) {
		t.Helper()
		var r Record
		r.Metadata = map[string]any{"stale": true} // decoding replaces, not merges
		if err := json.Unmarshal([]byte(in), &r); err != nil {
			t.Fatalf("Unmarshal(%s): %v", in, err)
		}
		if r.ID != "a" || !slices.Equal(r.Vector, want) || r.Metadata["stale"] != nil {
			t.Errorf("Unmarshal(%s) = %+v", in, r)
		}
		var sr SearchResult
		if err := json.Unmarshal([]byte(in), &sr); err != nil || sr.ID != "a" || !slices.Equal(sr.Vector, want) {
			t.Errorf("SearchResult: Unmarshal(%s) = %+v, %v", in, sr, err)
		}
	}
	f(`{"id":"a","vector":[1,2]}`, []float32{1, 2})
	f(`{"id":"a","vector_b64":"AACAPwAAAEA="}`, []float32{1, 2})
	f(`{"id":"a"}`, nil)

	var r Record
	if err := json.Unmarshal([]byte(`{"id":"a","vector_b64":"AACA"}`), &r); err == nil {
		t.Error("a bad vector_b64: no error")
	}

	// Records encode with plain arrays and without unset fields.
	out, err := json.Marshal(Record{ID: "a", Vector: []float32{1, 2}})
	if err != nil || string(out) != `{"id":"a","vector":[1,2]}` {
		t.Errorf("Marshal = %s, %v", out, err)
	}
}

// BenchmarkRecordDecode decodes a get's answer for a 784-dimension record.
func BenchmarkRecordDecode(b *testing.B) {
	v := make([]float32, 784)
	for i := range v {
		v[i] = float32(i) / 7
	}
	body := []byte(`{"id":"12345","vector_b64":"` + encodeVector(v) + `","text":"a shirt","metadata":{"label":3},"seq":12,"updated_at":"2026-11-22T11:31:13.851Z"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var r Record
		if err := r.decode(body, nil); err != nil || len(r.Vector) != 784 {
			b.Fatal(err)
		}
	}
}

// FuzzRecordDecode: with its fast path for "vector_b64", Record's decoder
// accepts exactly what encoding/json alone accepts, with the same result.
func FuzzRecordDecode(f *testing.F) {
	v := encodeVector([]float32{1, -2.5, 3e-9})
	for _, seed := range []string{
		`{"id":"a","vector_b64":"` + v + `","text":"t","metadata":{"k":[1,{"vector_b64":"x"}]},"seq":3}`,
		`{"metadata":{"a":"}\"{"},"id":"b","vector_b64":"` + v + `"}`,
		`{"id":"c","vector_b64":"` + v + `","vector_b64":null}`,
		`{"id":"d","vector_b64":"` + v + `","VECTOR_B64":"AAAAAA=="}`,
		`{"id":"d2","VECTOR_B64":"AAAAAA==","vector_b64":"` + v + `"}`,
		`{"id":"e","vector_b64":"AAA","vector_b64":"` + v + `"}`,
		`{"id":"f","vector":[1,2],"vector_b64":""}`,
		`{"id":"g","vector_b64":"AAAA` + "\n" + `AAAA"}`,
		`{"id":"h","vector_b64":"AAAAAA\u003d\u003d"}`,
		`{"id":"i" , "vector_b64" : "` + v + `" }`,
		`{"id":"j","vector_b64":"` + v + `",}`,
		`{"id":1,"vector_b64":"` + v + `"}`,
		`{"error":{"code":"internal","message":"m"},"vector_b64":"` + v + `"}`,
		`[{"vector_b64":"` + v + `"}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Record
		var fastErr *errorBody
		errFast := fast.decode(b, &fastErr)

		type plain Record
		var slow Record
		wire := struct {
			*plain
			VectorB64 vectorB64  `json:"vector_b64"`
			Error     *errorBody `json:"error"`
		}{plain: (*plain)(&slow)}
		errSlow := json.Unmarshal(b, &wire)
		if len(wire.VectorB64) > 0 {
			slow.Vector = wire.VectorB64
		}
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("%q: fast path %v, encoding/json %v", b, errFast, errSlow)
		}
		if errFast != nil {
			return
		}
		if fast.ID != slow.ID || fast.Text != slow.Text || fast.Seq != slow.Seq ||
			!fast.CreatedAt.Equal(slow.CreatedAt) || !fast.UpdatedAt.Equal(slow.UpdatedAt) ||
			!reflect.DeepEqual(fast.Metadata, slow.Metadata) || !reflect.DeepEqual(fastErr, wire.Error) ||
			!slices.EqualFunc(fast.Vector, slow.Vector, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) }) ||
			(fast.Vector == nil) != (slow.Vector == nil) {
			t.Fatalf("%q:\nfast path      %+v\nencoding/json  %+v", b, fast, slow)
		}
	})
}
