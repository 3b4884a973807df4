// Package jsonscan finds a member of a JSON object without decoding the
// object, so that a large string member (a vector in base64) can be decoded
// once, straight from the input, while encoding/json decodes the small rest.
// It uses only the standard library: the Go client uses it too.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
)

// StringMember finds the first member named name of the JSON object b whose
// value is a string without escapes or control characters, and returns the
// range b[start:end] of the member (name, colon and value) and the string's
// content. It walks only the members before it, with the lexical rules of
// JSON (strings and their escapes, nesting); anything unexpected, a name
// with escapes, or a value of another kind returns ok false.
//
// Replacing the member by another (Cut) leaves a document that is
// valid JSON exactly when b is, so a caller can decode the rest with
// encoding/json and still refuse what encoding/json would refuse.
func StringMember(b []byte, name string) (start, end int, content []byte, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, 0, nil, false
	}
	for {
		i = skipSpace(b, i+1)
		if i >= len(b) || b[i] != '"' {
			return 0, 0, nil, false
		}
		keyAt := i
		keyEnd := endOfString(b, i)
		if keyEnd < 0 {
			return 0, 0, nil, false
		}
		key := b[i+1 : keyEnd-1]
		i = skipSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, nil, false
		}
		i = skipSpace(b, i+1)
		if string(key) == name {
			if i >= len(b) || b[i] != '"' {
				return 0, 0, nil, false
			}
			n := bytes.IndexByte(b[i+1:], '"')
			if n < 0 {
				return 0, 0, nil, false
			}
			content = b[i+1 : i+1+n]
			// Escapes and control characters, which JSON refuses in a
			// string, are left to encoding/json.
			if bytes.IndexByte(content, '\\') >= 0 || hasControl(content) {
				return 0, 0, nil, false
			}
			return keyAt, i + n + 2, content, true
		}
		if i = skipValue(b, i); i < 0 {
			return 0, 0, nil, false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ',' {
			return 0, 0, nil, false
		}
	}
}

// StringContent returns the content of the JSON string b, as an
// UnmarshalJSON method receives it from encoding/json (which has checked
// it): b's own bytes between the quotes when it has no escapes, else the
// unescaped string; anything not a string is json.Unmarshal's error.
func StringContent(b []byte) ([]byte, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		return b[1 : len(b)-1], nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// Cut finds the member named name as StringMember does and returns a copy
// of b with it replaced by member, and the string's content (within b).
func Cut(b []byte, name, member string) (rest, content []byte, ok bool) {
	start, end, content, ok := StringMember(b, name)
	if !ok {
		return nil, nil, false
	}
	return replace(b, start, end, member), content, true
}

// replace returns a copy of b with b[start:end] replaced by member.
func replace(b []byte, start, end int, member string) []byte {
	out := make([]byte, 0, start+len(member)+len(b)-end)
	return append(append(append(out, b[:start]...), member...), b[end:]...)
}

// hasControl reports whether b holds a byte below 0x20, eight bytes at a
// time: a byte below 0x20 is the only kind whose subtraction of 0x20
// borrows from its top bit while that bit was clear.
func hasControl(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x-0x20*ones)&^x&highs != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// endOfString returns the index just past the string that opens at b[i], or
// -1 if it does not end.
func endOfString(b []byte, i int) int {
	for j := i + 1; ; {
		n := bytes.IndexByte(b[j:], '"')
		if n < 0 {
			return -1
		}
		q := j + n
		escapes := 0
		for k := q - 1; k > i && b[k] == '\\'; k-- {
			escapes++
		}
		if escapes%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just past the value that starts at b[i], or
// -1. It follows strings and nesting only; encoding/json checks the rest.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = endOfString(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default:
		for i < len(b) && strings.IndexByte(",}] \t\r\n", b[i]) < 0 {
			i++
		}
		return i
	}
}
