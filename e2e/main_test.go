// Package e2e builds the hippo binary and drives it the way a user does:
// real processes, real sockets, the Go client, SIGKILL.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hippo-db/hippo/client"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hippo-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hippo")
	build := exec.Command("go", "build", "-o", binary, "../cmd/hippo")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hippo:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one running hippo process.
type server struct {
	t      *testing.T
	dir    string
	socket string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	done   chan error
}

// start runs `hippo serve` on dir with a Unix socket of the admin class (so
// that tests may do anything on it) and any extra flags, and waits until it
// answers.
func start(t *testing.T, dir string, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dir: dir, socket: filepath.Join(dir, "hippo.sock"), log: &bytes.Buffer{}, done: make(chan error, 1)}
	args := append([]string{"serve", "--data-dir", dir, "--listen", "unix:" + s.socket + "?class=admin"}, extra...)
	s.cmd = exec.Command(binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(s.kill)
	c := s.client(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ready(ctx)
		cancel()
		if err == nil {
			return s
		}
		select {
		case err := <-s.done:
			t.Fatalf("hippo exited during start-up: %v\n%s", err, s.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hippo not ready after 30 s: %v\n%s", err, s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) client(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New("unix://"+s.socket, append([]client.Option{client.WithTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// kill ends the process with SIGKILL, as a crash or power cut would.
func (s *server) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.done <- nil // later kills return at once
}

// stop ends the process with SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- nil
		if err != nil {
			s.t.Fatalf("hippo exited with %v after SIGTERM\n%s", err, s.log)
		}
	case <-time.After(60 * time.Second):
		s.t.Fatalf("hippo did not stop after SIGTERM\n%s", s.log)
	}
}
