package httpapi

// GET /v1/ws: one WebSocket carries change-feed subscriptions and
// request/response operations (docs/api.md, "WebSocket").
//
// Goroutines of a session, all ended before the handler returns:
//
//   - the handler's own goroutine reads messages, parses them, answers
//     subscribe and unsubscribe itself and starts the operations;
//   - one writer takes messages from the outbox and writes them;
//   - one pinger pings the peer when the connection has been idle for a
//     heartbeat;
//   - one goroutine per subscription moves its events into the outbox;
//   - one goroutine per operation in flight runs it and queues its answer.
//
// Memory is bounded whatever the peer does: messages it sends are limited in
// size (wsMaxMessageBytes) and in number in flight (wsMaxInFlight,
// wsMaxInFlightBytes), subscriptions in number (wsMaxSubscriptions), and what
// the server has yet to write by the outbox (wsOutboxBytes). A peer that
// reads slowly is not dropped and loses nothing: once the outbox is full,
// subscriptions stop taking events from the feed (which keeps their
// position, and serves them from the durable log when they fall behind) and
// operations wait to queue their answers, until the writer catches up. A
// peer that takes nothing for the stream write timeout, or leaves a ping on an
// idle connection unanswered, is dropped.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/feed"
	"github.com/hippo-db/hippo/internal/wire"
)

// Limits of one WebSocket session. They are part of the API (docs/api.md).
const (
	// wsMaxMessageBytes is the largest message a peer may send; a larger
	// one closes the connection with 1009 (message too big).
	wsMaxMessageBytes = 8 << 20
	// wsMaxRequestBytes is the largest message other than an upsert; a
	// larger one gets a payload_too_large error message.
	wsMaxRequestBytes = MaxRecordBodyBytes
	// wsMaxSubscriptions is how many subscriptions one socket may hold; one
	// more closes the connection with 1008 (policy violation).
	wsMaxSubscriptions = 64
	// wsMaxInFlight is how many operations may await their answer at once;
	// one more closes the connection with 1008.
	wsMaxInFlight = 32
	// wsMaxInFlightBytes bounds the request bytes of the operations in
	// flight; past it the server reads no further message until some
	// finish (backpressure, not an error).
	wsMaxInFlightBytes = 32 << 20
	// wsOutboxBytes is how much the server queues for a peer before
	// subscriptions and operations wait for the writer to catch up.
	wsOutboxBytes = 1 << 20
	// wsEventBatch is how many events a subscription takes from the feed at
	// once.
	wsEventBatch = 64
	// wsPongTimeout is how long the peer has to answer a ping (sent when
	// nothing was written to it for a heartbeat) before the connection is
	// closed with 1008.
	wsPongTimeout = 30 * time.Second
	// wsMaxIDBytes bounds a request id.
	wsMaxIDBytes = 128
)

// wsOps are the operations a message may name.
var wsOps = map[string]bool{"subscribe": true, "unsubscribe": true, "get": true, "upsert": true, "delete": true, "search": true}

// wsRequest is a message from the peer. Pointer fields tell absent from
// empty, so that a field an operation does not take is refused rather than
// ignored.
type wsRequest struct {
	Op           string          `json:"op"`
	ID           *string         `json:"id"`
	Collection   *string         `json:"collection,omitempty"`
	RecordID     *string         `json:"record_id,omitempty"`
	Body         json.RawMessage `json:"body,omitempty"`
	Subscription *string         `json:"subscription,omitempty"`
	Collections  []string        `json:"collections,omitempty"`
	Types        []string        `json:"types,omitempty"`
	From         *uint64         `json:"from,omitempty"`
	Records      *bool           `json:"records,omitempty"`
	VectorB64    *bool           `json:"vector_b64,omitempty"`
}

// id returns the request id, or "" if it has none.
func (q *wsRequest) id() string {
	if q == nil || q.ID == nil {
		return ""
	}
	return *q.ID
}

// wsFields says which fields each operation takes (required or optional)
// and which it requires.
var wsFields = map[string]struct{ takes, requires []string }{
	"subscribe":   {takes: []string{"collections", "types", "from", "records", "vector_b64"}},
	"unsubscribe": {takes: []string{"subscription"}, requires: []string{"subscription"}},
	"get":         {takes: []string{"collection", "record_id", "vector_b64"}, requires: []string{"collection", "record_id"}},
	"delete":      {takes: []string{"collection", "record_id"}, requires: []string{"collection", "record_id"}},
	"upsert":      {takes: []string{"collection", "body"}, requires: []string{"collection", "body"}},
	"search":      {takes: []string{"collection", "body"}, requires: []string{"collection", "body"}},
}

// present returns the names of the optional fields q carries.
func (q *wsRequest) present() []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(q.Collection != nil, "collection")
	add(q.RecordID != nil, "record_id")
	add(q.Body != nil, "body")
	add(q.Subscription != nil, "subscription")
	add(q.Collections != nil, "collections")
	add(q.Types != nil, "types")
	add(q.From != nil, "from")
	add(q.Records != nil, "records")
	add(q.VectorB64 != nil, "vector_b64")
	return out
}

// parseWSRequest parses and checks one message. On error it still returns
// what it could learn of the request, so that the error message can carry
// the request id.
func parseWSRequest(data []byte) (*wsRequest, error) {
	q := new(wsRequest)
	if err := decodeStrict(data, q); err != nil {
		// Recover the id, if any, so the peer can match the error.
		var probe struct {
			ID any `json:"id"`
		}
		q = new(wsRequest)
		if json.NewDecoder(bytes.NewReader(data)).Decode(&probe) == nil {
			if id, ok := probe.ID.(string); ok && id != "" && len(id) <= wsMaxIDBytes {
				q.ID = &id
			}
		}
		return q, err
	}
	if q.ID != nil && (*q.ID == "" || len(*q.ID) > wsMaxIDBytes) {
		q.ID = nil
		return q, newError("invalid_argument", fmt.Sprintf("id must be a string of 1 to %d bytes", wsMaxIDBytes))
	}
	if q.Op == "" {
		return q, newError("invalid_argument", "op is required: one of subscribe, unsubscribe, get, upsert, delete, search")
	}
	if !wsOps[q.Op] {
		return q, newError("invalid_argument", fmt.Sprintf("unknown op %.64q: use subscribe, unsubscribe, get, upsert, delete or search", q.Op))
	}
	if q.ID == nil {
		return q, newError("invalid_argument", fmt.Sprintf("op %s: id is required (a string of 1 to %d bytes the answer will carry)", q.Op, wsMaxIDBytes))
	}
	if q.Op != "upsert" && len(data) > wsMaxRequestBytes {
		ae := newError("payload_too_large", fmt.Sprintf("op %s: message of %d bytes is larger than %d", q.Op, len(data), wsMaxRequestBytes))
		ae.Details = map[string]any{"limit_bytes": wsMaxRequestBytes}
		return q, ae
	}
	fields := wsFields[q.Op]
	for _, name := range q.present() {
		if !contains(fields.takes, name) {
			return q, newError("invalid_argument", fmt.Sprintf("op %s does not take %s", q.Op, name))
		}
	}
	for _, name := range fields.requires {
		if !contains(q.present(), name) {
			return q, newError("invalid_argument", fmt.Sprintf("op %s: %s is required", q.Op, name))
		}
	}
	if q.Collection != nil {
		if err := engine.ValidName(*q.Collection); err != nil {
			return q, err
		}
	}
	if q.RecordID != nil {
		if err := engine.ValidID(*q.RecordID); err != nil {
			return q, err
		}
	}
	if q.Subscription != nil && (*q.Subscription == "" || len(*q.Subscription) > wsMaxIDBytes) {
		return q, newError("invalid_argument", "subscription is not one this socket holds")
	}
	for _, name := range q.Collections {
		if err := engine.ValidName(name); err != nil {
			return q, err
		}
	}
	for _, t := range q.Types {
		if !eventTypes[t] {
			return q, newError("invalid_argument", fmt.Sprintf("unknown event type %.64q", t))
		}
	}
	return q, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// wsItem is one message queued for the peer: msg alone, or for an event
// msg (the envelope's head) followed by the entry's shared JSON and "}".
// Events are not copied into a message of their own: the writer assembles
// them in its buffer, so an event reaching many sockets is encoded once.
type wsItem struct {
	msg    []byte
	entry  *feed.Entry
	format feed.Format
	size   int
}

// wsOutbox is the bounded queue of messages a session has yet to write.
// Its methods are safe for concurrent use.
type wsOutbox struct {
	limit int
	wake  chan struct{} // buffered(1): an item was queued
	mu    struct {
		sync.Mutex
		items []wsItem
		bytes int           // queued plus being written
		peak  int           // the most bytes ever held, for tests
		room  chan struct{} // closed when bytes drop below limit
		last  time.Time     // when the last write ended, or the outbox was made
	}
}

func newOutbox(limit int) *wsOutbox {
	o := &wsOutbox{limit: limit, wake: make(chan struct{}, 1)}
	o.mu.room = make(chan struct{})
	o.mu.last = time.Now()
	return o
}

// idleFor returns how long the outbox has been empty, with nothing being
// written; 0 if it is not.
func (o *wsOutbox) idleFor() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.bytes > 0 {
		return 0
	}
	return time.Since(o.mu.last)
}

// put queues it once the outbox holds less than its limit, waiting for the
// writer otherwise. admitted, if not nil, runs under the outbox's lock as
// the item is queued. The outbox thus holds at most limit bytes plus one
// message.
func (o *wsOutbox) put(ctx context.Context, it wsItem, admitted func()) error {
	if it.size == 0 {
		it.size = len(it.msg)
		if it.entry != nil {
			it.size += len(it.entry.JSON(it.format)) + 1
		}
	}
	for {
		o.mu.Lock()
		if o.mu.bytes < o.limit {
			o.mu.items = append(o.mu.items, it)
			o.mu.bytes += it.size
			o.mu.peak = max(o.mu.peak, o.mu.bytes)
			if admitted != nil {
				admitted()
			}
			o.mu.Unlock()
			select {
			case o.wake <- struct{}{}:
			default:
			}
			return nil
		}
		room := o.mu.room
		o.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-room:
		}
	}
}

// next returns the oldest queued item, waiting for one. Its bytes still
// count until release.
func (o *wsOutbox) next(ctx context.Context) (wsItem, error) {
	for {
		o.mu.Lock()
		if len(o.mu.items) > 0 {
			it := o.mu.items[0]
			o.mu.items[0] = wsItem{}
			o.mu.items = o.mu.items[1:]
			o.mu.Unlock()
			return it, nil
		}
		o.mu.Unlock()
		select {
		case <-ctx.Done():
			return wsItem{}, ctx.Err()
		case <-o.wake:
		}
	}
}

// release says that an item of size bytes was written.
func (o *wsOutbox) release(size int) {
	o.mu.Lock()
	full := o.mu.bytes >= o.limit
	o.mu.bytes -= size
	o.mu.last = time.Now()
	if full && o.mu.bytes < o.limit {
		close(o.mu.room)
		o.mu.room = make(chan struct{})
	}
	o.mu.Unlock()
}

// peak returns the most bytes the outbox ever held.
func (o *wsOutbox) peak() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.peak
}

// wsSub is one subscription of a session.
type wsSub struct {
	id     string
	filter feed.Filter
	format feed.Format
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutine has returned
	// pos is the seq up to which every event the subscription admits has
	// been queued for the peer: where it would resume.
	pos atomic.Uint64
}

// wsSession is one WebSocket connection.
type wsSession struct {
	api  *API
	conn *websocket.Conn
	out  *wsOutbox
	// grantCtx is the upgrade request's context, which carries the access
	// grant each operation is checked against.
	grantCtx context.Context
	// ctx ends the session's work: subscriptions, operations, writer and
	// pinger. It is cancelled by close, before the close handshake.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the writer, pinger, subscriptions and operations

	closeOnce sync.Once
	closed    chan struct{} // closed when conn.Close has returned

	mu struct {
		sync.Mutex
		subs          map[string]*wsSub
		lastSub       uint64         // subscription ids are "s1", "s2", ...
		inflight      map[string]int // request id → message bytes, until the answer is queued
		inflightBytes int
		opDone        chan struct{} // closed when an operation's answer is queued
	}
}

// wsHook, if set (by tests), is called with every new session.
var wsHook func(*wsSession)

// ws serves GET /v1/ws. Its route needs ClassRead; each message is then
// checked against the access grant of the upgrade request: the class its
// operation needs (upsert and delete need ClassWrite) on the collections it
// names. A refused operation gets a permission_denied error message.
func (a *API) ws(w http.ResponseWriter, r *http.Request) {
	if err := checkUpgrade(w, r); err != nil {
		a.writeError(w, r, err)
		return
	}
	// No deadline of an earlier request on this connection may cut the
	// session.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	// Accept checks the origin again: cross-origin pages stay out
	// (cross-site WebSocket hijacking) even if checkUpgrade missed one.
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	conn.SetReadLimit(wsMaxMessageBytes)
	s := &wsSession{api: a, conn: conn, out: newOutbox(wsOutboxBytes), grantCtx: r.Context(), closed: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.subs = map[string]*wsSub{}
	s.mu.inflight = map[string]int{}
	s.mu.opDone = make(chan struct{})
	if wsHook != nil {
		wsHook(s)
	}
	a.sessions.Add(1)
	defer a.sessions.Done()
	stop := context.AfterFunc(a.closing, func() { s.close(websocket.StatusGoingAway, "server shutting down") })
	defer stop()
	// The request's context ends during the session only if the access
	// guard ends it: the API key was revoked.
	stopRevoked := context.AfterFunc(r.Context(), func() { s.close(websocket.StatusPolicyViolation, "access revoked") })
	defer stopRevoked()
	s.wg.Add(2)
	go s.writeLoop()
	go s.pingLoop()
	s.readLoop()
	// The peer closed, the connection broke, or close was called and the
	// handshake is over: in the first two cases this close is a no-op on
	// the wire.
	s.close(websocket.StatusNormalClosure, "")
	<-s.closed
	s.wg.Wait()
}

// checkUpgrade answers what websocket.Accept would refuse with the API's
// error envelope rather than Accept's plain text.
func checkUpgrade(w http.ResponseWriter, r *http.Request) error {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 ||
		!headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return newError("invalid_argument", "GET /v1/ws is a WebSocket: send an HTTP/1.1 upgrade request (Connection: Upgrade, Upgrade: websocket)")
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13") // RFC 6455, section 4.4
		return newError("invalid_argument", fmt.Sprintf("WebSocket version %.16q is not supported: use 13", v))
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return newError("invalid_argument", "send exactly one Sec-WebSocket-Key")
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return newError("invalid_argument", "Sec-WebSocket-Key must be base64 of 16 bytes")
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return newError("permission_denied", fmt.Sprintf("WebSocket from origin %.128q is not allowed on host %.128q", origin, r.Host))
		}
	}
	return nil
}

// headerHasToken reports whether a comma-separated header contains token,
// ignoring case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// close ends the session with a close code and reason (at most 123 bytes):
// its work stops, messages still queued are dropped, and the close handshake
// runs in the background. Later calls do nothing.
func (s *wsSession) close(code websocket.StatusCode, reason string) {
	s.closeOnce.Do(func() {
		s.cancel()
		go func() {
			defer close(s.closed)
			s.conn.Close(code, reason)
		}()
	})
}

// readLoop reads and handles messages until the connection ends. It keeps
// reading while the session closes, so that control frames (the peer's
// close) are seen.
func (s *wsSession) readLoop() {
	for {
		// Not s.ctx: cancelling a read makes the library drop the
		// connection without the close handshake.
		typ, data, err := s.conn.Read(context.Background())
		if err != nil {
			return
		}
		if s.ctx.Err() != nil {
			continue
		}
		if typ != websocket.MessageText {
			s.close(websocket.StatusUnsupportedData, "binary messages are not accepted: send JSON as text")
			continue
		}
		s.handle(data)
	}
}

// handle answers one message, or starts the operation that will.
func (s *wsSession) handle(data []byte) {
	q, err := parseWSRequest(data)
	if err == nil {
		err = s.allowed(q)
	}
	if err != nil {
		s.sendError(q.id(), "", err)
		return
	}
	switch q.Op {
	case "subscribe":
		s.subscribe(q)
	case "unsubscribe":
		s.unsubscribe(q)
	default:
		s.startOp(q, len(data))
	}
}

// allowed checks q against the session's access grant.
func (s *wsSession) allowed(q *wsRequest) error {
	if s.api.access.skip {
		return nil
	}
	switch q.Op {
	case "get", "search":
		return allowed(s.grantCtx, ClassRead, *q.Collection)
	case "upsert", "delete":
		return allowed(s.grantCtx, ClassWrite, *q.Collection)
	case "subscribe":
		if len(q.Collections) == 0 {
			return allowed(s.grantCtx, ClassRead, "") // every collection
		}
		for _, c := range q.Collections {
			if err := allowed(s.grantCtx, ClassRead, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// send queues a message, waiting while the outbox is full.
func (s *wsSession) send(msg []byte) error {
	return s.out.put(s.ctx, wsItem{msg: msg}, nil)
}

// wsError is an error message.
type wsError struct {
	Type         string    `json:"type"`
	ID           string    `json:"id,omitempty"`
	Subscription string    `json:"subscription,omitempty"`
	Error        *apiError `json:"error"`
}

// errorMessage encodes err as the error message of request id or of
// subscription sub, through the error catalog.
func (s *wsSession) errorMessage(id, sub string, err error) []byte {
	ae := catalog(err)
	if ae.Status >= 500 && ae.Code != "unavailable" {
		s.api.log.Error("websocket request failed", "id", id, "subscription", sub, "err", err)
	}
	b, _ := json.Marshal(wsError{Type: "error", ID: id, Subscription: sub, Error: ae})
	return b
}

func (s *wsSession) sendError(id, sub string, err error) {
	s.send(s.errorMessage(id, sub, err))
}

// result encodes the result message of request id.
func resultMessage(id string, result any) []byte {
	b, err := json.Marshal(struct {
		Type   string `json:"type"`
		ID     string `json:"id"`
		Result any    `json:"result"`
	}{"result", id, result})
	if err != nil {
		b, _ = json.Marshal(wsError{Type: "error", ID: id, Error: newError("internal", "encode answer: "+err.Error())})
	}
	return b
}

// startOp runs a get, upsert, delete or search in its own goroutine, so
// that a slow one holds up neither the socket nor the others.
func (s *wsSession) startOp(q *wsRequest, size int) {
	id := *q.ID
	s.mu.Lock()
	for {
		if len(s.mu.inflight) >= wsMaxInFlight {
			s.mu.Unlock()
			s.close(websocket.StatusPolicyViolation, fmt.Sprintf("more than %d operations in flight", wsMaxInFlight))
			return
		}
		if _, dup := s.mu.inflight[id]; dup {
			s.mu.Unlock()
			s.sendError(id, "", newError("conflict", fmt.Sprintf("request id %q is already in flight", id)))
			return
		}
		if s.mu.inflightBytes == 0 || s.mu.inflightBytes+size <= wsMaxInFlightBytes {
			break
		}
		// Backpressure: read nothing more until operations finish.
		done := s.mu.opDone
		s.mu.Unlock()
		select {
		case <-s.ctx.Done():
			return
		case <-done:
		}
		s.mu.Lock()
	}
	s.mu.inflight[id] = size
	s.mu.inflightBytes += size
	s.mu.Unlock()

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		msg := s.runOp(q)
		// The operation leaves the in-flight count as its answer enters
		// the outbox, under the outbox's lock: a peer that sends its next
		// request as soon as it reads this answer never finds it counted.
		finished := func() {
			s.mu.Lock()
			s.mu.inflightBytes -= s.mu.inflight[id]
			delete(s.mu.inflight, id)
			close(s.mu.opDone)
			s.mu.opDone = make(chan struct{})
			s.mu.Unlock()
		}
		if s.out.put(s.ctx, wsItem{msg: msg}, finished) != nil {
			finished()
		}
	}()
}

// runOp runs an operation and returns its answer message.
func (s *wsSession) runOp(q *wsRequest) []byte {
	id, collection := *q.ID, *q.Collection
	e := s.api.engine
	switch q.Op {
	case "get":
		rec, err := e.Get(collection, *q.RecordID)
		if err != nil {
			return s.errorMessage(id, "", err)
		}
		b := wire.AppendString([]byte(`{"type":"result","id":`), id)
		b = append(b, `,"result":`...)
		b = wire.AppendRecord(b, rec, q.VectorB64 != nil && *q.VectorB64)
		return append(b, '}')
	case "delete":
		seq, err := e.Delete(s.ctx, collection, *q.RecordID)
		if err != nil {
			return s.errorMessage(id, "", err)
		}
		return resultMessage(id, map[string]any{"seq": seq})
	case "upsert":
		var body upsertBody
		if err := decodeStrict(q.Body, &body); err != nil {
			return s.errorMessage(id, "", err)
		}
		inputs, err := s.api.batchInputs(collection, &body)
		if err != nil {
			return s.errorMessage(id, "", err)
		}
		seq, err := e.Upsert(s.ctx, collection, inputs)
		if err != nil {
			return s.errorMessage(id, "", err)
		}
		return resultMessage(id, map[string]any{"upserted": len(inputs), "seq": seq})
	case "search":
		var body wireSearch
		if err := decodeCutVector(q.Body, &body); err != nil {
			return s.errorMessage(id, "", err)
		}
		out, err := s.api.runSearch(collection, &body)
		if err != nil {
			return s.errorMessage(id, "", err)
		}
		return resultMessage(id, out)
	}
	return s.errorMessage(id, "", newError("internal", "unhandled op "+q.Op))
}

// subscribe starts a subscription and answers with its id and starting seq.
// The answer is queued before the first event, so the peer always knows the
// id of the events it receives.
func (s *wsSession) subscribe(q *wsRequest) {
	s.mu.Lock()
	n := len(s.mu.subs)
	s.mu.Unlock()
	if n >= wsMaxSubscriptions {
		s.close(websocket.StatusPolicyViolation, fmt.Sprintf("more than %d subscriptions", wsMaxSubscriptions))
		return
	}
	hub := s.api.engine.Feed()
	// "Now" is the last committed write, which the hub may not have read
	// yet: a peer that subscribes after a write returned must not get it.
	after := s.api.engine.LastSeq()
	if q.From != nil {
		after = *q.From
	}
	sub := &wsSub{format: feed.RecordsJSON, done: make(chan struct{})}
	if len(q.Collections) > 0 {
		sub.filter.Collections = map[string]bool{}
		for _, c := range q.Collections {
			sub.filter.Collections[c] = true
		}
	}
	if len(q.Types) > 0 {
		sub.filter.Types = map[string]bool{}
		for _, t := range q.Types {
			sub.filter.Types[t] = true
		}
	}
	switch {
	case q.Records != nil && !*q.Records:
		sub.format = feed.NoRecords
	case q.VectorB64 != nil && *q.VectorB64:
		sub.format = feed.RecordsBase64
	}
	sub.filter.Records = sub.format != feed.NoRecords
	fs, err := hub.Subscribe(after, sub.filter)
	var gap *feed.GapError
	if err != nil && !errors.As(err, &gap) {
		s.sendError(*q.ID, "", err)
		return
	}
	sub.pos.Store(after)
	ctx, cancel := context.WithCancel(s.ctx)
	sub.cancel = cancel
	s.mu.Lock()
	s.mu.lastSub++
	sub.id = "s" + strconv.FormatUint(s.mu.lastSub, 10)
	s.mu.subs[sub.id] = sub
	s.mu.Unlock()
	if s.send(resultMessage(*q.ID, map[string]any{"subscription": sub.id, "seq": after})) != nil {
		close(sub.done) // the session is ending
		return
	}
	s.wg.Add(1)
	go s.runSub(ctx, sub, fs, gap)
}

// unsubscribe ends a subscription. Its answer, which carries the seq the
// subscription had reached, follows the subscription's last event.
func (s *wsSession) unsubscribe(q *wsRequest) {
	s.mu.Lock()
	sub := s.mu.subs[*q.Subscription]
	delete(s.mu.subs, *q.Subscription)
	s.mu.Unlock()
	if sub == nil {
		s.sendError(*q.ID, "", newError("not_found", fmt.Sprintf("no subscription %q on this socket", *q.Subscription)))
		return
	}
	sub.cancel()
	<-sub.done
	s.send(resultMessage(*q.ID, map[string]any{"subscription": sub.id, "seq": sub.pos.Load()}))
}

// runSub moves a subscription's events into the outbox until it is
// cancelled. fs is nil, and gap set, if the subscription starts in a gap.
func (s *wsSession) runSub(ctx context.Context, sub *wsSub, fs *feed.Subscription, gap *feed.GapError) {
	defer s.wg.Done()
	defer close(sub.done)
	hub := s.api.engine.Feed()
	head := []byte(`{"type":"event","subscription":"` + sub.id + `","event":`)
	for {
		if gap != nil {
			b := appendGap([]byte(`{"type":"gap","subscription":"`+sub.id+`",`), gap)
			if s.out.put(ctx, wsItem{msg: b}, nil) != nil {
				return
			}
			var err error
			if fs, err = hub.Subscribe(gap.Oldest-1, sub.filter); err != nil {
				if errors.As(err, &gap) {
					continue
				}
				s.subFailed(ctx, sub, err)
				return
			}
			sub.pos.Store(gap.Oldest - 1)
			gap = nil
		}
		entries, err := fs.Next(ctx, wsEventBatch)
		switch {
		case errors.As(err, &gap):
			continue
		case ctx.Err() != nil:
			return
		case err != nil:
			s.subFailed(ctx, sub, err)
			return
		}
		for _, e := range entries {
			if s.out.put(ctx, wsItem{msg: head, entry: e, format: sub.format}, nil) != nil {
				return
			}
			sub.pos.Store(e.Seq())
		}
		sub.pos.Store(fs.Position())
	}
}

// subFailed ends a subscription the feed cannot serve any more with an
// error message naming it.
func (s *wsSession) subFailed(ctx context.Context, sub *wsSub, err error) {
	s.mu.Lock()
	delete(s.mu.subs, sub.id)
	s.mu.Unlock()
	if errors.Is(err, feed.ErrClosed) {
		err = newError("unavailable", "the change feed is closed (the server is stopping); subscribe again later")
	}
	s.out.put(ctx, wsItem{msg: s.errorMessage("", sub.id, err)}, nil)
}

// writeLoop writes queued messages until the session ends.
func (s *wsSession) writeLoop() {
	defer s.wg.Done()
	var buf []byte
	for {
		it, err := s.out.next(s.ctx)
		if err != nil {
			return
		}
		msg := it.msg
		if it.entry != nil {
			buf = append(append(append(buf[:0], it.msg...), it.entry.JSON(it.format)...), '}')
			msg = buf
		}
		// Not s.ctx: cancelling a write drops the connection without the
		// close handshake. A peer that takes nothing for this long is gone.
		ctx, cancel := context.WithTimeout(context.Background(), s.api.writeTimeout)
		err = s.conn.Write(ctx, websocket.MessageText, msg)
		cancel()
		s.out.release(it.size)
		if cap(buf) > 1<<20 {
			buf = nil // do not keep a large event's buffer for small ones
		}
		if err != nil {
			s.close(websocket.StatusInternalError, "write failed")
			return
		}
	}
}

// pingLoop pings the peer when nothing was written to it for a heartbeat,
// and closes the session if it does not answer in time. A connection that
// carries messages is not pinged: its writes show the peer is there, and
// the write timeout drops one that stops reading. (Pinging it anyway would
// queue the ping behind the messages of a slow peer, where the library's
// 5-second bound on writing a control frame would drop a peer that is only
// slow.)
func (s *wsSession) pingLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.api.heartbeats.interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if s.out.idleFor() < s.api.heartbeats.interval {
			continue
		}
		// Not derived from s.ctx, for the same reason as in writeLoop.
		ctx, cancel := context.WithTimeout(context.Background(), wsPongTimeout)
		err := s.conn.Ping(ctx)
		cancel()
		if err != nil {
			s.close(websocket.StatusPolicyViolation, fmt.Sprintf("no pong within %v", wsPongTimeout))
			return
		}
	}
}
