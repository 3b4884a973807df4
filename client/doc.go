/*
Package client is the Go client for the Hippo vector database's HTTP API v1.
It imports only the standard library.

Create a Client once, with the server's address, and share it:

	c, err := client.New("localhost:7700")
	if err != nil {
		...
	}
	defer c.Close()

Every call takes a context first, which bounds it and cancels it:

	_, _, err = c.CreateCollection(ctx, "docs", client.CollectionSpec{
		Dimension: 3,
		Metric:    client.MetricCosine,
		Index:     client.IndexSpec{Type: client.IndexHNSW},
	})
	...
	seq, err := c.Upsert(ctx, "docs", client.Record{
		ID:       "a",
		Vector:   []float32{0.1, 0.2, 0.3},
		Metadata: map[string]any{"kind": "fact"},
	})
	...
	answer, err := c.Search(ctx, "docs", client.SearchRequest{
		Vector:  []float32{0.1, 0.2, 0.25},
		K:       10,
		Filter:  map[string]any{"kind": "fact"},
		Include: []string{client.IncludeMetadata},
	})
	...
	for _, result := range answer.Results {
		fmt.Println(result.ID, result.Distance)
	}

Every write returns the sequence number ("seq") the server gave it in its
change feed. A search or Get sent after a write has returned sees the write.

# Addresses and transports

New accepts "http://host:port", "host:port", "https://host:port", and Unix
sockets as "unix:///path/to/hippo.sock", "unix:relative.sock", or a bare path
that starts with "/", "./" or "../".

By default the Client speaks HTTP/2 and sends its requests, concurrently, as
streams of one connection: cleartext HTTP/2 with prior knowledge ("h2c") for
http addresses and Unix sockets, HTTP/2 negotiated by TLS for https. Up to 100
requests are in flight at once, the number of streams every HTTP/2 server
should allow; further requests wait for one to finish rather than open a
second connection. A streaming call (Import, ImportRecords, Export,
SearchBatch) holds its stream until it ends. (An https server that does not
offer HTTP/2 gets a single HTTP/1.1 connection; use WithHTTP1Pool for it.)

With WithHTTP1Pool(n) the Client speaks HTTP/1.1 instead, over at most n
keep-alive connections, one request at a time on each; a request that finds
all n busy waits for one. Use it when something between client and server
does not speak cleartext HTTP/2.

With WithHTTPClient the Client sends its requests through an *http.Client of
the caller's, which then decides all of this.

The connection is dialled on first use and again after it is lost. A request
in flight when the connection is lost fails with the network error; the
Client does not retry it, since the server may have applied it.

The Client never follows redirects: the API does not send them, so one comes
from something in between, and following it could send a write elsewhere. A
redirect is returned as an *Error with its 3xx status.

# Errors

A request the server refuses returns an *Error carrying the HTTP status and
the code, message and details of the server's error envelope, and the
Retry-After delay of a rate-limited request. IsNotFound and IsConflict test
for the two codes most callers branch on; errors.As gives the rest:

	var herr *client.Error
	switch {
	case client.IsNotFound(err):
		// no such collection or record
	case errors.As(err, &herr) && herr.Code == client.CodeRateLimited:
		time.Sleep(herr.RetryAfter)
	case err != nil:
		return err
	}

Failures below HTTP (a refused connection, an expired context) are returned
as the standard library reports them, so errors.Is(err,
context.DeadlineExceeded) works.

# Vectors on the wire

Vectors are []float32. The Client sends them as "vector_b64", base64 of
their little-endian float32 bytes, which is about a third of the size of a
JSON array of numbers, exact, and cheaper for both ends; and it asks for them
in the same form in answers (Get, List, Export) with the query parameter
vector_b64=1. WithJSONVectors makes it send and ask for arrays of numbers
instead. It decodes either form in any answer.

# Streaming

Import, ImportRecords, Export and SearchBatch stream: their bodies are
written and read as they go, in constant memory, and may be arbitrarily
long. Export and SearchBatch, like List, return iterators for use with range
over func; breaking out of the loop ends the request:

	for record, err := range c.Export(ctx, "docs") {
		if err != nil {
			return err
		}
		...
	}

WithTimeout bounds only the calls that send one request and read one answer
(and each page of List); streaming calls run as long as their context allows.

# What the server must do

The client relies on these behaviours of the server, beyond the wire shapes
of the API:

  - It speaks cleartext HTTP/2 with prior knowledge on every listener,
    TCP and Unix, next to HTTP/1.1 (http.Server.Protocols with
    UnencryptedHTTP2 set).
  - It routes on the escaped path and unescapes the record id segment
    (ServeMux's r.PathValue does): ids may contain "/", "?", "%" and
    anything else; "." and ".." arrive as "%2E" and "%2E%2E".
  - Batch search reads request lines while it writes answer lines, and
    flushes each answer: over HTTP/1.1 this needs
    http.ResponseController.EnableFullDuplex. Answers come one line per
    request, in order, and the answer ends after the request body has been
    read to its end.
  - Export flushes as it goes and stops when the request's context is done.
  - Import reads its body as a stream and does not answer before the body
    ends (unless it rejects the request as a whole).
  - It shuts down gracefully (http.Server.Shutdown), which tells HTTP/2
    clients with a GOAWAY frame to take new requests to a new connection.
    Without it, requests sent at the moment the connection is closed fail.
  - It allows at least 100 concurrent HTTP/2 streams per connection (Go's
    default is 250); with fewer, the Client opens more connections.

# Concurrency

A Client is safe for concurrent use by multiple goroutines. The iterators
that List, Export and SearchBatch return may be ranged over from any
goroutine, and more than once, but each loop must stay on one goroutine.
*/
package client
