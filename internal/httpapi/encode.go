package httpapi

import (
	"net/http"
	"strconv"

	"github.com/hippo-db/hippo/internal/store"
	"github.com/hippo-db/hippo/internal/wire"
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

// writeRecord sends one record as the JSON answer.
func writeRecord(w http.ResponseWriter, rec *store.Record, b64 bool) {
	body := wire.AppendRecord(nil, rec, b64) // sized for the newline too
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
