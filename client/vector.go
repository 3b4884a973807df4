package client

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hippo-db/hippo/internal/jsonscan"
)

// encodeVector returns the "vector_b64" form of v: standard base64 of the
// little-endian IEEE 754 bytes of each element. It is about a third of the size
// of the JSON array form, and the server decodes it without parsing numbers.
func encodeVector(v []float32) string {
	raw := make([]byte, 0, 4*len(v))
	for _, f := range v {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// vectorB64 is a "vector_b64" member of an answer. Its UnmarshalJSON decodes
// the base64 straight from the JSON bytes: a 784-dimension vector spares a
// 4 KiB string and a pass over it.
type vectorB64 []float32

func (v *vectorB64) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = nil
		return nil
	}
	src, err := jsonscan.StringContent(b)
	if err != nil {
		return err
	}
	out, err := decodeVectorB64(src)
	*v = out
	return err
}

// vectorB64Member is a "vector_b64" member that notes it was present, even
// as null.
type vectorB64Member struct {
	v   vectorB64
	set bool
}

func (m *vectorB64Member) UnmarshalJSON(b []byte) error {
	m.set = true
	return m.v.UnmarshalJSON(b)
}

// decodeVectorB64 decodes the content of a "vector_b64" string.
func decodeVectorB64(src []byte) ([]float32, error) {
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(raw, src)
	if err != nil {
		return nil, fmt.Errorf("hippo: decode vector_b64: %w", err)
	}
	if n%4 != 0 {
		return nil, fmt.Errorf("hippo: decode vector_b64: %d bytes is not a whole number of float32 values", n)
	}
	out := make([]float32, n/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// cutVectorB64 finds the first "vector_b64" member of the JSON object b,
// when its value is a string without escapes, and returns b with that member
// replaced by one named "" (which no field takes) and the string's content.
// Record.decode says when the cut answer is not taken.
// encoding/json scans a 784-dimension vector's 4 KiB of base64 twice, to
// check the document and to decode it, at about 200 MB/s; cut out, the
// vector is decoded once, straight from b, and the small rest is left to
// encoding/json, which still checks all of it.
func cutVectorB64(b []byte) (rest, content []byte, ok bool) {
	return jsonscan.Cut(b, "vector_b64", `"":0`)
}
