package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/hippo-db/hippo/internal/store"
)

// CollectionSpec is what a client asks for when creating a collection.
type CollectionSpec struct {
	Dimension int
	Metric    string
	Index     store.IndexSpec
}

// normalize fills defaults and checks every field.
func (s *CollectionSpec) normalize() error {
	if s.Dimension < 1 || s.Dimension > MaxDimension {
		return invalidf("dimension must be between 1 and %d, got %d", MaxDimension, s.Dimension)
	}
	switch s.Metric {
	case "l2", "cosine", "dot":
	case "":
		return invalidf("metric is required: one of l2, cosine, dot")
	default:
		return invalidf("unknown metric %q: use l2, cosine or dot", s.Metric)
	}
	ix := &s.Index
	switch ix.Type {
	case "", "hnsw":
		ix.Type = "hnsw"
		if ix.M == 0 {
			ix.M = DefaultM
		}
		if ix.EfConstruction == 0 {
			ix.EfConstruction = DefaultEfConstruction
		}
		if ix.M < 2 || ix.M > MaxM {
			return invalidf("index.m must be between 2 and %d, got %d", MaxM, ix.M)
		}
		if ix.EfConstruction < 1 || ix.EfConstruction > MaxEfConstruction {
			return invalidf("index.ef_construction must be between 1 and %d, got %d", MaxEfConstruction, ix.EfConstruction)
		}
		switch ix.Quantization {
		case "", "none":
			ix.Quantization = ""
		case "int8":
		default:
			return invalidf("unknown index.quantization %q: use int8 or none", ix.Quantization)
		}
		if ix.NList != 0 || ix.NProbe != 0 || ix.Rerank != 0 {
			return invalidf("index.nlist, index.nprobe and index.rerank apply to ivfpq only")
		}
	case "flat":
		if ix.M != 0 || ix.EfConstruction != 0 {
			return invalidf("index.m and index.ef_construction apply to hnsw only")
		}
		if ix.Quantization != "" || ix.NList != 0 || ix.NProbe != 0 || ix.Rerank != 0 {
			return invalidf("index.quantization, index.nlist, index.nprobe and index.rerank do not apply to flat")
		}
	case "ivfpq":
		return normalizeIVFPQ(ix, s.Dimension)
	default:
		return invalidf("unknown index type %q: use hnsw, ivfpq or flat", ix.Type)
	}
	if ix.Ef == 0 {
		ix.Ef = DefaultEf
	}
	if ix.Ef < 1 || ix.Ef > MaxEf {
		return invalidf("index.ef must be between 1 and %d, got %d", MaxEf, ix.Ef)
	}
	return nil
}

// Defaults and limits of ivfpq collections (docs/design/indexes.md).
const (
	DefaultNList  = 1024
	DefaultNProbe = 32
	MaxNList      = 1 << 16
	MaxRerank     = MaxEf
)

// normalizeIVFPQ fills the defaults of an ivfpq index and checks it: nlist
// lists (1 to MaxNList), m subspaces (1 to the dimension; default a third
// of it), nprobe lists searched by default (1 to nlist), rerank (0, or the
// candidates re-ranked with kept float32 vectors, up to MaxRerank).
func normalizeIVFPQ(ix *store.IndexSpec, dim int) error {
	if ix.EfConstruction != 0 || ix.Ef != 0 {
		return invalidf("index.ef_construction and index.ef apply to hnsw; ivfpq searches index.nprobe lists")
	}
	if ix.Quantization != "" {
		return invalidf("index.quantization applies to hnsw; ivfpq always stores product-quantized codes")
	}
	if ix.NList == 0 {
		ix.NList = DefaultNList
	}
	if ix.M == 0 {
		ix.M = max(dim/3, 1)
	}
	if ix.NProbe == 0 {
		ix.NProbe = min(DefaultNProbe, ix.NList)
	}
	switch {
	case ix.NList < 1 || ix.NList > MaxNList:
		return invalidf("index.nlist must be between 1 and %d, got %d", MaxNList, ix.NList)
	case ix.M < 1 || ix.M > dim:
		return invalidf("index.m (product-quantizer subspaces) must be between 1 and the dimension, %d, got %d", dim, ix.M)
	case ix.NProbe < 1 || ix.NProbe > ix.NList:
		return invalidf("index.nprobe must be between 1 and index.nlist (%d), got %d", ix.NList, ix.NProbe)
	case ix.Rerank < 0 || ix.Rerank > MaxRerank:
		return invalidf("index.rerank must be between 0 (no re-ranking) and %d, got %d", MaxRerank, ix.Rerank)
	}
	return nil
}

// ValidName reports whether name is a valid collection name:
// [A-Za-z0-9_-]{1,64}.
func ValidName(name string) error {
	if len(name) < 1 || len(name) > MaxNameBytes {
		return invalidf("collection name must be 1 to %d characters, got %d", MaxNameBytes, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return invalidf("collection name %q may contain only letters, digits, '_' and '-'", name)
		}
	}
	return nil
}

// ValidID reports whether id is a valid record id: UTF-8, 1 to 256 bytes.
func ValidID(id string) error {
	if len(id) < 1 || len(id) > MaxIDBytes {
		return invalidf("record id must be 1 to %d bytes, got %d", MaxIDBytes, len(id))
	}
	if !utf8.ValidString(id) {
		return invalidf("record id must be valid UTF-8")
	}
	return nil
}

// RecordInput is a record to upsert, as decoded from a request. Validate it
// with Engine.ValidateRecord before passing it to Upsert.
type RecordInput struct {
	ID       string
	Vector   []float32
	Text     string
	Metadata json.RawMessage // a JSON object, or empty

	// Set by validation.
	validFor uint64         // collection id it was validated against
	meta     map[string]any // parsed Metadata
	compact  []byte         // compacted Metadata
}

// validate checks r against the collection's descriptor.
func validateRecord(desc *store.Collection, r *RecordInput) error {
	if err := ValidID(r.ID); err != nil {
		return err
	}
	if len(r.Vector) != desc.Dimension {
		if len(r.Vector) == 0 {
			return invalidf("record %q: vector is required", r.ID)
		}
		return &Error{Kind: ErrInvalid,
			Message: fmt.Sprintf("record %q: vector has %d dimensions, collection %q has %d", r.ID, len(r.Vector), desc.Name, desc.Dimension),
			Details: map[string]any{"expected": desc.Dimension, "got": len(r.Vector)}}
	}
	var norm float64
	for i, f := range r.Vector {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return invalidf("record %q: vector[%d] is not a finite number", r.ID, i)
		}
		norm += float64(f) * float64(f)
	}
	if desc.Metric == "cosine" && norm == 0 {
		return invalidf("record %q: a zero vector has no direction (metric cosine)", r.ID)
	}
	if len(r.Text) > MaxTextBytes {
		return tooLargef("record %q: text is %d bytes, the limit is %d", r.ID, len(r.Text), MaxTextBytes)
	}
	if !utf8.ValidString(r.Text) {
		return invalidf("record %q: text must be valid UTF-8", r.ID)
	}
	r.meta, r.compact = nil, nil
	if m := bytes.TrimSpace(r.Metadata); len(m) > 0 && !bytes.Equal(m, []byte("null")) {
		if len(m) > MaxMetadataBytes {
			return tooLargef("record %q: metadata is %d bytes, the limit is %d", r.ID, len(m), MaxMetadataBytes)
		}
		if m[0] != '{' {
			return invalidf("record %q: metadata must be a JSON object", r.ID)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, m); err != nil {
			return invalidf("record %q: metadata is not valid JSON: %v", r.ID, err)
		}
		if err := json.Unmarshal(buf.Bytes(), &r.meta); err != nil {
			return invalidf("record %q: metadata must be a JSON object: %v", r.ID, err)
		}
		r.compact = buf.Bytes()
	}
	r.validFor = desc.ID
	return nil
}
