package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// kind is the JSON type of a value.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "bool"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindArray:
		return "array"
	case kindObject:
		return "object"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// value is a decoded JSON value. Unlike map[string]any it keeps object members
// in input order (so errors and String follow the user's text) and it is the
// literal operand stored in compiled conditions, typed so that Match can switch
// on kind instead of on a dynamic type.
type value struct {
	kind    kind
	b       bool     // kindBool
	num     float64  // kindNumber
	str     string   // kindString
	items   []value  // kindArray
	members []member // kindObject: input order, keys unique
}

type member struct {
	key string
	val value
}

// describe names v's type for error messages.
func describe(v value) string {
	switch v.kind {
	case kindArray:
		if len(v.items) == 0 {
			return "an empty array"
		}
		return "an array"
	case kindObject:
		if len(v.members) == 0 {
			return "an empty object"
		}
		return "an object"
	case kindNull:
		return "null"
	}
	return "a " + v.kind.String()
}

// decoder turns the filter document into a value tree, enforcing MaxDepth and
// rejecting duplicate keys, which encoding/json's Unmarshal would silently
// resolve to the last one.
type decoder struct {
	raw  []byte
	dec  *json.Decoder
	path []pathElem // location of the value being decoded, for errors
}

// decodeDocument decodes raw, which must be a single JSON object or null.
// It returns ok=false for null.
func decodeDocument(raw []byte) (v value, ok bool, err error) {
	d := &decoder{raw: raw, dec: json.NewDecoder(bytes.NewReader(raw))}
	// Numbers arrive as text so that out-of-range ones (1e400) are rejected
	// rather than silently becoming ±Inf.
	d.dec.UseNumber()
	tok, err := d.dec.Token()
	if err != nil {
		return value{}, false, d.tokenError(err)
	}
	switch tok {
	case nil:
		// "null": match everything, like an absent filter.
	case json.Delim('{'):
		v, err = d.object(1)
		if err != nil {
			return value{}, false, err
		}
		ok = true
	default:
		what := "an array"
		if _, container := tok.(json.Delim); !container {
			top, err := d.scalarOrContainer(tok, 0)
			if err != nil {
				return value{}, false, err
			}
			what = describe(top)
		}
		return value{}, false, errorAt(nil, "filter must be a JSON object, got "+what)
	}
	if _, err := d.dec.Token(); err != io.EOF {
		// Whether the rest is a second value or garbage, describe it
		// as encoding/json would.
		return value{}, false, d.tokenError(errTrailingData)
	}
	return v, ok, nil
}

var errTrailingData = errors.New("unexpected data after the filter object")

// tokenError reports a syntax error found by json.Decoder.Token at the
// current path. Token's SyntaxError offsets are relative to the value being
// scanned rather than to the input, so the offset and wording come from a
// second, whole-input scan by json.Unmarshal (only on this error path; the
// input is at most MaxSize bytes). Offsets count bytes from 0.
func (d *decoder) tokenError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errorAt(d.path, "invalid JSON: unexpected end of input")
	}
	var syntax *json.SyntaxError
	if errors.As(json.Unmarshal(d.raw, new(struct{})), &syntax) {
		return errorAt(d.path, fmt.Sprintf("invalid JSON at byte %d: %s", max(syntax.Offset-1, 0), syntax.Error()))
	}
	return errorAt(d.path, "invalid JSON: "+err.Error())
}

// value decodes the next value; depth is the nesting level of the container
// holding it (the top-level object is level 1).
func (d *decoder) value(depth int) (value, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return value{}, d.tokenError(err)
	}
	return d.scalarOrContainer(tok, depth)
}

func (d *decoder) scalarOrContainer(tok json.Token, depth int) (value, error) {
	switch t := tok.(type) {
	case nil:
		return value{kind: kindNull}, nil
	case bool:
		return value{kind: kindBool, b: t}, nil
	case string:
		return value{kind: kindString, str: t}, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return value{}, errorAt(d.path, fmt.Sprintf("number %s is out of range", t))
		}
		return value{kind: kindNumber, num: f}, nil
	case json.Delim:
		if t == '{' || t == '[' {
			if depth >= MaxDepth {
				return value{}, errorAt(d.path, fmt.Sprintf("nested deeper than MaxDepth (%d)", MaxDepth))
			}
			if t == '{' {
				return d.object(depth + 1)
			}
			return d.array(depth + 1)
		}
	}
	// json.Decoder validates structure, so this is unreachable; an error is
	// still better than a panic.
	return value{}, errorAt(d.path, fmt.Sprintf("invalid JSON: unexpected token %v", tok))
}

// object decodes an object's members after its '{' up to and including '}'.
func (d *decoder) object(depth int) (value, error) {
	v := value{kind: kindObject}
	var seen map[string]struct{}
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return value{}, d.tokenError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return value{}, errorAt(d.path, fmt.Sprintf("invalid JSON: object key is %v", tok))
		}
		if seen == nil {
			seen = make(map[string]struct{})
		}
		if _, dup := seen[key]; dup {
			return value{}, errorAt(d.path, fmt.Sprintf("duplicate key %q", key))
		}
		seen[key] = struct{}{}
		d.path = append(d.path, keyElem(key))
		mv, err := d.value(depth)
		if err != nil {
			return value{}, err
		}
		d.path = d.path[:len(d.path)-1]
		v.members = append(v.members, member{key: key, val: mv})
	}
	if err := d.closing('}'); err != nil {
		return value{}, err
	}
	return v, nil
}

// array decodes an array's items after its '[' up to and including ']'.
func (d *decoder) array(depth int) (value, error) {
	v := value{kind: kindArray}
	for i := 0; d.dec.More(); i++ {
		d.path = append(d.path, indexElem(i))
		item, err := d.value(depth)
		if err != nil {
			return value{}, err
		}
		d.path = d.path[:len(d.path)-1]
		v.items = append(v.items, item)
	}
	if err := d.closing(']'); err != nil {
		return value{}, err
	}
	return v, nil
}

func (d *decoder) closing(want json.Delim) error {
	tok, err := d.dec.Token()
	if err != nil {
		return d.tokenError(err)
	}
	if tok != want {
		return errorAt(d.path, fmt.Sprintf("invalid JSON: expected %v, got %v", want, tok))
	}
	return nil
}
