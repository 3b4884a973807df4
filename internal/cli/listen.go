package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hippo-db/hippo/internal/auth"
)

// listener is one open listening socket with its access policy.
type listener struct {
	net.Listener
	policy *auth.Listener
	cert   *auth.Certificate // nil without TLS
	// socket is the Unix socket file we created, to remove at shutdown if
	// it is still ours; nil for TCP.
	socket os.FileInfo
}

// defaultListeners are the listeners of a server started without --listen:
// TCP on loopback with API keys, and read, write and admin sockets in the
// data directory.
func defaultListeners(dataDir string) []auth.ListenerSpec {
	specs := make([]auth.ListenerSpec, 0, 4)
	tcp, _ := auth.ParseListener("127.0.0.1:7700")
	specs = append(specs, tcp)
	for _, d := range []struct{ file, opts string }{
		{"ro.sock", "class=read"},
		{"rw.sock", "class=write"},
		{"admin.sock", "class=admin"},
	} {
		// Parsed with a placeholder path, so that a data directory with
		// '?' or '&' in its name is taken as it is.
		sp, err := auth.ParseListener("unix:/placeholder?" + d.opts)
		if err != nil {
			panic(err) // constant input
		}
		sp.Address = filepath.Join(dataDir, d.file)
		specs = append(specs, sp)
	}
	return specs
}

// openListeners opens every listener, or none: on an error the ones already
// open are closed.
func openListeners(specs []auth.ListenerSpec) ([]*listener, error) {
	var out []*listener
	for _, sp := range specs {
		l, err := openListener(sp)
		if err != nil {
			closeListeners(out)
			return nil, err
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errors.New("no listen address")
	}
	return out, nil
}

func openListener(sp auth.ListenerSpec) (*listener, error) {
	l := &listener{policy: auth.NewListener(sp)}
	if sp.Network == "unix" {
		if (len(sp.UIDs) > 0 || len(sp.GIDs) > 0) && !auth.PeerCredSupported {
			return nil, fmt.Errorf("listen on %s: uids and gids need peer credentials, which this system does not report", sp.String())
		}
		nl, fi, err := listenUnix(sp)
		if err != nil {
			return nil, err
		}
		l.Listener, l.socket = bufferedListener{nl}, fi
		return l, nil
	}
	if sp.TLSCert != "" {
		cert, err := auth.LoadCertificate(sp.TLSCert, sp.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", sp.String(), err)
		}
		l.cert = cert
	}
	nl, err := net.Listen("tcp", sp.Address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", sp.String(), err)
	}
	l.Listener = bufferedListener{nl}
	return l, nil
}

// tlsConfig returns the listener's TLS configuration, or nil.
func (l *listener) tlsConfig() *tls.Config {
	if l.cert == nil {
		return nil
	}
	return l.cert.TLSConfig()
}

// describe returns the listener's address as logs show it: the address
// actually bound (a port 0 becomes the port chosen).
func (l *listener) describe() string {
	if l.policy.Spec.Network == "unix" {
		return "unix:" + l.policy.Spec.Address
	}
	if l.cert != nil {
		return "https://" + l.Addr().String()
	}
	return "http://" + l.Addr().String()
}

// connContext gives each connection its listener identity and, on a Unix
// socket, its peer's credentials, read once when it is accepted.
func (l *listener) connContext(ctx context.Context, c net.Conn) context.Context {
	conn := &auth.Conn{Listener: l.policy}
	if l.socket != nil {
		conn.Peer = auth.PeerOf(c)
	}
	return auth.WithConn(ctx, conn)
}

// removeSocket removes the socket file, unless another server has replaced
// it since.
func (l *listener) removeSocket() {
	if l.socket == nil {
		return
	}
	if fi, err := os.Lstat(l.policy.Spec.Address); err == nil && os.SameFile(fi, l.socket) {
		os.Remove(l.policy.Spec.Address)
	}
}

func closeListeners(ls []*listener) {
	for _, l := range ls {
		l.Close()
		l.removeSocket()
	}
}

// listenUnix listens on a Unix socket with the spec's mode and group. A
// socket file left by a dead process is replaced; one a live server answers
// on is an error.
//
// The socket is bound in a private directory (mode 0700), given its mode and
// group there, and only then renamed into place: no client can connect
// while it still has the permissions bind gave it (0777 less the umask).
func listenUnix(sp auth.ListenerSpec) (net.Listener, os.FileInfo, error) {
	path := sp.Address
	fail := func(err error) (net.Listener, os.FileInfo, error) {
		return nil, nil, fmt.Errorf("listen on unix:%s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fail(err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fail(errors.New("the path exists and is not a socket"))
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return fail(errors.New("another server is listening there"))
		}
		if err := os.Remove(path); err != nil {
			return fail(fmt.Errorf("remove stale socket: %w", err))
		}
	}
	gid := -1
	if sp.Group != "" {
		var err error
		if gid, err = lookupGroup(sp.Group); err != nil {
			return fail(err)
		}
	}
	private, err := os.MkdirTemp(dir, ".hs")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, "s")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return fail(err)
	}
	ul.SetUnlinkOnClose(false) // renamed below; removeSocket cleans up
	if err := os.Chmod(tmp, sp.Mode); err != nil {
		ul.Close()
		return fail(err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			ul.Close()
			return fail(fmt.Errorf("give the socket group %s: %w", sp.Group, err))
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		ul.Close()
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ul.Close()
		return fail(err)
	}
	return ul, fi, nil
}

// lookupGroup returns the id of a group given by name or number.
func lookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}
