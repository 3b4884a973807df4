package httpapi

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hippo-db/hippo/internal/store"
)

// vectorsAsB64 reports whether the client asked for vectors as base64
// (`?vector_b64=1`), which is several times cheaper to produce and parse.
func vectorsAsB64(r *http.Request) bool {
	switch r.URL.Query().Get("vector_b64") {
	case "1", "true":
		return true
	}
	return false
}

// appendRecordJSON encodes a record without reflection. encoding/json would
// format the vector through MarshalJSON and then re-scan and compact its
// output; on a 784-dimension record that doubled the cost of a get.
func appendRecordJSON(b []byte, r *store.Record, b64 bool) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, r.ID)
	if b64 {
		b = append(b, `,"vector_b64":"`...)
		b = appendVectorB64(b, r.Vector)
		b = append(b, '"')
	} else {
		b = append(b, `,"vector":`...)
		b = appendVector(b, r.Vector)
	}
	if r.Text != "" {
		b = append(b, `,"text":`...)
		b = appendJSONString(b, r.Text)
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

func appendVectorB64(b []byte, v []float32) []byte {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.AppendEncode(b, raw)
}

// appendJSONString appends s as a JSON string. Plain printable ASCII, the
// common case for ids, is copied; anything else goes through encoding/json
// so escaping matches it exactly.
func appendJSONString(b []byte, s string) []byte {
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

// writeRecord sends one record as the JSON answer.
func writeRecord(w http.ResponseWriter, rec *store.Record, b64 bool) {
	body := appendRecordJSON(make([]byte, 0, 256+12*len(rec.Vector)+len(rec.Text)+len(rec.Metadata)), rec, b64)
	writeBody(w, http.StatusOK, append(body, '\n'))
}

// writeBody sends a complete JSON answer with its Content-Length, so that a
// body over net/http's 2 KiB pre-chunking buffer still goes out in one piece
// rather than chunked (an extra write, and an extra wake-up for the client).
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
