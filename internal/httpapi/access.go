package httpapi

// Access control: the middleware between a listener and a handler.
//
// Every route is registered through guard, which runs before the handler,
// after the ServeMux has matched the route (so the {collection} path value
// is known). In order, a request must:
//
//  1. carry a listener identity (auth.Conn, put in the connection's context
//     by http.Server.ConnContext; Options.Unlisted otherwise, unless
//     Options.RefuseUnlisted) — else 403;
//  2. come from an allowed peer (uids=/gids= of a Unix socket) — else 403;
//  3. on a TCP listener without keys, name a loopback Host (DNS rebinding)
//     and not be a cross-origin browser write — else 403;
//  4. fit the listener's rate limit — else 429 with Retry-After, held back
//     until a token would be available (at most 1 s);
//  5. on a listener with keys, present a valid key — else 401 — that fits
//     its own rate limit — else 429;
//  6. need a class the listener allows and the key's scope grants, on a
//     collection the key's patterns match — else 403 naming what is missing;
//  7. find a place under the listener's (and key's) cap on requests in
//     flight or streams open — else 503 with Retry-After.
//
// Requests that match no route go through steps 1–5 before their 404, so
// an unauthenticated client learns nothing but that it needs a key.

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hippo-db/hippo/internal/auth"
)

// defaultRequestTimeout bounds reading a unary request and writing its
// answer (Options.RequestTimeout).
const defaultRequestTimeout = 60 * time.Second

// routeKind says how long a route's requests may run, which decides the
// limits that apply to them.
type routeKind uint8

const (
	// kindUnary requests read a bounded body and write a bounded answer:
	// they count against max_requests and get read and write deadlines.
	kindUnary routeKind = iota
	// kindLong requests stream a body or an answer of any size (import,
	// export, batch search): they count against max_requests, without
	// deadlines, and end when their key is revoked.
	kindLong
	// kindStream requests stay open for as long as the client listens (events,
	// WebSocket): they count against max_streams instead.
	kindStream
)

// routeKinds lists the routes that are not unary, by pattern.
var routeKinds = map[string]routeKind{
	"POST /v1/collections/{collection}/import":       kindLong,
	"GET /v1/collections/{collection}/export":        kindLong,
	"POST /v1/collections/{collection}/search/batch": kindLong,
	"GET /v1/events": kindStream,
	"GET /v1/ws":     kindStream,
}

// access is the API's access-control configuration, fixed by New.
type access struct {
	keys           *auth.Keyring
	unlisted       *auth.Conn
	requestTimeout time.Duration // <= 0: none
	cors           *cors         // nil: CORS off
	crossOrigin    *http.CrossOriginProtection
	logLevel       slog.Level
	// skip serves every request without any check. Only tests set it, to
	// measure what the checks cost (BenchmarkAccessOverhead).
	skip bool
}

func newAccess(opts Options) access {
	ac := access{keys: opts.Keys, unlisted: opts.Unlisted, requestTimeout: opts.RequestTimeout, logLevel: slog.LevelDebug}
	switch {
	case opts.RefuseUnlisted:
		ac.unlisted = nil
	case ac.unlisted == nil:
		ac.unlisted = &auth.Conn{Listener: auth.NewListener(auth.ListenerSpec{
			Network: "unix", Address: "(in-process)", Class: auth.ClassAdmin, Auth: auth.AuthNone})}
	}
	if ac.requestTimeout == 0 {
		ac.requestTimeout = defaultRequestTimeout
	}
	if opts.AccessLog {
		ac.logLevel = slog.LevelInfo
	}
	ac.cors = newCORS(opts.CORSOrigins)
	if ac.cors == nil || !ac.cors.any {
		ac.crossOrigin = http.NewCrossOriginProtection()
		if ac.cors != nil {
			for o := range ac.cors.origins {
				ac.crossOrigin.AddTrustedOrigin(o) // CheckCORSOrigins vetted them
			}
		}
	}
	return ac
}

// grant is what a request was admitted with.
type grant struct {
	conn *auth.Conn
	key  *auth.ActiveKey // nil on listeners without keys
	held *admission      // a stream's, for detach
}

type grantKey struct{}

// grantFrom returns the grant guard put in ctx: always for streams and for
// requests with a key, never otherwise.
func grantFrom(ctx context.Context) *grant {
	g, _ := ctx.Value(grantKey{}).(*grant)
	return g
}

// allowed reports whether the request whose context is ctx may do something
// that needs class on collection ("" meaning every collection, as a feed
// subscription without a collection filter does): nil, or a
// permission_denied error that says what is missing. The WebSocket checks
// each operation with it; routes are checked by guard before their handler
// runs. It needs the grant guard puts in the context of streams and of
// requests with a key; without one it refuses.
func allowed(ctx context.Context, class Class, collection string) error {
	g := grantFrom(ctx)
	if g == nil {
		return newError("permission_denied", "this request carries no access grant")
	}
	return g.allows(class, collection)
}

// visible reports whether a collection may appear in a list answered to the
// request: unless the request has a key limited to some collections, all do.
func visible(ctx context.Context, collection string) bool {
	g := grantFrom(ctx)
	return g == nil || g.key == nil || g.key.Key.AllowsCollection(collection)
}

// allows checks class and collection; an empty collection stands for all
// of them.
func (g *grant) allows(class Class, collection string) error {
	if err := g.allowsClass(class); err != nil {
		return err
	}
	if g.key == nil {
		return nil
	}
	k := &g.key.Key
	if collection == "" {
		if !k.Unrestricted() {
			return deny(class, fmt.Sprintf("key %s is limited to collections %s; name the collections", k.ID, strings.Join(k.Collections, ",")))
		}
		return nil
	}
	if !k.AllowsCollection(collection) {
		return deny(class, fmt.Sprintf("key %s may not use collection %q (its collections: %s)", k.ID, collection, strings.Join(k.Collections, ",")))
	}
	return nil
}

// allowsClass checks the class alone, for routes about no collection in
// particular (health, the list of collections, which visible filters).
func (g *grant) allowsClass(class Class) error {
	l := &g.conn.Listener.Spec
	if !l.Class.Allows(class) {
		return deny(class, fmt.Sprintf("needs the %s class; %s allows %s", class, l.String(), l.Class))
	}
	if g.key == nil {
		return nil
	}
	k := &g.key.Key
	if !k.Scope.Allows(class) {
		return deny(class, fmt.Sprintf("needs the %s class; key %s has scope %s", class, k.ID, k.Scope))
	}
	return nil
}

func deny(class Class, message string) *apiError {
	ae := newError("permission_denied", message)
	ae.Details = map[string]any{"needs": string(class)}
	return ae
}

// guard wraps a route's handler with the access checks and limits.
func (a *API) guard(rt *Route) http.HandlerFunc {
	pattern := rt.Method + " " + rt.Pattern
	check := routeCheck{
		route:         rt,
		kind:          routeKinds[pattern],
		hasCollection: strings.Contains(rt.Pattern, "{collection}"),
		isEvents:      pattern == "GET /v1/events",
	}
	// The checks run in enter, whose frame is gone by the time the
	// handler runs: this frame stays on the stack of every open event
	// stream, which is most of what an idle subscriber costs (a stream
	// whose calls stay within 4 KiB of stack keeps a 4 KiB stack).
	return func(w http.ResponseWriter, r *http.Request) {
		if a.access.skip {
			rt.handle(w, r)
			return
		}
		var held admission
		if r = a.enter(w, r, &check, &held); r == nil {
			return
		}
		defer held.release()
		rt.handle(w, r)
	}
}

// routeCheck is what guard knows of a route.
type routeCheck struct {
	route                   *Route
	kind                    routeKind
	hasCollection, isEvents bool
}

// admission is what a request admitted by enter holds until its handler
// returns, or a stream detached from its handler ends.
type admission struct {
	gate          *auth.Gate // the listener's streams or requests
	keyStreams    *auth.Gate // the key's streams; nil if none taken
	resetDeadline http.ResponseWriter
	cancel        context.CancelFunc
	stop          func() bool
	detached      bool // the stream releases it, not guard
}

// release gives back what enter took, unless a stream detached it.
func (h *admission) release() {
	if !h.detached {
		h.free()
	}
}

// free gives back what enter took, in the reverse order.
func (h *admission) free() {
	if h.stop != nil {
		h.stop()
	}
	if h.cancel != nil {
		h.cancel()
	}
	if h.resetDeadline != nil {
		// The server does not reset a write deadline between the
		// requests of a connection; the next one may be a stream.
		setWriteDeadline(h.resetDeadline, time.Time{})
	}
	if h.keyStreams != nil {
		h.keyStreams.Release()
	}
	h.gate.Release()
}

// enter checks a request's access and limits. It returns the request to
// hand to the route's handler, with the grant in its context, and fills
// held with what to release after it; or it answers with an error and
// returns nil.
func (a *API) enter(w http.ResponseWriter, r *http.Request, c *routeCheck, held *admission) *http.Request {
	rt := c.route
	g, err := a.admit(w, r, rt)
	if err == nil {
		switch {
		case c.hasCollection:
			err = g.allows(rt.Class, r.PathValue("collection"))
		case c.isEvents && g.key != nil && !g.key.Key.Unrestricted():
			err = g.allowsEventCollections(r)
		case rt.Class == ClassAdmin:
			// Routes about no collection in particular, such as the
			// key routes, need a key for every collection: a key
			// limited to some could otherwise mint one for all.
			err = g.allows(rt.Class, "")
		default:
			err = g.allowsClass(rt.Class)
		}
	}
	if err != nil {
		a.writeError(w, r, err)
		return nil
	}
	l := g.conn.Listener
	if c.kind == kindStream {
		if !l.Streams.TryAcquire() {
			a.writeError(w, r, overloaded("max_streams", l.Streams.Max, "event streams and WebSockets open on "+l.Spec.String()))
			return nil
		}
		held.gate = &l.Streams
		if g.key != nil {
			if !g.key.Streams.TryAcquire() {
				held.release()
				a.writeError(w, r, overloaded("key_max_streams", g.key.Streams.Max, "streams open with key "+g.key.Key.ID))
				return nil
			}
			held.keyStreams = &g.key.Streams
		}
	} else {
		if !l.Requests.TryAcquire() {
			a.writeError(w, r, overloaded("max_requests", l.Requests.Max, "requests in flight on "+l.Spec.String()))
			return nil
		}
		held.gate = &l.Requests
	}
	if c.kind == kindUnary && a.access.requestTimeout > 0 {
		d := time.Now().Add(a.access.requestTimeout)
		setReadDeadline(w, d)
		setWriteDeadline(w, d)
		held.resetDeadline = w
	}
	if c.kind == kindStream {
		g.held = held
	}
	if c.kind != kindUnary || g.key != nil {
		ctx := context.WithValue(r.Context(), grantKey{}, &g)
		if g.key != nil && c.kind != kindUnary {
			ctx, held.cancel = context.WithCancel(ctx)
			held.stop = context.AfterFunc(g.key.Context(), held.cancel) // revoked: end the stream
		}
		r = r.WithContext(ctx)
	}
	return r
}

// detach hands a stream's admission from guard to the stream, whose
// handler returns while the stream goes on: release gives back its place
// under max_streams when the stream ends. revoked, if not nil, is done
// when the stream's API key is revoked; the stream must then end. (The
// request's own context ends when the handler returns.)
func detach(r *http.Request) (release func(), revoked context.Context) {
	g := grantFrom(r.Context())
	if g == nil || g.held == nil {
		return func() {}, nil // no access checks
	}
	g.held.detached = true
	if g.key != nil {
		revoked = g.key.Context()
	}
	return g.held.free, revoked
}

// allowsEventCollections requires a key limited to some collections to
// subscribe to those only, by naming them.
func (g *grant) allowsEventCollections(r *http.Request) error {
	q, err := queryParams(r)
	if err != nil {
		return err
	}
	names := q.Get("collections")
	if names == "" {
		return g.allows(ClassRead, "")
	}
	for _, name := range strings.Split(names, ",") {
		if err := g.allows(ClassRead, name); err != nil {
			return err
		}
	}
	return nil
}

// admit runs the checks that do not depend on the route (steps 1–5 above)
// and returns the grant. rt is nil for requests no route matches.
func (a *API) admit(w http.ResponseWriter, r *http.Request, rt *Route) (grant, error) {
	if a.access.skip {
		return grant{conn: a.access.unlisted}, nil
	}
	conn := auth.ConnFrom(r.Context())
	if conn == nil {
		conn = a.access.unlisted
	}
	if conn == nil || conn.Listener == nil {
		return grant{}, newError("permission_denied", "this connection has no listener identity")
	}
	l := conn.Listener
	if !l.PeerAllowed(conn.Peer) {
		a.log.Warn("peer refused", "listener", l.Spec.String(), "peer", conn.Peer.String(), "method", r.Method, "path", r.URL.Path)
		return grant{}, newError("permission_denied", fmt.Sprintf("peer %s is not allowed on %s", conn.Peer, l.Spec.String()))
	}
	if l.Spec.Network == "tcp" && l.Spec.Auth == auth.AuthNone && !loopbackHost(r.Host) {
		return grant{}, newError("permission_denied", fmt.Sprintf("Host %.128q is not a loopback name; this listener has no keys and serves local clients only", r.Host))
	}
	if a.access.crossOrigin != nil {
		if err := a.access.crossOrigin.Check(r); err != nil {
			return grant{}, newError("permission_denied", "cross-origin request refused: "+err.Error()+" (allow the origin with --cors-origins)")
		}
	}
	if ok, wait := l.Allow(); !ok {
		return grant{}, rateLimited(w, r, wait, "the rate limit of "+l.Spec.String())
	}
	g := grant{conn: conn}
	if l.Spec.Auth != auth.AuthKey {
		return g, nil
	}
	token, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hippo"`)
		return grant{}, newError("unauthenticated", l.Spec.String()+" needs an API key: send Authorization: Bearer KEY (create one with hippo keys create)")
	}
	if a.access.keys == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hippo", error="invalid_token"`)
		return grant{}, newError("unauthenticated", "this server has no API keys")
	}
	key, err := a.access.keys.Authenticate(token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hippo", error="invalid_token"`)
		return grant{}, err
	}
	if ok, wait := key.Allow(); !ok {
		return grant{}, rateLimited(w, r, wait, "the rate limit of key "+key.Key.ID)
	}
	g.key = key
	return g, nil
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// loopbackHost reports whether a Host header names this machine. An empty
// Host (HTTP/1.0) is let through: browsers always send one.
func loopbackHost(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// maxTarpit bounds how long a refusal for rate is held back.
const maxTarpit = time.Second

// rateLimited answers a request over a rate limit, after holding it back
// until a token would be available (at most maxTarpit, less if the client
// goes away). The hold-back is what keeps a client hammering past its limit
// from taking the CPU from the others: refusing at once would let it send
// as many requests as it can, each still to be read, parsed and answered.
// Held requests are not counted in max_requests.
func rateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration, what string) *apiError {
	hold := time.NewTimer(min(wait, maxTarpit))
	select {
	case <-hold.C:
	case <-r.Context().Done():
		hold.Stop()
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	ae := newError("rate_limited", fmt.Sprintf("too many requests: %s is exhausted; retry in %d s", what, secs))
	ae.Details = map[string]any{"retry_after_seconds": secs}
	return ae
}

func overloaded(limit string, value int64, what string) *apiError {
	ae := newError("unavailable", fmt.Sprintf("too many %s (%s=%d); retry later", what, limit, value))
	ae.Details = map[string]any{"limit": limit, "value": value}
	return ae
}

// Deadlines without http.NewResponseController, which would cost an
// allocation on every request; it is the fallback for wrapped writers.
type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

func setReadDeadline(w http.ResponseWriter, t time.Time) {
	if d, ok := w.(readDeadliner); ok {
		d.SetReadDeadline(t)
		return
	}
	http.NewResponseController(w).SetReadDeadline(t)
}

func setWriteDeadline(w http.ResponseWriter, t time.Time) {
	if d, ok := w.(writeDeadliner); ok {
		d.SetWriteDeadline(t)
		return
	}
	http.NewResponseController(w).SetWriteDeadline(t)
}

// Security headers of every answer. The slices are shared and full
// (len == cap), so a handler that adds to a header copies instead of
// writing into them.
var (
	hdrNosniff     = []string{"nosniff"}
	hdrNoStore     = []string{"no-store"}
	hdrFrameDeny   = []string{"DENY"}
	hdrCSP         = []string{"default-src 'none'; frame-ancestors 'none'"}
	hdrNoReferrer  = []string{"no-referrer"}
	hdrCORSMethods = []string{"GET, PUT, POST, DELETE"}
	hdrCORSHeaders = []string{"Authorization, Content-Type, Accept, Last-Event-ID"}
	hdrCORSExpose  = []string{"Retry-After, WWW-Authenticate"}
	hdrCORSMaxAge  = []string{"600"}
	hdrVaryOrigin  = []string{"Origin"}
	hdrAnyOrigin   = []string{"*"}
)

// setSecurityHeaders marks every answer as not to be sniffed, cached,
// framed or followed by a referrer: the API serves data, never pages.
func setSecurityHeaders(h http.Header) {
	h["X-Content-Type-Options"] = hdrNosniff
	h["Cache-Control"] = hdrNoStore
	h["X-Frame-Options"] = hdrFrameDeny
	h["Content-Security-Policy"] = hdrCSP
	h["Referrer-Policy"] = hdrNoReferrer
}

// cors answers browsers from the configured origins.
type cors struct {
	any     bool
	origins map[string]bool
}

func newCORS(origins []string) *cors {
	if len(origins) == 0 {
		return nil
	}
	c := &cors{origins: map[string]bool{}}
	for _, o := range origins {
		if o == "*" {
			c.any = true
		} else {
			c.origins[strings.TrimSuffix(o, "/")] = true
		}
	}
	return c
}

// CheckCORSOrigins validates --cors-origins: "*" or scheme://host[:port].
func CheckCORSOrigins(origins []string) error {
	cop := http.NewCrossOriginProtection()
	for _, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("CORS origin %q: want scheme://host[:port] or *", o)
		}
		if err := cop.AddTrustedOrigin(strings.TrimSuffix(o, "/")); err != nil {
			return fmt.Errorf("CORS origin %q: %v", o, err)
		}
	}
	return nil
}

// preflight adds the CORS headers to an answer for an allowed origin and
// answers a preflight request itself (reporting true). A nil cors does
// nothing.
func (c *cors) preflight(w http.ResponseWriter, r *http.Request) bool {
	if c == nil {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" || !(c.any || c.origins[origin]) {
		return false
	}
	h := w.Header()
	if c.any {
		h["Access-Control-Allow-Origin"] = hdrAnyOrigin
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h["Vary"] = hdrVaryOrigin
	}
	h["Access-Control-Expose-Headers"] = hdrCORSExpose
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h["Access-Control-Allow-Methods"] = hdrCORSMethods
	h["Access-Control-Allow-Headers"] = hdrCORSHeaders
	h["Access-Control-Max-Age"] = hdrCORSMaxAge
	w.WriteHeader(http.StatusNoContent)
	return true
}

// accessLogger records the status and size of an answer for the access log.
// Unwrap lets http.ResponseController and WebSocket upgrades reach the
// connection underneath.
type accessLogger struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (l *accessLogger) WriteHeader(status int) {
	if l.status == 0 {
		l.status = status
	}
	l.ResponseWriter.WriteHeader(status)
}

func (l *accessLogger) Write(b []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	n, err := l.ResponseWriter.Write(b)
	l.bytes += int64(n)
	return n, err
}

func (l *accessLogger) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// Flush keeps streams flowing through the logger for code that asserts
// http.Flusher instead of using a ResponseController.
func (l *accessLogger) Flush() { http.NewResponseController(l.ResponseWriter).Flush() }

// logRequest writes one access-log line: who asked what, and the answer.
func (a *API) logRequest(l *accessLogger, r *http.Request, began time.Time) {
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", l.status),
		slog.Int64("bytes", l.bytes),
		slog.Duration("took", time.Since(began)),
	}
	if c := auth.ConnFrom(r.Context()); c != nil && c.Listener != nil {
		attrs = append(attrs, slog.String("listener", c.Listener.Spec.String()))
		if c.Peer != nil {
			attrs = append(attrs, slog.Int("peer_pid", int(c.Peer.PID)), slog.Int("peer_uid", int(c.Peer.UID)), slog.Int("peer_gid", int(c.Peer.GID)))
		} else {
			attrs = append(attrs, slog.String("remote", r.RemoteAddr))
		}
	}
	if token, ok := bearer(r); ok {
		attrs = append(attrs, slog.String("key", auth.KeyIDOf(token)))
	}
	a.log.LogAttrs(r.Context(), a.access.logLevel, "request", attrs...)
}

// startAccessLog wraps w to log the request when it is done, if the access
// log is on at its level; the returned function ends it.
func (a *API) startAccessLog(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	if a.access.skip || !a.log.Enabled(r.Context(), a.access.logLevel) {
		return w, func() {}
	}
	l := &accessLogger{ResponseWriter: w}
	began := time.Now()
	return l, func() {
		if l.status == 0 {
			l.status = http.StatusOK
		}
		a.logRequest(l, r, began)
	}
}
