package client

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Record is one vector with its id and optional text and metadata.
//
// Record encodes to JSON with its vector as an array of numbers ("vector"),
// and decodes from either that or base64 ("vector_b64"). The Client's writes
// do not use this encoding: they send "vector_b64" unless WithJSONVectors is
// given, and leave out the fields the server sets.
type Record struct {
	// ID identifies the record in its collection: any UTF-8 string of 1 to
	// 256 bytes.
	ID string `json:"id"`

	// Vector has exactly the collection's dimension. It may not contain
	// NaN or infinities.
	Vector []float32 `json:"vector,omitempty"`

	Text string `json:"text,omitempty"`

	// Metadata is a JSON object of at most 64 KiB, which search filters
	// match against. Numbers come back as float64.
	Metadata map[string]any `json:"metadata,omitempty"`

	// CreatedAt, UpdatedAt and Seq are set by the server and ignored on
	// writes. Seq is the sequence number of the record's last write.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Seq       uint64    `json:"seq,omitempty"`
}

// UnmarshalJSON decodes a record whose vector is either "vector" or
// "vector_b64".
func (r *Record) UnmarshalJSON(b []byte) error {
	return r.decode(b, nil)
}

// decode decodes b into r. If lineErr is not nil, it also decodes into it the
// "error" member of an error line, which ends a stream of records that
// failed half-way.
//
// The "vector_b64" member is cut out first (cutVectorB64) and decoded apart;
// when the rest does not decode, holds another member encoding/json would
// take for "vector_b64" (of any case, even null), or the vector is not valid
// base64, b is decoded whole, so that the answer is encoding/json's in every
// case.
func (r *Record) decode(b []byte, lineErr **errorBody) error {
	type plain Record // without methods, so that decoding it does not recurse
	type wireRecord struct {
		*plain
		VectorB64 vectorB64Member `json:"vector_b64"`
		Error     *errorBody      `json:"error"`
	}
	if rest, content, ok := cutVectorB64(b); ok {
		*r = Record{}
		wire := wireRecord{plain: (*plain)(r)}
		if json.Unmarshal(rest, &wire) == nil && !wire.VectorB64.set {
			if v, err := decodeVectorB64(content); err == nil {
				if len(v) > 0 {
					r.Vector = v
				}
				if lineErr != nil {
					*lineErr = wire.Error
				}
				return nil
			}
		}
	}
	*r = Record{}
	wire := wireRecord{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &wire); err != nil {
		return err
	}
	if lineErr != nil {
		*lineErr = wire.Error
	}
	if len(wire.VectorB64.v) > 0 {
		r.Vector = wire.VectorB64.v
	}
	return nil
}

// recordLine is a line of an NDJSON stream of records: a record, or an error
// envelope.
type recordLine struct {
	record Record
	err    *errorBody
}

func (l *recordLine) UnmarshalJSON(b []byte) error {
	return l.record.decode(b, &l.err)
}

// readQuery returns the query that asks for vectors in answers as
// "vector_b64", several times cheaper than arrays of numbers for the server
// to write and the Client to parse, unless WithJSONVectors asks for arrays
// everywhere. A server that does not know the parameter ignores it and sends
// arrays, which the Client decodes as well.
func (c *Client) readQuery() url.Values {
	if c.jsonVectors {
		return url.Values{}
	}
	return url.Values{"vector_b64": {"1"}}
}

// recordWrite is a record as the Client sends it.
type recordWrite struct {
	ID        string         `json:"id,omitempty"` // empty for PUT, which has the id in its path
	Vector    []float32      `json:"vector,omitempty"`
	VectorB64 string         `json:"vector_b64,omitempty"`
	Text      string         `json:"text,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

func (c *Client) writeRecord(r *Record, withID bool) recordWrite {
	w := recordWrite{Text: r.Text, Metadata: r.Metadata}
	if withID {
		w.ID = r.ID
	}
	if c.jsonVectors {
		w.Vector = r.Vector
	} else if len(r.Vector) > 0 {
		w.VectorB64 = encodeVector(r.Vector)
	}
	return w
}

// Upsert creates the record, or replaces it if its id exists, and returns the
// sequence number of the write. A search or Get sent after Upsert returns
// sees the write.
func (c *Client) Upsert(ctx context.Context, collection string, record Record) (seq uint64, err error) {
	if err := checkName("collection name", collection); err != nil {
		return 0, err
	}
	if err := checkName("record id", record.ID); err != nil {
		return 0, err
	}
	var answer seqAnswer
	_, err = c.call(ctx, http.MethodPut, recordPath(collection, record.ID), nil, c.writeRecord(&record, false), &answer)
	return answer.Seq, err
}

// Get returns the record id. If it does not exist, Get returns an *Error for
// which IsNotFound is true.
func (c *Client) Get(ctx context.Context, collection, id string) (*Record, error) {
	if err := checkName("collection name", collection); err != nil {
		return nil, err
	}
	if err := checkName("record id", id); err != nil {
		return nil, err
	}
	record := new(Record)
	if _, err := c.call(ctx, http.MethodGet, recordPath(collection, id), c.readQuery(), nil, record); err != nil {
		return nil, err
	}
	return record, nil
}

// Delete deletes the record id and returns the sequence number of the
// deletion. If it does not exist, Delete returns an *Error for which
// IsNotFound is true.
func (c *Client) Delete(ctx context.Context, collection, id string) (seq uint64, err error) {
	if err := checkName("collection name", collection); err != nil {
		return 0, err
	}
	if err := checkName("record id", id); err != nil {
		return 0, err
	}
	var answer seqAnswer
	_, err = c.call(ctx, http.MethodDelete, recordPath(collection, id), nil, nil, &answer)
	return answer.Seq, err
}

// UpsertBatch upserts records in one request, all or nothing, and returns how
// many were upserted and the sequence number of the batch. The whole request
// is built in memory; for more records than fit comfortably, use
// ImportRecords, which streams.
func (c *Client) UpsertBatch(ctx context.Context, collection string, records []Record) (n int, seq uint64, err error) {
	if err := checkName("collection name", collection); err != nil {
		return 0, 0, err
	}
	body := struct {
		Records []recordWrite `json:"records"`
	}{Records: make([]recordWrite, len(records))}
	for i := range records {
		if err := checkName("record id", records[i].ID); err != nil {
			return 0, 0, err
		}
		body.Records[i] = c.writeRecord(&records[i], true)
	}
	var answer struct {
		Upserted int    `json:"upserted"`
		Seq      uint64 `json:"seq"`
	}
	_, err = c.call(ctx, http.MethodPost, collectionPath(collection, "/records"), nil, body, &answer)
	return answer.Upserted, answer.Seq, err
}

// ListOptions configures List. The zero value, and a nil *ListOptions, asks
// for the server's default page size.
type ListOptions struct {
	// PageSize is how many records each request asks for.
	PageSize int
}

// errRepeatedCursor reports a server that answered a page with the cursor
// that requested it, which would make List loop forever.
var errRepeatedCursor = errors.New("hippo: list: server answered with the same cursor")

// List returns an iterator over the records of collection, in the server's
// order, fetching one page per request and following the server's cursor
// until the last page. Each page is read completely, and its connection
// released, before its records are yielded. An error ends the iteration
// after being yielded once.
//
//	for record, err := range c.List(ctx, "docs", nil) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(record.ID)
//	}
//
// Each range over the iterator starts again from the first page. The pages
// are separate requests, so records written meanwhile may or may not appear;
// Export reads a consistent snapshot instead.
func (c *Client) List(ctx context.Context, collection string, opts *ListOptions) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		if err := checkName("collection name", collection); err != nil {
			yield(nil, err)
			return
		}
		query := c.readQuery()
		if opts != nil && opts.PageSize > 0 {
			query.Set("limit", strconv.Itoa(opts.PageSize))
		}
		path := collectionPath(collection, "/records")
		cursor := ""
		for {
			if cursor != "" {
				query.Set("cursor", cursor)
			}
			var page struct {
				Records    []*Record `json:"records"`
				NextCursor *string   `json:"next_cursor"`
			}
			if _, err := c.call(ctx, http.MethodGet, path, query, nil, &page); err != nil {
				yield(nil, err)
				return
			}
			for _, record := range page.Records {
				if !yield(record, nil) {
					return
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" {
				return
			}
			if *page.NextCursor == cursor {
				yield(nil, errRepeatedCursor)
				return
			}
			cursor = *page.NextCursor
		}
	}
}
