package filter

import (
	"fmt"
	"strings"
	"testing"
)

// benchFilter is a realistic search filter: equality, a range, an array
// membership test and a nested path.
const benchFilter = `{"kind": "fact", "score": {"$gte": 0.5, "$lt": 1}, "tags": {"$in": ["go", "db"]}, "user.name": {"$ne": "bot"}}`

const benchRecord = `{"kind": "fact", "score": 0.75, "tags": ["db", "vectors"], "user": {"name": "ana", "id": 7}, "source": "wiki", "lang": "en", "created": "2024-05-01"}`

func BenchmarkMatch(b *testing.B) {
	for _, c := range []struct{ name, filter string }{
		{"eq", `{"kind": "fact"}`},
		{"eq_miss", `{"kind": "note"}`},
		{"range", `{"score": {"$gte": 0.5, "$lt": 1}}`},
		{"nested", `{"user.name": "ana"}`},
		{"array_contains", `{"tags": "vectors"}`},
		{"in_small", `{"lang": {"$in": ["de", "fr", "en"]}}`},
		{"in_1024", `{"lang": {"$in": [` + manyStrings(1024) + `"en"]}}`},
		{"or3", `{"$or": [{"kind": "note"}, {"source": "web"}, {"lang": "en"}]}`},
		{"realistic", benchFilter},
	} {
		f := mustParse(b, c.filter)
		md := decode(b, benchRecord)
		if !f.Match(md) && !strings.HasSuffix(c.name, "_miss") {
			b.Fatalf("%s does not match", c.filter)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Match(md)
			}
		})
	}
}

func manyStrings(n int) string {
	var sb strings.Builder
	for i := range n - 1 {
		fmt.Fprintf(&sb, `"lang-%d",`, i)
	}
	return sb.String()
}

func BenchmarkParse(b *testing.B) {
	raw := []byte(benchFilter)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
