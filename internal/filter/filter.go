package filter

import (
	"fmt"
)

// Limits on filter documents, so that parsing and matching a filter costs time
// and memory bounded by the request size.
const (
	// MaxSize is the largest filter document Parse accepts, in bytes.
	MaxSize = 64 << 10
	// MaxDepth is how deeply objects and arrays may nest in a filter
	// document; the top-level object is level 1, so {"$and": [{"a": 1}]}
	// has depth 3. It also bounds Match's recursion.
	MaxDepth = 16
	// MaxInList is the most elements an $in or $nin array may have.
	MaxInList = 1024
	// MaxConditions is the most conditions a filter may have: each operator
	// of each field counts one (a bare literal is one $eq), and so does each
	// array or object element of an $in or $nin list (scalar elements are
	// looked up in a map and cost nothing extra). Match's worst-case cost per
	// record is about conditions times the size of the metadata, so this
	// bounds the work one filter can demand.
	MaxConditions = 256
)

// Filter is a compiled metadata filter. It is immutable after Parse and safe
// for concurrent use by any number of goroutines.
//
// A nil *Filter and the zero Filter match every record, like an absent filter.
type Filter struct {
	root node // nil only in the zero Filter
}

// Parse compiles a filter document, a JSON object in the operator form
// described in the package documentation. Empty input (or only JSON
// whitespace), `null` and `{}` give a Filter that matches everything; Parse
// never returns a nil *Filter with a nil error.
//
// Every error wraps ErrInvalid and is an *Error saying what is wrong and where.
// Parse does not retain raw.
func Parse(raw []byte) (*Filter, error) {
	if len(raw) > MaxSize {
		return nil, errorAt(nil, fmt.Sprintf("filter is %d bytes, more than MaxSize (%d)", len(raw), MaxSize))
	}
	if isJSONSpace(raw) {
		return &Filter{root: matchAll{}}, nil
	}
	doc, ok, err := decodeDocument(raw)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &Filter{root: matchAll{}}, nil
	}
	var c compiler
	root, err := c.compileFilter(doc, nil)
	if err != nil {
		return nil, err
	}
	return &Filter{root: root}, nil
}

// isJSONSpace reports whether b is empty or only JSON whitespace. (Not
// bytes.TrimSpace: JSON does not count \v, \f or U+0085 as whitespace.)
func isJSONSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// Match reports whether a record's metadata satisfies the filter. metadata is
// as encoding/json decodes a JSON object into map[string]any; a nil map is a
// record without metadata. Match on a nil *Filter returns true.
//
// Match does not allocate or modify metadata.
func (f *Filter) Match(metadata map[string]any) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.match(metadata)
}

// MatchesAll reports whether the filter is trivially true (nil, empty, `null`
// or `{}`, possibly wrapped in $and/$or), so callers can skip filtering.
func (f *Filter) MatchesAll() bool {
	if f == nil || f.root == nil {
		return true
	}
	_, all := f.root.(matchAll)
	return all
}

// String returns the filter in a canonical compact JSON form: operators
// spelled out, nested $and/$or flattened, numbers in shortest form. Parsing
// the result gives an equivalent Filter with the same String, unless the
// rendering exceeds MaxSize or MaxDepth (it can be longer and, for literal
// objects, one level deeper than the input). A nil or zero Filter gives "{}".
func (f *Filter) String() string {
	if f == nil || f.root == nil {
		return "{}"
	}
	return string(appendObject(nil, f.root))
}
