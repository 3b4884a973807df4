package bench

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SubscriberOptions describe the subscriptions ServeSubscribers opens.
type SubscriberOptions struct {
	Socket  string // the server's Unix socket
	N       int    // subscriptions
	PerConn int    // HTTP/2 streams per connection
	HTTP1   bool   // a HTTP/1.1 connection each instead
	// LargeWindows: HTTP/2 with a browser's flow control rather than the
	// Go transport's (openLargeWindows).
	LargeWindows bool
	Records      bool // receive the records, not only the events
}

// ServeSubscribers opens the subscriptions, each from the feed's current end,
// writes "ready" to out and then answers the lines of in: to "wait SEQ" it
// answers "ok NANOSECONDS" once every subscriber has received SEQ, or
// "error TEXT". The end of in closes the subscriptions. The feed benchmark's
// write-cost figure runs it in a process of its own (`hippo bench
// subscribers`), so that the subscribers read on CPUs other than the
// server's.
func ServeSubscribers(opt SubscriberOptions, in io.Reader, out io.Writer) error {
	var set *subscribers
	var err error
	if opt.LargeWindows {
		set, err = subscribeLargeWindows(opt.Socket, opt.N, max(opt.PerConn, 1), eventsQuery(opt.Records))
	} else {
		set, err = subscribe(opt.Socket, opt.N, max(opt.PerConn, 1), opt.HTTP1, eventsQuery(opt.Records))
	}
	if err != nil {
		return err
	}
	defer set.close()
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return err
	}
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		seqText, ok := strings.CutPrefix(lines.Text(), "wait ")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("subscribers: %q is not \"wait SEQ\"", lines.Text())
		}
		began := time.Now()
		if err := set.waitFor(seq, 5*time.Minute); err != nil {
			fmt.Fprintf(out, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Fprintf(out, "ok %d\n", time.Since(began))
	}
	return lines.Err()
}

// subscriberProcess is a `hippo bench subscribers` process.
type subscriberProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	log lockedBuffer // its standard error
}

// lockedBuffer is a buffer that a process's output can be copied into while
// it is read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startSubscribers starts tool (a hippo binary) as a subscriber process,
// held to cpus if any are given, and waits until its subscriptions are open.
func startSubscribers(tool string, opt SubscriberOptions, cpus []int) (*subscriberProcess, error) {
	args := []string{"bench", "subscribers", "--socket", opt.Socket, "--n", strconv.Itoa(opt.N), "--per-conn", strconv.Itoa(opt.PerConn)}
	if opt.HTTP1 {
		args = append(args, "--http1")
	}
	if opt.LargeWindows {
		args = append(args, "--large-windows")
	}
	if opt.Records {
		args = append(args, "--records")
	}
	p := &subscriberProcess{cmd: exec.Command(tool, args...)}
	p.cmd.Stderr = &p.log
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewReader(stdout)
	if err := startOn(p.cmd, cpus...); err != nil {
		return nil, err
	}
	if line, err := p.out.ReadString('\n'); err != nil || line != "ready\n" {
		p.close()
		return nil, p.explain(cmp.Or(err, fmt.Errorf("subscribers said %q", line)))
	}
	return p, nil
}

// waitFor waits until every subscriber has received seq, and returns how
// long that took.
func (p *subscriberProcess) waitFor(seq uint64) (time.Duration, error) {
	if _, err := fmt.Fprintf(p.in, "wait %d\n", seq); err != nil {
		return 0, p.explain(err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, p.explain(err)
	}
	if text, ok := strings.CutPrefix(strings.TrimSpace(line), "ok "); ok {
		ns, err := strconv.ParseInt(text, 10, 64)
		return time.Duration(ns), err
	}
	return 0, errors.New(strings.TrimSpace(line))
}

// close ends the subscriptions and the process.
func (p *subscriberProcess) close() error {
	p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		return <-done
	}
}

// explain adds the end of the process's own log to err.
func (p *subscriberProcess) explain(err error) error {
	if log := strings.TrimSpace(p.log.String()); log != "" {
		return fmt.Errorf("subscriber process: %w: %s", err, log[max(0, len(log)-2000):])
	}
	return fmt.Errorf("subscriber process: %w", err)
}
