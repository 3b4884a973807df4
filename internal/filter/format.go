package filter

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// This file renders compiled filters back to JSON for Filter.String. The form
// is canonical: the same filter always renders the same way, and parsing the
// rendering yields a filter with the same rendering.

// appendObject renders n as a filter object.
func appendObject(b []byte, n node) []byte {
	switch n := n.(type) {
	case matchAll:
		return append(b, "{}"...)
	case andNode:
		// Render an AND as one object's members (the implicit AND) when
		// their keys differ, which is the common case; otherwise as $and.
		if n.distinctKeys() {
			b = append(b, '{')
			for i, c := range n {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendMember(b, c)
			}
			return append(b, '}')
		}
	}
	return append(appendMember(append(b, '{'), n), '}')
}

func appendMember(b []byte, n node) []byte {
	b = appendString(b, n.key())
	b = append(b, ':')
	return n.appendValue(b)
}

func (matchAll) key() string                 { return "$and" }
func (matchAll) appendValue(b []byte) []byte { return append(b, "[{}]"...) }

func (andNode) key() string { return "$and" }
func (n andNode) appendValue(b []byte) []byte {
	return appendObjects(b, n)
}

// distinctKeys reports whether no two children render under the same key.
func (n andNode) distinctKeys() bool {
	for i := range n {
		for j := range i {
			if n[i].key() == n[j].key() {
				return false
			}
		}
	}
	return true
}

func (orNode) key() string                   { return "$or" }
func (n orNode) appendValue(b []byte) []byte { return appendObjects(b, n) }

func appendObjects(b []byte, nodes []node) []byte {
	b = append(b, '[')
	for i, c := range nodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendObject(b, c)
	}
	return append(b, ']')
}

func (notNode) key() string                   { return "$not" }
func (n notNode) appendValue(b []byte) []byte { return appendObject(b, n.child) }

func (n *fieldNode) key() string { return n.name }

func (n *fieldNode) appendValue(b []byte) []byte {
	// A lone $eq whose operand is not an object renders as the bare literal;
	// an object literal must keep its $eq, or operator-looking keys inside
	// it could be read back as operators.
	if len(n.conds) == 1 && n.conds[0].op == opEq && n.conds[0].operand.kind != kindObject {
		return appendValue(b, &n.conds[0].operand)
	}
	b = append(b, '{')
	for i := range n.conds {
		if i > 0 {
			b = append(b, ',')
		}
		c := &n.conds[i]
		b = appendString(b, opNames[c.op])
		b = append(b, ':')
		b = appendValue(b, &c.operand)
	}
	return append(b, '}')
}

func appendValue(b []byte, v *value) []byte {
	switch v.kind {
	case kindNull:
		return append(b, "null"...)
	case kindBool:
		return strconv.AppendBool(b, v.b)
	case kindNumber:
		return appendNumber(b, v.num)
	case kindString:
		return appendString(b, v.str)
	case kindArray:
		b = append(b, '[')
		for i := range v.items {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, &v.items[i])
		}
		return append(b, ']')
	case kindObject:
		b = append(b, '{')
		for i := range v.members {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v.members[i].key)
			b = append(b, ':')
			b = appendValue(b, &v.members[i].val)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// appendNumber writes f in the shortest form that reads back exactly, plain
// decimal for everyday magnitudes (as encoding/json does).
func appendNumber(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		// Parse rejects these; never write invalid JSON regardless.
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-07 to e-7, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString writes s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid JavaScript in older engines; escaping
			// keeps logs safe to paste.
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
