// Package filter parses and evaluates metadata filters, the JSON documents
// that restrict a search (and other reads) to records whose metadata matches.
//
// A filter is compiled once with [Parse] into a small tree of typed nodes and
// then evaluated with [Filter.Match] against each candidate record's metadata
// (a map[string]any as decoded by encoding/json). Match does not allocate, and
// a *Filter is immutable and safe for concurrent use.
//
// # Syntax
//
// A filter is a JSON object. Each member is either a field condition or a
// logical operator, and all members of one object must hold (implicit AND):
//
//	{"kind": "fact"}                                   kind equals "fact"
//	{"kind": "fact", "score": {"$gte": 0.5, "$lt": 1}} both; 0.5 <= score < 1
//	{"$or": [{"kind": "fact"}, {"pinned": true}]}      either
//	{"$not": {"tags": "draft"}}                        tags has no "draft"
//	{"user.name": "ana"}                               metadata.user.name
//
// Empty input, JSON whitespace, null and {} match every record. A nil *Filter
// and the zero Filter also match every record; Parse itself never returns a
// nil *Filter with a nil error. [Filter.MatchesAll] tells callers they may skip
// filtering.
//
// # Field paths
//
// A member key not starting with "$" names a field. Dots separate keys of
// nested objects: "user.name" is metadata["user"]["name"]. Paths walk objects
// only: an array (or any non-object) along the way makes the field absent, and
// numeric segments are keys, not array indexes. A metadata key that itself
// contains a dot cannot be addressed. A key with an empty segment ("", "a..b",
// ".a", "a.") is invalid.
//
// # Field conditions
//
// The value of a field member is either a literal or an operator object: an
// object whose keys all start with "$". A literal v means {"$eq": v}; an
// object without "$" keys (including {}) is a literal object. An object that
// mixes "$" keys and plain keys is invalid; to compare with an object that has
// "$" keys, write {"$eq": {...}}, whose operand is always a literal. Several
// operators on one field must all hold.
//
//	$eq v       the field is present and equals v, or is an array with an
//	            element that equals v
//	$ne v       not $eq v; true when the field is absent
//	$in [v...]  the field is present and $eq one of the elements; [] never matches
//	$nin [v...] not $in; true when the field is absent; [] always matches
//	$gt $gte $lt $lte x
//	            x is a number or a string; the field is present and is a
//	            number compared numerically with a number x, or a string
//	            compared with a string x in byte order (so "B" < "a"; no
//	            collation or Unicode normalization)
//	$exists b   b is true or false; the field is present (even if null) == b
//
// Equality ("equals" above) is strict about types: numbers equal numbers
// numerically (1 == 1.0 == 1e0, -0 == 0), strings equal strings byte for
// byte, booleans booleans, null only null; arrays equal arrays of the same
// length whose elements are equal in order; objects equal objects with the
// same set of keys and equal values (key order is irrelevant). There is no
// coercion: "1" does not equal 1, and, unlike MongoDB, null does not equal an
// absent field (use {"$exists": false} for that), so {"x": {"$in": [null]}}
// does not match a record without x.
//
// Arrays, as in MongoDB: when the stored field is an array, $eq (and so a
// bare literal, $ne, $in and $nin) also considers each of its elements, one
// level deep. {"tags": "a"} matches {"tags": ["a", "b"]}; {"tags": ["a",
// "b"]} matches that array exactly as well as [["a", "b"], "c"]; {"tags":
// {"$ne": "a"}} matches only records none of whose tags is "a". Unlike
// MongoDB, the ordering operators $gt $gte $lt $lte do not look into arrays:
// an array is a type mismatch for them. This keeps {"$gte": 1, "$lt": 2} a
// test of one value rather than of possibly different elements.
//
// Missing fields and mismatched types: a condition on an absent field is
// false, except $ne, $nin and {"$exists": false}, which are true. A type
// mismatch (a string against a numeric $gt, a number against a string, a
// boolean against either) is simply false, never an error, since metadata is
// schemaless. {"$not": ...} inverts whatever its filter decides, so
// {"$not": {"score": {"$gt": 1}}} matches records with no score or a
// non-numeric one, while {"score": {"$lte": 1}} does not.
//
// Metadata values are expected as encoding/json produces them (float64,
// string, bool, nil, []any, map[string]any). Go integer and float32 types and
// json.Number also compare as numbers, for callers that build metadata by hand;
// integers beyond ±2^53 lose precision. Values of other types equal nothing.
//
// # Logical operators
//
// Members whose key starts with "$" at filter level:
//
//	$and [f...]   every filter f matches; the array must not be empty
//	$or  [f...]   at least one f matches; the array must not be empty
//	$not f        f does not match
//
// They may appear next to field members in the same object, which ANDs them
// with the rest. $not applies to a filter, not to an operator: write
// {"$not": {"score": {"$gt": 1}}}, not {"score": {"$not": {"$gt": 1}}}.
//
// # Errors and limits
//
// Parse rejects, with an error wrapping [ErrInvalid] (an [*Error]) that names
// the problem and its location as a path such as `$and[1].score` (object keys
// joined by ".", array indexes in brackets; the message reads
// "hippo: invalid filter: $and[1].score: $gte needs a number or string, got a
// bool"): malformed JSON (with the 0-based byte offset); a document that is not an object; duplicate keys anywhere (including
// inside literals); unknown operators; field operators at filter level and
// logical operators inside a field; operands of the wrong type ($in/$nin not
// an array, $and/$or not a non-empty array of objects, $not not an object,
// $exists not a boolean, $gt.. not a number or string); numbers outside the
// float64 range; invalid field paths; documents over [MaxSize] bytes, nesting
// deeper than [MaxDepth], $in/$nin lists over [MaxInList] elements and more
// than [MaxConditions] conditions. Parse never panics, whatever its input.
//
// The limits bound the work per record too: Match costs at most about
// [MaxConditions] times the size of the record's metadata. Typical filters (a
// few conditions on scalar fields) cost tens of nanoseconds per record; a
// filter built to reach the limits, against a record whose 64 KiB of metadata
// is one array of thousands of small arrays, can cost tens of milliseconds.
//
// Invalid UTF-8 in strings is replaced by U+FFFD, as encoding/json does.
//
// # Canonical form
//
// [Filter.String] renders a parsed filter as compact JSON with operators
// spelled out where needed and nested $and/$or flattened; it is stable and
// re-parses to an equivalent filter (unless the rendering outgrows MaxSize or
// MaxDepth), so it suits logs and error messages.
package filter
