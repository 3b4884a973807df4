package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/auth"
	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/h1"
)

// newAccessAPI returns an API over a fresh engine, with a keyring, that
// refuses requests without a listener identity, as hippo serve's does.
func newAccessAPI(t testing.TB, opts Options, keyOpts auth.KeyringOptions) (*API, *engine.Engine, *auth.Keyring) {
	t.Helper()
	e, err := engine.Open(engine.Options{Dir: t.TempDir(), SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := e.KeyStore()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := auth.OpenKeyring(ks, keyOpts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Keys, opts.RefuseUnlisted = kr, true
	a := New(e, opts)
	t.Cleanup(func() {
		a.Shutdown()
		e.Close()
	})
	return a, e, kr
}

// conn returns the identity of a connection to a listener parsed from spec.
func conn(t testing.TB, spec string) *auth.Conn {
	t.Helper()
	sp, err := auth.ParseListener(spec)
	if err != nil {
		t.Fatal(err)
	}
	return &auth.Conn{Listener: auth.NewListener(sp)}
}

// call serves one request on a connection with identity c (nil: none).
// Headers come in pairs; a "Host" pair sets the request's host.
func call(a *API, c *auth.Conn, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	return callCtx(context.Background(), a, c, method, path, body, headers...)
}

func callCtx(ctx context.Context, a *API, c *auth.Conn, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	req.Host = "localhost"
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	if c != nil {
		req = req.WithContext(auth.WithConn(req.Context(), c))
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	return rec
}

func errCode(rec *httptest.ResponseRecorder) string {
	var env struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(rec.Body.Bytes(), &env)
	return env.Error.Code
}

// concrete fills a route pattern's wildcards.
func concrete(pattern string) string {
	return strings.NewReplacer("{collection}", "c", "{id}", "x").Replace(pattern)
}

// probe sends a request to rt with c's identity; streams are given a
// moment to start, then cut.
func probe(a *API, c *auth.Conn, rt Route, headers ...string) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	body := ""
	if rt.Method == "PUT" || rt.Method == "POST" {
		body = "{}"
	}
	return callCtx(ctx, a, c, rt.Method, concrete(rt.Pattern), body, headers...)
}

// TestEveryRouteIsGuardedByItsClass walks every registered route against
// every listener class, without and with keys of every scope: a route must
// declare a class, be refused (403 naming the class) wherever that class is
// not allowed, and be served wherever it is.
func TestEveryRouteIsGuardedByItsClass(t *testing.T) {
	a, _, kr := newAccessAPI(t, Options{}, auth.KeyringOptions{})
	routes := a.Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		if !rt.Class.Valid() {
			t.Errorf("%s %s has no valid class (%q)", rt.Method, rt.Pattern, rt.Class)
		}
	}
	check := func(who string, have Class, rt Route, rec *httptest.ResponseRecorder) {
		t.Helper()
		denied := rec.Code == http.StatusForbidden && errCode(rec) == "permission_denied"
		switch {
		case !have.Allows(rt.Class) && !denied:
			t.Errorf("%s: %s %s (needs %s) answered %d, want 403: %s", who, rt.Method, rt.Pattern, rt.Class, rec.Code, rec.Body)
		case !have.Allows(rt.Class) && !strings.Contains(rec.Body.String(), "the "+string(rt.Class)+" class"):
			t.Errorf("%s: %s %s: the 403 does not name the class %s: %s", who, rt.Method, rt.Pattern, rt.Class, rec.Body)
		case have.Allows(rt.Class) && (rec.Code == http.StatusForbidden || rec.Code == http.StatusUnauthorized):
			t.Errorf("%s: %s %s (needs %s) refused: %d %s", who, rt.Method, rt.Pattern, rt.Class, rec.Code, rec.Body)
		}
	}
	for _, class := range auth.Classes {
		c := conn(t, "unix:/test.sock?class="+string(class))
		for _, rt := range routes {
			check("socket class="+string(class), class, rt, probe(a, c, rt))
		}
	}
	// On a key listener of class admin, the key's scope decides; on one of
	// class read, nothing beyond read passes, whatever the key.
	for _, listenerClass := range auth.Classes {
		c := conn(t, "127.0.0.1:7700?class="+string(listenerClass))
		for _, scope := range auth.Classes {
			_, token, err := kr.Create(auth.KeySpec{Name: "walk", Scope: scope}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			have := lesser(listenerClass, scope)
			for _, rt := range routes {
				if rt.Pattern == "/v1/admin/keys/{id}" {
					continue // would revoke the keys of the walk
				}
				check(fmt.Sprintf("tcp class=%s key scope=%s", listenerClass, scope), have, rt, probe(a, c, rt, "Authorization", "Bearer "+token))
			}
		}
	}
	// Without an identity, nothing is served.
	for _, rt := range routes {
		if rec := probe(a, nil, rt); rec.Code != http.StatusForbidden {
			t.Errorf("no identity: %s %s answered %d", rt.Method, rt.Pattern, rec.Code)
		}
	}
}

// lesser returns the lesser of two classes.
func lesser(a, b Class) Class {
	if a.Allows(b) {
		return b
	}
	return a
}

// lockedWriter serializes writes from the server's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.w)
}

func TestKeys(t *testing.T) {
	a, _, kr := newAccessAPI(t, Options{}, auth.KeyringOptions{})
	admin := conn(t, "unix:/admin.sock?class=admin")
	tcp := conn(t, "127.0.0.1:7700")
	for _, name := range []string{"agent-1", "agent-2", "notes"} {
		if rec := call(a, admin, "PUT", "/v1/collections/"+name, `{"dimension":1,"metric":"l2"}`); rec.Code != 201 {
			t.Fatal(rec.Body)
		}
	}
	rec := call(a, admin, "POST", "/v1/admin/keys", `{"name":"agents","scope":"write","collections":["agent-*"]}`)
	if rec.Code != 201 {
		t.Fatalf("create key: %d %s", rec.Code, rec.Body)
	}
	var created struct {
		ID, Key string
	}
	json.Unmarshal(rec.Body.Bytes(), &created)
	if !strings.HasPrefix(created.Key, "hk_"+created.ID+"_") {
		t.Fatalf("key %q, id %q", created.Key, created.ID)
	}
	bearer := "Bearer " + created.Key
	_, readToken, _ := kr.Create(auth.KeySpec{Name: "reader", Scope: auth.ClassRead}, time.Now())

	// No key, a malformed one, a wrong secret: 401 with WWW-Authenticate.
	wrong := created.Key[:len(created.Key)-4] + "aaaa"
	for _, h := range []string{"", "Bearer", "Basic dXNlcjpwYXNz", "Bearer hk_nope", "Bearer " + wrong} {
		rec := call(a, tcp, "GET", "/v1/collections/agent-1", "", "Authorization", h)
		if rec.Code != 401 || errCode(rec) != "unauthenticated" || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: %d %s %v", h, rec.Code, rec.Body, rec.Header())
		}
	}
	// Unknown routes answer 401 too before 404: nothing is learnt without a key.
	if rec := call(a, tcp, "GET", "/v1/nothing", ""); rec.Code != 401 {
		t.Errorf("unknown route without key: %d", rec.Code)
	}
	// The key's collections, and nothing else.
	if rec := call(a, tcp, "PUT", "/v1/collections/agent-1/records/r", `{"vector":[1]}`, "Authorization", bearer); rec.Code != 200 {
		t.Errorf("write to agent-1: %d %s", rec.Code, rec.Body)
	}
	if rec := call(a, tcp, "GET", "/v1/collections/notes/records/r", "", "Authorization", bearer); rec.Code != 403 || !strings.Contains(rec.Body.String(), "notes") {
		t.Errorf("read notes: %d %s", rec.Code, rec.Body)
	}
	// A read key may not write.
	if rec := call(a, tcp, "PUT", "/v1/collections/notes/records/r", `{"vector":[1]}`, "Authorization", "Bearer "+readToken); rec.Code != 403 || !strings.Contains(rec.Body.String(), "write class") {
		t.Errorf("read key writes: %d %s", rec.Code, rec.Body)
	}
	// Lists show the key's collections only.
	rec = call(a, tcp, "GET", "/v1/collections", "", "Authorization", bearer)
	var list struct{ Collections []struct{ Name string } }
	json.Unmarshal(rec.Body.Bytes(), &list)
	if rec.Code != 200 || len(list.Collections) != 2 || list.Collections[0].Name != "agent-1" || list.Collections[1].Name != "agent-2" {
		t.Errorf("list: %d %s", rec.Code, rec.Body)
	}
	// The feed: a limited key must name its collections, and only those.
	for q, want := range map[string]int{"": 403, "?collections=notes": 403, "?collections=agent-1,notes": 403, "?collections=agent-1,agent-2": 200} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		rec := callCtx(ctx, a, tcp, "GET", "/v1/events"+q, "", "Authorization", bearer)
		cancel()
		if rec.Code != want {
			t.Errorf("events%s: %d, want %d: %s", q, rec.Code, want, rec.Body)
		}
	}
	// A limited admin key cannot manage keys: it could mint an unlimited one.
	_, limitedAdmin, _ := kr.Create(auth.KeySpec{Name: "la", Scope: auth.ClassAdmin, Collections: []string{"agent-*"}}, time.Now())
	if rec := call(a, tcp, "GET", "/v1/admin/keys", "", "Authorization", "Bearer "+limitedAdmin); rec.Code != 403 {
		t.Errorf("limited admin lists keys: %d %s", rec.Code, rec.Body)
	}
	// Bad key specs are 400; unknown ids 404.
	for _, body := range []string{`{"name":"","scope":"read"}`, `{"name":"x","scope":"root"}`, `{"name":"x","scope":"read","collections":["["]}`, `{"name":"x","scope":"read","rate":-1}`} {
		if rec := call(a, admin, "POST", "/v1/admin/keys", body); rec.Code != 400 {
			t.Errorf("create %s: %d %s", body, rec.Code, rec.Body)
		}
	}
	if rec := call(a, admin, "DELETE", "/v1/admin/keys/0000000000000000", ""); rec.Code != 404 {
		t.Errorf("revoke unknown: %d %s", rec.Code, rec.Body)
	}
	// Listing never shows secrets.
	rec = call(a, admin, "GET", "/v1/admin/keys", "")
	if rec.Code != 200 || strings.Contains(rec.Body.String(), created.Key[20:]) || strings.Contains(rec.Body.String(), "sha256") {
		t.Errorf("list keys: %d %s", rec.Code, rec.Body)
	}

	// Revocation is immediate, and ends the key's open streams.
	srv := httptest.NewUnstartedServer(a)
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context { return auth.WithConn(ctx, tcp) }
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/events?collections=agent-1", nil)
	req.Header.Set("Authorization", bearer)
	resp, err := srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(ended) }()
	if rec := call(a, admin, "DELETE", "/v1/admin/keys/"+created.ID, ""); rec.Code != 200 {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if rec := call(a, tcp, "GET", "/v1/collections/agent-1", "", "Authorization", bearer); rec.Code != 401 {
		t.Errorf("revoked key: %d %s", rec.Code, rec.Body)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Error("the revoked key's stream is still open")
	}
}

func TestRateLimits(t *testing.T) {
	a, _, kr := newAccessAPI(t, Options{}, auth.KeyringOptions{DefaultRate: 1})
	tcp := conn(t, "127.0.0.1:7700")
	_, k1, _ := kr.Create(auth.KeySpec{Name: "one", Scope: auth.ClassRead}, time.Now())
	_, k2, _ := kr.Create(auth.KeySpec{Name: "two", Scope: auth.ClassRead}, time.Now())
	if rec := call(a, tcp, "GET", "/healthz", "", "Authorization", "Bearer "+k1); rec.Code != 200 {
		t.Fatal(rec.Body)
	}
	rec := call(a, tcp, "GET", "/healthz", "", "Authorization", "Bearer "+k1)
	if rec.Code != 429 || errCode(rec) != "rate_limited" || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("second request of a 1/s key: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	// Another key has a bucket of its own.
	if rec := call(a, tcp, "GET", "/healthz", "", "Authorization", "Bearer "+k2); rec.Code != 200 {
		t.Fatalf("other key: %d %s", rec.Code, rec.Body)
	}
	// A listener's limit covers all its clients.
	sock := conn(t, "unix:/x.sock?rate=0.5&burst=2")
	for i, want := range []int{200, 200, 429} {
		rec := call(a, sock, "GET", "/healthz", "")
		if rec.Code != want {
			t.Fatalf("listener request %d: %d, want %d", i, rec.Code, want)
		}
		if want == 429 && rec.Header().Get("Retry-After") != "2" {
			t.Fatalf("Retry-After %q, want 2", rec.Header().Get("Retry-After"))
		}
	}
}

func TestStreamAndRequestCaps(t *testing.T) {
	a, _, kr := newAccessAPI(t, Options{}, auth.KeyringOptions{MaxStreams: 1})
	sock := conn(t, "unix:/x.sock?max_streams=1&max_requests=1")
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() {
		close(started)
		callCtx(ctx, a, sock, "GET", "/v1/events", "")
	}()
	<-started
	deadline := time.Now().Add(5 * time.Second)
	for sock.Listener.Streams.InUse() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	rec := call(a, sock, "GET", "/v1/events", "")
	if rec.Code != 503 || errCode(rec) != "unavailable" || !strings.Contains(rec.Body.String(), "max_streams=1") || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("second stream: %d %s", rec.Code, rec.Body)
	}
	// Streams do not count against max_requests.
	if rec := call(a, sock, "GET", "/healthz", ""); rec.Code != 200 {
		t.Fatalf("request beside a stream: %d %s", rec.Code, rec.Body)
	}
	cancel()
	for sock.Listener.Streams.InUse() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// max_requests: hold the one place and ask again.
	if !sock.Listener.Requests.TryAcquire() {
		t.Fatal("no place")
	}
	if rec := call(a, sock, "GET", "/healthz", ""); rec.Code != 503 || !strings.Contains(rec.Body.String(), "max_requests=1") {
		t.Fatalf("over max_requests: %d %s", rec.Code, rec.Body)
	}
	sock.Listener.Requests.Release()
	// A key's own stream cap.
	_, token, _ := kr.Create(auth.KeySpec{Name: "s", Scope: auth.ClassRead}, time.Now())
	tcp := conn(t, "127.0.0.1:7700")
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go callCtx(ctx2, a, tcp, "GET", "/v1/events", "", "Authorization", "Bearer "+token)
	for tcp.Listener.Streams.InUse() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if rec := call(a, tcp, "GET", "/v1/events", "", "Authorization", "Bearer "+token); rec.Code != 503 || !strings.Contains(rec.Body.String(), "key_max_streams") {
		t.Fatalf("second stream of a key: %d %s", rec.Code, rec.Body)
	}
}

func TestLoopbackWithoutKeys(t *testing.T) {
	a, _, _ := newAccessAPI(t, Options{}, auth.KeyringOptions{})
	local := conn(t, "127.0.0.1:7700?auth=none&class=write")
	if rec := call(a, local, "GET", "/healthz", "", "Host", "localhost:7700"); rec.Code != 200 {
		t.Fatalf("loopback host: %d", rec.Code)
	}
	// DNS rebinding: a page of evil.example resolved to 127.0.0.1.
	if rec := call(a, local, "GET", "/v1/collections", "", "Host", "evil.example:7700"); rec.Code != 403 {
		t.Fatalf("foreign Host: %d %s", rec.Code, rec.Body)
	}
	// A cross-site form post from a browser.
	rec := call(a, local, "PUT", "/v1/collections/c", `{"dimension":1,"metric":"l2"}`, "Host", "127.0.0.1:7700",
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if rec.Code != 403 {
		t.Fatalf("cross-site write: %d %s", rec.Code, rec.Body)
	}
	if _, err := auth.ParseListener("0.0.0.0:7700?auth=none"); err == nil {
		t.Fatal("auth=none on all interfaces was accepted")
	}
}

func TestSecurityHeadersAndCORS(t *testing.T) {
	a, _, _ := newAccessAPI(t, Options{}, auth.KeyringOptions{})
	sock := conn(t, "unix:/x.sock")
	rec := call(a, sock, "GET", "/healthz", "", "Origin", "https://app.example")
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Access-Control-Allow-Origin": ""} {
		if got := rec.Header().Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if rec := call(a, sock, "OPTIONS", "/v1/collections", "", "Origin", "https://app.example", "Access-Control-Request-Method", "GET"); rec.Code == 204 {
		t.Errorf("preflight answered with CORS off")
	}

	a, _, _ = newAccessAPI(t, Options{CORSOrigins: []string{"https://app.example"}}, auth.KeyringOptions{})
	rec = call(a, sock, "OPTIONS", "/v1/collections", "", "Origin", "https://app.example", "Access-Control-Request-Method", "PUT")
	if rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}
	rec = call(a, sock, "GET", "/healthz", "", "Origin", "https://other.example")
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin allowed: %v", rec.Header())
	}
	rec = call(a, conn(t, "unix:/x.sock?class=write"), "PUT", "/v1/collections/c", `{"dimension":1,"metric":"l2"}`, "Origin", "https://app.example", "Sec-Fetch-Site", "cross-site")
	if rec.Code != 201 {
		t.Errorf("allowed origin's write: %d %s", rec.Code, rec.Body)
	}
	if err := CheckCORSOrigins([]string{"app.example"}); err == nil {
		t.Error("origin without a scheme accepted")
	}
}

// serveListener serves a on a real socket with the identity of the
// listener spec (a --listen value; PATH stands for a fresh socket path), as
// hippo serve does: plain HTTP/1.1 requests on package h1's lean path, the
// rest handed to net/http. configure may set the server's timeouts. It
// returns a keep-alive client, the base URL and the socket's address.
func serveListener(tb testing.TB, a *API, spec string, configure func(*http.Server)) (*http.Client, string, string) {
	tb.Helper()
	spec = strings.ReplaceAll(spec, "PATH", filepath.Join(tb.TempDir(), "s.sock"))
	sp, err := auth.ParseListener(spec)
	if err != nil {
		tb.Fatal(err)
	}
	policy := auth.NewListener(sp)
	l, err := net.Listen(sp.Network, sp.Address)
	if err != nil {
		tb.Fatal(err)
	}
	connContext := func(ctx context.Context, c net.Conn) context.Context {
		return auth.WithConn(ctx, &auth.Conn{Listener: policy, Peer: auth.PeerOf(c)})
	}
	srv := &h1.Server{Lean: a.Lean, Fallback: &http.Server{Handler: a, ConnContext: connContext}}
	if configure != nil {
		configure(srv.Fallback)
	}
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	addr := l.Addr().String()
	base := "http://" + addr
	if sp.Network == "unix" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}
		base = "http://localhost"
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, base, addr
}

// serveUnix serves a on a Unix socket (serveListener) with a listener of
// the given options, and returns a client and the socket's path.
func serveUnix(t *testing.T, a *API, options string, configure func(*http.Server)) (*http.Client, string) {
	hc, _, path := serveListener(t, a, "unix:PATH?"+options, configure)
	return hc, path
}

func TestPeerCredentials(t *testing.T) {
	if !auth.PeerCredSupported {
		t.Skip("no peer credentials on this system")
	}
	logs := &lockedWriter{w: &strings.Builder{}}
	a, _, _ := newAccessAPI(t, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), AccessLog: true}, auth.KeyringOptions{})
	me := os.Getuid()
	for _, tc := range []struct {
		spec string
		want int
	}{
		{"class=read", 200},
		{fmt.Sprintf("uids=%d", me), 200},
		{fmt.Sprintf("uids=%d,%d&gids=%d", me+1, me+2, os.Getgid()), 200},
		{fmt.Sprintf("uids=%d", me+1), 403},
	} {
		hc, _ := serveUnix(t, a, tc.spec, nil)
		resp, err := hc.Get("http://localhost/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s", tc.spec, resp.StatusCode, body)
		}
	}
	// The access log line is written once the answer is sent: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for _, want := range []string{fmt.Sprintf("peer_uid=%d", me), fmt.Sprintf("peer_pid=%d", os.Getpid()), "peer refused", "status=403"} {
		for !strings.Contains(logs.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("log lacks %q:\n%s", want, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestSlowLoris opens many connections that send their headers one byte at
// a time: they must not delay other clients, and the server must close them
// once ReadHeaderTimeout passes.
func TestSlowLoris(t *testing.T) {
	a, _, _ := newAccessAPI(t, Options{}, auth.KeyringOptions{})
	const headerTimeout = 500 * time.Millisecond
	hc, path := serveUnix(t, a, "class=read", func(s *http.Server) { s.ReadHeaderTimeout = headerTimeout })
	const n = 200
	closed := make(chan time.Duration, n)
	began := time.Now()
	for i := range n {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if i%2 == 0 {
			// Half connect and say nothing: the header timeout holds
			// for the first request too.
			go func() {
				c.Read(make([]byte, 1))
				closed <- time.Since(began)
			}()
			continue
		}
		go func() {
			req := "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + strings.Repeat("a", 1000)
			for i := range len(req) {
				if _, err := c.Write([]byte{req[i]}); err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			closed <- time.Since(began)
		}()
	}
	// Meanwhile, ordinary requests are answered at once.
	for i := range 20 {
		t0 := time.Now()
		resp, err := hc.Get("http://localhost/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(t0); resp.StatusCode != 200 || d > 200*time.Millisecond {
			t.Fatalf("request %d beside %d trickling clients: %d after %v", i, n, resp.StatusCode, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every trickling or silent connection is cut soon after the timeout
	// (a write or read fails once the server has closed it).
	for range n {
		select {
		case d := <-closed:
			if d > headerTimeout+3*time.Second {
				t.Fatalf("a trickling connection lasted %v", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("trickling connections still open 10 s after the header timeout")
		}
	}
}

// TestUnaryDeadlines: a client that trickles the body of a unary request is
// cut off at the request timeout; a stream is not.
func TestUnaryDeadlines(t *testing.T) {
	a, _, _ := newAccessAPI(t, Options{RequestTimeout: 300 * time.Millisecond}, auth.KeyringOptions{})
	_, path := serveUnix(t, a, "class=write", nil)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /v1/collections/c HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	t0 := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		resp.Body.Close()
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("a trickled body held the request for %v", d)
	}
	// A stream outlives the request timeout.
	hc, _ := serveUnix(t, a, "class=read", nil)
	resp, err = hc.Get("http://localhost/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(600 * time.Millisecond)
	a.Shutdown()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("stream cut before shutdown: %v", err)
	}
}
