package client

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
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

// decodeVector is the inverse of encodeVector.
func decodeVector(s string) ([]float32, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("hippo: decode vector_b64: %w", err)
	}
	if len(raw)%4 != 0 {
		return nil, fmt.Errorf("hippo: decode vector_b64: %d bytes is not a whole number of float32 values", len(raw))
	}
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v, nil
}
