package jsonscan

import (
	"encoding/json"
	"testing"
)

func TestStringMember(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: the member found, "" for none
	}{
		{`{"id":"a","vector_b64":"AAAA","text":"t"}`, `"vector_b64":"AAAA"`},
		{` { "m" : {"vector_b64":"x"} , "vector_b64" : "QQ==" } `, `"vector_b64" : "QQ=="`},
		{`{"t":"\"vector_b64\":\"x","vector_b64":"AAAA"}`, `"vector_b64":"AAAA"`},
		{`{"a":[1,{"b":"]}"}],"vector_b64":""}`, `"vector_b64":""`},
		{`{"vector_b64":"A\u0041"}`, ""},    // an escape
		{`{"vector_b64":null}`, ""},         // not a string
		{`{"vector\u005fb64":"AAAA"}`, ""},  // an escaped name
		{`{"a":1 "vector_b64":"AAAA"}`, ""}, // no comma
		{`{"a":"unterminated`, ""},
		{`["vector_b64","AAAA"]`, ""},
		{`{"vector_b64":"AA` + "\n" + `AA"}`, ""},
	} {
		start, end, content, ok := StringMember([]byte(tc.in), "vector_b64")
		got := ""
		if ok {
			got = tc.in[start:end]
			if want := got[len(got)-len(content)-1 : len(got)-1]; string(content) != want {
				t.Errorf("%s: content %q, want %q", tc.in, content, want)
			}
		}
		if got != tc.want {
			t.Errorf("%s: found %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzStringMember: replacing the member found by another leaves a document
// that is valid JSON exactly when the input is.
func FuzzStringMember(f *testing.F) {
	for _, seed := range []string{
		`{"id":"a","vector_b64":"AAAA","text":"t"}`,
		`{"m":{"vector_b64":"x"},"vector_b64":"QQ=="}`,
		`{"a":[1,{"b":"]}"}],"vector_b64":""}`,
		`{"a":[}],"vector_b64":"AAAA"}`,
		`{"a":tru,"vector_b64":"AAAA"}`,
		`{"vector_b64":"AAAA"}}`,
		`{"vector_b64":"AAAA"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		start, end, _, ok := StringMember(b, "vector_b64")
		if !ok {
			return
		}
		rest := replace(b, start, end, `"vector_b64":null`)
		if json.Valid(b) != json.Valid(rest) {
			t.Fatalf("%q valid %v, but %q valid %v", b, json.Valid(b), rest, json.Valid(rest))
		}
	})
}

func TestHasControl(t *testing.T) {
	for c := range 256 {
		for _, at := range []int{0, 5, 7, 8, 13, 16} {
			b := []byte("AAAAAAAAAAAAAAAAA")
			b[at] = byte(c)
			if got := hasControl(b); got != (c < 0x20) {
				t.Fatalf("byte %#x at %d: %v", c, at, got)
			}
		}
	}
}
