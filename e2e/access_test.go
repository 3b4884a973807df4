package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hippo-db/hippo/client"
)

// hippo runs the binary with args and returns its standard output, failing
// the test if it fails.
func hippo(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hippo %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var herr *client.Error
	if !errors.As(err, &herr) || herr.Code != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

// TestSocketsAndKeys runs a server with the default set of listeners —
// read, write and admin sockets and TCP with keys — and uses each as the
// user would, with keys made by `hippo keys`.
func TestSocketsAndKeys(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	srv := start(t, dir,
		"--listen", "unix:"+filepath.Join(dir, "ro.sock")+"?class=read",
		"--listen", "unix:"+filepath.Join(dir, "rw.sock")+"?class=write",
		"--listen", "unix:"+filepath.Join(dir, "admin.sock")+"?class=admin",
		"--listen", addr)
	ctx := context.Background()
	for file, mode := range map[string]os.FileMode{"ro.sock": 0o660, "rw.sock": 0o660, "admin.sock": 0o600} {
		if fi, err := os.Stat(filepath.Join(dir, file)); err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v, want mode %v", file, fi.Mode(), err, mode)
		}
	}
	sock := func(name string, opts ...client.Option) *client.Client {
		c, err := client.New("unix://"+filepath.Join(dir, name), append(opts, client.WithTimeout(10*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	rw := sock("rw.sock")
	for _, name := range []string{"agent-1", "notes"} {
		if _, _, err := rw.CreateCollection(ctx, name, client.CollectionSpec{Dimension: 2, Metric: client.MetricL2}); err != nil {
			t.Fatal(err)
		}
		if _, err := rw.Upsert(ctx, name, client.Record{ID: "a", Vector: []float32{1, 2}}); err != nil {
			t.Fatal(err)
		}
	}
	token := strings.TrimSpace(hippo(t, "keys", "create", "--data-dir", dir, "--name", "recall", "--scope", "read", "--collections", "agent-*"))
	if !strings.HasPrefix(token, "hk_") || strings.Contains(token, "\n") {
		t.Fatalf("keys create printed %q", token)
	}
	// The same rules over HTTP/2 (served by net/http) and over HTTP/1.1
	// (whose unary requests the server answers on its lean path).
	var reader *client.Client
	for _, tr := range []struct {
		name string
		opts []client.Option
	}{{"h2c", nil}, {"http1", []client.Option{client.WithHTTP1Pool(2)}}} {
		t.Logf("transport %s", tr.name)
		ro, rw := sock("ro.sock", tr.opts...), sock("rw.sock", tr.opts...)
		// The read socket reads, and refuses every write, saying what it needs.
		if _, err := ro.Get(ctx, "notes", "a"); err != nil {
			t.Fatal(err)
		}
		_, err := ro.Upsert(ctx, "notes", client.Record{ID: "b", Vector: []float32{1, 2}})
		wantCode(t, "write on the read socket", err, client.CodePermissionDenied)
		if !strings.Contains(err.Error(), "write class") {
			t.Fatalf("the refusal does not name the class: %v", err)
		}
		_, err = rw.ListKeys(ctx)
		wantCode(t, "keys on the write socket", err, client.CodePermissionDenied)

		// TCP needs a key.
		tcp := func(token string) *client.Client {
			opts := append([]client.Option{client.WithHeader("Authorization", "Bearer "+token), client.WithTimeout(10 * time.Second)}, tr.opts...)
			c, err := client.New("http://"+addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		_, err = tcp("").Get(ctx, "notes", "a")
		wantCode(t, "TCP without a key", err, client.CodeUnauthenticated)
		reader = tcp(token)
		if _, err := reader.Get(ctx, "agent-1", "a"); err != nil {
			t.Fatalf("read with the key: %v", err)
		}
		_, err = reader.Get(ctx, "notes", "a")
		wantCode(t, "a collection beyond the key's patterns", err, client.CodePermissionDenied)
		_, err = reader.Upsert(ctx, "agent-1", client.Record{ID: "b", Vector: []float32{1, 2}})
		wantCode(t, "write with a read key", err, client.CodePermissionDenied)
		list, err := reader.ListCollections(ctx)
		if err != nil || len(list) != 1 || list[0].Name != "agent-1" {
			t.Fatalf("the key lists %+v, %v", list, err)
		}
	}

	listed := hippo(t, "keys", "list", "--data-dir", dir)
	id := token[3:19]
	if !strings.Contains(listed, id) || !strings.Contains(listed, "recall") || !strings.Contains(listed, "agent-*") || strings.Contains(listed, token[20:]) {
		t.Fatalf("keys list:\n%s", listed)
	}
	hippo(t, "keys", "revoke", "--data-dir", dir, id)
	_, err := reader.Get(ctx, "agent-1", "a")
	wantCode(t, "a revoked key", err, client.CodeUnauthenticated)
	if !strings.Contains(srv.log.String(), "API key revoked") {
		t.Fatalf("no audit line for the revocation:\n%s", srv.log)
	}
}

// TestKeysWithoutServer: keys made while no server runs work once it does.
func TestKeysWithoutServer(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, dir)
	srv.stop()
	token := strings.TrimSpace(hippo(t, "keys", "create", "--data-dir", dir, "--name", "ops", "--scope", "write"))
	addr := freePort(t)
	start(t, dir, "--listen", addr)
	c, err := client.New("http://"+addr, client.WithHeader("Authorization", "Bearer "+token))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.CreateCollection(context.Background(), "x", client.CollectionSpec{Dimension: 1, Metric: client.MetricL2}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenTCPIsRefused(t *testing.T) {
	out, err := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--listen", "0.0.0.0:0?auth=none").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "loopback") {
		t.Fatalf("auth=none on all interfaces: %v\n%s", err, out)
	}
	out, _ = exec.Command(binary, "serve", "--help").CombinedOutput()
	for _, want := range []string{"class", "auth", "uids", "tls_cert", "max_streams", "ro.sock", "admin.sock", "cors-origins", "read-header-timeout"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("serve --help does not mention %s", want)
		}
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial number, and returns a pool that trusts it.
func writeCert(t *testing.T, dir string, serial int64) *x509.CertPool {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "hippo e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	// Write and rename, so that the server never reads half a file.
	for name, block := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "PRIVATE KEY", Bytes: keyDER}} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Rename(tmp, filepath.Join(dir, name))
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return pool
}

// TestTLSAndReloadOnSIGHUP serves HTTPS from certificate files and picks up
// new files on SIGHUP without dropping the listener.
func TestTLSAndReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certs := t.TempDir()
	pool := writeCert(t, certs, 1)
	addr := freePort(t)
	srv := start(t, dir, "--listen", addr+"?auth=none&tls_cert="+filepath.Join(certs, "cert.pem")+"&tls_key="+filepath.Join(certs, "key.pem"))
	serial := func() int64 {
		var conn *tls.Conn
		var err error
		for try := 0; try < 3; try++ { // once seen reset under load; retry before failing
			if conn, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("TLS handshake: %v\n%s", err, srv.log)
		}
		defer conn.Close()
		st := conn.ConnectionState()
		if st.NegotiatedProtocol != "h2" {
			t.Fatalf("ALPN chose %q, want h2", st.NegotiatedProtocol)
		}
		return st.PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d", s)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	c, err := client.New("https://"+addr, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	// Plain HTTP on the TLS port gets nothing useful.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Fatal("cleartext request served on a TLS listener")
	}

	writeCert(t, certs, 2)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for serial() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("certificate not reloaded after SIGHUP\n%s", srv.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The new certificate may be served a moment before the line is logged.
	for !strings.Contains(srv.log.String(), "TLS certificate reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the reload\n%s", srv.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlowClientsCannotHoldTheServer: connections that trickle their
// headers are closed after --read-header-timeout, and other clients are
// served meanwhile.
func TestSlowClientsCannotHoldTheServer(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, dir, "--read-header-timeout", "1s")
	c := srv.client(t)
	const n = 100
	cut := make(chan time.Duration, n)
	began := time.Now()
	for range n {
		conn, err := net.Dial("unix", srv.socket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		go func() {
			fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\n")
			r := bufio.NewReader(conn)
			for {
				if _, err := conn.Write([]byte("X")); err != nil {
					break
				}
				conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err := r.ReadByte(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					break // the server closed the connection
				}
			}
			cut <- time.Since(began)
		}()
	}
	for i := range 10 {
		t0 := time.Now()
		if _, err := c.Health(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("request %d took %v beside %d slow clients", i, d, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range n {
		select {
		case d := <-cut:
			if d > 5*time.Second {
				t.Fatalf("a slow client was cut only after %v", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("slow clients still connected 10 s after the header timeout")
		}
	}
}
