package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/feed"
	"github.com/hippo-db/hippo/internal/store"
	"github.com/hippo-db/hippo/internal/wire"
)

const (
	// eventBatch is how many events a stream writes between flushes, and
	// maxBatchBytes how many bytes of them: a batch of large records
	// (texts of up to a MiB) is cut short, so that what a stream holds
	// while its subscriber is slow stays small.
	eventBatch    = 256
	maxBatchBytes = 1 << 20
	// defaultStreamWriteTimeout drops a subscriber that cannot take a
	// batch for this long (Options.StreamWriteTimeout); it resumes from its
	// last seq when it reconnects.
	defaultStreamWriteTimeout = time.Minute
	// defaultHeartbeat keeps idle streams alive through proxies: a stream
	// that sent nothing since the previous tick gets a heartbeat.
	defaultHeartbeat = 15 * time.Second
)

// eventTypes are the types a subscriber may filter on.
var eventTypes = map[string]bool{
	store.OpCollectionCreated.String(): true,
	store.OpCollectionDeleted.String(): true,
	store.OpRecordUpserted.String():    true,
	store.OpRecordDeleted.String():     true,
}

// streamRequest is a parsed GET /v1/events.
type streamRequest struct {
	after     uint64 // deliver events with seq > after
	filter    feed.Filter
	format    feed.Format
	sse       bool
	failOnGap bool
}

func (a *API) parseStream(r *http.Request) (*streamRequest, error) {
	q, err := queryParams(r)
	if err != nil {
		return nil, err
	}
	sr := &streamRequest{after: a.engine.LastSeq(), format: feed.RecordsJSON}
	accept := r.Header.Get("Accept")
	sr.sse = strings.Contains(accept, "text/event-stream")
	if !sr.sse && accept != "" && !strings.Contains(accept, "application/x-ndjson") &&
		!strings.Contains(accept, "*/*") && !strings.Contains(accept, "application/*") {
		return nil, &apiError{Status: http.StatusNotAcceptable, Code: "not_acceptable",
			Message: fmt.Sprintf("cannot answer %q: accept text/event-stream or application/x-ndjson", accept)}
	}
	if s := q.Get("from"); s != "" {
		if sr.after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, newError("invalid_argument", fmt.Sprintf("from %q is not a sequence number", s))
		}
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if sr.after, err = strconv.ParseUint(strings.TrimSpace(id), 10, 64); err != nil {
			return nil, newError("invalid_argument", fmt.Sprintf("Last-Event-ID %q is not a sequence number", id))
		}
	}
	if s := q.Get("collections"); s != "" {
		sr.filter.Collections = map[string]bool{}
		for _, name := range strings.Split(s, ",") {
			if err := engine.ValidName(name); err != nil {
				return nil, err
			}
			sr.filter.Collections[name] = true
		}
	}
	if s := q.Get("types"); s != "" {
		sr.filter.Types = map[string]bool{}
		for _, t := range strings.Split(s, ",") {
			if !eventTypes[t] {
				return nil, newError("invalid_argument", fmt.Sprintf("unknown event type %q", t))
			}
			sr.filter.Types[t] = true
		}
	}
	switch q.Get("records") {
	case "", "true", "1":
	case "false", "0":
		sr.format = feed.NoRecords
	default:
		return nil, newError("invalid_argument", "records must be true or false")
	}
	if sr.format == feed.RecordsJSON && vectorsAsB64(r) {
		sr.format = feed.RecordsBase64
	}
	sr.filter.Records = sr.format != feed.NoRecords
	switch q.Get("on_gap") {
	case "", "event":
	case "fail":
		sr.failOnGap = true
	default:
		return nil, newError("invalid_argument", "on_gap must be event or fail")
	}
	return sr, nil
}

// Event streams write small batches (a live subscriber's few events)
// straight into the ResponseWriter, whose own buffer takes them, and large
// ones (catching up, records) through one of a few shared 32 KiB buffers,
// which cut a batch into fewer, larger writes to the connection. A stream
// holds a buffer only while it writes a batch: buffers of their own cost
// 10,000 idle subscribers 320 MiB, and taken from a pool while every one of
// them flushed the same event, as many.
const (
	streamBufSize   = 32 << 10
	maxStreamBufs   = 64      // leased at once; beyond, batches are written directly
	smallBatchBytes = 4 << 10 // what net/http buffers for a stream by itself
)

var (
	streamBufs      = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, streamBufSize) }}
	streamBufLeases atomic.Int64
)

// events streams the change feed as Server-Sent Events or NDJSON. A stream
// on a plain HTTP/1.1 connection is handed to the direct writer
// (events_direct.go) and the handler returns; the rest run here.
//
// Waiting costs a stream no timer, goroutine or buffer of its own: it waits
// on the feed's channel for new events, the shared heartbeat tick, and the
// request's and the API's ends. Its goroutine's stack is most of what an
// idle subscriber costs, so the stream is opened in a function of its own,
// whose frame (and the query parsing below it) is gone while the stream
// waits, and the loop's frame is small: a stream that never goes deeper
// than 4 KiB keeps a 4 KiB stack rather than 8.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	st := a.openStream(w, r)
	if st == nil {
		return
	}
	if st.direct != nil {
		// The handler returns, and with it net/http's hold on the
		// connection: a goroutine of the stream's own waits for its end.
		release, revoked := detach(r)
		go a.direct.awaitEnd(st.direct, revoked, release)
		return
	}
	defer st.close()
	a.ownStreams.Add(1)
	defer a.ownStreams.Add(-1)
	st.run(r.Context().Done(), a.closing.Done())
}

// eventStream is an open event stream.
type eventStream struct {
	api   *API
	req   *streamRequest
	hub   *feed.Hub
	sub   *feed.Subscription // nil after a gap until subscribed again
	gap   *feed.GapError     // to tell the subscriber before anything else
	out   eventWriter        // unused on a direct stream
	pause *time.Timer        // for pacing; made at the first write
	// direct is set if the direct writer writes the stream (a plain
	// HTTP/1.1 connection), rather than run.
	direct *directStream
}

// openStream parses and answers the request and returns its stream, or nil
// if it answered with an error or the subscriber is gone.
func (a *API) openStream(w http.ResponseWriter, r *http.Request) *eventStream {
	sr, err := a.parseStream(r)
	if err != nil {
		a.writeError(w, r, err)
		return nil
	}
	st := &eventStream{api: a, req: sr, hub: a.engine.Feed()}
	st.sub, err = st.hub.Subscribe(sr.after, sr.filter)
	if errors.As(err, &st.gap) && sr.failOnGap {
		a.writeError(w, r, gapError(st.gap))
		return nil
	}
	if err != nil && !errors.As(err, &st.gap) {
		a.writeError(w, r, err)
		return nil
	}
	a.heartbeats.join()
	h := w.Header()
	if sr.sse {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // let nginx-like proxies stream
	ds, ok := a.hijack(w, r, st)
	switch {
	case !ok:
		st.close()
		return nil
	case ds != nil:
		st.direct = ds
		return st
	}
	w.WriteHeader(http.StatusOK)
	st.out = eventWriter{rc: http.NewResponseController(w), w: w, sse: sr.sse, format: sr.format, timeout: a.writeTimeout}
	st.out.w.Write(st.appendPrelude(st.out.scratch[:0]))
	if err := st.out.flush(); err != nil {
		st.close()
		return nil
	}
	return st
}

func (st *eventStream) close() {
	if st.sub != nil {
		st.sub.Close()
	}
	st.api.heartbeats.leave()
}

// run writes events until the subscriber or the server goes away (done or
// closing), the subscriber is too slow, or the feed fails.
func (st *eventStream) run(done, closing <-chan struct{}) {
	sent := false // since the last heartbeat tick
	for {
		if st.gap != nil && !st.resume() {
			return
		}
		entries, wait, err := st.sub.Poll(eventBatch)
		entries, size := fitBatch(st.sub, entries, st.req.format)
		switch {
		case errors.As(err, &st.gap):
			continue
		case err != nil:
			return // the feed failed or closed
		case len(entries) > 0:
			began := time.Now()
			if err := st.out.writeEntries(entries, size); err != nil {
				return // the subscriber is too slow or gone; it resumes by seq
			}
			sent = true
			if !st.pace(time.Since(began), done, closing) {
				return
			}
			continue
		}
		select {
		case <-done:
			return
		case <-closing:
			return
		case <-wait:
		case <-st.api.heartbeats.tick():
			if sent {
				sent = false
				continue
			}
			if err := st.heartbeat(); err != nil {
				return
			}
		}
	}
}

// pace waits after a write that took `took`, so that the streams written by
// goroutines of their own write about as often as the direct writer's
// passes do: it counts the write once for every such stream, since each
// writes once per round of the feed. Events that come meanwhile go out
// together in the next write. False means the stream ends.
func (st *eventStream) pace(took time.Duration, done, closing <-chan struct{}) bool {
	n := int(st.api.ownStreams.Load())
	wait := writePace(took*time.Duration(n), n) - took
	if wait <= 0 {
		return true
	}
	if st.pause == nil {
		st.pause = time.NewTimer(wait)
	} else {
		st.pause.Reset(wait)
	}
	select {
	case <-done:
		return false
	case <-closing:
		return false
	case <-st.pause.C:
		return true
	}
}

// resume tells the subscriber about the gap and subscribes again from the
// oldest retained event; false means the stream ends.
func (st *eventStream) resume() bool {
	b, goOn := st.takeGap(nil)
	st.out.w.Write(b)
	return st.out.flush() == nil && goOn
}

// takeGap appends the message that tells of st.gap to b and, unless the
// subscriber asked to fail on gaps, subscribes again from the oldest
// retained event; false means the stream ends after the message. If the
// oldest was trimmed meanwhile, st.gap holds the new gap, to tell next.
func (st *eventStream) takeGap(b []byte) ([]byte, bool) {
	b = appendGapMessage(b, st.gap, st.req.sse)
	if st.req.failOnGap {
		return b, false
	}
	if st.sub != nil {
		st.sub.Close()
		st.sub = nil
	}
	var err error
	if st.sub, err = st.hub.Subscribe(st.gap.Oldest-1, st.req.filter); err != nil {
		return b, errors.As(err, &st.gap) // trimmed again: tell that too, or end
	}
	st.gap = nil
	return b, true
}

func (st *eventStream) heartbeat() error {
	st.out.w.Write(st.appendHeartbeat(st.out.scratch[:0]))
	return st.out.flush()
}

// appendPrelude appends a stream's first message: over SSE, the client's
// retry delay and the position the stream starts from, so that a client
// that loses the connection before any event resumes from there (an SSE id
// alone dispatches nothing); nothing in NDJSON.
func (st *eventStream) appendPrelude(b []byte) []byte {
	if !st.req.sse {
		return b
	}
	return appendID(b, "retry: 1000\n", st.req.after)
}

// appendHeartbeat appends a keep-alive: over SSE a comment with the
// position the stream has reached, which covers events the filter left
// out, so that a reconnect does not scan them again; a blank line in
// NDJSON.
func (st *eventStream) appendHeartbeat(b []byte) []byte {
	if !st.req.sse {
		return append(b, '\n')
	}
	pos := st.req.after
	if st.sub != nil {
		pos = st.sub.Position()
	}
	return appendID(b, ": heartbeat\n", pos)
}

// eventWriter writes the events of one stream.
type eventWriter struct {
	rc       *http.ResponseController
	w        http.ResponseWriter
	sse      bool
	format   feed.Format
	timeout  time.Duration // the API's writeTimeout
	deadline time.Time     // the write deadline last set
	scratch  [64]byte      // an SSE event's lines before its data
}

// fitBatch returns the first of entries whose events in format f come to
// at most maxBatchBytes (at least one), and their size, and gives the rest
// back to sub, to send next. It bounds what a stream encodes at once and
// what one whose socket is full holds until it drains, whatever the
// records' size.
func fitBatch(sub *feed.Subscription, entries []*feed.Entry, f feed.Format) ([]*feed.Entry, int) {
	size := 0
	for i, e := range entries {
		n := len(e.JSON(f))
		if size+n > maxBatchBytes && i > 0 {
			sub.Unread(e)
			return entries[:i], size
		}
		size += n
	}
	return entries, size
}

// writeEntries writes a batch, whose events' JSON come to size bytes, and
// flushes it.
func (o *eventWriter) writeEntries(entries []*feed.Entry, size int) error {
	size += 48 * len(entries) // the SSE lines around each
	var dst io.Writer = o.w
	if size > smallBatchBytes {
		if n := streamBufLeases.Add(1); n <= maxStreamBufs {
			bw := streamBufs.Get().(*bufio.Writer)
			bw.Reset(o.w)
			defer func() {
				bw.Reset(nil)
				streamBufs.Put(bw)
				streamBufLeases.Add(-1)
			}()
			dst = bw
		} else {
			streamBufLeases.Add(-1)
		}
	}
	for _, e := range entries {
		if o.sse {
			dst.Write(appendEntryHead(o.scratch[:0], e, true))
		}
		dst.Write(e.JSON(o.format))
		io.WriteString(dst, entryTail(o.sse))
	}
	if bw, ok := dst.(*bufio.Writer); ok {
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	return o.flush()
}

// flush sends what is buffered. The write deadline is moved only when less
// than the write timeout is left of it, to a sixth more than that from now:
// on HTTP/2 each move is a message to the connection's goroutine and a new
// timer, which once per flush cost more than the write.
func (o *eventWriter) flush() error {
	if now := time.Now(); o.deadline.Sub(now) < o.timeout {
		o.deadline = now.Add(o.timeout + o.timeout/6)
		o.rc.SetWriteDeadline(o.deadline)
	}
	return o.rc.Flush()
}

// heartbeat is the one tick every idle event stream takes its keep-alive
// from, instead of a timer each. Its timer runs only while streams are open.
type heartbeat struct {
	interval time.Duration
	// ch is closed at the next tick; streams load it on every wake-up,
	// without the lock.
	ch atomic.Pointer[chan struct{}]
	mu struct {
		sync.Mutex
		streams int
		timer   *time.Timer // nil while no stream is open
	}
}

func (h *heartbeat) init(interval time.Duration) {
	h.interval = interval
	ch := make(chan struct{})
	h.ch.Store(&ch)
}

func (h *heartbeat) join() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.streams++
	if h.mu.timer == nil {
		h.mu.timer = time.AfterFunc(h.interval, h.fire)
	}
}

func (h *heartbeat) leave() {
	h.mu.Lock()
	h.mu.streams--
	h.mu.Unlock()
}

// tick returns a channel closed at the next tick.
func (h *heartbeat) tick() <-chan struct{} { return *h.ch.Load() }

func (h *heartbeat) fire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := make(chan struct{})
	close(*h.ch.Swap(&next))
	if h.mu.streams > 0 {
		h.mu.timer.Reset(h.interval)
	} else {
		h.mu.timer = nil
	}
}

func gapError(gap *feed.GapError) *apiError {
	return &apiError{Status: http.StatusGone, Code: "gone", Message: gap.Error(),
		Details: map[string]any{"requested_seq": gap.Requested, "oldest_seq": gap.Oldest}}
}

// appendGap appends the members of a gap message, and the closing brace, to
// a JSON object b has opened: the same over SSE, NDJSON and the WebSocket.
func appendGap(b []byte, gap *feed.GapError) []byte {
	b = append(b, `"requested_seq":`...)
	b = strconv.AppendUint(b, gap.Requested, 10)
	b = append(b, `,"oldest_seq":`...)
	b = strconv.AppendUint(b, gap.Oldest, 10)
	b = append(b, `,"message":`...)
	b = wire.AppendString(b, gap.Error())
	return append(b, '}')
}

// appendGapMessage appends the message that tells a subscriber that events
// it asked for are gone; the stream goes on from the oldest retained one.
func appendGapMessage(b []byte, gap *feed.GapError, sse bool) []byte {
	if sse {
		b = append(b, "event: feed.gap\ndata: "...)
	}
	b = appendGap(append(b, `{"type":"feed.gap",`...), gap)
	if sse {
		return append(b, "\n\n"...)
	}
	return append(b, '\n')
}
