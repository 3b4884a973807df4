package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Types of the events in the change feed (Event.Type).
const (
	EventCollectionCreated = "collection.created"
	EventCollectionDeleted = "collection.deleted"
	EventRecordUpserted    = "record.upserted"
	EventRecordDeleted     = "record.deleted"
)

// Event is one committed change, as the change feed reports it.
type Event struct {
	// Seq is the event's sequence number: every committed change has one,
	// one more than the change before it.
	Seq uint64 `json:"seq"`

	// Type is one of the Event constants, or a type added by a later server.
	Type string `json:"type"`

	// Collection is the name of the collection the change is about.
	Collection string `json:"collection"`

	// ID is the record's id, for record events.
	ID string `json:"id,omitempty"`

	// Time is when the server committed the change.
	Time time.Time `json:"time"`

	// Record is, for a record.upserted event and only if
	// EventsOptions.Records asked for it, the version of the record that the
	// upsert wrote. It is nil when that version had already been replaced
	// or deleted by the time the server read the event: a later event says
	// what became of it.
	Record *Record `json:"record,omitempty"`
}

// EventsOptions configures Events. A nil *EventsOptions is the zero value:
// every event from now on, without records.
type EventsOptions struct {
	// From, if not nil, asks for the events after sequence number *From:
	// 0 for the whole retained history, or the Seq of the last event a
	// consumer processed to go on from there. Nil starts at the moment
	// Events starts ranging.
	From *uint64

	// Collections, if not empty, admits only events of these collections.
	Collections []string

	// Types, if not empty, admits only events of these types (the Event
	// constants).
	Types []string

	// Records asks for the record an upsert wrote in each record.upserted
	// event. It is off by default: an event is then a hundred bytes or so
	// rather than the size of a record, which is what consumers that only
	// need to know what changed (to invalidate a cache, say) want.
	Records bool

	// IdleTimeout replaces the connection if nothing, not even one of the
	// heartbeats the server sends every 15 seconds, arrives for this long.
	// Zero means 45 seconds; a negative value disables the check.
	IdleTimeout time.Duration

	// OnRetry, if not nil, is called before each reconnection with the
	// reason the connection ended (or could not be made) and how long the
	// iterator will wait before it tries again. It is called on the
	// goroutine ranging over the events and must not block for long.
	OnRetry func(err error, wait time.Duration)
}

// GapError says that events a consumer asked for are no longer retained by the
// server, which trims its change feed by age and size. Events yields it, then
// goes on with the oldest retained event if the loop continues.
type GapError struct {
	Requested uint64 // the first seq the consumer needed
	Oldest    uint64 // the oldest seq the server still holds, which comes next
	Message   string // the server's explanation
}

func (e *GapError) Error() string {
	if e.Message != "" {
		return "hippo: feed gap: " + e.Message
	}
	return fmt.Sprintf("hippo: feed gap: events from seq %d are no longer retained; the oldest is %d", e.Requested, e.Oldest)
}

// Backoff between reconnections: the first wait after a connection that
// worked is short, since a restarting server is back within a second or so;
// waits then double up to a bound.
const (
	retryMin           = 100 * time.Millisecond
	retryMax           = 5 * time.Second
	defaultIdleTimeout = 45 * time.Second // three missed heartbeats
	maxEventSize       = 16 << 20         // a larger event is a broken stream
	contentTypeSSE     = "text/event-stream"
	feedGapType        = "feed.gap"
	eventsReadBufSize  = 64 << 10
)

// Events returns an iterator over the change feed (GET /v1/events, as
// Server-Sent Events): every committed change that opts admits, in sequence
// order, each exactly once, for as long as ctx allows.
//
// The iterator keeps the sequence number of the last event it yielded. When
// the connection drops (the network fails, the server restarts or is killed)
// it connects again, waiting 100 ms at first and up to 5 s between failed
// attempts, and asks for the events after that sequence number with the
// Last-Event-ID header, so that nothing is skipped and nothing is yielded
// twice. It does so without yielding the error; OnRetry sees it.
//
// On an http:// or Unix socket address, the stream has an HTTP/1.1
// connection of its own, whichever transport the Client's other calls use
// (not counted in WithHTTP1Pool's bound): the server writes such streams most
// cheaply. With WithHTTPClient, or on https, it goes through the Client's
// transport.
//
// If events the consumer needs are no longer retained (it was away longer
// than the server's retention), the iterator yields a *GapError and, if the
// loop goes on, continues with the oldest retained event. Any other error
// ends the iteration after being yielded once: ctx's error when ctx is done,
// an *Error when the server refuses the request (an unknown event type, say;
// rate limiting and 5xx answers are retried instead), or a decoding error
// when the stream is malformed.
//
//	from := lastProcessedSeq
//	for event, err := range c.Events(ctx, &client.EventsOptions{From: &from}) {
//		var gap *client.GapError
//		switch {
//		case errors.As(err, &gap):
//			resync() // events were lost to retention; the loop goes on
//			continue
//		case err != nil:
//			return err
//		}
//		apply(event)
//	}
//
// With From nil, the iterator first asks the server for its newest sequence
// number (GET /readyz), so that a reconnection before the first event still
// resumes at the moment the iteration began.
//
// Each range over the iterator is a new subscription, on a connection as
// said above. WithTimeout does not apply. Records arrive with their vectors
// as base64 unless WithJSONVectors is given.
func (c *Client) Events(ctx context.Context, opts *EventsOptions) iter.Seq2[*Event, error] {
	var o EventsOptions
	if opts != nil {
		o = *opts
	}
	return func(yield func(*Event, error) bool) {
		s := &eventStream{c: c, opts: &o, yield: yield}
		if o.From != nil {
			s.pos, s.havePos = *o.From, true
		}
		s.run(ctx)
	}
}

// eventStream is one range over Events.
type eventStream struct {
	c     *Client
	opts  *EventsOptions
	yield func(*Event, error) bool

	pos     uint64 // the last seq yielded, or the position asked for
	havePos bool   // false only before the first event when the server would not tell its position
	stopped bool   // the loop broke out
}

// run connects, reads and reconnects until ctx is done, the loop breaks, or
// an error that retrying cannot cure.
func (s *eventStream) run(ctx context.Context) {
	var base, delay time.Duration // the backoff, and the wait it gave with jitter
	for first := true; ; first = false {
		if !first && !sleepCtx(ctx, delay) {
			s.yield(nil, ctx.Err())
			return
		}
		healthy, err := s.connect(ctx)
		if s.stopped {
			return
		}
		if ctx.Err() != nil {
			s.yield(nil, ctx.Err())
			return
		}
		if !retryable(err) {
			s.yield(nil, err)
			return
		}
		if healthy || base == 0 {
			base = retryMin
		} else {
			base = min(2*base, retryMax)
		}
		// Jitter, so that the consumers of a restarted server do not all
		// come back in the same instant.
		delay = base/2 + rand.N(base/2+1)
		var herr *Error
		if errors.As(err, &herr) && herr.RetryAfter > delay {
			delay = herr.RetryAfter
		}
		if s.opts.OnRetry != nil {
			s.opts.OnRetry(err, delay)
		}
	}
}

// retryable reports whether a connection that ended with err is worth making
// again: network failures and the ends of streams are, and so are the answers
// of an overloaded or restarting server; other refusals are final.
func retryable(err error) bool {
	var herr *Error
	if errors.As(err, &herr) {
		return herr.Status == http.StatusRequestTimeout || herr.Status == http.StatusTooManyRequests || herr.Status >= 500
	}
	var decodeErr *eventDecodeError
	return !errors.As(err, &decodeErr)
}

// sleepCtx waits for d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// connect makes one connection and reads it until it ends. It returns why it
// ended, and whether it was healthy: answered 200 and delivered something.
func (s *eventStream) connect(ctx context.Context) (healthy bool, err error) {
	if !s.havePos {
		if s.pos, err = s.c.feedPosition(ctx); err != nil {
			return false, err
		}
		s.havePos = true
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	query := url.Values{}
	if len(s.opts.Collections) > 0 {
		query.Set("collections", strings.Join(s.opts.Collections, ","))
	}
	if len(s.opts.Types) > 0 {
		query.Set("types", strings.Join(s.opts.Types, ","))
	}
	if s.opts.Records {
		if !s.c.jsonVectors {
			query.Set("vector_b64", "1")
		}
	} else {
		query.Set("records", "false")
	}
	req, err := s.c.newRequest(ctx, http.MethodGet, "/v1/events", query, nil, "")
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", contentTypeSSE)
	req.Header.Set("Last-Event-ID", strconv.FormatUint(s.pos, 10))
	resp, err := s.c.sendEvents(req)
	if err != nil {
		return false, err
	}
	// Cancelling the request, then closing its unfinished body, resets the
	// HTTP/2 stream or closes the HTTP/1.1 connection; either way the
	// server stops sending. (Cancelling first matters: a transport may try
	// to drain a body before closing it, and this one never ends.)
	defer func() {
		cancel()
		resp.Body.Close()
	}()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, contentTypeSSE) {
		return false, &eventDecodeError{fmt.Errorf("hippo: events: answer is %q, not %s", ct, contentTypeSSE)}
	}
	body := io.Reader(resp.Body)
	var idle *idleReader
	if d := s.opts.IdleTimeout; d >= 0 {
		if d == 0 {
			d = defaultIdleTimeout
		}
		idle = newIdleReader(resp.Body, d, cancel)
		defer idle.stop()
		body = idle
	}
	before, began := s.pos, time.Now()
	err = s.read(bufio.NewReaderSize(body, eventsReadBufSize))
	if idle != nil && idle.expired.Load() {
		err = fmt.Errorf("hippo: events: nothing received for %v", idle.timeout)
	}
	// A connection that delivered something, or lasted, was healthy; one
	// that a server refuses at once again and again is not, and the waits
	// between them grow.
	return s.pos != before || time.Since(began) > time.Second, err
}

// feedPosition asks the server for the seq of its newest event.
func (c *Client) feedPosition(ctx context.Context) (uint64, error) {
	var status struct {
		Feed *struct {
			LastSeq uint64 `json:"last_seq"`
		} `json:"feed"`
	}
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	if _, err := c.call(ctx, http.MethodGet, "/readyz", nil, nil, &status); err != nil {
		return 0, err
	}
	if status.Feed == nil {
		return 0, &eventDecodeError{errors.New("hippo: events: the server's /readyz does not report its feed position")}
	}
	return status.Feed.LastSeq, nil
}

// eventDecodeError is a malformed stream: retrying would read the same bytes.
type eventDecodeError struct{ err error }

func (e *eventDecodeError) Error() string { return e.err.Error() }
func (e *eventDecodeError) Unwrap() error { return e.err }

// read parses the Server-Sent Events of one connection and yields them. It
// returns io.EOF when the server ended the stream (it shuts down gracefully
// that way), or the error that broke it. Lines end in LF or CRLF.
func (s *eventStream) read(r *bufio.Reader) error {
	var (
		eventType []byte // the "event:" field of the message being read
		data      []byte // its "data:" fields, joined by LF
		hasData   bool
		id        []byte
		hasID     bool
		long      []byte // a line longer than r's buffer, being assembled
	)
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				if len(long) > maxEventSize {
					return &eventDecodeError{fmt.Errorf("hippo: events: a line after seq %d is longer than %d bytes", s.pos, maxEventSize)}
				}
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF // a message cut off in the middle
			}
			return err
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		if len(line) == 0 {
			// A blank line dispatches the message.
			if hasID {
				// The id field, alone or with data, is the position the
				// server says the stream has reached.
				seq, perr := strconv.ParseUint(string(id), 10, 64)
				if perr != nil {
					return &eventDecodeError{fmt.Errorf("hippo: events: bad id %q after seq %d", id, s.pos)}
				}
				if !hasData && seq > s.pos {
					s.pos = seq
				}
			}
			if hasData {
				if err := s.dispatch(eventType, data); err != nil {
					return err
				}
			}
			eventType, data, hasData, hasID = eventType[:0], data[:0], false, false
			continue
		}
		if line[0] == ':' {
			continue // a comment: the server's heartbeat
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		switch string(field) {
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data, hasData = append(data, value...), true
			if len(data) > maxEventSize {
				return &eventDecodeError{fmt.Errorf("hippo: events: an event after seq %d is larger than %d bytes", s.pos, maxEventSize)}
			}
		case "event":
			eventType = append(eventType[:0], value...)
		case "id":
			id, hasID = append(id[:0], value...), true
		}
		// "retry" is ignored: the iterator backs off on its own. Unknown
		// fields are ignored, as the SSE specification says.
	}
}

// errStopped ends a read whose loop broke out.
var errStopped = errors.New("hippo: events: iteration stopped")

// eventWire is an event or a feed.gap notice as the server sends it. The
// record is decoded in the same pass, from either vector form.
type eventWire struct {
	Seq        uint64      `json:"seq"`
	Type       string      `json:"type"`
	Collection string      `json:"collection"`
	ID         string      `json:"id"`
	Time       time.Time   `json:"time"`
	Record     *recordWire `json:"record"`

	RequestedSeq uint64 `json:"requested_seq"` // feed.gap
	OldestSeq    uint64 `json:"oldest_seq"`    // feed.gap
	Message      string `json:"message"`       // feed.gap
}

// recordFields is Record without its UnmarshalJSON, so that the record inside
// an event is decoded in the event's single pass.
type recordFields Record

type recordWire struct {
	recordFields
	VectorB64 vectorB64 `json:"vector_b64"`
}

// dispatch decodes one message and yields it. It returns errStopped if the
// loop broke out, or an *eventDecodeError.
func (s *eventStream) dispatch(eventType, data []byte) error {
	var w eventWire
	if err := json.Unmarshal(data, &w); err != nil {
		return &eventDecodeError{fmt.Errorf("hippo: events: decode the event after seq %d: %w", s.pos, err)}
	}
	if string(eventType) == feedGapType || w.Type == feedGapType {
		gap := &GapError{Requested: w.RequestedSeq, Oldest: w.OldestSeq, Message: w.Message}
		if w.OldestSeq > 0 && w.OldestSeq-1 > s.pos {
			s.pos = w.OldestSeq - 1 // the stream goes on from the oldest
		}
		return s.emit(nil, gap)
	}
	if w.Seq <= s.pos {
		return nil // already yielded before a reconnection
	}
	s.pos = w.Seq
	return s.emit(w.event(), nil)
}

// event is the Event w decodes to.
func (w *eventWire) event() *Event {
	ev := &Event{Seq: w.Seq, Type: w.Type, Collection: w.Collection, ID: w.ID, Time: w.Time}
	if w.Record != nil {
		rec := Record(w.Record.recordFields)
		if len(w.Record.VectorB64) > 0 {
			rec.Vector = w.Record.VectorB64
		}
		ev.Record = &rec
	}
	return ev
}

// emit yields one value; it returns errStopped if the loop broke out.
func (s *eventStream) emit(ev *Event, err error) error {
	if !s.yield(ev, err) {
		s.stopped = true
		return errStopped
	}
	return nil
}

// idleReader cancels a connection on which nothing arrives for timeout. The
// clock runs only while a Read waits, not while the consumer is busy with what
// was read.
type idleReader struct {
	r       io.Reader
	timeout time.Duration
	timer   *time.Timer
	expired atomic.Bool
}

func newIdleReader(r io.Reader, timeout time.Duration, cancel func()) *idleReader {
	ir := &idleReader{r: r, timeout: timeout}
	ir.timer = time.AfterFunc(timeout, func() {
		ir.expired.Store(true)
		cancel()
	})
	ir.timer.Stop()
	return ir
}

func (ir *idleReader) Read(p []byte) (int, error) {
	ir.timer.Reset(ir.timeout)
	n, err := ir.r.Read(p)
	ir.timer.Stop()
	return n, err
}

func (ir *idleReader) stop() { ir.timer.Stop() }
