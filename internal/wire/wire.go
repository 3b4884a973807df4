// Package wire encodes records and change events as the HTTP API shows them
// (docs/api.md), without reflection. Both the request handlers and the change
// feed use it, so a record looks the same wherever it appears.
package wire

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hippo-db/hippo/internal/store"
)

// AppendRecord appends a record as a JSON object. With b64 the vector is
// "vector_b64" (base64 of little-endian float32) instead of "vector".
//
// encoding/json would format the vector through a Marshaler and then re-scan
// and compact its output; on a 784-dimension record that doubled the cost of
// a get.
func AppendRecord(b []byte, r *store.Record, b64 bool) []byte {
	b = slices.Grow(b, recordSize(r, b64))
	b = append(b, `{"id":`...)
	b = AppendString(b, r.ID)
	if b64 {
		b = append(b, `,"vector_b64":"`...)
		b = AppendVectorB64(b, r.Vector)
		b = append(b, '"')
	} else {
		b = append(b, `,"vector":`...)
		b = AppendVector(b, r.Vector)
	}
	if r.Text != "" {
		b = append(b, `,"text":`...)
		b = AppendString(b, r.Text)
	}
	if len(r.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = append(b, r.Metadata...) // stored compacted
	}
	b = append(b, `,"created_at":"`...)
	b = r.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","updated_at":"`...)
	b = r.UpdatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	return append(b, '}')
}

// recordSize is about the length of r's JSON, so that it is appended
// without the buffer growing on the way: the members' names and time
// stamps, the strings, and each vector element at most 15 bytes in decimal
// ("-1.2345678e-38,").
func recordSize(r *store.Record, b64 bool) int {
	n := 160 + len(r.ID) + len(r.Text) + len(r.Metadata)
	if b64 {
		return n + base64.StdEncoding.EncodedLen(4*len(r.Vector))
	}
	return n + 15*len(r.Vector)
}

// AppendVector appends v as a JSON array in the shortest float32 form.
func AppendVector(b []byte, v []float32) []byte {
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	return append(b, ']')
}

// AppendVectorB64 appends v as standard base64 of little-endian float32.
func AppendVectorB64(b []byte, v []float32) []byte {
	b = slices.Grow(b, base64.StdEncoding.EncodedLen(4*len(v)))
	// In chunks of whole 3-byte groups through a buffer on the stack: the
	// chunks' encodings join without padding, and nothing is allocated.
	var raw [768]byte
	for len(v) > 0 {
		n := min(len(v), len(raw)/4)
		for i, f := range v[:n] {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
		}
		b = base64.StdEncoding.AppendEncode(b, raw[:4*n])
		v = v[n:]
	}
	return b
}

// AppendString appends s as a JSON string. Plain printable ASCII, the common
// case for ids and names, is copied; anything else goes through
// encoding/json so escaping matches it exactly.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// AppendEvent appends a change event as a JSON object:
// {"seq","type","collection","id"?,"time","record"?}. record is the version
// an upsert wrote, or nil to leave it out (not wanted, or replaced since).
func AppendEvent(b []byte, e *store.Event, record *store.Record, b64 bool) []byte {
	n := 128 + len(e.Collection.Name) + len(e.RecordID)
	if record != nil {
		n += recordSize(record, b64)
	}
	b = slices.Grow(b, n)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"type":"`...)
	b = append(b, e.Op.String()...)
	b = append(b, `","collection":`...)
	b = AppendString(b, e.Collection.Name)
	if e.RecordID != "" {
		b = append(b, `,"id":`...)
		b = AppendString(b, e.RecordID)
	}
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if record != nil {
		b = append(b, `,"record":`...)
		b = AppendRecord(b, record, b64)
	}
	return append(b, '}')
}
