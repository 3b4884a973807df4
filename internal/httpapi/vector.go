package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/hippo-db/hippo/internal/engine"
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
