package filter_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hippo-db/hippo/internal/filter"
)

func Example() {
	f, err := filter.Parse([]byte(`{"kind": "fact", "score": {"$gte": 0.5}, "tags": {"$in": ["go", "db"]}}`))
	if err != nil {
		panic(err)
	}
	var metadata map[string]any
	_ = json.Unmarshal([]byte(`{"kind": "fact", "score": 0.8, "tags": ["db", "vectors"]}`), &metadata)
	fmt.Println(f.Match(metadata))
	fmt.Println(f)
	// Output:
	// true
	// {"kind":"fact","score":{"$gte":0.5},"tags":{"$in":["go","db"]}}
}

func ExampleParse_error() {
	_, err := filter.Parse([]byte(`{"$and": [{"kind": "fact"}, {"score": {"$gte": true}}]}`))
	fmt.Println(errors.Is(err, filter.ErrInvalid))
	fmt.Println(err)
	// Output:
	// true
	// hippo: invalid filter: $and[1].score: $gte needs a number or string, got a bool
}
