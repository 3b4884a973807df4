// Package bench measures Hippo end to end, as a user sees it: it starts the
// real binary, drives it with the Go client over a Unix socket and prints
// tables. `hippo bench` runs it; docs/benchmarks.md holds its results.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hippo-db/hippo/client"
)

// server is a hippo process started for a benchmark.
type server struct {
	binary, dir, socket string
	cmd                 *exec.Cmd
	log                 bytes.Buffer
	done                chan error
}

func newServer(binary, dir string) *server {
	return &server{binary: binary, dir: dir, socket: filepath.Join(dir, "hippo.sock")}
}

// explain adds to err, if the server has died, how it ended and the end of
// its log: a request failing because the server crashed says why.
func (s *server) explain(err error) error {
	select {
	case exit := <-s.done:
		s.done <- exit // for stop
		log := s.log.Bytes()
		log = log[max(0, len(log)-8<<10):]
		return fmt.Errorf("%w; hippo exited (%v), its log ends:\n%s", err, exit, log)
	case <-time.After(500 * time.Millisecond):
		return err
	}
}

// start runs the server and returns how long it took to answer /readyz.
func (s *server) start() (time.Duration, error) {
	s.done = make(chan error, 1)
	s.log.Reset()
	s.cmd = exec.Command(s.binary, "serve", "--data-dir", s.dir, "--listen", "unix:"+s.socket+"?class=write", "--snapshot-interval", "-1s")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	began := time.Now()
	if err := s.cmd.Start(); err != nil {
		return 0, err
	}
	go func() { s.done <- s.cmd.Wait() }()
	c, err := s.client()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ready(ctx)
		cancel()
		if err == nil {
			return time.Since(began), nil
		}
		select {
		case err := <-s.done:
			return 0, fmt.Errorf("hippo exited: %v\n%s", err, s.log.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(began) > 5*time.Minute {
			return 0, fmt.Errorf("hippo not ready after 5 minutes")
		}
	}
}

func (s *server) client(opts ...client.Option) (*client.Client, error) {
	return client.New("unix://"+s.socket, append([]client.Option{client.WithTimeout(5 * time.Minute)}, opts...)...)
}

// stop sends SIGTERM and returns how long the shutdown (with its index
// snapshots) took.
func (s *server) stop() (time.Duration, error) {
	began := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	err := <-s.done
	return time.Since(began), err
}

// kill sends SIGKILL.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// rssBytes reads the server's resident memory from /proc.
func (s *server) rssBytes() int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// waitIndexed polls a collection until no node waits to be linked.
func waitIndexed(ctx context.Context, c *client.Client, coll string) error {
	for {
		info, err := c.GetCollection(ctx, coll)
		if err != nil {
			return err
		}
		if p, _ := info.Stats["pending"].(float64); p == 0 {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// selfCPUTime returns the CPU time this process has used.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuTime returns the CPU time the server has used.
func (s *server) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
