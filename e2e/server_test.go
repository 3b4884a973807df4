package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hippo-db/hippo/client"
)

func TestRestartLoadsIndexSnapshot(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, dir)
	c := srv.client(t)
	ctx := context.Background()
	if _, _, err := c.CreateCollection(ctx, "snap", client.CollectionSpec{Dimension: 32, Metric: client.MetricCosine}); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	r := rand.New(rand.NewPCG(1, 2))
	records := func(yield func(client.Record) bool) {
		for i := range n {
			v := make([]float32, 32)
			for j := range v {
				v[j] = r.Float32()*2 - 1
			}
			if !yield(client.Record{ID: fmt.Sprintf("r%d", i), Vector: v, Metadata: map[string]any{"i": i}}) {
				return
			}
		}
	}
	res, err := c.ImportRecords(ctx, "snap", records, nil)
	if err != nil || res.Imported != n {
		t.Fatalf("import: %+v %v", res, err)
	}
	before, _ := c.Search(ctx, "snap", client.SearchRequest{Vector: make32(1), K: 10, Ef: 200})
	srv.stop()

	srv = start(t, dir)
	c = srv.client(t)
	coll, err := c.GetCollection(ctx, "snap")
	if err != nil {
		t.Fatal(err)
	}
	if coll.Count != n || coll.Stats["snapshot_seq"] == 0.0 || coll.Stats["pending"] != 0.0 {
		t.Fatalf("after restart: count %d, stats %v", coll.Count, coll.Stats)
	}
	if !strings.Contains(srv.log.String(), "ready") || strings.Contains(srv.log.String(), "rebuilding") {
		t.Fatalf("restart did not load the snapshot:\n%s", srv.log)
	}
	after, _ := c.Search(ctx, "snap", client.SearchRequest{Vector: make32(1), K: 10, Ef: 200})
	if fmt.Sprint(ids(before.Results)) != fmt.Sprint(ids(after.Results)) {
		t.Fatalf("search differs after restart:\n%v\n%v", ids(before.Results), ids(after.Results))
	}
}

func make32(x float32) []float32 {
	v := make([]float32, 32)
	for i := range v {
		v[i] = x + float32(i%5)
	}
	return v
}

func ids(rs []client.SearchResult) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestSockets(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, dir)
	fi, err := os.Stat(srv.socket)
	if err != nil || fi.Mode().Perm() != 0o600 { // class=admin sockets default to 0600
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	// A second server on a live socket refuses to start, and says why.
	out, err := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--listen", "unix:"+srv.socket).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another server is listening") {
		t.Fatalf("second server: %v\n%s", err, out)
	}
	// After a crash the stale socket file is replaced.
	srv.kill()
	if _, err := os.Stat(srv.socket); err != nil {
		t.Fatalf("expected a stale socket after SIGKILL: %v", err)
	}
	srv = start(t, dir)
	srv.stop()
	if _, err := os.Stat(srv.socket); !os.IsNotExist(err) {
		t.Fatalf("socket left after a clean stop: %v", err)
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestClientOverEveryTransport(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	srv := start(t, dir, "--listen", addr+"?auth=none&class=write")
	ctx := context.Background()
	transports := map[string]*client.Client{
		"unix h2c":    srv.client(t),
		"unix http/1": srv.client(t, client.WithHTTP1Pool(4)),
	}
	for name, opts := range map[string][]client.Option{"tcp h2c": nil, "tcp http/1": {client.WithHTTP1Pool(4), client.WithJSONVectors()}} {
		c, err := client.New("http://"+addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		transports[name] = c
	}
	for name, c := range transports {
		t.Run(name, func(t *testing.T) {
			coll := strings.NewReplacer(" ", "-", "/", "").Replace(name)
			if _, created, err := c.CreateCollection(ctx, coll, client.CollectionSpec{Dimension: 3, Metric: client.MetricL2}); err != nil || !created {
				t.Fatalf("create: %v %v", created, err)
			}
			if _, _, err := c.CreateCollection(ctx, coll, client.CollectionSpec{Dimension: 4, Metric: client.MetricL2}); !client.IsConflict(err) {
				t.Fatalf("conflict: %v", err)
			}
			for i := range 250 {
				if _, err := c.Upsert(ctx, coll, client.Record{ID: fmt.Sprintf("id/%03d", i), Vector: []float32{float32(i), 0, 0},
					Text: fmt.Sprint("t", i), Metadata: map[string]any{"even": i%2 == 0}}); err != nil {
					t.Fatal(err)
				}
			}
			rec, err := c.Get(ctx, coll, "id/007")
			if err != nil || rec.Text != "t7" || rec.Vector[0] != 7 || rec.Metadata["even"] != false {
				t.Fatalf("get: %+v %v", rec, err)
			}
			if _, err := c.Get(ctx, coll, "missing"); !client.IsNotFound(err) {
				t.Fatalf("get missing: %v", err)
			}
			var listed []string
			for r, err := range c.List(ctx, coll, &client.ListOptions{PageSize: 30}) {
				if err != nil {
					t.Fatal(err)
				}
				listed = append(listed, r.ID)
			}
			if len(listed) != 250 || !slices.IsSorted(listed) {
				t.Fatalf("list: %d ids", len(listed))
			}
			res, err := c.Search(ctx, coll, client.SearchRequest{Vector: []float32{10.2, 0, 0}, K: 3,
				Filter: map[string]any{"even": true}, Include: []string{client.IncludeText}})
			if err != nil || len(res.Results) != 3 || res.Results[0].ID != "id/010" || res.Results[0].Text != "t10" {
				t.Fatalf("search: %+v %v", res, err)
			}
			queries := func(yield func(client.SearchRequest) bool) {
				for i := range 100 {
					if !yield(client.SearchRequest{Vector: []float32{float32(i), 0, 0}, K: 1}) {
						return
					}
				}
			}
			i := 0
			for res, err := range c.SearchBatch(ctx, coll, queries) {
				if err != nil || res.Results[0].ID != fmt.Sprintf("id/%03d", i) {
					t.Fatalf("batch answer %d: %+v %v", i, res, err)
				}
				i++
			}
			if i != 100 {
				t.Fatalf("batch: %d answers", i)
			}
			exported := 0
			for _, err := range c.Export(ctx, coll) {
				if err != nil {
					t.Fatal(err)
				}
				exported++
			}
			if exported != 250 {
				t.Fatalf("export: %d", exported)
			}
			imp, err := c.Import(ctx, coll, strings.NewReader(`{"id":"x","vector":[1,2,3]}`+"\n"+`{"id":"y","vector":[1]}`+"\n"), nil)
			if err != nil || imp.Imported != 1 || imp.Failed != 1 || imp.Errors[0].Line != 2 {
				t.Fatalf("import: %+v %v", imp, err)
			}
			if _, err := c.DeleteCollection(ctx, coll); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHelpNamesFlagsAndEnvironment(t *testing.T) {
	out, _ := exec.Command(binary, "serve", "--help").CombinedOutput()
	for _, want := range []string{"--data-dir", "HIPPO_DATA_DIR", "--listen", "HIPPO_LISTEN", "unix:"} {
		if !strings.Contains(strings.ReplaceAll(string(out), "-data-dir", "--data-dir"), strings.TrimPrefix(want, "-")) {
			t.Errorf("serve --help does not mention %s:\n%s", want, out)
		}
	}
	out, err := exec.Command(binary, "nonsense").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown command") {
		t.Fatalf("unknown command: %v %s", err, out)
	}
}

// TestServeRefusesBadSettings: a bad flag or environment variable stops
// start-up with exit status 2 and a message naming it.
func TestServeRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--cache-mib", "0"}, "", "--cache-mib"},
		{nil, "HIPPO_CACHE_MIB=lots", "HIPPO_CACHE_MIB"},
		{[]string{"--log-level", "loud"}, "", "--log-level"},
		{[]string{"extra"}, "", "unexpected argument"},
	} {
		// A setting wrongly accepted starts a server: the timeout ends it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, binary, append([]string{"serve", "--data-dir", t.TempDir()}, tc.args...)...)
		if tc.env != "" {
			cmd.Env = append(os.Environ(), tc.env)
		}
		out, err := cmd.CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("serve %v %s: %v\n%s", tc.args, tc.env, err, out)
		}
	}
}

// TestEnvironmentConfiguresServer starts the binary configured only through
// environment variables.
func TestEnvironmentConfiguresServer(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "env.sock")
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(), "HIPPO_DATA_DIR="+dir, "HIPPO_CACHE_MIB=16", "HIPPO_LISTEN=unix:"+sock+"?class=read&uids=0,"+strconv.Itoa(os.Getuid())+",127.0.0.1:0")
	cmd.Dir = t.TempDir()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	buf := make([]byte, 4096)
	var log strings.Builder
	for !strings.Contains(log.String(), "msg=ready") {
		n, err := stderr.Read(buf)
		log.Write(buf[:n])
		if err == io.EOF {
			t.Fatalf("exited:\n%s", log.String())
		}
	}
	c, err := client.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ready, err := c.Ready(context.Background())
	if err != nil || ready["status"] != "ready" {
		b, _ := json.Marshal(ready)
		t.Fatalf("ready: %s %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "store")); err != nil {
		t.Fatalf("HIPPO_DATA_DIR not used: %v", err)
	}
}
