package filter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	``, `null`, `{}`, `[]`, `"x"`, `1`, `{"a":1} x`, `{`, `}`, `{"a":`, "\xff", `{"a":"\xff"}`,
	`{"kind": "fact"}`,
	`{"kind": "fact", "score": {"$gte": 0.5, "$lt": 1}}`,
	`{"user.name": "ana", "user.age": {"$gt": 30}}`,
	`{"tags": {"$in": ["a", "b", 1, true, null, [1], {"x": 1}]}}`,
	`{"tags": {"$in": ["a", "b", "c", "d", "e", "f", "g", "h", 1, 2, true, null, [1], {"x": 1}]}}`,
	`{"tags": {"$nin": []}, "x": {"$exists": false}, "y": {"$ne": null}}`,
	`{"$and": [{"a": 1}, {"$or": [{"b": 2}, {"$not": {"c": 3}}]}]}`,
	`{"$or": [{}, {"a": 1}]}`,
	`{"$not": {}}`,
	`{"o": {"a": [1, {"b": null}]}}`,
	`{"o": {"$eq": {"$gt": 1}}}`,
	`{"a": {"$gt": 1, "b": 2}}`,
	`{"a": {"$foo": 1}}`,
	`{"$and": []}`,
	`{"a": 1, "a": 2}`,
	`{"a..b": 1}`,
	`{"": 1}`,
	`{"a": 1e400}`,
	`{"a": -0, "b": 1e-7, "c": 1e21, "d": "\u2028\u0000\""}`,
	`{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{}}}}}}}}}}}}}}}}`,
	`{"a":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}`,
	`{"self.self.self": {"$exists": true}, "self": {"$ne": {"x": 1}}}`,
}

// fuzzRecords are the metadata maps every parsed filter is matched against:
// the decoded kinds, hand-built Go types, a nil map and a map that contains
// itself (Match must still terminate, since it only descends as far as the
// filter does).
func fuzzRecords() []map[string]any {
	var out []map[string]any
	for _, s := range []string{
		`{}`,
		`{"kind": "fact", "score": 0.75, "tags": ["a", "b", [1], {"x": 1}], "user": {"name": "ana", "age": 31}, "x": null, "b": true}`,
		`{"a": 1, "b": "2", "c": [], "d": {}, "o": {"a": [1, {"b": null}]}, "": 0, "a.b": 1, "-0": -0}`,
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			panic(err)
		}
		out = append(out, m)
	}
	self := map[string]any{"a": int64(1), "n": json.Number("1e2"), "bad": json.Number("?"), "f": float32(0.5), "s": []string{"a"}}
	self["self"] = self
	self["list"] = []any{self, 1.0}
	return append(out, nil, self)
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	records := fuzzRecords()
	f.Fuzz(func(t *testing.T, raw []byte) {
		flt, err := Parse(raw)
		if err != nil {
			if flt != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) = %v, %v", raw, flt, err)
			}
			var fe *Error
			if !errors.As(err, &fe) || fe.Reason == "" {
				t.Fatalf("Parse(%q): error %v is not a complete *Error", raw, err)
			}
			return
		}
		if flt == nil {
			t.Fatalf("Parse(%q) = nil, nil", raw)
		}
		results := make([]bool, len(records))
		for i, r := range records {
			results[i] = flt.Match(r)
		}
		canonical := flt.String()
		again, err := Parse([]byte(canonical))
		if err != nil {
			// Rendering can grow a filter (1e20 becomes
			// 100000000000000000000; a literal object gains {"$eq": ...}),
			// so it may exceed the limits; it must not be otherwise invalid.
			if !strings.Contains(err.Error(), "MaxSize") && !strings.Contains(err.Error(), "MaxDepth") {
				t.Fatalf("String of Parse(%q) = %s does not parse: %v", raw, canonical, err)
			}
			return
		}
		if s := again.String(); s != canonical {
			t.Fatalf("String is not canonical for %q:\n first %s\nsecond %s", raw, canonical, s)
		}
		for i, r := range records {
			if again.Match(r) != results[i] {
				t.Fatalf("Parse(%q) and its String %s disagree on record %d", raw, canonical, i)
			}
		}
	})
}
