package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/jsonscan"
	"github.com/hippo-db/hippo/internal/wire"
)

// jsonVector is a vector as a JSON array of numbers. It parses without
// reflection: encoding/json's generic path costs several times more per
// element, and vectors are most of every request's bytes.
type jsonVector []float32

// UnmarshalJSON implements json.Unmarshaler.
func (v *jsonVector) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*v = nil
		return nil
	}
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return fmt.Errorf("vector must be an array of numbers")
	}
	b = bytes.TrimSpace(b[1 : len(b)-1])
	// Count commas first so the slice is allocated once.
	n := bytes.Count(b, []byte{','}) + 1
	if len(b) == 0 {
		n = 0
	}
	if n > engine.MaxDimension {
		return fmt.Errorf("vector has more than %d elements", engine.MaxDimension)
	}
	out := make([]float32, 0, n)
	for len(b) > 0 {
		i := bytes.IndexByte(b, ',')
		tok := b
		if i >= 0 {
			tok, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		tok = bytes.TrimSpace(tok)
		f, err := strconv.ParseFloat(string(tok), 32)
		if err != nil || len(tok) == 0 || tok[0] == '+' || tok[0] == '.' {
			return fmt.Errorf("vector[%d] is not a number: %.20q", len(out), tok)
		}
		out = append(out, float32(f))
	}
	*v = out
	return nil
}

// MarshalJSON implements json.Marshaler with the shortest float32 form.
func (v jsonVector) MarshalJSON() ([]byte, error) {
	return wire.AppendVector(make([]byte, 0, 2+len(v)*10), v), nil
}

// decodeVectorB64 decodes standard base64 of little-endian float32 values.
func decodeVectorB64(s []byte) ([]float32, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > 4*engine.MaxDimension+3 {
		return nil, fmt.Errorf("vector_b64 has more than %d elements", engine.MaxDimension)
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(raw, s)
	if err != nil {
		return nil, fmt.Errorf("vector_b64 is not valid base64: %v", err)
	}
	raw = raw[:n]
	if len(raw)%4 != 0 {
		return nil, fmt.Errorf("vector_b64 holds %d bytes, not a multiple of 4", len(raw))
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// vectorB64Field is a "vector_b64" member of a request: its string's
// content, nil when absent or null, and how many members encoding/json
// decoded into it (null included), for decodeCutVector.
type vectorB64Field struct {
	b64     []byte
	members int
}

func (f *vectorB64Field) UnmarshalJSON(b []byte) error {
	f.members++
	f.b64 = nil
	if string(b) == "null" {
		return nil
	}
	s, err := jsonscan.StringContent(b)
	if err != nil {
		return err // encoding/json names the field
	}
	f.b64 = append(make([]byte, 0, len(s)), s...) // b is encoding/json's, for this call only; not nil when empty
	return nil
}

// decodeCutVector decodes a request's JSON object into body as decodeStrict
// does, with its "vector_b64" string cut out by jsonscan and taken from the
// input, rather than scanned twice and copied by encoding/json (a
// 784-dimension vector is 4 KiB of base64 in a body of about 4.2 KiB). The
// member is replaced by "vector_b64":null; when the rest is refused, or
// another member went into the field (encoding/json matches names of any
// case, and keeps the last), data is decoded again whole, so the answer is
// decodeStrict's in every case. The vector then points into data.
func decodeCutVector[T any, P interface {
	*T
	vectorB64() *vectorB64Field
}](data []byte, body P) error {
	if rest, content, ok := jsonscan.Cut(data, "vector_b64", `"vector_b64":null`); ok {
		var cut T
		f := P(&cut).vectorB64()
		if decodeStrict(rest, P(&cut)) == nil && f.members == 1 {
			f.b64 = content
			*body = cut
			return nil
		}
	}
	return decodeStrict(data, body)
}

// decodeVectorBody reads a JSON body of at most limit bytes into body, as
// decodeBody does, through decodeCutVector.
func decodeVectorBody[T any, P interface {
	*T
	vectorB64() *vectorB64Field
}](w http.ResponseWriter, r *http.Request, limit int64, body P) error {
	data, err := readJSONBody(w, r, limit)
	if err != nil {
		return err
	}
	return decodeCutVector(data, body)
}

// pickVector returns the vector given either as "vector" or "vector_b64"
// (b64 nil when absent).
func pickVector(plain jsonVector, b64 []byte) ([]float32, error) {
	switch {
	case b64 != nil && plain != nil:
		return nil, fmt.Errorf("give either vector or vector_b64, not both")
	case b64 != nil:
		return decodeVectorB64(b64)
	}
	return plain, nil
}
