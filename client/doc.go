/*
Package client is the Go client for the Hippo vector database's HTTP API v1.
It imports only the standard library (and this module's internal/jsonscan,
which imports only the standard library too).

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

Events is the exception on http addresses and Unix sockets: each event
stream has an HTTP/1.1 connection of its own, outside these limits, which
the server writes most cheaply. On https, or with WithHTTPClient, it goes
through the Client's transport like any call.

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

# Change feed

Every committed change has a sequence number ("seq"), one more than the
change before it, and the server keeps them in a change feed. Events returns
an iterator over it that survives the connection:

	from := uint64(0) // the whole retained history; nil From means "from now"
	for event, err := range c.Events(ctx, &client.EventsOptions{
		From:        &from,
		Collections: []string{"docs"},
		Records:     true, // the record an upsert wrote, in its event
	}) {
		if err != nil {
			return err // or, for a *client.GapError, resync and continue
		}
		fmt.Println(event.Seq, event.Type, event.ID)
	}

It reads Server-Sent Events. When the connection drops, or the server
restarts or crashes, the iterator connects again by itself (after 100 ms, then
backing off up to 5 s while attempts fail) and sends the seq of the last event
it yielded as Last-Event-ID; the server resumes right after it. So a loop sees
every event that its options admit exactly once, in seq order, whatever
happens to connections in between; it does not see the reconnections, except
through the OnRetry callback. If nothing arrives for 45 s, not even the
server's heartbeat, the connection is presumed dead and replaced.

The server trims its feed by age and size. A consumer that comes back after
the events it needs were trimmed gets a *GapError naming the oldest retained
seq, never a silent jump; the loop may continue past it, and the events then
go on from that oldest one. Other errors end the loop: the context's, a
request the server refuses as such (an unknown event type), or a malformed
stream. Rate limiting and 5xx answers are retried.

Events relies on these behaviours of GET /v1/events, beyond the event's JSON
shape: each event's "id:" field is its seq; Last-Event-ID: N resumes after N
(and so does from=N); a "feed.gap" event carries requested_seq and
oldest_seq; and GET /readyz reports the feed's newest seq as feed.last_seq,
which is where an iterator without From begins (so that a reconnection before
its first event still loses nothing).

# WebSocket sessions

A Session is one WebSocket connection (GET /v1/ws) that carries change-feed
subscriptions and operations together: for a process that reacts to changes
and writes back, one connection instead of a stream and a request per
write, with answers between the events.

	s, err := c.Session(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	sub, _, err := s.Subscribe(ctx, client.SubscribeOptions{Collections: []string{"docs"}})
	...
	go func() {
		for ev := range s.Events() { // closed when the session ends
			if ev.Err != nil {
				continue // a *GapError, or an *Error that ended the subscription
			}
			fmt.Println(ev.Subscription == sub, ev.Event.Seq, ev.Event.ID)
		}
	}()
	seq, err := s.Upsert(ctx, "docs", client.Record{ID: "a", Vector: v})

Get, Upsert (a batch, all or none), Delete and Search take the same
arguments and return the same results and *Error values as the Client's
calls. Each sends a message with a fresh request id and waits for the
answer that carries it; calls from several goroutines run concurrently on
the server and are answered in any order. At most 32 are in flight at once,
the server's limit; further calls wait for an answer (a call whose context
ends returns at once but holds its place until the server answers it).

Within a subscription, events arrive in seq order. Keep receiving from
Events while subscriptions are active, on a goroutine of its own: when its
buffer of 256 is full, the Session stops reading the connection, and then
the answers that follow the events wait too. The server in turn stops
taking events from the feed for the session until it catches up, without
losing any.

A Session does not reconnect. It ends when Close is called, when the
connection breaks, or when the server closes it; Err then says why, and a
*CloseError carries the WebSocket close code: 1001 when the server shuts
down, 1008 when a limit was exceeded (64 subscriptions, 32 operations in
flight, a ping left unanswered for 30 s), 1009 for a message over 8 MiB. The
Session answers the server's pings by itself, as long as Events is drained. To
go on, open a new Session and subscribe with From set to the Seq of the last
event received; Unsubscribe returns the seq a subscription had reached.

The Session speaks HTTP/1.1 for its upgrade on a connection of its own,
dialled to the Client's address (TCP, TLS or Unix socket) with the Client's
headers, whatever protocol the Client's other calls use. With
WithHTTPClient its transport must be an *http.Transport. Messages from the
server are limited to 64 MiB.
*/
package client
