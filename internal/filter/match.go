package filter

import (
	"encoding/json"
	"strconv"
)

// node is one compiled filter expression. Implementations are immutable.
type node interface {
	// match evaluates the node against a record's metadata. It must not
	// allocate: it runs once per candidate record in the search hot path.
	match(metadata map[string]any) bool
	// key and appendValue render the node as one member of a filter object
	// ("key": value), for String.
	key() string
	appendValue(b []byte) []byte
}

// matchAll is the empty filter.
type matchAll struct{}

func (matchAll) match(map[string]any) bool { return true }

// andNode matches when every child does. Constructed only by newAnd, so it has
// at least two children, none of them an andNode or matchAll.
type andNode []node

func (n andNode) match(metadata map[string]any) bool {
	for _, c := range n {
		if !c.match(metadata) {
			return false
		}
	}
	return true
}

// orNode matches when any child does. Constructed only by newOr, so it has at
// least two children, none of them an orNode or matchAll.
type orNode []node

func (n orNode) match(metadata map[string]any) bool {
	for _, c := range n {
		if c.match(metadata) {
			return true
		}
	}
	return false
}

type notNode struct{ child node }

func (n notNode) match(metadata map[string]any) bool { return !n.child.match(metadata) }

// fieldNode looks up one field and tests all its conditions (ANDed) against
// the value found, so a field with several operators is looked up once.
type fieldNode struct {
	name     string   // as written, for String
	segments []string // key split on ".", at Parse time
	conds    []cond   // at least one
}

func (n *fieldNode) match(metadata map[string]any) bool {
	v, present := lookup(metadata, n.segments)
	for i := range n.conds {
		if !n.conds[i].eval(v, present) {
			return false
		}
	}
	return true
}

// lookup walks segments through nested objects. A missing key, or a
// non-object (arrays included) where an object is needed, means absent.
func lookup(metadata map[string]any, segments []string) (any, bool) {
	v, ok := metadata[segments[0]]
	for _, s := range segments[1:] {
		if !ok {
			return nil, false
		}
		obj, isObj := v.(map[string]any)
		if !isObj {
			return nil, false
		}
		v, ok = obj[s]
	}
	return v, ok
}

type op uint8

const (
	opEq op = iota
	opNe
	opGt
	opGte
	opLt
	opLte
	opIn
	opNin
	opExists
)

var opNames = [...]string{
	opEq:     "$eq",
	opNe:     "$ne",
	opGt:     "$gt",
	opGte:    "$gte",
	opLt:     "$lt",
	opLte:    "$lte",
	opIn:     "$in",
	opNin:    "$nin",
	opExists: "$exists",
}

// cond is one field operator with its operand.
type cond struct {
	op      op
	operand value   // the literal; for $exists a bool, for $gt.. a number or string
	list    *inList // $in and $nin only
}

// eval applies the condition to the field's value v; present is false when
// the field is absent (v is then nil).
func (c *cond) eval(v any, present bool) bool {
	switch c.op {
	case opEq:
		return present && equalOrContains(&c.operand, v)
	case opNe:
		return !present || !equalOrContains(&c.operand, v)
	case opIn:
		return present && c.list.match(v)
	case opNin:
		return !present || !c.list.match(v)
	case opExists:
		return present == c.operand.b
	}
	if !present {
		return false
	}
	// $gt $gte $lt $lte: numbers with numbers, strings with strings; any
	// other pairing (arrays included) does not match.
	if c.operand.kind == kindNumber {
		x, ok := toFloat(v)
		if !ok {
			return false
		}
		return compare(c.op, x < c.operand.num, x == c.operand.num, x > c.operand.num)
	}
	s, ok := v.(string)
	if !ok {
		return false
	}
	return compare(c.op, s < c.operand.str, s == c.operand.str, s > c.operand.str)
}

// compare turns the ordering of the stored value relative to the operand into
// the answer for op. The three flags keep NaN (possible in maps not built by
// encoding/json) unordered: NaN matches none of $gt $gte $lt $lte.
func compare(o op, less, equal, greater bool) bool {
	switch o {
	case opGt:
		return greater
	case opGte:
		return greater || equal
	case opLt:
		return less
	case opLte:
		return less || equal
	}
	return false
}

// equalOrContains reports whether v equals lit or, when v is an array, whether
// one of its elements does (one level: elements of nested arrays are not
// searched).
func equalOrContains(lit *value, v any) bool {
	if equal(lit, v) {
		return true
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if equal(lit, e) {
				return true
			}
		}
	}
	return false
}

// equal compares a literal with a decoded metadata value: numbers
// numerically, strings byte for byte, arrays element by element in order,
// objects by key set and values (member order does not matter).
func equal(lit *value, v any) bool {
	switch lit.kind {
	case kindString:
		s, ok := v.(string)
		return ok && s == lit.str
	case kindNumber:
		x, ok := toFloat(v)
		return ok && x == lit.num
	case kindBool:
		b, ok := v.(bool)
		return ok && b == lit.b
	case kindNull:
		return v == nil
	case kindArray:
		arr, ok := v.([]any)
		if !ok || len(arr) != len(lit.items) {
			return false
		}
		for i := range lit.items {
			if !equal(&lit.items[i], arr[i]) {
				return false
			}
		}
		return true
	case kindObject:
		obj, ok := v.(map[string]any)
		// Literal keys are unique (Parse rejects duplicates), so equal
		// lengths plus every literal key present means equal key sets.
		if !ok || len(obj) != len(lit.members) {
			return false
		}
		for i := range lit.members {
			mv, ok := obj[lit.members[i].key]
			if !ok || !equal(&lit.members[i].val, mv) {
				return false
			}
		}
		return true
	}
	return false
}

// toFloat returns v as a number. encoding/json decodes numbers to float64;
// the other cases let callers that build metadata by hand (or decode with
// UseNumber) get the same answers. Integers beyond ±2^53 lose precision.
func toFloat(v any) (float64, bool) {
	// float64 first and outside the switch: it is nearly always the type.
	if f, ok := v.(float64); ok {
		return f, true
	}
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	}
	return 0, false
}

// inListIndexMin is the list length from which $in/$nin index their elements
// in maps; below it a linear scan is faster than hashing.
const inListIndexMin = 8

// inList is the operand of $in or $nin.
type inList struct {
	items []value // as written, for String and for short lists

	// Set only for lists of at least inListIndexMin elements, so membership
	// of a scalar costs one map lookup instead of a scan.
	indexed    bool
	strs       map[string]struct{}
	nums       map[float64]struct{} // +0 and -0 are the same key, as they are equal
	hasTrue    bool
	hasFalse   bool
	hasNull    bool
	composites []*value // array and object elements, compared by scan
}

func newInList(items []value) *inList {
	l := &inList{items: items}
	if len(items) < inListIndexMin {
		return l
	}
	l.indexed = true
	l.strs = make(map[string]struct{})
	l.nums = make(map[float64]struct{})
	for i := range items {
		it := &items[i]
		switch it.kind {
		case kindString:
			l.strs[it.str] = struct{}{}
		case kindNumber:
			l.nums[it.num] = struct{}{}
		case kindBool:
			if it.b {
				l.hasTrue = true
			} else {
				l.hasFalse = true
			}
		case kindNull:
			l.hasNull = true
		default:
			l.composites = append(l.composites, it)
		}
	}
	return l
}

// match reports whether v equals an element of the list or, when v is an
// array, whether v or one of its elements does.
func (l *inList) match(v any) bool {
	if l.contains(v) {
		return true
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if l.contains(e) {
				return true
			}
		}
	}
	return false
}

func (l *inList) contains(v any) bool {
	if !l.indexed {
		for i := range l.items {
			if equal(&l.items[i], v) {
				return true
			}
		}
		return false
	}
	switch x := v.(type) {
	case string:
		_, ok := l.strs[x]
		return ok
	case float64:
		_, ok := l.nums[x]
		return ok
	case bool:
		if x {
			return l.hasTrue
		}
		return l.hasFalse
	case nil:
		return l.hasNull
	case []any, map[string]any:
		for _, c := range l.composites {
			if equal(c, v) {
				return true
			}
		}
		return false
	}
	if x, ok := toFloat(v); ok {
		_, ok := l.nums[x]
		return ok
	}
	return false
}
