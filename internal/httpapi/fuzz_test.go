package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/hippo-db/hippo/internal/engine"
)

// FuzzLineReader checks the NDJSON splitter against a plain split.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\n\nlast"), 4)
	f.Add([]byte("toolong\nok\n"), 3)
	f.Add([]byte(""), 1)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		var want [][]byte
		if len(data) > 0 {
			want = bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		}
		lr := newLineReader(bytes.NewReader(data), max)
		for i := 0; ; i++ {
			line, n, err := lr.next()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("%d lines, want %d", i, len(want))
				}
				return
			}
			if i >= len(want) || n != i+1 {
				t.Fatalf("line %d (n=%d) beyond %d", i, n, len(want))
			}
			w := bytes.TrimSuffix(want[i], []byte("\r"))
			if errors.Is(err, errLineTooLong) {
				if len(w) <= max {
					t.Fatalf("line %d of %d bytes called too long (max %d)", i, len(w), max)
				}
				continue
			}
			if err != nil || !bytes.Equal(line, w) {
				t.Fatalf("line %d = %q, %v; want %q", i, line, err, w)
			}
		}
	})
}

// FuzzJSONVector checks the fast vector parser against encoding/json.
func FuzzJSONVector(f *testing.F) {
	for _, s := range []string{`[1,2.5,-3e-2]`, `[]`, `null`, `[1,]`, `[ 1 , 2 ]`, `[+1]`, `[.5]`, `[1e40]`, `["1"]`, `[0x10]`, `[Infinity]`, `[NaN]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast jsonVector
		errFast := json.Unmarshal(data, &fast)
		var slow []float32
		errSlow := json.Unmarshal(data, &slow)
		if errSlow == nil && errFast != nil {
			// The fast path may refuse what overflows float32; the standard
			// decoder refuses that too, so any other refusal is a bug.
			t.Fatalf("%q: fast parser refused valid input: %v", data, errFast)
		}
		if errFast == nil && errSlow != nil {
			t.Fatalf("%q: fast parser accepted invalid input: %v", data, errSlow)
		}
		if errFast == nil && len(fast) != len(slow) {
			t.Fatalf("%q: %v vs %v", data, fast, slow)
		}
		for i := range fast {
			if fast[i] != slow[i] {
				t.Fatalf("%q: element %d %v vs %v", data, i, fast[i], slow[i])
			}
		}
	})
}

// FuzzRecordLine feeds arbitrary lines to the import decoder: it never
// panics, and what it accepts has a valid id.
//
// It also checks that decodeCutVector, which cuts "vector_b64" out before
// encoding/json sees the line, answers exactly as decodeStrict alone does,
// for a record and for a search (the same line read as either).
func FuzzRecordLine(f *testing.F) {
	f.Add([]byte(`{"id":"a","vector":[1,2],"metadata":{"k":"v"}}`))
	f.Add([]byte(`{"id":"a","vector_b64":"AACAPw=="}`))
	f.Add([]byte(`{"id":1}`))
	f.Add([]byte(`{"id":"a","vector_b64":"AACAPw==","vector_b64":"AAAAAA=="}`))
	f.Add([]byte(`{"id":"a","vector_b64":"AACAPw==","VECTOR_B64":null}`))
	f.Add([]byte(`{"id":"a","vector_b64":"AACAPw==","vector":[1]}`))
	f.Add([]byte(`{"id":"a","vector_b64":"AACAPw==","bogus":1}`))
	f.Add([]byte(`{"id":"a","vector_b64":"AACAP"}`))
	f.Add([]byte(`{"id":"a","vector_b64":""}`))
	f.Add([]byte(`{"VECTOR_B64":"AAAAAA==","vector_b64":"AACAPw==","k":3}`))
	f.Add([]byte(`{"vector_b64":5}`))
	f.Add([]byte(`{"vector_b64":"/////w==","k":1}`)) // a NaN, equal to itself bit for bit
	f.Add([]byte(`{"vector_b64":"AACAPw==","filter":{"label":{"$in":[1,2]}},"k":2}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		in, err := decodeRecordLine(line)
		if err == nil && engine.ValidID(in.ID) != nil {
			t.Fatalf("%q: accepted with invalid id %q", line, in.ID)
		}
		var whole wireRecordIn
		wantErr := decodeStrict(line, &whole)
		var want engine.RecordInput
		if wantErr == nil {
			want, wantErr = whole.toInput("")
		}
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !sameBits(in.Vector, want.Vector) || !reflect.DeepEqual(withoutVector(in), withoutVector(want)) {
			t.Fatalf("%q:\ncut   %+v %v\nwhole %+v %v", line, in, err, want, wantErr)
		}

		query := func(decode func([]byte, *wireSearch) error) (*engine.Query, error) {
			var s wireSearch
			if err := decode(line, &s); err != nil {
				return nil, err
			}
			q, _, err := s.query()
			return q, err
		}
		q, err := query(decodeCutVector)
		wantQ, wantErr := query(func(b []byte, s *wireSearch) error { return decodeStrict(b, s) })
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || (q == nil) != (wantQ == nil) ||
			q != nil && (!sameBits(q.Vector, wantQ.Vector) || !reflect.DeepEqual(withoutQueryVector(*q), withoutQueryVector(*wantQ))) {
			t.Fatalf("%q as a search:\ncut   %+v %v\nwhole %+v %v", line, q, err, wantQ, wantErr)
		}
	})
}

// sameBits reports whether a and b hold the same float32s bit for bit:
// reflect.DeepEqual finds a NaN unequal to itself.
func sameBits(a, b []float32) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

func withoutVector(in engine.RecordInput) engine.RecordInput { in.Vector = nil; return in }

func withoutQueryVector(q engine.Query) engine.Query { q.Vector = nil; return q }
