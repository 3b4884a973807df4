// Package httpapi serves Hippo's HTTP API v1 (docs/api.md): routes, the JSON
// error envelope, NDJSON streaming and request limits.
package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hippo-db/hippo/internal/auth"
	"github.com/hippo-db/hippo/internal/engine"
)

// Byte limits on request bodies and lines. Record-level limits (dimension,
// metadata, ids, batch size, k) live in engine.
const (
	MaxBodyBytes       = 64 << 20 // JSON bodies: a 1,000-record batch of wide vectors
	MaxRecordBodyBytes = 4 << 20  // one record or one search
	MaxLineBytes       = 4 << 20  // one NDJSON line
	MaxBatchQueries    = 10000    // lines of one batch search
	maxImportErrors    = 1000     // line errors reported by one import
)

// Class is the access a route needs: read, write or admin (auth.Class).
type Class = auth.Class

// Access classes, from least to most.
const (
	ClassRead  = auth.ClassRead
	ClassWrite = auth.ClassWrite
	ClassAdmin = auth.ClassAdmin
)

// Route is one entry of the route table: the single list of what the API
// serves and which access class each route needs.
type Route struct {
	Method  string
	Pattern string
	Class   Class
	handle  http.HandlerFunc
}

// Options configure the API.
type Options struct {
	Logger *slog.Logger
	// Heartbeat is how often an idle event stream gets a keep-alive; 0
	// means 15 s.
	Heartbeat time.Duration

	// Access control (access.go). A request's listener identity is the
	// auth.Conn that http.Server.ConnContext put in its context.
	//
	// Keys authenticates API keys on listeners that require them and
	// backs the admin key routes; nil means no key is valid.
	Keys *auth.Keyring
	// Unlisted is the identity of requests whose connection carries none:
	// an http.Server without ConnContext, httptest, in-process calls to
	// ServeHTTP. nil means an admin listener without keys: whoever can
	// call the handler directly is trusted.
	Unlisted *auth.Conn
	// RefuseUnlisted refuses (403) every request whose connection carries
	// no identity, whatever Unlisted says. hippo serve sets it, so that a
	// listener opened without ConnContext can never serve.
	RefuseUnlisted bool
	// RequestTimeout bounds reading the body of, and writing the answer
	// to, one request that is not a stream (import, export, batch search,
	// events, WebSocket are streams); 0 means 60 s, negative none.
	RequestTimeout time.Duration
	// CORSOrigins are the browser origins allowed to call the API
	// ("*" for any); none by default.
	CORSOrigins []string
	// AccessLog logs every request at info level; without it they are
	// logged at debug level.
	AccessLog bool
	// StreamWriteTimeout is how long an event stream or a WebSocket may
	// take to accept one write before it is dropped (a stream resumes from
	// its last seq); 0 means a minute.
	StreamWriteTimeout time.Duration
}

// API is the HTTP handler of Hippo's API. It is safe for concurrent use.
type API struct {
	engine *engine.Engine
	log    *slog.Logger
	mux    *http.ServeMux
	routes []Route
	// heartbeats is the tick of idle event streams; its interval is also
	// the WebSocket's ping interval.
	heartbeats heartbeat
	// writeTimeout is Options.StreamWriteTimeout.
	writeTimeout time.Duration
	// ownStreams counts the event streams written by a goroutine of their
	// own (HTTP/2, TLS), which pace their writes together (writePace).
	ownStreams atomic.Int64
	// closing is cancelled by Shutdown: streams end so the server can stop.
	closing  context.Context
	shutdown context.CancelFunc
	access   access
	// direct writes the event streams of plain HTTP/1.1 connections.
	direct directWriter
	// sessions counts the open WebSocket sessions, which Shutdown waits
	// for: their connections are taken over from the server too.
	sessions sync.WaitGroup
}

// New returns the API over e.
func New(e *engine.Engine, opts Options) *API {
	a := &API{engine: e, log: opts.Logger, mux: http.NewServeMux()}
	a.direct.api = a
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.heartbeats.init(cmp.Or(max(opts.Heartbeat, 0), defaultHeartbeat))
	a.writeTimeout = cmp.Or(max(opts.StreamWriteTimeout, 0), defaultStreamWriteTimeout)
	a.closing, a.shutdown = context.WithCancel(context.Background())
	a.routes = []Route{
		{"GET", "/healthz", ClassRead, a.healthz},
		{"GET", "/readyz", ClassRead, a.readyz},
		{"GET", "/v1/collections", ClassRead, a.listCollections},
		{"PUT", "/v1/collections/{collection}", ClassWrite, a.createCollection},
		{"GET", "/v1/collections/{collection}", ClassRead, a.getCollection},
		{"DELETE", "/v1/collections/{collection}", ClassWrite, a.deleteCollection},
		{"PUT", "/v1/collections/{collection}/records/{id}", ClassWrite, a.putRecord},
		{"GET", "/v1/collections/{collection}/records/{id}", ClassRead, a.getRecord},
		{"DELETE", "/v1/collections/{collection}/records/{id}", ClassWrite, a.deleteRecord},
		{"POST", "/v1/collections/{collection}/records", ClassWrite, a.upsertRecords},
		{"GET", "/v1/collections/{collection}/records", ClassRead, a.listRecords},
		{"POST", "/v1/collections/{collection}/import", ClassWrite, a.importRecords},
		{"GET", "/v1/collections/{collection}/export", ClassRead, a.exportRecords},
		{"POST", "/v1/collections/{collection}/search", ClassRead, a.search},
		{"POST", "/v1/collections/{collection}/search/batch", ClassRead, a.searchBatch},
		{"GET", "/v1/events", ClassRead, a.events},
		{"GET", "/v1/ws", ClassRead, a.ws}, // write ops on the socket are to be checked one by one against the listener's class
	}
	a.routes = append(a.routes, a.keyRoutes()...)
	a.access = newAccess(opts)
	for i := range a.routes {
		rt := &a.routes[i]
		a.mux.HandleFunc(rt.Method+" "+rt.Pattern, a.guard(rt))
	}
	return a
}

// Shutdown ends every event stream, so that http.Server.Shutdown need not
// wait for them; subscribers resume from their last seq. Register it with
// http.Server.RegisterOnShutdown.
//
// It returns once the WebSockets and the plain HTTP/1.1 streams, which the
// API took over from their server (and which the server's Shutdown and
// Close therefore do not wait for), have ended; call it before closing the
// engine.
func (a *API) Shutdown() {
	a.shutdown()
	a.direct.wait()
	a.sessions.Wait()
}

// Routes returns the route table.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

// ServeHTTP implements http.Handler. Requests no route matches get the JSON
// error envelope (404, or 405 with Allow) instead of ServeMux's plain text.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, done := a.startAccessLog(w, r)
	defer done()
	setSecurityHeaders(w.Header())
	if a.access.cors.preflight(w, r) {
		return
	}
	h, pattern := a.mux.Handler(r)
	if pattern == "" {
		// Who asks is checked before saying what exists.
		if _, err := a.admit(w, r, nil); err != nil {
			a.writeError(w, r, err)
			return
		}
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if probe.status == http.StatusMethodNotAllowed {
			a.writeError(w, r, newError("method_not_allowed", fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)))
			return
		}
		a.writeError(w, r, newError("not_found", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)))
		return
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
			a.writeError(w, r, newError("internal", "internal error"))
		}
	}()
	a.mux.ServeHTTP(w, r)
}

// statusProbe captures what ServeMux's fallback handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }

// checkContentType accepts JSON bodies sent as application/json, with no
// type, or with curl's default form type; anything else is refused.
func checkContentType(r *http.Request, allowed ...string) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, a := range allowed {
			if mt == a {
				return nil
			}
		}
	}
	return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Message: fmt.Sprintf("content type %q is not accepted here; send %s", ct, allowed[0])}
}

var jsonTypes = []string{"application/json", "application/x-www-form-urlencoded"}

// decodeBody reads a JSON body of at most limit bytes into v, strictly:
// unknown fields and trailing data are errors.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := readJSONBody(w, r, limit)
	if err != nil {
		return err
	}
	return decodeStrict(body, v)
}

// readJSONBody checks that the body is JSON and reads at most limit bytes
// of it.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if err := checkContentType(r, jsonTypes...); err != nil {
		return nil, err
	}
	return readBody(w, r, limit)
}

// readBody reads the whole body, refusing more than limit bytes. With a
// Content-Length it allocates once instead of growing by doubling.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	var body []byte
	var err error
	if r.ContentLength > 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(rd, body)
		if err == nil {
			// Content-Length promised the rest is empty; make sure.
			var one [1]byte
			if n, _ := rd.Read(one[:]); n > 0 {
				err = errors.New("body longer than its Content-Length")
			}
		}
	} else {
		body, err = io.ReadAll(rd)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, newError("invalid_argument", "read body: "+err.Error())
	}
	return body, nil
}

// decodeStrict decodes one JSON value, refusing unknown fields and trailing
// data, with messages that say where the problem is.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return newError("invalid_argument", "body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newError("invalid_argument", "invalid JSON: "+describeJSONError(err))
	}
	if dec.More() {
		return newError("invalid_argument", "invalid JSON: unexpected data after the object")
	}
	return nil
}

// queryParams parses the query string, refusing a malformed one rather than
// silently dropping parameters.
func queryParams(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, newError("invalid_argument", "malformed query string: "+err.Error())
	}
	return q, nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %s: expected %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("expected %s, got %s", te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return err.Error()
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.engine.Ready(); err != nil {
		ae := catalog(err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": ae})
		return
	}
	oldest, err := a.engine.OldestSeq()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// The feed's last_seq is the last committed seq, which a stream without
	// from starts after, not how far the feed has read: a client starting
	// from it is sent nothing acknowledged before it asked.
	last := a.engine.LastSeq()
	writeJSON(w, http.StatusOK, map[string]any{
		"status":      "ready",
		"seq":         last,
		"collections": len(a.engine.Collections()),
		"store":       map[string]any{"kind": "pebble", "state": "open"},
		"feed":        map[string]any{"oldest_seq": oldest, "last_seq": last},
	})
}

// Lean reports whether a request for method and path is unary — a bounded
// body and a bounded answer — and so may be served on package h1's lean
// path; streams, which must notice a client going away, may not.
func (a *API) Lean(method, path string) bool {
	r := http.Request{Method: method, URL: &url.URL{Path: path}}
	_, pattern := a.mux.Handler(&r)
	return routeKinds[pattern] == kindUnary
}
