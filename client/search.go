package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
)

// What a search can include in its results besides id and distance.
const (
	IncludeMetadata = "metadata"
	IncludeText     = "text"
	IncludeVector   = "vector"
)

// SearchRequest asks for the records nearest to a vector.
type SearchRequest struct {
	// Vector is the query; it has the collection's dimension.
	Vector []float32

	// K is how many results to return; zero means the server's default.
	// When at least K records match Filter, exactly K come back.
	K int

	// Filter restricts the search to records whose metadata matches, in
	// the operator form of the API ({"kind": "fact"},
	// {"score": {"$gte": 0.5}}, ...). It is encoded with encoding/json: a
	// map[string]any, a struct, or a json.RawMessage holding encoded
	// JSON. nil, or anything that encodes to null, means no filter.
	Filter any

	// Ef overrides, for this search, the collection's HNSW search
	// candidate list size (IndexSpec.Ef) or, for an IVF-PQ collection, the
	// number of lists scanned (IndexSpec.NProbe); zero keeps it. The API
	// has this one per-query knob, "ef", for both.
	Ef int

	// Include lists what results carry besides id and distance: any of
	// IncludeMetadata, IncludeText and IncludeVector.
	Include []string
}

// searchWire is a SearchRequest as the Client sends it.
type searchWire struct {
	Vector    []float32       `json:"vector,omitempty"`
	VectorB64 string          `json:"vector_b64,omitempty"`
	K         int             `json:"k,omitempty"`
	Filter    json.RawMessage `json:"filter,omitempty"`
	Ef        int             `json:"ef,omitempty"`
	Include   []string        `json:"include,omitempty"`
}

// encodeSearch returns req's JSON body.
func (c *Client) encodeSearch(req *SearchRequest) ([]byte, error) {
	w := searchWire{K: req.K, Ef: req.Ef, Include: req.Include}
	if c.jsonVectors {
		w.Vector = req.Vector
	} else if len(req.Vector) > 0 {
		w.VectorB64 = encodeVector(req.Vector)
	}
	if req.Filter != nil {
		filter, err := json.Marshal(req.Filter)
		if err != nil {
			return nil, fmt.Errorf("encode filter: %w", err)
		}
		// A nil map or nil json.RawMessage in the interface encodes to
		// null; "no filter" is the only sensible reading.
		if !bytes.Equal(filter, []byte("null")) {
			w.Filter = filter
		}
	}
	return json.Marshal(w)
}

// SearchResult is one record found by a search. Metadata, Text and Vector
// are set only if the request included them.
type SearchResult struct {
	ID       string         `json:"id"`
	Distance float32        `json:"distance"`
	Metadata map[string]any `json:"metadata,omitempty"`
	Text     string         `json:"text,omitempty"`
	Vector   []float32      `json:"vector,omitempty"`
}

// UnmarshalJSON decodes a result whose vector is either "vector" or
// "vector_b64".
func (r *SearchResult) UnmarshalJSON(b []byte) error {
	type plain SearchResult // without methods, so that decoding it does not recurse
	wire := struct {
		*plain
		VectorB64 vectorB64 `json:"vector_b64"`
	}{plain: (*plain)(r)}
	*r = SearchResult{}
	if err := json.Unmarshal(b, &wire); err != nil {
		return err
	}
	if len(wire.VectorB64) > 0 {
		r.Vector = wire.VectorB64
	}
	return nil
}

// SearchResponse is the answer to one search.
type SearchResponse struct {
	// Results are ordered by distance, nearest first.
	Results []SearchResult `json:"results"`

	// Seq is the sequence number of the last write the search saw.
	Seq uint64 `json:"seq"`
}

// Search returns the records of collection nearest to req.Vector.
func (c *Client) Search(ctx context.Context, collection string, req SearchRequest) (*SearchResponse, error) {
	if err := checkName("collection name", collection); err != nil {
		return nil, err
	}
	body, err := c.encodeSearch(&req)
	if err != nil {
		return nil, fmt.Errorf("hippo: search %s: %w", collection, err)
	}
	answer := new(SearchResponse)
	if _, err := c.call(ctx, http.MethodPost, collectionPath(collection, "/search"), nil, json.RawMessage(body), answer); err != nil {
		return nil, err
	}
	return answer, nil
}

// batchLine is one line of a batch search's answer: a SearchResponse, or an
// error envelope.
type batchLine struct {
	SearchResponse
	Error *errorBody `json:"error"`
}

// SearchBatch runs many searches in one request and returns an iterator over
// their answers, one per request and in the same order. Requests are sent as
// reqs produces them, while answers are read as the server produces them, so
// neither side holds the whole batch and the first answers arrive before the
// last requests are sent.
//
// A search that fails yields a nil response and an *Error, and the iteration
// goes on with the next. A failure of the request as a whole (the collection
// does not exist, the connection broke, the server answered fewer searches
// than were sent) yields an error once and ends the iteration. Breaking out
// of the loop cancels the request.
//
//	queries := func(yield func(client.SearchRequest) bool) {
//		for _, v := range vectors {
//			if !yield(client.SearchRequest{Vector: v, K: 10}) {
//				return
//			}
//		}
//	}
//	for answer, err := range c.SearchBatch(ctx, "docs", queries) {
//		...
//	}
//
// reqs runs on a goroutine of its own, concurrently with the loop body. The
// loop ends only after reqs has returned: once the request has ended, the
// next yield in reqs returns false. A reqs that waits for answers before
// producing the next request is fine, but it must stop waiting when the loop
// is left early, or leaving the loop waits for it.
//
// The interleaving needs a server that reads the request while it answers.
// Over HTTP/2 that is always possible; over HTTP/1.1 (WithHTTP1Pool) the
// server must enable full duplex, which the Hippo server does. A proxy that
// buffers whole requests makes answers wait for the last request; reqs must
// then not wait for answers.
//
// WithTimeout does not apply; bound a batch with ctx. Each range over the
// iterator sends a new batch, ranging over reqs again.
func (c *Client) SearchBatch(ctx context.Context, collection string, reqs iter.Seq[SearchRequest]) iter.Seq2[*SearchResponse, error] {
	return func(yield func(*SearchResponse, error) bool) {
		if err := checkName("collection name", collection); err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		pr, pw := io.Pipe()
		// The producer's results, written before done is closed.
		var (
			sent      int   // requests written to the pipe
			finished  bool  // reqs ended by itself and the body was ended
			encodeErr error // a request could not be encoded
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for req := range reqs {
				b, err := c.encodeSearch(&req)
				if err != nil {
					encodeErr = fmt.Errorf("hippo: search batch %s: request %d: %w", collection, sent+1, err)
					pw.CloseWithError(encodeErr)
					return
				}
				// One write per request and no buffering: the
				// transport sends each write at once, which is what
				// lets a request be answered while reqs is still
				// deciding on the next.
				if _, err := pw.Write(append(b, '\n')); err != nil {
					return // the request has ended
				}
				sent++
			}
			finished = true
			pw.Close()
		}()
		// Runs last: stop the producer, then wait for it, so that reqs is
		// not running once the loop is over.
		defer func() {
			cancel()
			pr.CloseWithError(errCallDone)
			<-done
		}()

		// stopProducer stops the producer and waits for it, and returns
		// its encoding error if it had one: that error explains a failed
		// request better than the transport's report of a cut-off body.
		stopProducer := func() error {
			pr.CloseWithError(errCallDone)
			<-done
			return encodeErr
		}

		req, err := c.newRequest(ctx, http.MethodPost, collectionPath(collection, "/search/batch"), nil, pr, contentTypeNDJSON)
		if err != nil {
			yield(nil, err)
			return
		}
		req.Header.Set("Accept", contentTypeNDJSON)
		resp, err := c.send(req)
		if err != nil {
			if encodeErr := stopProducer(); encodeErr != nil {
				err = encodeErr
			}
			yield(nil, err)
			return
		}
		defer resp.Body.Close()

		dec := json.NewDecoder(resp.Body)
		for received := 0; ; received++ {
			var line batchLine
			err := dec.Decode(&line)
			if err == io.EOF {
				// The server has ended its answer; it must have
				// answered every request it was sent, and read them
				// all.
				if encodeErr := stopProducer(); encodeErr != nil {
					yield(nil, encodeErr)
				} else if received != sent || !finished {
					yield(nil, fmt.Errorf("hippo: search batch %s: %w after %d answers", collection, errBatchShort, received))
				}
				return
			}
			if err != nil {
				if encodeErr := stopProducer(); encodeErr != nil {
					err = encodeErr
				}
				yield(nil, fmt.Errorf("hippo: search batch %s: answer %d: %w", collection, received+1, err))
				return
			}
			if line.Error != nil {
				if !yield(nil, line.Error.toError(0)) {
					return
				}
				continue
			}
			answer := line.SearchResponse
			if !yield(&answer, nil) {
				return
			}
		}
	}
}

// errBatchShort reports a batch search answer that ended before every request
// was answered.
var errBatchShort = errors.New("the server ended its answer early")
