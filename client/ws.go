package client

// The client side of RFC 6455, enough for GET /v1/ws: the opening
// handshake, masked text frames out, text frames in (fragmented or not),
// pings answered, the closing handshake, and a read limit. No extensions
// (compression) and no subprotocols are negotiated.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Limits and timeouts of a Session.
const (
	// sessionMaxMessage is the largest message a Session accepts; a search
	// of a thousand results with their vectors is well below it. A larger
	// one closes the session with 1009.
	sessionMaxMessage = 64 << 20
	// sessionMaxInFlight is how many operations (Get, Upsert, Delete,
	// Search) a Session has unanswered at once: the server closes a socket
	// with more. Further calls wait for an answer.
	sessionMaxInFlight = 32
	// sessionEventBuffer is how many events a Session holds for the
	// receiver of Events before it stops reading the socket.
	sessionEventBuffer = 256
	// sessionWriteTimeout bounds the writing of one message; a server that
	// takes nothing for this long is gone.
	sessionWriteTimeout = time.Minute
	// sessionCloseTimeout bounds Close's wait for the server's close frame.
	sessionCloseTimeout = 5 * time.Second
	// wsGUID is the constant of the Sec-WebSocket-Accept computation.
	wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

// WebSocket opcodes and close codes (RFC 6455, sections 5.2 and 7.4.1).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	closeNormal          = 1000
	closeProtocolError   = 1002
	closeUnsupportedData = 1003
	closeNoStatus        = 1005
	closeInvalidPayload  = 1007
	closeMessageTooBig   = 1009
)

// ErrSessionClosed is returned by the calls of a Session that Close ended.
var ErrSessionClosed = errors.New("hippo: session closed")

// CloseError says why a Session's connection was closed by the server, or
// by the Session because the server broke the protocol: the WebSocket close
// code and reason. The server closes with 1001 when it shuts down, 1008
// when the client exceeded a limit (subscriptions, operations in flight,
// unanswered pings) and 1009 for a message over its size limit.
type CloseError struct {
	Code   int    // the close code; 1005 if the close frame carried none
	Reason string // the close reason, possibly empty
	// Local is true when the Session closed the connection itself because
	// of what the server sent.
	Local bool
}

func (e *CloseError) Error() string {
	by := "server"
	if e.Local {
		by = "client"
	}
	if e.Reason == "" {
		return fmt.Sprintf("hippo: session closed by the %s with code %d", by, e.Code)
	}
	return fmt.Sprintf("hippo: session closed by the %s with code %d: %s", by, e.Code, e.Reason)
}

// SubscribeOptions configures Session.Subscribe. The zero value subscribes
// to every event from now on, without records.
type SubscribeOptions struct {
	// From, if not nil, asks for the events after sequence number *From:
	// 0 for the whole retained history, or the Seq of the last event
	// processed to go on from there. Nil starts at the server's newest
	// event.
	From *uint64

	// Collections, if not empty, admits only events of these collections.
	Collections []string

	// Types, if not empty, admits only events of these types (the Event
	// constants).
	Types []string

	// Records asks for the record an upsert wrote in each record.upserted
	// event, as EventsOptions.Records does.
	Records bool
}

// SessionEvent is what a Session delivers for its subscriptions: an event,
// or an error about the subscription.
type SessionEvent struct {
	// Subscription is the id Subscribe returned.
	Subscription string

	// Event is the event, or nil if Err is set.
	Event *Event

	// Err, if not nil, is a *GapError (events the subscription needed are
	// no longer retained; it goes on with the oldest retained one) or an
	// *Error (the server could not go on serving the subscription, which
	// has ended).
	Err error
}

// A Session is one WebSocket connection to the server (GET /v1/ws). It
// carries subscriptions to the change feed, whose events arrive on Events,
// and operations (Get, Upsert, Delete, Search) answered on the same
// connection. Operations sent at once run concurrently on the server; each
// call waits for its own answer.
//
// A Session is safe for concurrent use by multiple goroutines. It ends when
// Close is called, when the server closes it (Err then says why, often a
// *CloseError), or when the connection breaks; calls then fail, and Events
// is closed. A Session does not reconnect: open a new one and subscribe with
// SubscribeOptions.From set to the last Seq received.
//
// While subscriptions are active, receive from Events continuously, from a
// goroutine other than those waiting for operations: when Events' buffer is
// full, the Session stops reading the connection, and answers wait behind
// the events, as the server's events wait for the Session. Nothing is lost.
type Session struct {
	c      *Client
	conn   net.Conn
	br     *bufio.Reader
	events chan SessionEvent
	slots  chan struct{} // a token per operation in flight
	nextID atomic.Uint64

	wmu     chan struct{} // a token held while writing a frame
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the reading goroutine has ended

	closeOnce sync.Once

	mu struct {
		sync.Mutex
		pending   map[string]*pendingCall
		err       error // why the session ended; set before done is closed
		closeSent bool  // a close frame went out; nothing may follow it
	}
}

// pendingCall is a request waiting for its answer.
type pendingCall struct {
	answer chan sessionAnswer // buffered(1)
	slot   bool               // holds a token of Session.slots
}

type sessionAnswer struct {
	result json.RawMessage
	err    error
}

// Session opens a WebSocket session with the server. ctx bounds the
// connection and handshake only; the Session lives until Close.
//
// The Session dials the Client's address itself (TCP, TLS or Unix socket)
// and speaks HTTP/1.1 on it for the upgrade, whatever protocol the Client
// uses for its other calls; it sends the Client's headers (WithHeader,
// WithUserAgent). With WithHTTPClient, the client's transport must be an
// *http.Transport, whose dialer and TLS configuration are used; proxies are
// not.
func (c *Client) Session(ctx context.Context) (*Session, error) {
	conn, err := c.dialSession(ctx)
	if err != nil {
		return nil, err
	}
	br, err := c.handshake(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s := newSession(c, conn, br)
	go s.readLoop()
	return s, nil
}

// dialSession connects to the server's address as the Client's transport
// would, TLS included, but offering only HTTP/1.1.
func (c *Client) dialSession(ctx context.Context) (net.Conn, error) {
	t := c.transport
	if t == nil {
		switch rt := c.hc.Transport.(type) {
		case nil:
			t = http.DefaultTransport.(*http.Transport)
		case *http.Transport:
			t = rt
		default:
			return nil, fmt.Errorf("hippo: session: the client of WithHTTPClient must use an *http.Transport, not %T", rt)
		}
	}
	host := c.base.Host
	if c.base.Port() == "" {
		port := "80"
		if c.base.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(c.base.Hostname(), port)
	}
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	conn, err := dial(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("hippo: session: %w", err)
	}
	if c.base.Scheme != "https" {
		return conn, nil
	}
	cfg := &tls.Config{}
	if t.TLSClientConfig != nil {
		cfg = t.TLSClientConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.base.Hostname()
	}
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("hippo: session: %w", err)
	}
	return tc, nil
}

// handshake sends the upgrade request and checks the answer (RFC 6455,
// section 4.1). It returns the reader to go on with, which may already hold
// frames.
func (c *Client) handshake(ctx context.Context, conn net.Conn) (*bufio.Reader, error) {
	// Cancellation and deadline both, and ctx.Err() is set by the time a
	// read or write fails because of them.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		conn.SetDeadline(time.Time{})
	}()
	fail := func(err error) (*bufio.Reader, error) {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("hippo: session: %w", err)
	}

	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/ws", nil, nil, "")
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade") {
		return fail(errors.New("the server switched protocols but not to websocket"))
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		return fail(fmt.Errorf("Sec-WebSocket-Accept is %q, want %q", got, want))
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return fail(fmt.Errorf("the server chose extensions %q that were not offered", ext))
	}
	return br, nil
}

// acceptKey is the Sec-WebSocket-Accept the server must answer to key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

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

// writeFrame writes one masked frame with FIN set. ctx bounds only the wait
// for the connection: a frame begun is written whole, within
// sessionWriteTimeout, or the session ends.
func (s *Session) writeFrame(ctx context.Context, opcode byte, payload []byte) error {
	select {
	case s.wmu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return s.Err()
	}
	defer func() { <-s.wmu }()
	s.mu.Lock()
	closeSent := s.mu.closeSent
	if opcode == opClose {
		s.mu.closeSent = true
	}
	s.mu.Unlock()
	if closeSent {
		if err := s.Err(); err != nil {
			return err
		}
		return ErrSessionClosed
	}

	var header [14]byte
	header[0] = 0x80 | opcode
	n := 2
	switch l := len(payload); {
	case l <= 125:
		header[1] = 0x80 | byte(l)
	case l <= 0xFFFF:
		header[1] = 0x80 | 126
		binary.BigEndian.PutUint16(header[2:], uint16(l))
		n = 4
	default:
		header[1] = 0x80 | 127
		binary.BigEndian.PutUint64(header[2:], uint64(l))
		n = 10
	}
	var mask [4]byte
	rand.Read(mask[:])
	copy(header[n:], mask[:])
	n += 4

	// Mask into a bounded buffer rather than a copy of the whole payload.
	buf := make([]byte, 0, min(n+len(payload), 32<<10))
	buf = append(buf, header[:n]...)
	s.conn.SetWriteDeadline(time.Now().Add(sessionWriteTimeout))
	for i := 0; ; {
		room := cap(buf) - len(buf)
		chunk := payload[i:min(i+room, len(payload))]
		for j, b := range chunk {
			buf = append(buf, b^mask[(i+j)&3])
		}
		i += len(chunk)
		if _, err := s.conn.Write(buf); err != nil {
			s.fail(fmt.Errorf("hippo: session: write: %w", err))
			s.conn.Close() // half a frame went out: nothing can follow it
			return s.Err()
		}
		if i == len(payload) {
			return nil
		}
		buf = buf[:0]
	}
}

// newSession is a Session on conn, read through br, not yet reading.
func newSession(c *Client, conn net.Conn, br *bufio.Reader) *Session {
	s := &Session{
		c:       c,
		conn:    conn,
		br:      br,
		events:  make(chan SessionEvent, sessionEventBuffer),
		slots:   make(chan struct{}, sessionMaxInFlight),
		wmu:     make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.mu.pending = map[string]*pendingCall{}
	return s
}

// frameHeader is what readFrameHeader learns of a frame.
type frameHeader struct {
	fin    bool
	opcode byte
	length uint64
}

// protocolError ends the session because the server broke the protocol.
type protocolError struct {
	code   int
	reason string
}

func (e *protocolError) Error() string { return e.reason }

func (s *Session) readFrameHeader() (frameHeader, error) {
	var b [8]byte
	if _, err := io.ReadFull(s.br, b[:2]); err != nil {
		return frameHeader{}, err
	}
	h := frameHeader{fin: b[0]&0x80 != 0, opcode: b[0] & 0x0F, length: uint64(b[1] & 0x7F)}
	if b[0]&0x70 != 0 {
		return h, &protocolError{closeProtocolError, "reserved bits set without an extension"}
	}
	if b[1]&0x80 != 0 {
		return h, &protocolError{closeProtocolError, "masked frame from the server"}
	}
	switch h.length {
	case 126:
		if _, err := io.ReadFull(s.br, b[:2]); err != nil {
			return h, err
		}
		h.length = uint64(binary.BigEndian.Uint16(b[:2]))
	case 127:
		if _, err := io.ReadFull(s.br, b[:8]); err != nil {
			return h, err
		}
		h.length = binary.BigEndian.Uint64(b[:8])
		if h.length>>63 != 0 {
			return h, &protocolError{closeProtocolError, "frame length has its top bit set"}
		}
	}
	if h.opcode >= opClose && (!h.fin || h.length > 125) {
		return h, &protocolError{closeProtocolError, "control frame fragmented or over 125 bytes"}
	}
	return h, nil
}

// readMessage returns the next text message, answering the pings and
// handling the close frame that come before and between its fragments.
func (s *Session) readMessage() ([]byte, error) {
	var msg []byte
	started := false
	for {
		h, err := s.readFrameHeader()
		if err != nil {
			return nil, err
		}
		if h.opcode >= opClose {
			payload := make([]byte, h.length)
			if _, err := io.ReadFull(s.br, payload); err != nil {
				return nil, err
			}
			if err := s.control(h.opcode, payload); err != nil {
				return nil, err
			}
			continue
		}
		switch h.opcode {
		case opText:
			if started {
				return nil, &protocolError{closeProtocolError, "new message before the last one ended"}
			}
			started = true
		case opContinuation:
			if !started {
				return nil, &protocolError{closeProtocolError, "continuation frame without a message"}
			}
		case opBinary:
			return nil, &protocolError{closeUnsupportedData, "binary messages are not expected"}
		default:
			return nil, &protocolError{closeProtocolError, fmt.Sprintf("unknown opcode %#x", h.opcode)}
		}
		if uint64(len(msg))+h.length > sessionMaxMessage {
			return nil, &protocolError{closeMessageTooBig, fmt.Sprintf("message over %d bytes", sessionMaxMessage)}
		}
		// Read in pieces, so that a frame that claims 64 MiB and ends
		// early costs what it sent, not what it claimed.
		for rest := h.length; rest > 0; {
			k := min(rest, 1<<20)
			n := len(msg)
			msg = append(msg, make([]byte, k)...)
			if _, err := io.ReadFull(s.br, msg[n:]); err != nil {
				return nil, err
			}
			rest -= k
		}
		if h.fin {
			if !utf8.Valid(msg) {
				return nil, &protocolError{closeInvalidPayload, "text message is not UTF-8"}
			}
			return msg, nil
		}
	}
}

// control handles a ping, pong or close frame; another control opcode
// is reserved (RFC 6455 section 5.2) and fails the connection.
func (s *Session) control(opcode byte, payload []byte) error {
	switch opcode {
	case opPing:
		// Answered from the reading goroutine: a pong waits for a frame
		// being written, never for the reader.
		if err := s.writeFrame(context.Background(), opPong, payload); err != nil && !errors.Is(err, ErrSessionClosed) {
			return err
		}
		return nil
	case opClose:
		ce := &CloseError{Code: closeNoStatus}
		switch {
		case len(payload) == 1:
			return &protocolError{closeProtocolError, "close frame of one byte"}
		case len(payload) >= 2:
			ce.Code = int(binary.BigEndian.Uint16(payload))
			ce.Reason = string(payload[2:])
		}
		select {
		case <-s.closing:
			return ErrSessionClosed // the answer to our own close
		default:
		}
		// Calls fail with the server's reason from now on. Then echo
		// the code, as RFC 6455 section 5.5.1 asks.
		s.fail(ce)
		echo := []byte(nil)
		if ce.Code != closeNoStatus {
			echo = payload[:2]
		}
		s.writeFrame(context.Background(), opClose, echo)
		return ce
	case opPong:
		return nil // the Session sends no pings, so it is unsolicited
	}
	return &protocolError{closeProtocolError, fmt.Sprintf("unknown control opcode %#x", opcode)}
}

// readLoop reads and dispatches messages until the connection ends.
func (s *Session) readLoop() {
	var err error
	for {
		var msg []byte
		if msg, err = s.readMessage(); err != nil {
			break
		}
		if err = s.dispatch(msg); err != nil {
			break
		}
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		// Tell the server why, then hang up.
		err = &CloseError{Code: pe.code, Reason: pe.reason, Local: true}
		s.fail(err)
		reason := pe.reason
		payload := binary.BigEndian.AppendUint16(nil, uint16(pe.code))
		payload = append(payload, reason[:min(len(reason), 123)]...)
		s.writeFrame(context.Background(), opClose, payload)
	}
	select {
	case <-s.closing:
		err = ErrSessionClosed
	default:
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = fmt.Errorf("hippo: session: connection lost: %w", io.ErrUnexpectedEOF)
	}
	s.fail(err)
	s.conn.Close()
	close(s.events)
	close(s.done)
}

// fail records why the session ended, if nothing was recorded yet, and
// fails the calls waiting for answers.
func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.mu.err == nil {
		s.mu.err = err
	}
	err = s.mu.err
	pending := s.mu.pending
	s.mu.pending = map[string]*pendingCall{}
	s.mu.Unlock()
	for _, p := range pending {
		p.answer <- sessionAnswer{err: err}
	}
}

// sessionWire is any message from the server.
type sessionWire struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	Subscription string          `json:"subscription"`
	Result       json.RawMessage `json:"result"`
	Error        *errorBody      `json:"error"`
	Event        json.RawMessage `json:"event"`
	RequestedSeq uint64          `json:"requested_seq"`
	OldestSeq    uint64          `json:"oldest_seq"`
	Message      string          `json:"message"`
}

// dispatch routes one message: an answer to its caller, anything about a
// subscription to Events.
func (s *Session) dispatch(msg []byte) error {
	var w sessionWire
	if err := json.Unmarshal(msg, &w); err != nil {
		return &protocolError{closeInvalidPayload, "message is not JSON: " + err.Error()}
	}
	var ev SessionEvent
	switch {
	case (w.Type == "result" || w.Type == "error") && w.ID != "":
		s.mu.Lock()
		p := s.mu.pending[w.ID]
		delete(s.mu.pending, w.ID)
		s.mu.Unlock()
		if p == nil {
			return nil // its caller gave up, and had no slot
		}
		if p.slot {
			<-s.slots
		}
		if w.Error != nil {
			p.answer <- sessionAnswer{err: w.Error.toError(0)}
		} else {
			p.answer <- sessionAnswer{result: w.Result}
		}
		return nil
	case w.Type == "event":
		event := new(Event)
		if err := json.Unmarshal(w.Event, event); err != nil {
			return &protocolError{closeInvalidPayload, "event is malformed: " + err.Error()}
		}
		ev = SessionEvent{Subscription: w.Subscription, Event: event}
	case w.Type == "gap":
		ev = SessionEvent{Subscription: w.Subscription, Err: &GapError{Requested: w.RequestedSeq, Oldest: w.OldestSeq, Message: w.Message}}
	case w.Type == "error" && w.Subscription != "" && w.Error != nil:
		ev = SessionEvent{Subscription: w.Subscription, Err: w.Error.toError(0)}
	default:
		return nil // a message of a later server
	}
	select {
	case s.events <- ev:
	case <-s.closing:
	}
	return nil
}

// Events returns the channel on which the events of every subscription of
// the session arrive, in order within each subscription. It is closed when
// the session ends.
func (s *Session) Events() <-chan SessionEvent { return s.events }

// Err returns why the session ended, or nil while it is open: a
// *CloseError if the server closed it, ErrSessionClosed after Close, or
// the network error.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.err
}

// Done returns a channel closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close closes the session: it sends a close frame, waits briefly for the
// server's, and closes the connection. Calls in progress fail with
// ErrSessionClosed. Close returns nil, also when called again.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.writeFrame(context.Background(), opClose, binary.BigEndian.AppendUint16(nil, closeNormal))
		select {
		case <-s.done:
		case <-time.After(sessionCloseTimeout):
			s.fail(ErrSessionClosed)
			s.conn.Close()
			<-s.done
		}
	})
	return nil
}

// sessionRequest is a message to the server.
type sessionRequest struct {
	Op           string          `json:"op"`
	ID           string          `json:"id"`
	Collection   string          `json:"collection,omitempty"`
	RecordID     string          `json:"record_id,omitempty"`
	Body         json.RawMessage `json:"body,omitempty"`
	Subscription string          `json:"subscription,omitempty"`
	Collections  []string        `json:"collections,omitempty"`
	Types        []string        `json:"types,omitempty"`
	From         *uint64         `json:"from,omitempty"`
	Records      *bool           `json:"records,omitempty"`
	VectorB64    *bool           `json:"vector_b64,omitempty"`
}

// call sends req with a fresh id and waits for its answer. Operations take
// one of the slots that keep the session within the server's limit on
// operations in flight; a call that gives up keeps its slot until the
// answer arrives, since the server counts it until then.
func (s *Session) call(ctx context.Context, req *sessionRequest, operation bool) (json.RawMessage, error) {
	if operation {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, s.Err()
		}
	}
	req.ID = strconv.FormatUint(s.nextID.Add(1), 10)
	msg, err := json.Marshal(req)
	if err != nil {
		if operation {
			<-s.slots
		}
		return nil, fmt.Errorf("hippo: session: encode %s: %w", req.Op, err)
	}
	p := &pendingCall{answer: make(chan sessionAnswer, 1), slot: operation}
	s.mu.Lock()
	if err := s.mu.err; err != nil {
		s.mu.Unlock()
		if operation {
			<-s.slots
		}
		return nil, err
	}
	s.mu.pending[req.ID] = p
	s.mu.Unlock()
	if err := s.writeFrame(ctx, opText, msg); err != nil {
		s.mu.Lock()
		_, unsent := s.mu.pending[req.ID]
		delete(s.mu.pending, req.ID)
		s.mu.Unlock()
		if unsent && operation {
			<-s.slots
		}
		return nil, err
	}
	select {
	case a := <-p.answer:
		return a.result, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// b64 returns the vector_b64 flag for reads: nil (arrays) under
// WithJSONVectors, true otherwise.
func (s *Session) b64() *bool {
	if s.c.jsonVectors {
		return nil
	}
	t := true
	return &t
}

// Subscribe starts a subscription to the change feed and returns its id,
// which the SessionEvents of its events carry, and the sequence number its
// events start after. Its events arrive on Events.
func (s *Session) Subscribe(ctx context.Context, opts SubscribeOptions) (id string, from uint64, err error) {
	records := opts.Records
	req := &sessionRequest{Op: "subscribe", Collections: opts.Collections, Types: opts.Types, From: opts.From, Records: &records}
	if records {
		req.VectorB64 = s.b64()
	}
	raw, err := s.call(ctx, req, false)
	if err != nil {
		return "", 0, err
	}
	var answer struct {
		Subscription string `json:"subscription"`
		Seq          uint64 `json:"seq"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return "", 0, fmt.Errorf("hippo: session: decode subscribe answer: %w", err)
	}
	return answer.Subscription, answer.Seq, nil
}

// Unsubscribe ends a subscription and returns the sequence number up to
// which its events were sent: subscribe again with From set to it to go on.
// No event of the subscription arrives on Events after Unsubscribe returns.
func (s *Session) Unsubscribe(ctx context.Context, id string) (seq uint64, err error) {
	if err := checkName("subscription id", id); err != nil {
		return 0, err
	}
	raw, err := s.call(ctx, &sessionRequest{Op: "unsubscribe", Subscription: id}, false)
	if err != nil {
		return 0, err
	}
	var answer seqAnswer
	if err := json.Unmarshal(raw, &answer); err != nil {
		return 0, fmt.Errorf("hippo: session: decode unsubscribe answer: %w", err)
	}
	return answer.Seq, nil
}

// Get returns the record id, like Client.Get.
func (s *Session) Get(ctx context.Context, collection, id string) (*Record, error) {
	if err := checkName("collection name", collection); err != nil {
		return nil, err
	}
	if err := checkName("record id", id); err != nil {
		return nil, err
	}
	raw, err := s.call(ctx, &sessionRequest{Op: "get", Collection: collection, RecordID: id, VectorB64: s.b64()}, true)
	if err != nil {
		return nil, err
	}
	record := new(Record)
	if err := record.decode(raw, nil); err != nil {
		return nil, fmt.Errorf("hippo: session: decode record: %w", err)
	}
	return record, nil
}

// Upsert writes records atomically, all or none, like Client.UpsertBatch,
// and returns the sequence number of the write.
func (s *Session) Upsert(ctx context.Context, collection string, records ...Record) (seq uint64, err error) {
	if err := checkName("collection name", collection); err != nil {
		return 0, err
	}
	body := struct {
		Records []recordWrite `json:"records"`
	}{Records: make([]recordWrite, len(records))}
	for i := range records {
		if err := checkName("record id", records[i].ID); err != nil {
			return 0, err
		}
		body.Records[i] = s.c.writeRecord(&records[i], true)
	}
	encoded, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("hippo: session: encode records: %w", err)
	}
	raw, err := s.call(ctx, &sessionRequest{Op: "upsert", Collection: collection, Body: encoded}, true)
	if err != nil {
		return 0, err
	}
	var answer seqAnswer
	if err := json.Unmarshal(raw, &answer); err != nil {
		return 0, fmt.Errorf("hippo: session: decode upsert answer: %w", err)
	}
	return answer.Seq, nil
}

// Delete deletes the record id, like Client.Delete.
func (s *Session) Delete(ctx context.Context, collection, id string) (seq uint64, err error) {
	if err := checkName("collection name", collection); err != nil {
		return 0, err
	}
	if err := checkName("record id", id); err != nil {
		return 0, err
	}
	raw, err := s.call(ctx, &sessionRequest{Op: "delete", Collection: collection, RecordID: id}, true)
	if err != nil {
		return 0, err
	}
	var answer seqAnswer
	if err := json.Unmarshal(raw, &answer); err != nil {
		return 0, fmt.Errorf("hippo: session: decode delete answer: %w", err)
	}
	return answer.Seq, nil
}

// Search returns the records of collection nearest to req.Vector, like
// Client.Search.
func (s *Session) Search(ctx context.Context, collection string, req SearchRequest) (*SearchResponse, error) {
	if err := checkName("collection name", collection); err != nil {
		return nil, err
	}
	body, err := s.c.encodeSearch(&req)
	if err != nil {
		return nil, fmt.Errorf("hippo: session: search %s: %w", collection, err)
	}
	raw, err := s.call(ctx, &sessionRequest{Op: "search", Collection: collection, Body: body}, true)
	if err != nil {
		return nil, err
	}
	answer := new(SearchResponse)
	if err := json.Unmarshal(raw, answer); err != nil {
		return nil, fmt.Errorf("hippo: session: decode search answer: %w", err)
	}
	return answer, nil
}
