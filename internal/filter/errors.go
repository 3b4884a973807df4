package filter

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error Parse returns. The HTTP layer maps it to
// invalid_argument (400).
var ErrInvalid = errors.New("hippo: invalid filter")

// Error is the concrete type of every error Parse returns. It wraps ErrInvalid,
// so callers test with errors.Is(err, filter.ErrInvalid) and use errors.As only
// when they want Path separately (for example in an API error's details).
type Error struct {
	// Path is where in the filter document the problem is, written as object
	// keys joined by "." and array indexes in brackets, such as
	// `$and[1].score`. It is empty for the document's top level.
	Path string
	// Reason says what is wrong, such as `$gte needs a number or string, got a bool`.
	Reason string
}

// Error returns "hippo: invalid filter: PATH: REASON", or without "PATH: " at
// the top level.
func (e *Error) Error() string {
	if e.Path == "" {
		return ErrInvalid.Error() + ": " + e.Reason
	}
	return ErrInvalid.Error() + ": " + e.Path + ": " + e.Reason
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// pathElem is one step of a location in the filter document: an object key, or
// an array index when index >= 0.
type pathElem struct {
	key   string
	index int
}

func keyElem(key string) pathElem { return pathElem{key: key, index: -1} }
func indexElem(i int) pathElem    { return pathElem{index: i} }

// with returns path extended by elems. It always copies, so sibling calls
// never share (and overwrite) a backing array.
func with(path []pathElem, elems ...pathElem) []pathElem {
	out := make([]pathElem, len(path), len(path)+len(elems))
	copy(out, path)
	return append(out, elems...)
}

func formatPath(path []pathElem) string {
	var b strings.Builder
	for i, e := range path {
		if e.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(displayKey(e.key))
	}
	return b.String()
}

// displayKey writes a key bare when that is unambiguous and readable, and as a
// quoted Go string otherwise (empty, spaces, brackets, quotes, control bytes).
func displayKey(key string) string {
	if key == "" {
		return `""`
	}
	for _, r := range key {
		if r <= ' ' || r == '"' || r == '[' || r == ']' || r == '\\' || r == 0x7f || r == 0xfffd {
			return strconv.Quote(key)
		}
	}
	return key
}

func errorAt(path []pathElem, reason string) error {
	return &Error{Path: formatPath(path), Reason: reason}
}
