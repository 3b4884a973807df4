package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzWSMessage checks the WebSocket message parser: it never panics, every
// refusal maps to a client error with a message, and what it accepts is a
// known operation with the fields that operation requires, which encodes
// and parses back to itself.
func FuzzWSMessage(f *testing.F) {
	for _, s := range []string{
		`{"op":"get","id":"1","collection":"c","record_id":"a","vector_b64":true}`,
		`{"op":"upsert","id":"2","collection":"c","body":{"records":[{"id":"a","vector":[1,2]}]}}`,
		`{"op":"delete","id":"3","collection":"c","record_id":"a"}`,
		`{"op":"search","id":"4","collection":"c","body":{"vector":[1,2],"k":3}}`,
		`{"op":"subscribe","id":"5","collections":["a","b"],"types":["record.upserted"],"from":7,"records":false}`,
		`{"op":"unsubscribe","id":"6","subscription":"s1"}`,
		`{"op":"get","id":7}`, `{"op":"fly","id":"x"}`, `{"id":"x"}`, `[]`, `null`, `{`, ``,
		`{"op":"get","id":"x","collection":"c","record_id":"a"} {}`,
		`{"op":"subscribe","id":"x","from":-1}`, `{"op":"get","id":"x","collection":"c","record_id":"a","body":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := parseWSRequest(data)
		if q == nil {
			t.Fatal("nil request")
		}
		if err != nil {
			ae := catalog(err)
			if ae.Status < 400 || ae.Status >= 500 || ae.Message == "" {
				t.Fatalf("refusal %d %s %q", ae.Status, ae.Code, ae.Message)
			}
			if id := q.id(); len(id) > wsMaxIDBytes {
				t.Fatalf("echoed id of %d bytes", len(id))
			}
			return
		}
		if !wsOps[q.Op] || q.ID == nil || *q.ID == "" || len(*q.ID) > wsMaxIDBytes {
			t.Fatalf("accepted %+v", q)
		}
		present := q.present()
		for _, name := range wsFields[q.Op].requires {
			if !contains(present, name) {
				t.Fatalf("accepted %s without %s", q.Op, name)
			}
		}
		again, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		q2, err := parseWSRequest(again)
		if err != nil {
			t.Fatalf("%s parsed, its encoding %s does not: %v", data, again, err)
		}
		if again2, _ := json.Marshal(q2); !bytes.Equal(again, again2) {
			t.Fatalf("round trip: %s → %s", again, again2)
		}
	})
}
