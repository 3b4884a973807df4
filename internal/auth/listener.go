package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Errors of this package.
var (
	ErrInvalid         = errors.New("hippo: invalid access configuration")
	ErrUnauthenticated = errors.New("hippo: unauthenticated")
	ErrKeyNotFound     = errors.New("hippo: key not found")
)

// AuthMode says how a listener learns who its clients are.
type AuthMode string

const (
	// AuthNone grants every client the listener's class. On a Unix socket
	// the file mode, group and uids/gids decide who may connect; on TCP it
	// is allowed on loopback addresses only.
	AuthNone AuthMode = "none"
	// AuthKey requires "Authorization: Bearer KEY" on every request; the
	// key's scope and collections narrow the listener's class.
	AuthKey AuthMode = "key"
)

// Defaults of the listener options (README, "Configuration").
const (
	DefaultMaxRequests = 512 // requests in flight per listener, streams excluded
	DefaultMaxStreams  = 256 // open event streams and WebSockets per listener
	DefaultSocketMode  = 0o660
	DefaultAdminMode   = 0o600 // the default mode of a class=admin socket
)

// ListenerSpec is one --listen value, parsed:
//
//	ADDRESS[?OPTION=VALUE&...]
//
// ADDRESS is host:port (TCP; "tcp://" or "http://" may precede it) or a Unix
// socket: unix:PATH, unix://PATH, or a path containing a slash. The options
// are listed in listenerOptions. The zero value is not usable.
type ListenerSpec struct {
	Network string // "tcp" or "unix"
	Address string // host:port, or the socket's path
	Class   Class
	Auth    AuthMode

	// Unix sockets only.
	Mode  os.FileMode // permission bits of the socket file
	Group string      // group name or id the socket file is given, or ""
	UIDs  []uint32    // if UIDs or GIDs is set, peers must match one of them
	GIDs  []uint32

	// TCP only: serve TLS with these PEM files (reloaded on SIGHUP).
	TLSCert, TLSKey string

	Rate        float64 // requests per second for the whole listener; 0: unlimited
	Burst       int     // bucket size of Rate
	MaxRequests int     // requests in flight at once (streams excluded); 0: unlimited
	MaxStreams  int     // event streams and WebSockets open at once; 0: unlimited
}

// listenerOptions are the options a --listen value may carry, with what
// they mean; the CLI prints them in its help.
var listenerOptions = [][2]string{
	{"class", "read, write or admin: the most this listener allows (default: read; admin for TCP with keys, whose scopes decide)"},
	{"auth", "key or none: whether requests need an API key (default: key on TCP, none on Unix sockets; none is refused on non-loopback TCP)"},
	{"mode", "Unix socket file mode, octal (default 0660; 0600 for class=admin)"},
	{"group", "Unix socket file group, a name or a gid"},
	{"uids", "Unix socket: only these peer user ids (comma-separated or repeated)"},
	{"gids", "Unix socket: only these peer group ids (the peer's effective gid)"},
	{"tls_cert", "TCP: certificate chain, PEM; with tls_key, serves HTTPS; reloaded on SIGHUP"},
	{"tls_key", "TCP: private key, PEM"},
	{"rate", "requests per second for the whole listener (default 0: unlimited)"},
	{"burst", "requests the rate limit lets through at once (default: rate, at least 1)"},
	{"max_requests", fmt.Sprintf("requests in flight at once, streams excluded (default %d; 0: unlimited)", DefaultMaxRequests)},
	{"max_streams", fmt.Sprintf("event streams and WebSockets open at once (default %d; 0: unlimited)", DefaultMaxStreams)},
}

// ListenerOptionsHelp describes the listener options, one per line.
func ListenerOptionsHelp() string {
	var b strings.Builder
	for _, o := range listenerOptions {
		fmt.Fprintf(&b, "  %-13s %s\n", o[0], o[1])
	}
	return b.String()
}

// ParseListener parses one --listen value.
func ParseListener(s string) (ListenerSpec, error) {
	fail := func(format string, args ...any) (ListenerSpec, error) {
		return ListenerSpec{}, fmt.Errorf("%w: listen %q: %s", ErrInvalid, s, fmt.Sprintf(format, args...))
	}
	addr, rawQuery, _ := strings.Cut(strings.TrimSpace(s), "?")
	var sp ListenerSpec
	if path, ok := unixPath(addr); ok {
		if path == "" {
			return fail("no socket path")
		}
		sp.Network, sp.Address = "unix", path
	} else {
		hostport := strings.TrimPrefix(strings.TrimPrefix(addr, "tcp://"), "http://")
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			return fail("want host:port, unix:PATH or a socket path")
		}
		sp.Network, sp.Address = "tcp", hostport
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return fail("options: %v", err)
	}
	known := map[string]bool{}
	for _, o := range listenerOptions {
		known[o[0]] = true
	}
	for k, vs := range q {
		if !known[k] {
			return fail("unknown option %q (known: class, auth, mode, group, uids, gids, tls_cert, tls_key, rate, burst, max_requests, max_streams)", k)
		}
		if len(vs) > 1 && k != "uids" && k != "gids" {
			return fail("option %s given %d times", k, len(vs))
		}
	}
	unixOnly := []string{"mode", "group", "uids", "gids"}
	tcpOnly := []string{"tls_cert", "tls_key"}
	for _, k := range unixOnly {
		if q.Has(k) && sp.Network != "unix" {
			return fail("%s applies to Unix sockets only", k)
		}
	}
	for _, k := range tcpOnly {
		if q.Has(k) && sp.Network != "tcp" {
			return fail("%s applies to TCP listeners only", k)
		}
	}

	sp.Auth = AuthNone
	if sp.Network == "tcp" {
		sp.Auth = AuthKey
	}
	if v := q.Get("auth"); q.Has("auth") {
		switch AuthMode(v) {
		case AuthNone, AuthKey:
			sp.Auth = AuthMode(v)
		default:
			return fail("auth %q: want key or none", v)
		}
	}
	sp.Class = ClassRead
	if sp.Network == "tcp" && sp.Auth == AuthKey {
		sp.Class = ClassAdmin
	}
	if q.Has("class") {
		if sp.Class, err = ParseClass(q.Get("class")); err != nil {
			return fail("class %q: want read, write or admin", q.Get("class"))
		}
	}
	if sp.Network == "tcp" && sp.Auth == AuthNone && !loopback(sp.Address) {
		return fail("auth=none is allowed on loopback addresses only (127.0.0.1, [::1], localhost); use API keys on %s", sp.Address)
	}

	if sp.Network == "unix" {
		sp.Mode = DefaultSocketMode
		if sp.Class == ClassAdmin {
			sp.Mode = DefaultAdminMode
		}
	}
	if v := q.Get("mode"); q.Has("mode") {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o777 {
			return fail("mode %q: want octal permission bits such as 0660", v)
		}
		sp.Mode = os.FileMode(m)
	}
	sp.Group = q.Get("group")
	for _, k := range []string{"uids", "gids"} {
		for _, v := range q[k] {
			for _, f := range strings.Split(v, ",") {
				n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
				if err != nil {
					return fail("%s: %q is not a numeric id", k, f)
				}
				if k == "uids" {
					sp.UIDs = append(sp.UIDs, uint32(n))
				} else {
					sp.GIDs = append(sp.GIDs, uint32(n))
				}
			}
		}
	}
	sp.TLSCert, sp.TLSKey = q.Get("tls_cert"), q.Get("tls_key")
	if (sp.TLSCert == "") != (sp.TLSKey == "") {
		return fail("tls_cert and tls_key go together")
	}

	if v := q.Get("rate"); q.Has("rate") {
		if sp.Rate, err = strconv.ParseFloat(v, 64); err != nil || sp.Rate < 0 || math.IsInf(sp.Rate, 0) || math.IsNaN(sp.Rate) {
			return fail("rate %q: want requests per second, 0 for unlimited", v)
		}
	}
	sp.Burst = max(1, int(math.Ceil(sp.Rate)))
	sp.MaxRequests, sp.MaxStreams = DefaultMaxRequests, DefaultMaxStreams
	for _, o := range []struct {
		name string
		p    *int
	}{{"burst", &sp.Burst}, {"max_requests", &sp.MaxRequests}, {"max_streams", &sp.MaxStreams}} {
		if v := q.Get(o.name); q.Has(o.name) {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || (o.name == "burst" && n == 0) {
				return fail("%s %q: want a non-negative integer", o.name, v)
			}
			*o.p = n
		}
	}
	return sp, nil
}

// String returns the listener's address as logs show it.
func (sp *ListenerSpec) String() string {
	if sp.Network == "unix" {
		return "unix:" + sp.Address
	}
	if sp.TLSCert != "" {
		return "https://" + sp.Address
	}
	return "http://" + sp.Address
}

func unixPath(addr string) (string, bool) {
	switch {
	case strings.HasPrefix(addr, "tcp://"), strings.HasPrefix(addr, "http://"):
		return "", false
	case strings.HasPrefix(addr, "unix://"):
		return strings.TrimPrefix(addr, "unix://"), true
	case strings.HasPrefix(addr, "unix:"):
		return strings.TrimPrefix(addr, "unix:"), true
	case strings.Contains(addr, "/"):
		return addr, true
	}
	return "", false
}

// loopback reports whether host:port names only this machine: localhost or
// a loopback IP. An empty host (all interfaces) is not loopback.
func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SplitListenList splits HIPPO_LISTEN on the commas between listeners,
// keeping commas inside an option list with their listener:
// "unix:a.sock?uids=1,2,127.0.0.1:7700" is two listeners. A piece starts a
// new listener if its address part (up to '?' or '&') holds ':' or '/',
// which every listener address does and no id does.
func SplitListenList(s string) []string {
	var out []string
	for _, piece := range strings.Split(s, ",") {
		if strings.TrimSpace(piece) == "" {
			continue
		}
		head := piece
		if i := strings.IndexAny(head, "?&"); i >= 0 {
			head = head[:i]
		}
		if len(out) > 0 && !strings.ContainsAny(head, ":/") {
			out[len(out)-1] += "," + piece
			continue
		}
		out = append(out, strings.TrimSpace(piece))
	}
	return out
}

// Listener is a listening socket's access policy and the limits shared by
// all its connections. It is safe for concurrent use; its Spec must not be
// modified after NewListener.
type Listener struct {
	Spec ListenerSpec

	limiter  *rate.Limiter // nil: no rate limit
	Requests Gate          // requests in flight, streams excluded
	Streams  Gate          // event streams and WebSockets open
}

// NewListener returns the runtime state of a parsed listener.
func NewListener(sp ListenerSpec) *Listener {
	l := &Listener{Spec: sp}
	if sp.Rate > 0 {
		l.limiter = rate.NewLimiter(rate.Limit(sp.Rate), sp.Burst)
	}
	l.Requests.Max = int64(sp.MaxRequests)
	l.Streams.Max = int64(sp.MaxStreams)
	return l
}

// Allow takes one request from the listener's rate limit. If none is left it
// returns false and how long until one is.
func (l *Listener) Allow() (bool, time.Duration) { return allow(l.limiter) }

// PeerAllowed reports whether a Unix-socket peer may use the listener: if
// the listener lists uids or gids, the peer's uid or effective gid must be
// among them. A peer whose credentials are unknown is refused then.
func (l *Listener) PeerAllowed(p *PeerCred) bool {
	if len(l.Spec.UIDs) == 0 && len(l.Spec.GIDs) == 0 {
		return true
	}
	if p == nil {
		return false
	}
	return slices.Contains(l.Spec.UIDs, p.UID) || slices.Contains(l.Spec.GIDs, p.GID)
}

// allow takes one token from lim (nil: unlimited). On refusal it reports how
// long until a token is available, without keeping a reservation.
func allow(lim *rate.Limiter) (bool, time.Duration) {
	if lim == nil {
		return true, 0
	}
	now := time.Now()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return false, d
}

// Gate counts things in use against a maximum. The zero value, and any
// Gate with Max 0, admits everything (and still counts).
type Gate struct {
	Max int64 // 0: unlimited; set before use
	n   atomic.Int64
}

// TryAcquire takes one place and reports whether there was one. Call
// Release once for every true.
func (g *Gate) TryAcquire() bool {
	if n := g.n.Add(1); g.Max > 0 && n > g.Max {
		g.n.Add(-1)
		return false
	}
	return true
}

// Release gives back a place taken by TryAcquire.
func (g *Gate) Release() { g.n.Add(-1) }

// InUse returns how many places are taken.
func (g *Gate) InUse() int64 { return g.n.Load() }

// Conn is what the server knows about one accepted connection: the listener
// it came in on and, on Unix sockets, the peer's credentials. It is created
// once per connection (http.Server.ConnContext) and not modified after.
type Conn struct {
	Listener *Listener
	Peer     *PeerCred // nil on TCP, or if the OS would not tell
}

type connKey struct{}

// WithConn returns ctx carrying c.
func WithConn(ctx context.Context, c *Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// ConnFrom returns the Conn in ctx, or nil.
func ConnFrom(ctx context.Context) *Conn {
	c, _ := ctx.Value(connKey{}).(*Conn)
	return c
}
