package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultUserAgent is the User-Agent header sent unless WithUserAgent says
// otherwise.
const DefaultUserAgent = "hippo-go-client/1"

// maxStreams bounds the requests in flight at once over HTTP/2. A server
// should allow at least 100 concurrent streams (RFC 9113, section 6.5.2),
// and Go's transport assumes 100 until the server says otherwise; beyond the
// server's limit the transport would open a second connection.
const maxStreams = 100

// Media types of request and answer bodies.
const (
	contentTypeJSON   = "application/json"
	contentTypeNDJSON = "application/x-ndjson"
)

// A Client talks to one Hippo server. It is safe for concurrent use by
// multiple goroutines, and meant to be created once and reused: its
// connection (or pool of connections) is kept open between calls.
//
// The zero value is not usable; create Clients with New.
type Client struct {
	// All fields are set by New and never modified, so they need no lock.

	base      *url.URL         // scheme, host and path prefix of every request
	hc        *http.Client     // sends the requests
	transport *http.Transport  // the Client's own transport; nil with WithHTTPClient
	direct    *directTransport // WithHTTP1Pool's transport, over transport; nil otherwise
	// events sends the requests of event streams, over HTTP/1.1 with a
	// connection each, on a cleartext Client with its own transport; nil
	// otherwise (hc sends them). The server writes such streams straight
	// to their sockets, at a fraction of the cost of an HTTP/2 stream, and
	// a stream does not take one of WithHTTP1Pool's connections for its
	// life.
	events *http.Client

	// streams holds a token for every request in flight, from sending it
	// until its answer's body is closed, when the Client speaks HTTP/2 on
	// its own transport; it is nil otherwise. It keeps the requests within
	// the stream limit of one connection, which is what keeps them on one.
	streams chan struct{}

	header      http.Header   // sent with every request
	timeout     time.Duration // see WithTimeout
	jsonVectors bool          // see WithJSONVectors
}

// New returns a Client for the server at addr, which is one of
//
//	http://host:port      TCP; cleartext HTTP/2, or HTTP/1.1 with WithHTTP1Pool
//	https://host:port     TLS; HTTP/2 or HTTP/1.1 as negotiated
//	host:port             the same as http://host:port
//	unix:///path/to/sock  a Unix socket; also "unix:relative/path"
//	/path/to/sock         a Unix socket; also "./sock" and "../sock"
//
// An http or https address may carry a path prefix, for a server behind a
// reverse proxy that mounts it below one: "http://gateway/hippo".
//
// New does not connect; the first call does. Proxy settings in the
// environment (HTTP_PROXY and the like) are not consulted: cleartext HTTP/2
// cannot pass through an HTTP proxy. To use one, pass WithHTTPClient.
func New(addr string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return nil, o.err
	}
	if o.httpClient != nil && o.http1Pool != 0 {
		return nil, errors.New("hippo: WithHTTPClient and WithHTTP1Pool cannot be combined")
	}
	ep, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:        ep.base,
		header:      make(http.Header),
		timeout:     o.timeout,
		jsonVectors: o.jsonVectors,
	}
	for key, values := range o.header {
		c.header[key] = append([]string(nil), values...)
	}
	c.header.Set("User-Agent", DefaultUserAgent)
	if o.userAgent != "" {
		c.header.Set("User-Agent", o.userAgent)
	}
	if o.httpClient != nil {
		c.hc = o.httpClient
	} else {
		c.transport = newTransport(ep, o.http1Pool)
		var rt http.RoundTripper = c.transport
		if o.http1Pool == 0 {
			c.streams = make(chan struct{}, maxStreams)
		} else if ep.base.Scheme == "http" {
			c.direct = newDirectTransport(func(ctx context.Context) (net.Conn, error) {
				return c.transport.DialContext(ctx, "tcp", ep.base.Host)
			}, o.http1Pool, c.transport)
			rt = c.direct
		}
		c.hc = &http.Client{Transport: rt, CheckRedirect: noRedirects}
		if ep.base.Scheme == "http" {
			c.events = &http.Client{Transport: newEventsTransport(ep), CheckRedirect: noRedirects}
		}
	}
	return c, nil
}

// newEventsTransport returns the transport of event streams: HTTP/1.1, a
// connection each, as many as there are streams.
func newEventsTransport(ep endpoint) *http.Transport {
	t := newTransport(ep, 1)
	t.MaxConnsPerHost = 0
	return t
}

// noRedirects is the Client's redirect policy. The API never redirects. A
// redirect therefore comes from something in between, or from a server
// cleaning a path, and following it could turn a PUT into a GET (301) or
// send a write to another resource (307). Report it as an error instead.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Close closes the Client's idle connections. It does not interrupt calls in
// progress, and the Client stays usable: a later call connects again. With
// WithHTTPClient, Close does nothing. Close always returns nil.
func (c *Client) Close() error {
	if c.direct != nil {
		c.direct.CloseIdleConnections()
	}
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	if c.events != nil {
		c.events.CloseIdleConnections()
	}
	return nil
}

// endpoint is a parsed server address.
type endpoint struct {
	base   *url.URL // what request URLs start with
	socket string   // path of the Unix socket, or "" for TCP
}

// parseAddr parses the addresses New accepts.
func parseAddr(addr string) (endpoint, error) {
	bad := func(why string) (endpoint, error) {
		return endpoint{}, fmt.Errorf("hippo: address %q: %s", addr, why)
	}
	var socket string
	switch {
	case addr == "":
		return bad("empty")
	case strings.HasPrefix(addr, "unix:"):
		socket = strings.TrimPrefix(addr, "unix:")
		socket = strings.TrimPrefix(socket, "//")
		if socket == "" {
			return bad("no socket path")
		}
	case strings.HasPrefix(addr, "/"), strings.HasPrefix(addr, "./"), strings.HasPrefix(addr, "../"):
		socket = addr
	}
	if socket != "" {
		// The host is never dialled (the transport dials the socket), but
		// it is sent as Host and :authority. "localhost" is what a server
		// that checks Host against DNS rebinding expects to see.
		return endpoint{base: &url.URL{Scheme: "http", Host: "localhost"}, socket: socket}, nil
	}

	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return bad("want http://host:port, host:port or a Unix socket path")
		}
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return bad(err.Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad(fmt.Sprintf("unsupported scheme %q", u.Scheme))
	}
	if u.Host == "" {
		return bad("no host")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return bad("user info, query and fragment are not allowed")
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host}
	if prefix := strings.TrimRight(u.EscapedPath(), "/"); prefix != "" {
		base.RawPath = prefix
		base.Path, _ = url.PathUnescape(prefix) // EscapedPath is always valid
	}
	return endpoint{base: base}, nil
}

// newTransport builds the Client's own transport for ep. With http1Pool == 0
// it speaks HTTP/2 (cleartext with prior knowledge for http, negotiated by
// ALPN for https) and keeps every request on one connection; otherwise it
// speaks HTTP/1.1 on at most http1Pool connections.
func newTransport(ep endpoint, http1Pool int) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		Protocols:           new(http.Protocols),
	}
	if ep.socket != "" {
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", ep.socket)
		}
	}
	if http1Pool > 0 {
		t.Protocols.SetHTTP1(true)
		t.MaxConnsPerHost = http1Pool
		t.MaxIdleConnsPerHost = http1Pool
		return t
	}
	if ep.base.Scheme == "https" {
		// HTTP/1.1 too, for a server that does not offer h2 by ALPN;
		// it then gets one connection, one request at a time.
		t.Protocols.SetHTTP1(true)
		t.Protocols.SetHTTP2(true)
	} else {
		// UnencryptedHTTP2 without HTTP1 is what makes the transport
		// speak HTTP/2 with prior knowledge on http URLs.
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	// Concurrent first requests would each dial a connection of their
	// own, and keep using them all. If the connection is lost, the
	// transport drops it from the count and dials again.
	t.MaxConnsPerHost = 1
	// Not StrictMaxConcurrentRequests: in Go 1.26 it deadlocks once more
	// requests arrive at once than the server allows streams (each holds a
	// stream reservation that counts against the limit while it waits for
	// the one request ahead of it to be given a stream, which waits for
	// the count to drop). Client.streams queues requests instead.
	t.HTTP2 = &http.HTTP2Config{
		// With every request on one connection, a connection that died
		// silently (a NAT entry expired, a peer vanished) would hang
		// them all; pings find it out.
		SendPingTimeout: 30 * time.Second,
		PingTimeout:     15 * time.Second,
	}
	return t
}

// escapeSegment escapes s for use as one path segment. Beyond
// url.PathEscape, it escapes the segments "." and "..", which servers
// (Go's ServeMux among them) would otherwise resolve as dot-segments,
// redirecting the request elsewhere.
func escapeSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// collectionPath returns the escaped path of collection name, followed by the
// already escaped rest.
func collectionPath(name string, rest ...string) string {
	return "/v1/collections/" + escapeSegment(name) + strings.Join(rest, "")
}

// recordPath returns the escaped path of record id in collection.
func recordPath(collection, id string) string {
	return collectionPath(collection, "/records/", escapeSegment(id))
}

// checkName returns an error if a collection name or record id is empty: an
// empty path segment would address another resource.
func checkName(what, v string) error {
	if v == "" {
		return fmt.Errorf("hippo: empty %s", what)
	}
	return nil
}

// newRequest returns a request for the escaped path below the base URL. A
// non-nil body is sent with Content-Type contentType.
func (c *Client) newRequest(ctx context.Context, method, escapedPath string, query url.Values, body io.Reader, contentType string) (*http.Request, error) {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + escapedPath
	var err error
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return nil, fmt.Errorf("hippo: build URL: %w", err)
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("hippo: build request: %w", err)
	}
	req.Header = c.header.Clone() // a RoundTripper may modify it
	req.Header.Set("Accept", contentTypeJSON)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

// send sends req. If the answer is not 2xx, it closes the body and returns
// the answer as an *Error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	return c.sendOn(c.hc, c.streams, req)
}

// sendEvents sends the request of an event stream.
func (c *Client) sendEvents(req *http.Request) (*http.Response, error) {
	if c.events != nil {
		return c.sendOn(c.events, nil, req)
	}
	return c.send(req)
}

// sendOn sends req with hc, within the stream limit of streams if not nil.
func (c *Client) sendOn(hc *http.Client, streams chan struct{}, req *http.Request) (*http.Response, error) {
	release := func() {}
	if streams != nil {
		select {
		case streams <- struct{}{}:
			release = func() { <-streams }
		case <-req.Context().Done():
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, &url.Error{Op: urlOp(req.Method), URL: req.URL.String(), Err: req.Context().Err()}
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		release()
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := responseError(resp)
		closeBody(resp.Body)
		release()
		return nil, err
	}
	if streams != nil {
		resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	}
	return resp, nil
}

// urlOp returns the Op of the *url.Error that http.Client.Do would return
// for method, so that errors look alike however they arise.
func urlOp(method string) string {
	return method[:1] + strings.ToLower(method[1:])
}

// releasingBody is an answer's body that gives back its stream token when
// closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// closeBody drains a little of body before closing it, so that an HTTP/1.1
// connection whose answer was not read to the end (a trailing newline after
// the JSON, say) can be reused rather than closed.
func closeBody(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	body.Close()
}

// unaryContext applies the WithTimeout bound to ctx.
func (c *Client) unaryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, c.timeout)
		}
	}
	return context.WithCancel(ctx)
}

// call sends one request with in (if not nil) as its JSON body (a
// json.RawMessage is sent as it is), decodes the
// JSON answer into out (if not nil) and returns the answer's status code.
func (c *Client) call(ctx context.Context, method, escapedPath string, query url.Values, in, out any) (int, error) {
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	var body io.Reader
	if raw, ok := in.(json.RawMessage); ok {
		body = bytes.NewReader(raw) // already encoded; spare a second pass
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("hippo: %s %s: encode request: %w", method, escapedPath, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, escapedPath, query, body, contentTypeJSON)
	if err != nil {
		return 0, err
	}
	resp, err := c.send(req)
	if err != nil {
		return 0, err
	}
	defer closeBody(resp.Body)
	if out != nil {
		if err := decodeAnswer(resp, out); err != nil {
			return resp.StatusCode, fmt.Errorf("hippo: %s %s: decode answer: %w", method, escapedPath, err)
		}
	}
	return resp.StatusCode, nil
}

// decodeAnswer reads the whole body (in one allocation when its length is
// known) and decodes it. A record is decoded directly rather than through
// json.Unmarshal and its UnmarshalJSON, which would validate and scan its
// vector twice more: on a 784-dimension record that was half of a Get's cost.
func decodeAnswer(resp *http.Response, out any) error {
	var body []byte
	var err error
	if n := resp.ContentLength; n > 0 && n <= maxAnswerPrealloc {
		body = make([]byte, n)
		_, err = io.ReadFull(resp.Body, body)
	} else {
		body, err = io.ReadAll(resp.Body)
	}
	if err != nil {
		return err
	}
	if rec, ok := out.(*Record); ok {
		return rec.decode(body, nil)
	}
	return json.Unmarshal(body, out)
}

// maxAnswerPrealloc bounds what a Content-Length may make decodeAnswer
// allocate up front; longer answers are read as they come.
const maxAnswerPrealloc = 64 << 20
