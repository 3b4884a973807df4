package filter

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
)

// decode decodes a JSON object the way the engine does, or fails the test.
func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test metadata %s: %v", s, err)
	}
	return m
}

func mustParse(t testing.TB, s string) *Filter {
	t.Helper()
	f, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return f
}

// matchCase is one filter evaluated against one metadata object.
type matchCase struct {
	filter, metadata string
	want             bool
}

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		f := mustParse(t, c.filter)
		if got := f.Match(decode(t, c.metadata)); got != c.want {
			t.Errorf("filter %s on %s: got %v, want %v (compiled %s)", c.filter, c.metadata, got, c.want, f)
		}
		// The canonical form must mean the same thing.
		g := mustParse(t, f.String())
		if got := g.Match(decode(t, c.metadata)); got != c.want {
			t.Errorf("String() %s of %s on %s: got %v, want %v", f, c.filter, c.metadata, got, c.want)
		}
	}
}

func TestEquality(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"kind": "fact"}`, `{"kind": "fact"}`, true},
		{`{"kind": "fact"}`, `{"kind": "note"}`, false},
		{`{"kind": "fact"}`, `{}`, false},
		{`{"kind": "fact"}`, `{"kind": null}`, false},
		{`{"kind": "fact"}`, `{"kind": "Fact"}`, false},
		{`{"kind": "fact"}`, `{"kind": "fact "}`, false},
		{`{"kind": {"$eq": "fact"}}`, `{"kind": "fact"}`, true},
		{`{"kind": {"$eq": "fact"}}`, `{"kind": "note"}`, false},
		// Numbers compare numerically, whatever their spelling.
		{`{"n": 1}`, `{"n": 1.0}`, true},
		{`{"n": 1e0}`, `{"n": 1}`, true},
		{`{"n": 100}`, `{"n": 1e2}`, true},
		{`{"n": -0}`, `{"n": 0}`, true},
		{`{"n": 0.1}`, `{"n": 0.10000000000000001}`, true},
		{`{"n": 1}`, `{"n": 1.0000001}`, false},
		// No coercion between types.
		{`{"n": 1}`, `{"n": "1"}`, false},
		{`{"n": "1"}`, `{"n": 1}`, false},
		{`{"n": 1}`, `{"n": true}`, false},
		{`{"b": true}`, `{"b": true}`, true},
		{`{"b": true}`, `{"b": false}`, false},
		{`{"b": true}`, `{"b": 1}`, false},
		{`{"b": false}`, `{}`, false},
		// null equals only an explicit null, not an absent field.
		{`{"x": null}`, `{"x": null}`, true},
		{`{"x": null}`, `{}`, false},
		{`{"x": null}`, `{"x": 0}`, false},
		{`{"x": null}`, `{"x": ""}`, false},
		{`{"x": null}`, `{"x": []}`, false},
		{`{"x": null}`, `{"x": [null]}`, true},
		// Strings: exact bytes, escapes decoded.
		{`{"s": ""}`, `{"s": ""}`, true},
		{`{"s": "caf\u00e9"}`, `{"s": "café"}`, true},
		{`{"s": "café"}`, `{"s": "cafe\u0301"}`, false},
		// Several keys are an implicit AND.
		{`{"a": 1, "b": 2}`, `{"a": 1, "b": 2, "c": 3}`, true},
		{`{"a": 1, "b": 2}`, `{"a": 1, "b": 3}`, false},
		{`{"a": 1, "b": 2}`, `{"b": 2}`, false},
	})
}

func TestDeepEquality(t *testing.T) {
	runMatchCases(t, []matchCase{
		// Objects: same key set, equal values, any order.
		{`{"o": {"a": 1, "b": [1, 2]}}`, `{"o": {"b": [1, 2], "a": 1}}`, true},
		{`{"o": {"a": 1}}`, `{"o": {"a": 1, "b": 2}}`, false},
		{`{"o": {"a": 1, "b": 2}}`, `{"o": {"a": 1}}`, false},
		{`{"o": {"a": 1, "b": 2}}`, `{"o": {"a": 1, "c": 2}}`, false},
		{`{"o": {"a": 1}}`, `{"o": {"a": "1"}}`, false},
		{`{"o": {}}`, `{"o": {}}`, true},
		{`{"o": {}}`, `{"o": {"a": 1}}`, false},
		{`{"o": {}}`, `{"o": []}`, false},
		{`{"o": {"a": {"b": null}}}`, `{"o": {"a": {"b": null}}}`, true},
		{`{"o": {"a": {"b": null}}}`, `{"o": {"a": {}}}`, false},
		// $eq takes its operand literally, even with "$" keys.
		{`{"o": {"$eq": {"$gt": 1}}}`, `{"o": {"$gt": 1}}`, true},
		{`{"o": {"$eq": {"$gt": 1}}}`, `{"o": 2}`, false},
		// Arrays: same length, equal elements in order.
		{`{"a": [1, "x", null]}`, `{"a": [1, "x", null]}`, true},
		{`{"a": [1, 2]}`, `{"a": [2, 1]}`, false},
		{`{"a": [1, 2]}`, `{"a": [1, 2, 3]}`, false},
		{`{"a": []}`, `{"a": []}`, true},
		{`{"a": []}`, `{"a": {}}`, false},
		{`{"a": [{"k": 1}]}`, `{"a": [{"k": 1.0}]}`, true},
		{`{"a": [[1]]}`, `{"a": [[1]]}`, true},
	})
}

func TestArrayFields(t *testing.T) {
	runMatchCases(t, []matchCase{
		// A scalar matches an array containing it.
		{`{"tags": "a"}`, `{"tags": ["a", "b"]}`, true},
		{`{"tags": "c"}`, `{"tags": ["a", "b"]}`, false},
		{`{"tags": "a"}`, `{"tags": []}`, false},
		{`{"tags": {"$eq": "b"}}`, `{"tags": ["a", "b"]}`, true},
		{`{"n": 2}`, `{"n": [1, 2.0, 3]}`, true},
		// An array literal matches the whole array, or an element that is
		// that array.
		{`{"tags": ["a", "b"]}`, `{"tags": ["a", "b"]}`, true},
		{`{"tags": ["a", "b"]}`, `{"tags": [["a", "b"], "c"]}`, true},
		{`{"tags": ["a", "b"]}`, `{"tags": ["b", "a"]}`, false},
		{`{"tags": ["a"]}`, `{"tags": "a"}`, false},
		{`{"tags": []}`, `{"tags": [[]]}`, true},
		// Only one level: elements of nested arrays are not searched.
		{`{"tags": "a"}`, `{"tags": [["a"]]}`, false},
		// Objects inside arrays match as elements.
		{`{"o": {"k": 1}}`, `{"o": [{"k": 1}, {"k": 2}]}`, true},
		// $ne is the exact negation of $eq: no element may equal.
		{`{"tags": {"$ne": "a"}}`, `{"tags": ["a", "b"]}`, false},
		{`{"tags": {"$ne": "c"}}`, `{"tags": ["a", "b"]}`, true},
		{`{"tags": {"$ne": "c"}}`, `{"tags": []}`, true},
		// $in and $nin likewise.
		{`{"tags": {"$in": ["x", "b"]}}`, `{"tags": ["a", "b"]}`, true},
		{`{"tags": {"$in": ["x", "y"]}}`, `{"tags": ["a", "b"]}`, false},
		{`{"tags": {"$in": [["a", "b"]]}}`, `{"tags": ["a", "b"]}`, true},
		{`{"tags": {"$nin": ["x", "b"]}}`, `{"tags": ["a", "b"]}`, false},
		{`{"tags": {"$nin": ["x", "y"]}}`, `{"tags": ["a", "b"]}`, true},
		// Ordering operators do not look into arrays.
		{`{"n": {"$gt": 0}}`, `{"n": [1, 2]}`, false},
		{`{"n": {"$lt": "z"}}`, `{"n": ["a"]}`, false},
		// Dotted paths do not walk through arrays.
		{`{"a.b": 1}`, `{"a": [{"b": 1}]}`, false},
		{`{"a.0": 1}`, `{"a": [1]}`, false},
		{`{"a.0": 1}`, `{"a": {"0": 1}}`, true},
	})
}

func TestComparison(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"s": {"$gt": 0.5}}`, `{"s": 0.6}`, true},
		{`{"s": {"$gt": 0.5}}`, `{"s": 0.5}`, false},
		{`{"s": {"$gt": 0.5}}`, `{"s": 0.4}`, false},
		{`{"s": {"$gte": 0.5}}`, `{"s": 0.5}`, true},
		{`{"s": {"$gte": 0.5}}`, `{"s": 0.49}`, false},
		{`{"s": {"$lt": 0.5}}`, `{"s": 0.4}`, true},
		{`{"s": {"$lt": 0.5}}`, `{"s": 0.5}`, false},
		{`{"s": {"$lte": 0.5}}`, `{"s": 0.5}`, true},
		{`{"s": {"$lte": 0.5}}`, `{"s": 0.51}`, false},
		{`{"s": {"$gt": -1}}`, `{"s": -0.5}`, true},
		{`{"s": {"$lte": 0}}`, `{"s": -0}`, true},
		{`{"s": {"$gt": 1e300}}`, `{"s": 1.7976931348623157e308}`, true},
		// Several operators on one field: all must hold.
		{`{"s": {"$gte": 0.5, "$lt": 1}}`, `{"s": 0.5}`, true},
		{`{"s": {"$gte": 0.5, "$lt": 1}}`, `{"s": 0.99}`, true},
		{`{"s": {"$gte": 0.5, "$lt": 1}}`, `{"s": 1}`, false},
		{`{"s": {"$gte": 0.5, "$lt": 1}}`, `{"s": 0.2}`, false},
		{`{"s": {"$gt": 1, "$lt": 0}}`, `{"s": 0.5}`, false},
		// Strings compare in byte order.
		{`{"d": {"$gte": "2024-01-01"}}`, `{"d": "2024-06-30"}`, true},
		{`{"d": {"$gte": "2024-01-01"}}`, `{"d": "2023-12-31"}`, false},
		{`{"d": {"$lt": "b"}}`, `{"d": "a"}`, true},
		{`{"d": {"$lt": "b"}}`, `{"d": "B"}`, true},
		{`{"d": {"$lt": "B"}}`, `{"d": "a"}`, false},
		{`{"d": {"$gt": "a"}}`, `{"d": "ab"}`, true},
		{`{"d": {"$gt": ""}}`, `{"d": ""}`, false},
		{`{"d": {"$gte": ""}}`, `{"d": ""}`, true},
		{`{"d": {"$gt": "z"}}`, `{"d": "é"}`, true},
		// Type mismatches never match.
		{`{"s": {"$gt": 0}}`, `{"s": "1"}`, false},
		{`{"s": {"$lt": "9"}}`, `{"s": 1}`, false},
		{`{"s": {"$gte": 0}}`, `{"s": true}`, false},
		{`{"s": {"$gte": 0}}`, `{"s": null}`, false},
		{`{"s": {"$gte": 0}}`, `{"s": {}}`, false},
		{`{"s": {"$lte": "z"}}`, `{"s": false}`, false},
		// A missing field never matches.
		{`{"s": {"$gt": 0}}`, `{}`, false},
		{`{"s": {"$lt": 0}}`, `{}`, false},
		{`{"s": {"$gte": ""}}`, `{}`, false},
	})
}

func TestNotEqual(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"k": {"$ne": "a"}}`, `{"k": "b"}`, true},
		{`{"k": {"$ne": "a"}}`, `{"k": "a"}`, false},
		// Missing or of another type: different, so $ne matches.
		{`{"k": {"$ne": "a"}}`, `{}`, true},
		{`{"k": {"$ne": "a"}}`, `{"k": null}`, true},
		{`{"k": {"$ne": 1}}`, `{"k": "1"}`, true},
		{`{"k": {"$ne": null}}`, `{"k": null}`, false},
		{`{"k": {"$ne": null}}`, `{}`, true},
		{`{"k": {"$ne": 1}}`, `{"k": 1.0}`, false},
		{`{"k": {"$ne": {"a": 1}}}`, `{"k": {"a": 1}}`, false},
		{`{"k": {"$ne": {"a": 1}}}`, `{"k": {"a": 2}}`, true},
		{`{"k": {"$ne": "a", "$exists": true}}`, `{}`, false},
	})
}

func TestInNin(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"k": {"$in": ["a", "b"]}}`, `{"k": "a"}`, true},
		{`{"k": {"$in": ["a", "b"]}}`, `{"k": "c"}`, false},
		{`{"k": {"$in": ["a", "b"]}}`, `{}`, false},
		{`{"k": {"$in": [1, "1", true]}}`, `{"k": 1.0}`, true},
		{`{"k": {"$in": [1, "1", true]}}`, `{"k": true}`, true},
		{`{"k": {"$in": [1, "1"]}}`, `{"k": false}`, false},
		{`{"k": {"$in": [null]}}`, `{"k": null}`, true},
		{`{"k": {"$in": [null]}}`, `{}`, false},
		{`{"k": {"$in": [{"a": 1}, [1]]}}`, `{"k": {"a": 1}}`, true},
		{`{"k": {"$in": [{"a": 1}, [1]]}}`, `{"k": [1]}`, true},
		{`{"k": {"$in": []}}`, `{"k": "a"}`, false},
		{`{"k": {"$in": []}}`, `{}`, false},
		{`{"k": {"$nin": ["a", "b"]}}`, `{"k": "a"}`, false},
		{`{"k": {"$nin": ["a", "b"]}}`, `{"k": "c"}`, true},
		{`{"k": {"$nin": ["a", "b"]}}`, `{}`, true},
		{`{"k": {"$nin": ["a", "b"]}}`, `{"k": null}`, true},
		{`{"k": {"$nin": []}}`, `{"k": "a"}`, true},
		{`{"k": {"$nin": []}}`, `{}`, true},
		{`{"k": {"$in": ["a", "b"], "$nin": ["b"]}}`, `{"k": "b"}`, false},
	})
}

// TestInListIndexed checks that long $in lists, which are indexed in maps,
// answer exactly as a linear scan does, for every kind of element.
func TestInListIndexed(t *testing.T) {
	elems := []string{`"a"`, `"b"`, `1`, `2.5`, `-0`, `true`, `null`, `[1,2]`, `{"x":1}`, `"1"`}
	long := "[" + strings.Join(elems, ",") + "]"
	if len(elems) < inListIndexMin {
		t.Fatal("list too short to be indexed")
	}
	indexed := mustParse(t, `{"k": {"$in": `+long+`}}`)
	if c := indexed.root.(*fieldNode).conds[0]; !c.list.indexed {
		t.Fatal("long list not indexed")
	}
	values := []string{`"a"`, `"c"`, `1`, `1.0`, `0`, `2.5`, `3`, `true`, `false`, `null`, `[1,2]`, `[2,1]`, `{"x":1}`, `{"x":2}`,
		`"1"`, `["c", "b"]`, `["c"]`, `[[1,2]]`, `[]`, `{}`}
	for _, v := range values {
		md := decode(t, `{"k": `+v+`}`)
		// Linear answer: OR of $eq on each element.
		var want bool
		for _, e := range elems {
			if mustParse(t, `{"k": {"$eq": `+e+`}}`).Match(md) {
				want = true
			}
		}
		if got := indexed.Match(md); got != want {
			t.Errorf("$in %s on %s: got %v, want %v", long, v, got, want)
		}
	}
	// Go number types, as callers building metadata by hand use.
	for _, v := range []any{int(1), int64(1), uint8(1), float32(2.5), json.Number("1")} {
		if !indexed.Match(map[string]any{"k": v}) {
			t.Errorf("$in %s on %T(%v): got false", long, v, v)
		}
	}
}

func TestExists(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"k": {"$exists": true}}`, `{"k": 1}`, true},
		{`{"k": {"$exists": true}}`, `{"k": null}`, true},
		{`{"k": {"$exists": true}}`, `{"k": false}`, true},
		{`{"k": {"$exists": true}}`, `{}`, false},
		{`{"k": {"$exists": false}}`, `{}`, true},
		{`{"k": {"$exists": false}}`, `{"k": null}`, false},
		{`{"a.b": {"$exists": true}}`, `{"a": {"b": 0}}`, true},
		{`{"a.b": {"$exists": false}}`, `{"a": 1}`, true},
		{`{"a.b": {"$exists": false}}`, `{"a": [{"b": 1}]}`, true},
		{`{"k": {"$exists": true, "$gt": 1}}`, `{"k": 2}`, true},
	})
}

func TestNestedPaths(t *testing.T) {
	md := `{"user": {"name": "ana", "age": 31, "tags": ["x"], "addr": {"city": "Porto"}, "nil": null}, "user.name": "dotted"}`
	runMatchCases(t, []matchCase{
		{`{"user.name": "ana"}`, md, true},
		{`{"user.name": "dotted"}`, md, false},
		{`{"user.age": {"$gte": 30}}`, md, true},
		{`{"user.addr.city": "Porto"}`, md, true},
		{`{"user.addr.city": {"$in": ["Lisbon", "Porto"]}}`, md, true},
		{`{"user.addr": {"city": "Porto"}}`, md, true},
		{`{"user.tags": "x"}`, md, true},
		{`{"user.nil": null}`, md, true},
		{`{"user.nil.x": {"$exists": false}}`, md, true},
		{`{"user.missing": {"$exists": false}}`, md, true},
		{`{"user.name.first": {"$exists": false}}`, md, true},
		{`{"user.name.first": {"$ne": "x"}}`, md, true},
		{`{"user.addr.city.x": "Porto"}`, md, false},
		{`{"nobody.name": "ana"}`, md, false},
		{`{"user.addr.zip": {"$nin": [1]}}`, md, true},
	})
}

func TestLogical(t *testing.T) {
	md := `{"kind": "fact", "score": 0.7, "tags": ["a", "b"], "pinned": false}`
	runMatchCases(t, []matchCase{
		{`{"$and": [{"kind": "fact"}, {"score": {"$gt": 0.5}}]}`, md, true},
		{`{"$and": [{"kind": "fact"}, {"score": {"$gt": 0.8}}]}`, md, false},
		{`{"$and": [{}]}`, md, true},
		{`{"$or": [{"kind": "note"}, {"score": {"$gt": 0.5}}]}`, md, true},
		{`{"$or": [{"kind": "note"}, {"score": {"$gt": 0.8}}]}`, md, false},
		{`{"$or": [{"kind": "note"}, {}]}`, md, true},
		{`{"$or": [{"kind": "note"}]}`, md, false},
		{`{"$not": {"kind": "note"}}`, md, true},
		{`{"$not": {"kind": "fact"}}`, md, false},
		{`{"$not": {}}`, md, false},
		{`{"$not": {"$not": {"kind": "fact"}}}`, md, true},
		{`{"$not": {"missing": {"$gt": 1}}}`, md, true},
		// Logical operators combine with field members (AND).
		{`{"kind": "fact", "$or": [{"tags": "z"}, {"pinned": false}]}`, md, true},
		{`{"kind": "note", "$or": [{"tags": "z"}, {"pinned": false}]}`, md, false},
		{`{"kind": "fact", "$not": {"tags": "a"}}`, md, false},
		{`{"$and": [{"$or": [{"kind": "x"}, {"kind": "fact"}]}, {"$or": [{"tags": "b"}, {"tags": "c"}]}], "$not": {"pinned": true}}`, md, true},
		{`{"$or": [{"$and": [{"kind": "fact"}, {"score": {"$lt": 0.5}}]}, {"$and": [{"kind": "fact"}, {"tags": "z"}]}]}`, md, false},
		{`{"$or": [{"$and": [{"kind": "fact"}, {"score": {"$lt": 0.5}}]}, {"$and": [{"kind": "fact"}, {"tags": "b"}]}]}`, md, true},
		// The same field twice through $and.
		{`{"$and": [{"score": {"$gt": 0.5}}, {"score": {"$lt": 0.8}}]}`, md, true},
		{`{"$and": [{"score": {"$gt": 0.5}}, {"score": {"$lt": 0.6}}]}`, md, false},
	})
}

func TestMatchAll(t *testing.T) {
	for _, raw := range []string{"", " \n\t\r ", "null", " null ", "{}", ` { } `, `{"$and": [{}]}`, `{"$or": [{}, {"a": 1}]}`, `{"$and": [{"$and": [{}]}]}`} {
		f := mustParse(t, raw)
		if f == nil {
			t.Fatalf("Parse(%q) = nil, nil", raw)
		}
		if !f.MatchesAll() || !f.Match(nil) || !f.Match(map[string]any{"a": 2}) {
			t.Errorf("Parse(%q) does not match everything", raw)
		}
		if s := f.String(); s != "{}" {
			t.Errorf("Parse(%q).String() = %s, want {}", raw, s)
		}
	}
	var nilFilter *Filter
	if !nilFilter.Match(nil) || !nilFilter.Match(map[string]any{"a": 1}) || !nilFilter.MatchesAll() || nilFilter.String() != "{}" {
		t.Error("nil *Filter does not behave as match-all")
	}
	var zero Filter
	if !zero.Match(map[string]any{"a": 1}) || !zero.MatchesAll() || zero.String() != "{}" {
		t.Error("zero Filter does not behave as match-all")
	}
	if mustParse(t, `{"a": 1}`).MatchesAll() {
		t.Error(`{"a": 1} reports MatchesAll`)
	}
	// Metadata absent altogether.
	if mustParse(t, `{"a": 1}`).Match(nil) || !mustParse(t, `{"a": {"$exists": false}}`).Match(nil) {
		t.Error("nil metadata handled wrong")
	}
}

// TestGoTypes covers metadata built by hand rather than by encoding/json.
func TestGoTypes(t *testing.T) {
	f := mustParse(t, `{"n": {"$gte": 2, "$lt": 3}}`)
	for _, v := range []any{int(2), int8(2), int16(2), int32(2), int64(2), uint(2), uint8(2), uint16(2), uint32(2), uint64(2), float32(2.5), 2.5, json.Number("2.5")} {
		if !f.Match(map[string]any{"n": v}) {
			t.Errorf("%T(%v) does not match %s", v, v, f)
		}
	}
	for _, v := range []any{json.Number("x"), "2", []int{2}, map[string]int{"a": 2}, struct{}{}, math.NaN(), nil} {
		if f.Match(map[string]any{"n": v}) {
			t.Errorf("%T(%v) matches %s", v, v, f)
		}
	}
	// NaN is unordered and unequal to everything, including in $ne.
	nan := map[string]any{"n": math.NaN()}
	for raw, want := range map[string]bool{`{"n": {"$gt": 0}}`: false, `{"n": {"$lte": 0}}`: false, `{"n": {"$ne": 0}}`: true, `{"n": 0}`: false} {
		if got := mustParse(t, raw).Match(nan); got != want {
			t.Errorf("%s on NaN: got %v, want %v", raw, got, want)
		}
	}
	if !mustParse(t, `{"n": 1}`).Match(map[string]any{"n": json.Number("1.0")}) {
		t.Error("json.Number does not compare numerically")
	}
}

func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"kind": "fact"}`, `{"kind":"fact"}`},
		{`{"kind": {"$eq": "fact"}}`, `{"kind":"fact"}`},
		{`{"kind": "fact", "score": {"$gte": 0.5, "$lt": 1}}`, `{"kind":"fact","score":{"$gte":0.5,"$lt":1}}`},
		{`{"o": {"a": 1}}`, `{"o":{"$eq":{"a":1}}}`},
		{`{"o": {}}`, `{"o":{"$eq":{}}}`},
		{`{"a": [1, "x", null, true, {"b": []}]}`, `{"a":[1,"x",null,true,{"b":[]}]}`},
		{`{"n": 1e2, "m": 1.5e-7, "z": -0, "big": 1e300}`, `{"n":100,"m":1.5e-7,"z":-0,"big":1e+300}`},
		{`{"s": "q\"\\\n\u0001\u2028é"}`, `{"s":"q\"\\\n\u0001\u2028é"}`},
		{`{"$and": [{"a": 1}, {"b": 2}]}`, `{"a":1,"b":2}`},
		{`{"$and": [{"a": 1}, {"$and": [{"b": 2}, {"c": 3}]}], "d": 4}`, `{"a":1,"b":2,"c":3,"d":4}`},
		{`{"$and": [{"a": {"$gt": 1}}, {"a": {"$lt": 3}}]}`, `{"$and":[{"a":{"$gt":1}},{"a":{"$lt":3}}]}`},
		{`{"$or": [{"a": 1}, {"$or": [{"b": 2}, {"c": 3}]}]}`, `{"$or":[{"a":1},{"b":2},{"c":3}]}`},
		{`{"$or": [{"a": 1}]}`, `{"a":1}`},
		{`{"$or": [{"a": 1}, {}]}`, `{}`},
		{`{"$not": {"a": 1, "b": 2}}`, `{"$not":{"a":1,"b":2}}`},
		{`{"$not": {}}`, `{"$not":{}}`},
		{`{"x": 1, "$not": {"a": 1}, "$or": [{"b": 1}, {"c": 1}]}`, `{"x":1,"$not":{"a":1},"$or":[{"b":1},{"c":1}]}`},
		{`{"$not": {"a": 1}, "$and": [{"$not": {"b": 1}}]}`, `{"$and":[{"$not":{"a":1}},{"$not":{"b":1}}]}`},
		{`{"t": {"$in": ["a", 1], "$nin": [], "$exists": true, "$ne": null}}`, `{"t":{"$in":["a",1],"$nin":[],"$exists":true,"$ne":null}}`},
		{`{"user.name": "ana"}`, `{"user.name":"ana"}`},
	} {
		f := mustParse(t, c.in)
		if got := f.String(); got != c.want {
			t.Errorf("Parse(%s).String()\n got %s\nwant %s", c.in, got, c.want)
		}
		// Canonical: parsing the rendering renders the same.
		if again := mustParse(t, f.String()).String(); again != c.want {
			t.Errorf("String of re-parsed %s: got %s", c.want, again)
		}
	}
}

func TestLimits(t *testing.T) {
	// MaxSize: exactly MaxSize bytes is accepted.
	pad := func(n int) []byte {
		prefix := `{"k": "`
		return []byte(prefix + strings.Repeat("x", n-len(prefix)-2) + `"}`)
	}
	if _, err := Parse(pad(MaxSize)); err != nil {
		t.Errorf("filter of MaxSize bytes: %v", err)
	}
	if _, err := Parse(pad(MaxSize + 1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("filter of MaxSize+1 bytes: got %v", err)
	}
	// MaxDepth: nested $not objects, the top level being depth 1.
	nest := func(depth int) string {
		return strings.Repeat(`{"$not":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1)
	}
	f, err := Parse([]byte(nest(MaxDepth)))
	if err != nil {
		t.Fatalf("depth MaxDepth: %v", err)
	}
	if want := (MaxDepth-1)%2 == 0; f.Match(nil) != want {
		t.Errorf("%d nested $not: got %v", MaxDepth-1, !want)
	}
	if _, err := Parse([]byte(nest(MaxDepth + 1))); !errors.Is(err, ErrInvalid) {
		t.Errorf("depth MaxDepth+1: got %v", err)
	}
	// Depth counts arrays and literals too.
	arr := `{"a": ` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`
	if _, err := Parse([]byte(arr)); err != nil {
		t.Errorf("literal reaching MaxDepth: %v", err)
	}
	arr = `{"a": ` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`
	if _, err := Parse([]byte(arr)); !errors.Is(err, ErrInvalid) {
		t.Errorf("literal beyond MaxDepth: got %v", err)
	}
	// MaxInList.
	list := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprint(i)
		}
		return `{"k": {"$nin": [` + strings.Join(items, ",") + `]}}`
	}
	f, err = Parse([]byte(list(MaxInList)))
	if err != nil {
		t.Fatalf("MaxInList elements: %v", err)
	}
	if f.Match(map[string]any{"k": float64(MaxInList - 1)}) || !f.Match(map[string]any{"k": float64(MaxInList)}) {
		t.Error("$nin with MaxInList elements answers wrong")
	}
	if _, err := Parse([]byte(list(MaxInList + 1))); !errors.Is(err, ErrInvalid) {
		t.Errorf("MaxInList+1 elements: got %v", err)
	}
	// MaxConditions, counting bare literals and each operator.
	conds := func(n int) string {
		return `{"$or": [` + strings.Repeat(`{"a": 1},`, n-2) + `{"b": {"$gt": 1, "$lt": 2}}]}`
	}
	f, err = Parse([]byte(conds(MaxConditions)))
	if err != nil {
		t.Fatalf("MaxConditions conditions: %v", err)
	}
	if !f.Match(map[string]any{"b": 1.5}) || f.Match(map[string]any{"b": 2.0}) {
		t.Error("filter with MaxConditions conditions answers wrong")
	}
	if _, err := Parse([]byte(conds(MaxConditions + 1))); !errors.Is(err, ErrInvalid) {
		t.Errorf("MaxConditions+1 conditions: got %v", err)
	}
	// Composite $in elements count; scalar ones do not.
	in := `{"a": {"$in": [` + strings.Repeat(`[1],`, MaxConditions-1) + strings.Repeat(`1,`, 500) + `"x"]}}`
	if _, err := Parse([]byte(in)); err != nil {
		t.Errorf("$in with MaxConditions-1 composites: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat(`{"$not":`, MaxDepth) + `{}` + strings.Repeat(`}`, MaxDepth)
	long := `{"k": {"$in": [` + strings.Repeat(`1,`, MaxInList) + `1]}}`
	for _, c := range []struct{ in, want string }{
		// Not JSON, or not one object.
		{`{`, `invalid JSON: unexpected end of input`},
		{`{"a": 1`, `invalid JSON: unexpected end of input`},
		{`{"a": [1, 2`, `a: invalid JSON: unexpected end of input`},
		{`{"a" 1}`, `a: invalid JSON at byte 5: invalid character '1' after object key`},
		{`{"a": 1,}`, `invalid JSON at byte 8: invalid character '}' looking for beginning of object key string`},
		{`{"a": {"$in": [1 2]}}`, `a.$in[1]: invalid JSON at byte 17: invalid character '2' after array element`},
		{`{"a": {"b": [1, 2, x]}}`, `a.b[2]: invalid JSON at byte 19: invalid character 'x' looking for beginning of value`},
		{`{"a": "x` + "\x01" + `"}`, `a: invalid JSON at byte 8: invalid character '\x01' in string literal`},
		{`{a: 1}`, `invalid JSON at byte 1: invalid character 'a' looking for beginning of object key string`},
		{`{"a": tru}`, `a: invalid JSON at byte 9: invalid character '}' in literal true (expecting 'e')`},
		{`{"a": 01}`, `invalid JSON at byte 7: invalid character '1' after object key:value pair`},
		{`{"a": 1} x`, `invalid JSON at byte 9: invalid character 'x' after top-level value`},
		{`{} {}`, `invalid JSON at byte 3: invalid character '{' after top-level value`},
		{`null {}`, `invalid JSON at byte 5: invalid character '{' after top-level value`},
		{`}`, `invalid JSON at byte 0: invalid character '}' looking for beginning of value`},
		{`[]`, `filter must be a JSON object, got an array`},
		{`[{"a": 1}]`, `filter must be a JSON object, got an array`},
		{`"kind"`, `filter must be a JSON object, got a string`},
		{`1`, `filter must be a JSON object, got a number`},
		{`true`, `filter must be a JSON object, got a bool`},
		{"\v{}", `invalid JSON at byte 0: invalid character '\v' looking for beginning of value`},
		{`{"a": 1e400}`, `a: number 1e400 is out of range`},
		{`{"a": {"$in": [1, -1e999]}}`, `a.$in[1]: number -1e999 is out of range`},
		// Duplicate keys, anywhere.
		{`{"a": 1, "a": 2}`, `duplicate key "a"`},
		{`{"a": 1, "\u0061": 2}`, `duplicate key "a"`},
		{`{"s": {"$gt": 1, "$gt": 2}}`, `s: duplicate key "$gt"`},
		{`{"$or": [{"a": {"x": 1, "x": 1}}]}`, `$or[0].a: duplicate key "x"`},
		{`{"$not": {}, "$not": {}}`, `duplicate key "$not"`},
		// Unknown and misplaced operators.
		{`{"$foo": 1}`, `unknown operator "$foo"`},
		{`{"$": 1}`, `unknown operator "$"`},
		{`{"a": {"$foo": 1}}`, `a: unknown operator "$foo"`},
		{`{"a": {"$regex": "x"}}`, `a: unknown operator "$regex"`},
		{`{"a": {"$EQ": 1}}`, `a: unknown operator "$EQ"`},
		{`{"$and": [{"b": 1}, {"a": {"$gt": 1, "$size": 2}}]}`, `$and[1].a: unknown operator "$size"`},
		{`{"$gte": 1}`, `$gte is a field operator; write {"field": {"$gte": ...}}`},
		{`{"$or": [{"$in": [1]}]}`, `$or[0]: $in is a field operator; write {"field": {"$in": ...}}`},
		{`{"a": {"$not": {"$gt": 1}}}`, `a: $not applies to a filter, not to a field's operators; write {"$not": {"a": {...}}}`},
		{`{"a": {"$or": [1, 2]}}`, `a: $or applies to filters, not to a field's operators; write {"$or": [{"a": ...}, ...]}`},
		// Mixed operator and plain keys.
		{`{"a": {"$gt": 1, "b": 2}}`, `a: object mixes operators ($gt) and plain keys ("b"); to match an object literally, use $eq`},
		{`{"a": {"b": 2, "$gt": 1}}`, `a: object mixes operators ($gt) and plain keys ("b"); to match an object literally, use $eq`},
		// Operand shapes.
		{`{"$and": {}}`, `$and needs a non-empty array of filter objects, got an empty object`},
		{`{"$and": []}`, `$and needs a non-empty array of filter objects, got an empty array`},
		{`{"$or": []}`, `$or needs a non-empty array of filter objects, got an empty array`},
		{`{"$or": null}`, `$or needs a non-empty array of filter objects, got null`},
		{`{"$or": [{"a": 1}, "b"]}`, `$or[1]: $or element must be a filter object, got a string`},
		{`{"$and": [[]]}`, `$and[0]: $and element must be a filter object, got an empty array`},
		{`{"$and": [null]}`, `$and[0]: $and element must be a filter object, got null`},
		{`{"$not": [{"a": 1}]}`, `$not needs a filter object, got an array`},
		{`{"$not": true}`, `$not needs a filter object, got a bool`},
		{`{"$and": [{"b": 1}, {"score": {"$gte": true}}]}`, `$and[1].score: $gte needs a number or string, got a bool`},
		{`{"s": {"$gt": null}}`, `s: $gt needs a number or string, got null`},
		{`{"s": {"$lt": [1]}}`, `s: $lt needs a number or string, got an array`},
		{`{"s": {"$lte": {"a": 1}}}`, `s: $lte needs a number or string, got an object`},
		{`{"s": {"$in": "a"}}`, `s: $in needs an array, got a string`},
		{`{"s": {"$nin": {"a": 1}}}`, `s: $nin needs an array, got an object`},
		{`{"s": {"$in": null}}`, `s: $in needs an array, got null`},
		{`{"s": {"$exists": 1}}`, `s: $exists needs true or false, got a number`},
		{`{"s": {"$exists": "true"}}`, `s: $exists needs true or false, got a string`},
		{`{"$not": {"$not": {"x": {"$exists": null}}}}`, `$not.$not.x: $exists needs true or false, got null`},
		// Field paths.
		{`{"": 1}`, `"": empty field name`},
		{`{"a..b": 1}`, `a..b: field path "a..b" has an empty segment`},
		{`{".a": 1}`, `.a: field path ".a" has an empty segment`},
		{`{"a.": 1}`, `a.: field path "a." has an empty segment`},
		{`{"$or": [{"a": 1}, {"x": 1, "b c.": 1}]}`, `$or[1]."b c.": field path "b c." has an empty segment`},
		// Limits.
		{deep, fmt.Sprintf(`%s: nested deeper than MaxDepth (16)`, strings.TrimSuffix(strings.Repeat("$not.", MaxDepth), "."))},
		{`{"a": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}`, `a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than MaxDepth (16)`},
		{long, `k: $in has 1025 elements, more than MaxInList (1024)`},
		{`{"$or": [` + strings.Repeat(`{"a": 1},`, MaxConditions) + `{"b": 2}]}`, `$or[256].b: filter has more than MaxConditions (256) conditions; to test one field against many values, use $in`},
		{`{"x": 1, "a": {"$nin": [1, "a", {}, ` + strings.Repeat(`[1],`, MaxConditions-2) + `[]]}}`, `a: filter has more than MaxConditions (256) conditions; to test one field against many values, use $in`},
		{`{"k": "` + strings.Repeat("x", MaxSize) + `"}`, `filter is 65545 bytes, more than MaxSize (65536)`},
	} {
		f, err := Parse([]byte(c.in))
		if err == nil {
			t.Errorf("Parse(%.80s) = %s, want error %q", c.in, f, c.want)
			continue
		}
		if f != nil {
			t.Errorf("Parse(%.80s) returned a Filter with its error", c.in)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%.80s): error %v does not wrap ErrInvalid", c.in, err)
		}
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("Parse(%.80s): error %T is not an *Error", c.in, err)
		}
		if want := "hippo: invalid filter: " + c.want; err.Error() != want {
			t.Errorf("Parse(%.80s):\n got %s\nwant %s", c.in, err, want)
		}
	}
}

func TestErrorPath(t *testing.T) {
	_, err := Parse([]byte(`{"$and": [{}, {"score": {"$gte": true}}]}`))
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v", err)
	}
	if fe.Path != "$and[1].score" || fe.Reason != "$gte needs a number or string, got a bool" {
		t.Errorf("got Path %q Reason %q", fe.Path, fe.Reason)
	}
}

// TestMatchAllocs proves Match allocates nothing, for every node and
// operator kind.
func TestMatchAllocs(t *testing.T) {
	f := mustParse(t, benchFilter)
	md := decode(t, benchRecord)
	if !f.Match(md) {
		t.Fatal("benchmark filter does not match its record")
	}
	others := []string{
		`{"$or": [{"a": {"$in": ["x", 1, true, null, [1], {"b": 1}, "y", "z", 2, 3]}}, {"$not": {"b.c.d": {"$nin": [1, 2]}}}]}`,
		`{"tags": ["a", "b"], "o": {"$eq": {"x": [1, {"y": null}]}}, "n": {"$ne": 1, "$exists": true}}`,
		`{"n": {"$gte": "a", "$lt": "z"}}`,
	}
	for _, raw := range others {
		g := mustParse(t, raw)
		for _, m := range []map[string]any{md, nil, {"a": []any{"q", 3.0}, "tags": []any{[]any{"a", "b"}}, "o": map[string]any{"x": []any{1.0, map[string]any{"y": nil}}}, "n": json.Number("2")}} {
			if allocs := testing.AllocsPerRun(100, func() { g.Match(m) }); allocs != 0 {
				t.Errorf("Match(%s) allocates %v times", raw, allocs)
			}
		}
	}
	if allocs := testing.AllocsPerRun(1000, func() { f.Match(md) }); allocs != 0 {
		t.Errorf("Match allocates %v times per call", allocs)
	}
}

// TestConcurrentMatch runs Match from many goroutines at once; run with
// -race it checks that a Filter is safe for concurrent use.
func TestConcurrentMatch(t *testing.T) {
	f := mustParse(t, benchFilter)
	md := decode(t, benchRecord)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if !f.Match(md) {
					t.Error("concurrent Match returned false")
					return
				}
			}
		})
	}
	wg.Wait()
}
