package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// An Option configures a Client. Options are applied by New in order; a later
// option overrides an earlier one of the same kind.
type Option func(*options)

// options is what the Options collect before New builds the Client.
type options struct {
	httpClient  *http.Client
	timeout     time.Duration
	http1Pool   int // maximum connections; 0 means HTTP/2 on one connection
	header      http.Header
	userAgent   string
	jsonVectors bool
	err         error // the first invalid option
}

func (o *options) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// WithHTTPClient makes the Client send its requests through hc instead of a
// transport of its own, for a proxy, custom TLS settings or instrumentation.
// hc then decides the protocol, how many requests are in flight at once,
// whether redirects are followed, and how to dial: for a Unix-socket address
// it must dial the socket itself, since the request URLs name the host
// "localhost". Close does not close hc's connections. WithHTTPClient cannot
// be combined with WithHTTP1Pool.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) {
		if hc == nil {
			o.fail(errors.New("hippo: WithHTTPClient: nil *http.Client"))
			return
		}
		o.httpClient = hc
	}
}

// WithTimeout bounds each request whose context has no deadline of its own.
// It applies to every call that sends one request and reads one answer, and
// to each page of List; it does not apply to the streaming calls Import,
// ImportRecords, Export and SearchBatch, which run as long as their context
// allows. Zero, the default, means no bound.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.fail(fmt.Errorf("hippo: WithTimeout: negative duration %v", d))
			return
		}
		o.timeout = d
	}
}

// WithHTTP1Pool makes the Client use HTTP/1.1 over a pool of at most maxConns
// keep-alive connections instead of HTTP/2 on one connection. A request that
// finds every connection busy waits for one to become free. Use it when a
// proxy between client and server does not speak cleartext HTTP/2, to spread
// load over several server connections, or for the lowest latency of small
// requests: on http and Unix-socket addresses the calling goroutine writes
// the request and reads the answer itself, without the hand-offs between
// goroutines of net/http's transport (a get of a record takes about half as
// long). Requests whose bodies stream (Import, ImportRecords, SearchBatch)
// go through net/http's transport, which keeps a pool of its own of the
// same size.
func WithHTTP1Pool(maxConns int) Option {
	return func(o *options) {
		if maxConns <= 0 {
			o.fail(fmt.Errorf("hippo: WithHTTP1Pool: maxConns must be positive, got %d", maxConns))
			return
		}
		o.http1Pool = maxConns
	}
}

// WithHeader sets a header sent with every request, for example
//
//	client.WithHeader("Authorization", "Bearer "+apiKey)
//
// A later WithHeader with the same key replaces the value.
func WithHeader(key, value string) Option {
	return func(o *options) {
		if o.header == nil {
			o.header = make(http.Header)
		}
		o.header.Set(key, value)
	}
}

// WithUserAgent sets the User-Agent header; the default is DefaultUserAgent.
func WithUserAgent(userAgent string) Option {
	return func(o *options) { o.userAgent = userAgent }
}

// WithJSONVectors makes the Client send vectors as JSON arrays of numbers
// ("vector") instead of base64 of their little-endian float32 bytes
// ("vector_b64"), and not ask for base64 in answers. The arrays are easier to read in a packet capture or a
// proxy's log; base64 is about a third of the size and cheaper for both ends.
// Vectors containing NaN or an infinity cannot be sent as JSON numbers and
// fail to encode.
func WithJSONVectors() Option {
	return func(o *options) { o.jsonVectors = true }
}
