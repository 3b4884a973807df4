package client

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A connection the server closed while it sat idle is noticed before a
// request is written into it: a POST, which is never retried, succeeds on a
// new connection.
func TestDirectSkipsClosedConnection(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			var posts atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				posts.Add(1)
				io.WriteString(w, "ok")
			}))
			if network == "unix" {
				l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
				if err != nil {
					t.Fatal(err)
				}
				srv.Listener = l
			}
			srv.Start()
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			dial := func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, network, addr) }
			tr := newDirectTransport(dial, 1, http.DefaultTransport)
			defer tr.CloseIdleConnections()
			post := func() {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, "http://hippo/", strings.NewReader("body"))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
					t.Fatalf("answer %q", b)
				}
				resp.Body.Close()
			}
			post()
			srv.CloseClientConnections()
			time.Sleep(50 * time.Millisecond) // for the close to reach the client
			post()
			if posts.Load() != 2 {
				t.Fatalf("server saw %d posts, want 2", posts.Load())
			}
		})
	}
}

// BenchmarkAlive measures the check of an idle connection before reuse.
func BenchmarkAlive(b *testing.B) {
	l, err := net.Listen("unix", filepath.Join(b.TempDir(), "s.sock"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	nc, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	c := &directConn{Conn: nc, br: bufio.NewReader(nc)}
	for b.Loop() {
		if !c.alive() {
			b.Fatal("an open connection is not alive")
		}
	}
}
