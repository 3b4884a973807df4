package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// Metric is how a collection measures the distance between vectors.
type Metric string

// The metrics. Search results are ordered by distance ascending; for cosine
// the distance is 1 - cos(a, b), and for dot it is -(a·b).
const (
	MetricL2     Metric = "l2"
	MetricCosine Metric = "cosine"
	MetricDot    Metric = "dot"
)

// IndexType names a vector index.
type IndexType string

// The index types.
const (
	IndexHNSW  IndexType = "hnsw"  // approximate; graph-based
	IndexFlat  IndexType = "flat"  // exact; compares against every vector
	IndexIVFPQ IndexType = "ivfpq" // approximate; compressed
)

// Quantization names how an HNSW index compresses the vectors it walks.
type Quantization string

// The quantizations. The zero value keeps float32 vectors only.
const (
	// QuantizationInt8 walks the graph on 8-bit codes learned from the
	// vectors and re-ranks the best candidates with the float32 vectors:
	// faster searches, exact distances, about 25 % more memory.
	QuantizationInt8 Quantization = "int8"
)

// IndexSpec describes a collection's index. Zero fields are left out of
// requests, so the server picks its defaults for them; a collection read
// back from the server has them filled in. Which fields apply depends on
// Type (docs/design/indexes.md):
//
//   - IndexHNSW: M, EfConstruction, Ef, Quantization.
//   - IndexFlat: Ef only.
//   - IndexIVFPQ: NList, M (product-quantizer subspaces), NProbe, Rerank.
type IndexSpec struct {
	Type IndexType `json:"type,omitempty"`

	// M is the number of neighbours per HNSW node, or for IVF-PQ the
	// number of subspaces each vector is split into (one byte of code
	// each; it must be at most the dimension).
	M int `json:"m,omitempty"`

	// EfConstruction is the candidate list size while building HNSW.
	EfConstruction int `json:"ef_construction,omitempty"`

	// Ef is the default candidate list size while searching HNSW; a
	// SearchRequest may override it.
	Ef int `json:"ef,omitempty"`

	// Quantization, for HNSW, is QuantizationInt8 or empty (float32 only).
	Quantization Quantization `json:"quantization,omitempty"`

	// NList is the number of IVF-PQ inverted lists (k-means cells).
	NList int `json:"nlist,omitempty"`

	// NProbe is the number of IVF-PQ lists a search scans by default; a
	// SearchRequest's Ef overrides it.
	NProbe int `json:"nprobe,omitempty"`

	// Rerank, for IVF-PQ, keeps the float32 vectors and re-ranks this many
	// of the best candidates by exact distance; zero stores codes only and
	// returns estimated distances.
	Rerank int `json:"rerank,omitempty"`

	// Params holds the other parameters: those added by later servers. It
	// is sent and received as further members of the "index" object.
	Params map[string]any `json:"-"`
}

// indexSpecKeys are the JSON names of IndexSpec's named fields.
var indexSpecKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[IndexSpec]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "-" {
			keys[name] = true
		}
	}
	return keys
}()

// indexSpecFields is IndexSpec without its methods: its named fields as
// encoding/json encodes them (Params has the tag "-").
type indexSpecFields IndexSpec

// MarshalJSON encodes s as one JSON object holding both the named fields and
// Params.
func (s IndexSpec) MarshalJSON() ([]byte, error) {
	known, err := json.Marshal(indexSpecFields(s))
	if err != nil || len(s.Params) == 0 {
		return known, err
	}
	object := make(map[string]any, len(s.Params)+len(indexSpecKeys))
	for key, value := range s.Params {
		if indexSpecKeys[key] {
			return nil, fmt.Errorf("hippo: IndexSpec.Params may not hold %q; use the field", key)
		}
		object[key] = value
	}
	if err := json.Unmarshal(known, &object); err != nil {
		return nil, err
	}
	return json.Marshal(object)
}

// UnmarshalJSON decodes the object MarshalJSON encodes.
func (s *IndexSpec) UnmarshalJSON(b []byte) error {
	var known indexSpecFields
	if err := json.Unmarshal(b, &known); err != nil {
		return err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*s = IndexSpec(known)
	for key, value := range all {
		if !indexSpecKeys[key] {
			if s.Params == nil {
				s.Params = make(map[string]any)
			}
			s.Params[key] = value
		}
	}
	return nil
}

// CollectionSpec is what CreateCollection asks for.
type CollectionSpec struct {
	Dimension int       `json:"dimension"`
	Metric    Metric    `json:"metric,omitempty"`
	Index     IndexSpec `json:"index,omitzero"`
}

// Collection describes a collection as the server reports it.
type Collection struct {
	Name      string    `json:"name"`
	Dimension int       `json:"dimension"`
	Metric    Metric    `json:"metric"`
	Index     IndexSpec `json:"index"`
	Count     int64     `json:"count"` // records
	CreatedAt time.Time `json:"created_at"`

	// Stats holds the server's statistics about the collection; their
	// names are not part of the API contract.
	Stats map[string]any `json:"stats,omitempty"`

	// Seq is set only by CreateCollection: the sequence number of the
	// collection.created event, or 0 if the collection already existed.
	Seq uint64 `json:"seq,omitempty"`
}

// CreateCollection creates the collection name. If one with the same settings
// already exists it returns that one with created false; if one with other
// settings exists it returns an *Error for which IsConflict is true.
func (c *Client) CreateCollection(ctx context.Context, name string, spec CollectionSpec) (coll *Collection, created bool, err error) {
	if err := checkName("collection name", name); err != nil {
		return nil, false, err
	}
	coll = new(Collection)
	status, err := c.call(ctx, http.MethodPut, collectionPath(name), nil, spec, coll)
	if err != nil {
		return nil, false, err
	}
	return coll, status == http.StatusCreated, nil
}

// GetCollection returns the collection name.
func (c *Client) GetCollection(ctx context.Context, name string) (*Collection, error) {
	if err := checkName("collection name", name); err != nil {
		return nil, err
	}
	coll := new(Collection)
	if _, err := c.call(ctx, http.MethodGet, collectionPath(name), nil, nil, coll); err != nil {
		return nil, err
	}
	return coll, nil
}

// ListCollections returns every collection.
func (c *Client) ListCollections(ctx context.Context) ([]Collection, error) {
	var answer struct {
		Collections []Collection `json:"collections"`
	}
	if _, err := c.call(ctx, http.MethodGet, "/v1/collections", nil, nil, &answer); err != nil {
		return nil, err
	}
	return answer.Collections, nil
}

// DeleteCollection deletes the collection name and its records, and returns
// the sequence number of the deletion.
func (c *Client) DeleteCollection(ctx context.Context, name string) (seq uint64, err error) {
	if err := checkName("collection name", name); err != nil {
		return 0, err
	}
	var answer seqAnswer
	_, err = c.call(ctx, http.MethodDelete, collectionPath(name), nil, nil, &answer)
	return answer.Seq, err
}

// seqAnswer is the answer of writes that report only their sequence number.
type seqAnswer struct {
	Seq uint64 `json:"seq"`
}
