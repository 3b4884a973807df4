package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hippo-db/hippo/client"
)

// FeedOptions configure RunFeed. A zero field takes the default named in its
// comment.
type FeedOptions struct {
	Binary string // the hippo binary to start
	Dir    string // parent of the servers' data directories; removed by the caller

	Subscribers    int           // for the memory figure; 10,000
	Repeats        int           // passes per figure, the median is reported; 3
	Dim            int           // dimension of the records written; 384
	Rate           int           // writes per second for the latency figure; 1,000
	PassTime       time.Duration // length of a latency, fan-out or write pass; 5 s
	StreamsPerConn int           // HTTP/2 streams per subscriber connection; 200 (the server allows 250)
	FanoutSubs     int           // subscribers of the latency, fan-out and write-cost figures; 100
	Writers        int           // concurrent single-record writers of the write-cost figure; 16
	SkipHTTP1      bool          // skip the memory figure over HTTP/1.1
	MaxFanoutRate  int           // the highest event rate the fan-out figure tries; all of fanoutRates if 0
	SharedCPUs     bool          // write cost: do not hold the server and writers to one CPU and the subscribers to the others
	Tool           string        // the hippo binary that runs the write-cost figure's subscriber process; Binary if empty
	// WriteDir is where the write-cost figure's server keeps its data: in
	// memory (/dev/shm) by default where there is one, else Dir; see
	// feedWriteCost.
	WriteDir string
}

func (o *FeedOptions) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Subscribers, 10_000)
	def(&o.Repeats, 3)
	def(&o.Dim, 384)
	def(&o.Rate, 1000)
	def(&o.StreamsPerConn, 200)
	def(&o.FanoutSubs, 100)
	def(&o.Writers, 16)
	if o.PassTime <= 0 {
		o.PassTime = 5 * time.Second
	}
	if o.WriteDir == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			o.WriteDir = "/dev/shm"
		}
	}
}

// FeedReport holds what RunFeed measured; each figure is the median of
// Repeats passes.
type FeedReport struct {
	Options   FeedOptions // with defaults filled in
	Load      string      // load averages when the run began
	LoadEnd   string      // … and the load averages when it ended
	Memory    []FeedMemory
	Latency   []FeedLatency
	Fanout    []FeedFanout
	WriteCost FeedWriteCost
}

// FeedMemory is the server's memory per idle subscriber.
type FeedMemory struct {
	Transport     string
	Subscribers   int
	Conns         int
	Connect       time.Duration // to open every subscription
	PerSubIdle    float64       // RSS growth per subscriber, after a few small events each
	PerSubBusy    float64       // … after a burst of records that fills each stream's buffers
	Deliver       time.Duration // one small event to every subscriber
	RSSBase       int64         // before any subscriber
	ServerCPUIdle float64       // CPUs the server used while they idled
}

// FeedLatency is commit-to-delivery latency at a steady write rate.
type FeedLatency struct {
	Subscribers int
	Records     bool
	HTTP1       bool          // subscribers on HTTP/1.1, a connection each (else HTTP/2, 25 streams per connection)
	Rate        float64       // writes per second achieved
	P50, P99    time.Duration // from the event's commit time stamp to its receipt
	Max         time.Duration
	Deliveries  int
	WriteP50    time.Duration // the writes' own latency to their answer
	ServerCPU   float64
	BenchCPU    float64
}

// FeedFanout is the highest event rate every one of a set of subscribers
// sustains.
type FeedFanout struct {
	Subscribers int
	Records     bool
	HTTP1       bool          // subscribers on HTTP/1.1, a connection each (else HTTP/2, 25 streams per connection)
	Rate        float64       // the highest rate sustained, events per second to each subscriber
	P50, P99    time.Duration // latency at that rate
	MBps        float64       // bytes per second delivered in all at that rate
	ServerCPU   float64
	BenchCPU    float64      // CPUs the benchmark process (writers and subscribers) used
	Tried       []FanoutStep // every rate tried, the last one failed unless it was the highest
}

// FanoutStep is one rate the fan-out figure tried.
type FanoutStep struct {
	Rate                int
	Achieved            float64
	P99, CaughtUp       time.Duration
	WriteBound          bool // the writers could not keep the schedule
	ServerCPU, BenchCPU float64
}

// FeedWriteCost is write throughput without and with subscribers.
type FeedWriteCost struct {
	Writers, Subscribers int
	// Passes are, in order: no subscribers (the mean of every pass
	// without), then writePasses.
	Passes [1 + len(writePasses)]WritePass
	// CPUsApart: the server and the writers shared CPU 0, the subscribers
	// read on the other CPUs.
	CPUsApart bool
	Dir       string // where the server kept its data
}

// writePasses are the write-cost passes with subscribers; subs left out
// stands for FeedOptions.FanoutSubs, and a pass is over HTTP/2 through Go's
// transport unless it says http1 or largeWindows.
var writePasses = [...]struct {
	subs                         int
	records, http1, largeWindows bool
}{
	{subs: 1, records: true}, {subs: 1, records: true, largeWindows: true}, {subs: 1, records: true, http1: true},
	{}, {largeWindows: true}, {records: true},
	{http1: true}, {records: true, http1: true},
}

// WritePass is one pass of the write-cost figure.
type WritePass struct {
	Subscribers int  // 0 for the baseline
	Records     bool // the subscribers receive the records
	HTTP1       bool // the subscribers are on HTTP/1.1, a connection each (else HTTP/2, 25 streams a connection)
	// LargeWindows: the HTTP/2 subscribers flow-control as browsers do,
	// not as the Go transport does (openLargeWindows).
	LargeWindows bool
	PerSec       float64 // upserts per second
	// ServerCPU is the server's CPU time per upsert.
	ServerCPU time.Duration
	// CaughtUp is how long after the last write every subscriber had every
	// event.
	CaughtUp time.Duration
	// Without is the mean of the passes without subscribers just before
	// and just after this one: its baseline.
	Without *WritePass
}

// name says who subscribed, for the table.
func (p WritePass) name() string {
	switch {
	case p.Subscribers == 0:
		return "none"
	}
	what, transport := "events only", transportName(p.HTTP1)
	if p.Records {
		what = "records included"
	}
	if p.LargeWindows {
		transport += ", large windows"
	}
	return fmt.Sprintf("%d, %s, %s", p.Subscribers, what, transport)
}

// Cost is what the pass loses in upserts per second against its baseline.
func (p WritePass) Cost() float64 { return 1 - p.PerSec/p.Without.PerSec }

// ServerCost is what the pass would lose in upserts per second on a server
// bound by its own CPU: 1 - (CPU per upsert without) / (CPU per upsert).
func (p WritePass) ServerCost() float64 {
	return 1 - p.Without.ServerCPU.Seconds()/p.ServerCPU.Seconds()
}

// RunFeed measures the change feed of the real server.
func RunFeed(opt FeedOptions, progress io.Writer) (*FeedReport, error) {
	opt.defaults()
	rep := &FeedReport{Options: opt}
	rep.Load = loadAverage()
	// Over HTTP/1.1 each subscriber is a connection, and so a file in this
	// process and in the server, which inherits the limit.
	if err := raiseFileLimit(opt.Subscribers + 1000); err != nil {
		return nil, err
	}
	say(progress, "feed bench: %d-dimension records (random, fixed seed), flat index; load average %s", opt.Dim, rep.Load)
	run := 0
	// fresh starts a server with its data directory under parent, held to
	// cpus if any are given, with the benchmark's collection.
	fresh := func(parent string, cpus ...int) (*server, *client.Client, error) {
		run++
		srv, err := startFeedServer(opt.Binary, filepath.Join(parent, fmt.Sprintf("feed%d", run)), cpus...)
		if err != nil {
			return nil, nil, err
		}
		c, err := srv.client()
		if err != nil {
			srv.kill()
			return nil, nil, err
		}
		if _, _, err := c.CreateCollection(context.Background(), feedColl, client.CollectionSpec{Dimension: opt.Dim,
			Metric: client.MetricL2, Index: client.IndexSpec{Type: client.IndexFlat}}); err != nil {
			srv.kill()
			return nil, nil, err
		}
		return srv, c, nil
	}
	vectors := feedVectors(opt.Dim)

	// Memory per subscriber, over HTTP/2 and HTTP/1.1.
	transports := []bool{false, true}
	if opt.SkipHTTP1 {
		transports = transports[:1]
	}
	for _, http1 := range transports {
		var passes []FeedMemory
		for range opt.Repeats {
			srv, c, err := fresh(opt.Dir)
			if err != nil {
				return nil, err
			}
			m, err := feedMemory(srv, c, opt, http1, vectors)
			c.Close()
			srv.kill()
			if err != nil {
				return nil, err
			}
			say(progress, "memory, %s: %d subscribers on %d connections in %v: %.1f KiB each idle, %.1f KiB after a burst; one event to all in %v",
				m.Transport, m.Subscribers, m.Conns, m.Connect.Round(time.Millisecond), m.PerSubIdle/1024, m.PerSubBusy/1024, m.Deliver.Round(time.Millisecond))
			passes = append(passes, m)
		}
		rep.Memory = append(rep.Memory, medianBy(passes, func(m FeedMemory) float64 { return m.PerSubIdle }))
	}

	// Per repeat, the cost on writes has a server of its own (on CPU 0 with
	// the CPUs apart), and latency at a steady rate and fan-out share one.
	type latencyCase struct {
		subs           int
		records, http1 bool
	}
	latencyCases := []latencyCase{{1, true, false}, {1, true, true}, {opt.FanoutSubs, false, false}, {opt.FanoutSubs, false, true},
		{opt.FanoutSubs, true, false}, {opt.FanoutSubs, true, true}}
	latencies := make([][]FeedLatency, len(latencyCases))
	type fanoutCase struct{ records, http1 bool }
	fanoutCases := []fanoutCase{{true, false}, {false, false}, {true, true}, {false, true}}
	fanouts := make([][]FeedFanout, len(fanoutCases))
	var writeCosts [1 + len(writePasses)][]WritePass
	var serverCPUs []int
	if cpusApart(opt) {
		serverCPUs = []int{0}
	}
	writeDir, err := os.MkdirTemp(cmp.Or(opt.WriteDir, opt.Dir), "hippo-bench-writes")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(writeDir)
	rep.WriteCost.Dir = writeDir
	for range opt.Repeats {
		wc, err := feedWriteCost(func() (*server, *client.Client, error) { return fresh(writeDir, serverCPUs...) }, opt, vectors)
		if err != nil {
			return nil, err
		}
		var passes []string
		for i, p := range wc.Passes {
			if i == 0 {
				passes = append(passes, fmt.Sprintf("none: %.0f/s (%v)", p.PerSec, p.ServerCPU.Round(time.Microsecond)))
				continue
			}
			passes = append(passes, fmt.Sprintf("%s: %.0f/s against %.0f/s, %.1f %% (%v against %v; caught up in %v)", p.name(), p.PerSec, p.Without.PerSec,
				100*p.Cost(), p.ServerCPU.Round(time.Microsecond), p.Without.ServerCPU.Round(time.Microsecond), p.CaughtUp.Round(time.Millisecond)))
		}
		say(progress, "writes, %d writers, CPUs apart %v, upserts/s (server CPU per upsert) by subscribers: %s (load %s)",
			opt.Writers, wc.CPUsApart, strings.Join(passes, "; "), loadAverage())
		for i, p := range wc.Passes {
			writeCosts[i] = append(writeCosts[i], p)
		}
		rep.WriteCost.CPUsApart = wc.CPUsApart

		srv, c, err := fresh(opt.Dir)
		if err != nil {
			return nil, err
		}
		err = func() error {
			defer srv.kill()
			defer c.Close()
			for i, lc := range latencyCases {
				l, err := feedLatency(srv, c, opt, lc.subs, lc.records, lc.http1, vectors)
				if err != nil {
					return err
				}
				say(progress, "latency, %d subscribers, records %v, HTTP/1.1 %v, %.0f writes/s: p50 %v, p99 %v, max %v (%d deliveries; writes p50 %v; server %.0f%% CPU, bench %.0f%%)",
					l.Subscribers, l.Records, l.HTTP1, l.Rate, l.P50.Round(10*time.Microsecond), l.P99.Round(10*time.Microsecond),
					l.Max.Round(10*time.Microsecond), l.Deliveries, l.WriteP50.Round(10*time.Microsecond), 100*l.ServerCPU, 100*l.BenchCPU)
				latencies[i] = append(latencies[i], l)
			}
			for i, fc := range fanoutCases {
				f, err := feedFanout(srv, c, opt, fc.records, fc.http1, vectors)
				if err != nil {
					return err
				}
				var steps []string
				for _, st := range f.Tried {
					steps = append(steps, fmt.Sprintf("%d/s: p99 %v, caught up in %v, write-bound %v, server %.0f%%, bench %.0f%%", st.Rate,
						st.P99.Round(100*time.Microsecond), st.CaughtUp.Round(time.Millisecond), st.WriteBound, 100*st.ServerCPU, 100*st.BenchCPU))
				}
				say(progress, "fan-out, %d subscribers, records %v, HTTP/1.1 %v: sustained %.0f events/s to each (p99 %v, %.0f MB/s in all)\n    %s",
					f.Subscribers, f.Records, f.HTTP1, f.Rate, f.P99.Round(100*time.Microsecond), f.MBps/1e6, strings.Join(steps, "\n    "))
				fanouts[i] = append(fanouts[i], f)
			}
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	for _, ls := range latencies {
		rep.Latency = append(rep.Latency, medianBy(ls, func(l FeedLatency) float64 { return float64(l.P99) }))
	}
	for _, fs := range fanouts {
		rep.Fanout = append(rep.Fanout, medianBy(fs, func(f FeedFanout) float64 { return f.Rate }))
	}
	rep.WriteCost.Writers, rep.WriteCost.Subscribers = opt.Writers, opt.FanoutSubs
	for i, ps := range writeCosts {
		if i == 0 {
			rep.WriteCost.Passes[i] = medianBy(ps, func(p WritePass) float64 { return p.PerSec })
			continue
		}
		rep.WriteCost.Passes[i] = medianBy(ps, func(p WritePass) float64 { return p.Cost() })
	}
	rep.LoadEnd = loadAverage()
	return rep, nil
}

const feedColl = "feed"

// startFeedServer starts the server as server.start does, but with no cap on
// the event streams its listener holds open (the default, 256, is a guard
// for production, and the benchmark opens 10,000), and held to cpus if any
// are given.
func startFeedServer(binary, dir string, cpus ...int) (*server, error) {
	s := newServer(binary, dir)
	s.done = make(chan error, 1)
	s.cmd = exec.Command(binary, "serve", "--data-dir", dir, "--listen", "unix:"+s.socket+"?class=write&max_streams=0",
		"--snapshot-interval", "-1s")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := startOn(s.cmd, cpus...); err != nil {
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait() }()
	c, err := s.client()
	if err != nil {
		s.kill()
		return nil, err
	}
	defer c.Close()
	for began := time.Now(); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ready(ctx)
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("hippo exited: %v\n%s", err, s.log.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(began) > time.Minute {
			s.kill()
			return nil, fmt.Errorf("hippo not ready after a minute: %v", err)
		}
	}
}

// medianBy returns the pass whose key is the median.
func medianBy[T any](passes []T, key func(T) float64) T {
	s := slices.Clone(passes)
	slices.SortFunc(s, func(a, b T) int {
		ka, kb := key(a), key(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

// raiseFileLimit lifts the soft limit on open files towards want (the hard
// limit caps it); the server started later inherits it.
func raiseFileLimit(want int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= uint64(want) {
		return nil
	}
	lim.Cur = min(uint64(want), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open-file limit to %d: %w", lim.Cur, err)
	}
	if lim.Cur < uint64(want) {
		return fmt.Errorf("the open-file limit is %d (hard), %d needed: raise it with ulimit -Hn", lim.Max, want)
	}
	return nil
}

// feedVectors returns 1,024 random vectors that writes cycle through.
func feedVectors(dim int) [][]float32 {
	r := rand.New(rand.NewPCG(7, 11))
	out := make([][]float32, 1024)
	for i := range out {
		out[i] = make([]float32, dim)
		for j := range out[i] {
			out[i][j] = r.Float32()
		}
	}
	return out
}

// subscriber is one consumer of GET /v1/events in the benchmark: it reads
// the SSE stream with as little work as it can, so that the figures are the
// server's, and notes each event's seq, and its latency while asked to.
type subscriber struct {
	connected chan struct{} // closed once the answer's header arrived
	err       error         // why the stream ended; set before done is closed
	done      chan struct{}
	events    atomic.Int64
	bytes     atomic.Int64
	last      atomic.Uint64

	opening   chan struct{}   // shared: a token while opening
	measure   *atomic.Bool    // shared: note latencies now
	latencies []time.Duration // only its goroutine touches it until done
}

// subscribers is a set of subscriptions over a set of connections.
type subscribers struct {
	subs       []*subscriber
	transports []*http.Transport
	cancel     context.CancelFunc
	conns      int
	measure    atomic.Bool
}

// subscribe opens n subscriptions to the server's feed, each from its
// current end, over HTTP/2 connections of perConn streams or (http1) one
// HTTP/1.1 connection each, and waits until each has its answer.
func subscribe(socket string, n, perConn int, http1 bool, query string) (*subscribers, error) {
	ctx, cancel := context.WithCancel(context.Background())
	set := &subscribers{cancel: cancel}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}
	newTransport := func() *http.Transport {
		t := &http.Transport{DialContext: dial, Protocols: new(http.Protocols), DisableCompression: true}
		if http1 {
			t.Protocols.SetHTTP1(true)
		} else {
			t.Protocols.SetUnencryptedHTTP2(true)
			t.MaxConnsPerHost = 1
		}
		return t
	}
	if http1 {
		set.transports = []*http.Transport{newTransport()}
		set.conns = n
	} else {
		for i := 0; i < n; i += perConn {
			set.transports = append(set.transports, newTransport())
		}
		set.conns = len(set.transports)
	}
	url := "http://localhost/v1/events?" + query
	// Subscriptions are opened a few at a time: thousands of dials at once
	// would overflow the socket's listen backlog (EAGAIN).
	opening := make(chan struct{}, 64)
	for i := range n {
		s := set.add()
		s.opening = opening
		t := set.transports[0]
		if !http1 {
			t = set.transports[i/perConn]
		}
		go s.run(ctx, t, url)
	}
	if err := set.await(); err != nil {
		return nil, err
	}
	return set, nil
}

// subscribeLargeWindows is subscribe over HTTP/2 connections whose streams
// flow-control as browsers do (openLargeWindows).
func subscribeLargeWindows(socket string, n, perConn int, query string) (*subscribers, error) {
	ctx, cancel := context.WithCancel(context.Background())
	set := &subscribers{cancel: cancel}
	for i := range n {
		set.add()
		if len(set.subs) == perConn || i == n-1 {
			if err := openLargeWindows(ctx, socket, "/v1/events?"+query, set.subs[set.conns*perConn:]); err != nil {
				set.close()
				return nil, fmt.Errorf("subscribe: %w", err)
			}
			set.conns++
		}
	}
	if err := set.await(); err != nil {
		return nil, err
	}
	return set, nil
}

// add adds a subscriber to the set, not yet connected.
func (set *subscribers) add() *subscriber {
	s := &subscriber{connected: make(chan struct{}), done: make(chan struct{}), measure: &set.measure}
	set.subs = append(set.subs, s)
	return s
}

// await waits until every subscription has its answer; if one fails, it
// closes them all.
func (set *subscribers) await() error {
	deadline := time.After(2 * time.Minute)
	for _, s := range set.subs {
		select {
		case <-s.connected:
		case <-s.done:
			set.close()
			return fmt.Errorf("subscribe: %w", s.err)
		case <-deadline:
			set.close()
			return errors.New("subscribe: not every subscription was answered within 2 minutes")
		}
	}
	return nil
}

func (s *subscriber) run(ctx context.Context, t *http.Transport, url string) {
	defer close(s.done)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	select {
	case s.opening <- struct{}{}:
	case <-ctx.Done():
		s.err = ctx.Err()
		return
	}
	resp, err := t.RoundTrip(req)
	<-s.opening
	if err != nil {
		s.err = err
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		s.err = fmt.Errorf("status %s: %s", resp.Status, bytes.TrimSpace(body))
		return
	}
	close(s.connected)
	s.err = s.read(resp.Body)
}

// read reads an SSE stream until it fails.
func (s *subscriber) read(body io.Reader) error {
	br := bufio.NewReaderSize(body, 8<<10)
	var long []byte
	var lastTimeText []byte
	var lastTime time.Time
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			return err
		}
		s.bytes.Add(int64(len(line)))
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		// {"seq":N,"type":...,"time":"..." — the seq and the commit time
		// stamp come before the record.
		now := time.Now()
		seqText, ok := bytes.CutPrefix(data, []byte(`{"seq":`))
		if !ok {
			continue // a feed.gap
		}
		end := bytes.IndexByte(seqText, ',')
		seq, _ := strconv.ParseUint(string(seqText[:max(end, 0)]), 10, 64)
		if s.measure.Load() {
			if i := bytes.Index(data, []byte(`"time":"`)); i >= 0 {
				tt := data[i+8:]
				tt = tt[:max(bytes.IndexByte(tt, '"'), 0)]
				if !bytes.Equal(tt, lastTimeText) {
					// Events committed together share their stamp.
					lastTime, _ = time.Parse(time.RFC3339Nano, string(tt))
					lastTimeText = append(lastTimeText[:0], tt...)
				}
				s.latencies = append(s.latencies, now.Sub(lastTime))
			}
		}
		s.events.Add(1)
		s.last.Store(seq)
	}
}

// waitFor waits until every subscriber has received seq.
func (set *subscribers) waitFor(seq uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, s := range set.subs {
		for s.last.Load() < seq {
			select {
			case <-s.done:
				return fmt.Errorf("a subscription ended at seq %d of %d: %v", s.last.Load(), seq, s.err)
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("a subscriber was at seq %d of %d after %v", s.last.Load(), seq, timeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

func (set *subscribers) close() {
	set.cancel()
	for _, s := range set.subs {
		<-s.done
	}
	for _, t := range set.transports {
		t.CloseIdleConnections()
	}
}

// upsertOne writes record i (a fresh id) and returns its seq.
func upsertOne(ctx context.Context, c *client.Client, vectors [][]float32, prefix string, i int) (uint64, error) {
	return c.Upsert(ctx, feedColl, client.Record{ID: prefix + strconv.Itoa(i), Vector: vectors[i%len(vectors)]})
}

func feedMemory(srv *server, c *client.Client, opt FeedOptions, http1 bool, vectors [][]float32) (FeedMemory, error) {
	ctx := context.Background()
	m := FeedMemory{Subscribers: opt.Subscribers, Transport: fmt.Sprintf("HTTP/2, %d streams per connection", opt.StreamsPerConn)}
	if http1 {
		m.Transport = "HTTP/1.1, a connection each"
	}
	// Warm the write path, so that its buffers are not counted.
	var seq uint64
	var err error
	for i := range 50 {
		if seq, err = upsertOne(ctx, c, vectors, "warm-", i); err != nil {
			return m, err
		}
	}
	time.Sleep(time.Second)
	m.RSSBase = srv.rssBytes()
	began := time.Now()
	set, err := subscribe(srv.socket, opt.Subscribers, opt.StreamsPerConn, http1, "records=false")
	if err != nil {
		return m, err
	}
	defer set.close()
	m.Connect, m.Conns = time.Since(began), set.conns
	// A few small events to each.
	for i := range 5 {
		began = time.Now()
		if seq, err = upsertOne(ctx, c, vectors, "small-", i); err != nil {
			return m, err
		}
		if err := set.waitFor(seq, time.Minute); err != nil {
			return m, err
		}
		m.Deliver = time.Since(began)
	}
	cpu := srv.cpuTime()
	time.Sleep(2 * time.Second)
	m.ServerCPUIdle = (srv.cpuTime() - cpu).Seconds() / 2
	m.PerSubIdle = float64(srv.rssBytes()-m.RSSBase) / float64(opt.Subscribers)
	// A burst of records, which these subscriptions do not carry, but
	// which fills every stream's batch with 256 events.
	records := make([]client.Record, 300)
	for i := range records {
		records[i] = client.Record{ID: "burst-" + strconv.Itoa(i), Vector: vectors[i%len(vectors)]}
	}
	if _, seq, err = c.UpsertBatch(ctx, feedColl, records); err != nil {
		return m, err
	}
	if err := set.waitFor(seq, 2*time.Minute); err != nil {
		return m, err
	}
	time.Sleep(2 * time.Second)
	m.PerSubBusy = float64(srv.rssBytes()-m.RSSBase) / float64(opt.Subscribers)
	return m, nil
}

// pass is what pacedPass measured.
type pass struct {
	rate       float64         // events written per second
	latencies  []time.Duration // commit stamp to receipt, every subscriber, after the warm-up
	writeLat   []time.Duration // each write's own latency to its answer
	caughtUp   time.Duration   // from the last answer until every subscriber had everything
	bytes      int64           // received by the subscribers
	serverCPU  float64         // CPUs the server used
	benchCPU   float64         // CPUs this process used
	events     int
	lastSeq    uint64
	writeBound bool // the writers fell behind the schedule
}

// pacedPass writes rate events per second for d, as batches of batch
// records (single upserts when batch is 1) sent on a schedule by up to 64
// concurrent writers, while set's subscribers note, after a warm-up of a
// fifth of d (at most 1 s), each event's latency.
func pacedPass(srv *server, c *client.Client, set *subscribers, rate, batch int, d time.Duration, vectors [][]float32, prefix string) (pass, error) {
	ctx := context.Background()
	var p pass
	for _, s := range set.subs {
		s.latencies = s.latencies[:0]
	}
	bytesBefore := int64(0)
	for _, s := range set.subs {
		bytesBefore += s.bytes.Load()
	}
	interval := time.Second * time.Duration(batch) / time.Duration(rate)
	jobs := make(chan int, 16)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			recs := make([]client.Record, batch)
			for n := range jobs {
				for i := range recs {
					id := n*batch + i
					recs[i] = client.Record{ID: prefix + strconv.Itoa(id), Vector: vectors[id%len(vectors)]}
				}
				began := time.Now()
				var seq uint64
				var err error
				if batch == 1 {
					seq, err = c.Upsert(ctx, feedColl, recs[0])
				} else {
					_, seq, err = c.UpsertBatch(ctx, feedColl, recs)
				}
				took := time.Since(began)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				p.writeLat = append(p.writeLat, took)
				p.lastSeq = max(p.lastSeq, seq)
				mu.Unlock()
			}
		})
	}
	cpu, benchCPU := srv.cpuTime(), selfCPUTime()
	began := time.Now()
	warm := began.Add(min(time.Second, d/5))
	n := 0
	for ; ; n++ {
		due := began.Add(time.Duration(n) * interval)
		if due.Sub(began) >= d {
			break
		}
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		} else if wait < -100*time.Millisecond {
			p.writeBound = true
		}
		if !set.measure.Load() && time.Now().After(warm) {
			set.measure.Store(true)
		}
		select {
		case jobs <- n:
		default:
			p.writeBound = true // every writer is busy and the queue is full
			jobs <- n
		}
	}
	close(jobs)
	wg.Wait()
	wrote := time.Since(began)
	if firstErr != nil {
		return p, firstErr
	}
	if err := set.waitFor(p.lastSeq, 5*time.Minute); err != nil {
		return p, err
	}
	p.caughtUp = time.Since(began) - wrote
	took := time.Since(began)
	p.serverCPU = (srv.cpuTime() - cpu).Seconds() / took.Seconds()
	p.benchCPU = (selfCPUTime() - benchCPU).Seconds() / took.Seconds()
	set.measure.Store(false)
	for _, s := range set.subs {
		p.latencies = append(p.latencies, s.latencies...)
		p.bytes += s.bytes.Load()
	}
	p.bytes -= bytesBefore
	p.events = n * batch
	p.rate = float64(p.events) / wrote.Seconds()
	if p.rate < 0.9*float64(rate) {
		p.writeBound = true
	}
	if len(p.latencies) == 0 {
		return p, errors.New("no latencies measured")
	}
	return p, nil
}

func eventsQuery(records bool) string {
	if records {
		return "vector_b64=1"
	}
	return "records=false"
}

// feedLatency writes opt.Rate single records per second for opt.PassTime
// with subs subscribers and measures each event's time from the commit stamp
// the server gave it to its receipt by each subscriber.
func feedLatency(srv *server, c *client.Client, opt FeedOptions, subs int, records, http1 bool, vectors [][]float32) (FeedLatency, error) {
	l := FeedLatency{Subscribers: subs, Records: records, HTTP1: http1}
	set, err := subscribe(srv.socket, subs, min(opt.StreamsPerConn, 25), http1, eventsQuery(records))
	if err != nil {
		return l, err
	}
	defer set.close()
	p, err := pacedPass(srv, c, set, opt.Rate, 1, opt.PassTime, vectors, fmt.Sprintf("lat%d-%v-", subs, records))
	if err != nil {
		return l, err
	}
	l.Rate, l.ServerCPU, l.BenchCPU = p.rate, p.serverCPU, p.benchCPU
	l.P50, l.P99, l.Max = percentile(p.latencies, 50), percentile(p.latencies, 99), slices.Max(p.latencies)
	l.Deliveries = len(p.latencies)
	l.WriteP50 = percentile(p.writeLat, 50)
	return l, nil
}

// sustainedP99 is the latency under which the fan-out figure calls a rate
// sustained: subscribers keep pace, they do not fall behind and catch up.
const sustainedP99 = 100 * time.Millisecond

// fanoutRates are the event rates the fan-out figure tries, in order.
var fanoutRates = []int{500, 1000, 2000, 4000, 8000, 16000, 32000, 64000}

// feedFanout finds the highest event rate that opt.FanoutSubs subscribers
// sustain: it writes at rising rates (in batches, so that the writers are
// not what limits), half of opt.PassTime each, and keeps the highest at
// which every subscriber received every event with a p99 latency of at most
// sustainedP99, and had them all within sustainedP99 of the last write.
func feedFanout(srv *server, c *client.Client, opt FeedOptions, records, http1 bool, vectors [][]float32) (FeedFanout, error) {
	f := FeedFanout{Subscribers: opt.FanoutSubs, Records: records, HTTP1: http1}
	set, err := subscribe(srv.socket, opt.FanoutSubs, min(opt.StreamsPerConn, 25), http1, eventsQuery(records))
	if err != nil {
		return f, err
	}
	defer set.close()
	for _, rate := range fanoutRates {
		if opt.MaxFanoutRate > 0 && rate > opt.MaxFanoutRate {
			break
		}
		batch := max(1, rate/200) // 200 commits per second at most
		p, err := pacedPass(srv, c, set, rate, batch, max(time.Second, opt.PassTime/2), vectors,
			fmt.Sprintf("fan%d-%v-%v-", rate, records, http1))
		if err != nil {
			return f, err
		}
		p99 := percentile(p.latencies, 99)
		ok := !p.writeBound && p99 <= sustainedP99 && p.caughtUp <= sustainedP99
		f.Tried = append(f.Tried, FanoutStep{Rate: rate, Achieved: p.rate, P99: p99, CaughtUp: p.caughtUp, WriteBound: p.writeBound,
			ServerCPU: p.serverCPU, BenchCPU: p.benchCPU})
		if !ok {
			break
		}
		f.Rate, f.P50, f.P99 = p.rate, percentile(p.latencies, 50), p99
		f.MBps = float64(p.bytes) / (p.caughtUp + max(time.Second, opt.PassTime/2)).Seconds()
		f.ServerCPU, f.BenchCPU = p.serverCPU, p.benchCPU
	}
	return f, nil
}

// feedWriteCost measures single-record upserts from opt.Writers writers, a
// pass of opt.PassTime each: with each set of writePasses, and without
// subscribers before and after each (the baseline of a pass is the mean of
// the two beside it, which cancels a drift of the machine). Each pass has a
// server of its own, from fresh() with an empty store, so that no pass
// pays for the compactions of another's writes or writes into a larger
// store. The subscribers read in a process of their own, and after each
// pass every one must have received every event. With the CPUs apart
// (wc.CPUsApart), the server and the writers share CPU 0 and the
// subscribers read on the others: upserts per second fall by what the
// server does for its subscribers, as on a server whose subscribers are on
// other machines, and not by what reading costs them. fresh must start the
// server on CPU 0 then.
//
// The server should keep its data in memory (FeedOptions.WriteDir): with
// its data on a disk the server is not bound by its CPU but by the disk's
// flushes, whose latency on a virtual machine moves by a factor of several
// from one pass to the next; what the feed costs in CPU then hardly shows,
// and the noise decides the figure. In memory, every microsecond the feed
// takes is one the writes lose: the worst case for the feed.
func feedWriteCost(fresh func() (*server, *client.Client, error), opt FeedOptions, vectors [][]float32) (wc FeedWriteCost, err error) {
	ctx := context.Background()
	wc = FeedWriteCost{Writers: opt.Writers, Subscribers: opt.FanoutSubs, CPUsApart: cpusApart(opt)}
	var subCPUs []int
	if wc.CPUsApart {
		for i := 1; i < runtime.NumCPU(); i++ {
			subCPUs = append(subCPUs, i)
		}
		if err := pin(os.Getpid(), 0); err != nil {
			return wc, err
		}
		defer func() {
			if err2 := pin(os.Getpid()); err == nil {
				err = err2
			}
		}()
	}
	pass := func(name string, srv *server, c *client.Client, subs *subscriberProcess) (WritePass, error) {
		time.Sleep(time.Second) // let the previous pass's work settle
		var n atomic.Int64
		var last atomic.Uint64
		var firstErr atomic.Value
		stop := time.Now().Add(opt.PassTime)
		var wg sync.WaitGroup
		cpu := srv.cpuTime()
		began := time.Now()
		for w := range opt.Writers {
			wg.Go(func() {
				for i := 0; time.Now().Before(stop); i++ {
					seq, err := upsertOne(ctx, c, vectors, fmt.Sprintf("%s-w%d-", name, w), i)
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					n.Add(1)
					for was := last.Load(); seq > was && !last.CompareAndSwap(was, seq); was = last.Load() {
					}
				}
			})
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return WritePass{}, err
		}
		if n.Load() == 0 {
			return WritePass{}, fmt.Errorf("write pass %s: no upsert finished", name)
		}
		p := WritePass{
			PerSec:    float64(n.Load()) / time.Since(began).Seconds(),
			ServerCPU: (srv.cpuTime() - cpu) / time.Duration(n.Load()),
		}
		if subs != nil {
			var err error
			if p.CaughtUp, err = subs.waitFor(last.Load()); err != nil {
				return p, fmt.Errorf("write pass %s: %w", name, err)
			}
		}
		return p, nil
	}
	// onFresh runs a pass on a server of its own, with the subscribers of
	// writePasses[set] if set >= 0.
	onFresh := func(name string, set int) (p WritePass, err error) {
		srv, c, err := fresh()
		if err != nil {
			return p, err
		}
		defer func() {
			c.Close()
			srv.kill()
			os.RemoveAll(srv.dir)
		}()
		if set < 0 {
			return pass(name, srv, c, nil)
		}
		wp := writePasses[set]
		subs, err := startSubscribers(cmp.Or(opt.Tool, opt.Binary), SubscriberOptions{Socket: srv.socket,
			N: cmp.Or(wp.subs, opt.FanoutSubs), PerConn: min(opt.StreamsPerConn, 25), HTTP1: wp.http1, LargeWindows: wp.largeWindows, Records: wp.records}, subCPUs)
		if err != nil {
			return p, err
		}
		p, err = pass(name, srv, c, subs)
		if err2 := subs.close(); err == nil && err2 != nil {
			err = subs.explain(err2)
		}
		return p, err
	}
	without, err := onFresh("without0", -1)
	if err != nil {
		return wc, err
	}
	baselines := []WritePass{without}
	for i, wp := range writePasses {
		n := cmp.Or(wp.subs, opt.FanoutSubs)
		p, err := onFresh(fmt.Sprintf("with%d-%v-%v-%v", n, wp.records, wp.http1, wp.largeWindows), i)
		if err != nil {
			return wc, err
		}
		next, err := onFresh(fmt.Sprintf("without%d", i+1), -1)
		if err != nil {
			return wc, err
		}
		baselines = append(baselines, next)
		p.Subscribers, p.Records, p.HTTP1, p.LargeWindows = n, wp.records, wp.http1, wp.largeWindows
		p.Without = meanPass(without, next)
		wc.Passes[i+1] = p
		without = next
	}
	wc.Passes[0] = *meanPass(baselines...)
	return wc, nil
}

// meanPass is the mean of passes without subscribers.
func meanPass(ps ...WritePass) *WritePass {
	var m WritePass
	for _, p := range ps {
		m.PerSec += p.PerSec / float64(len(ps))
		m.ServerCPU += p.ServerCPU / time.Duration(len(ps))
	}
	return &m
}

// cpusApart reports whether the write-cost figure holds the server and the
// writers to CPU 0 and the subscribers to the other CPUs.
func cpusApart(opt FeedOptions) bool { return canPin && runtime.NumCPU() >= 2 && !opt.SharedCPUs }

// loadAverage returns the machine's 1-, 5- and 15-minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// WriteTables prints the report as Markdown tables.
func (r *FeedReport) WriteTables(w io.Writer) {
	o := r.Options
	fmt.Fprintf(w, "\nChange feed: hippo serve on a Unix socket; %d-dimension records (random, fixed seed), flat index; subscribers read SSE in the bench process (for the write cost, in a process of their own)\n", o.Dim)
	fmt.Fprintf(w, "(load average when the run began: %s)\n\n", r.Load)
	fmt.Fprintf(w, "| subscribers | transport | connections | to connect all | server RSS per subscriber, idle | … after a burst | one event to all | server CPU while idle |\n|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range r.Memory {
		fmt.Fprintf(w, "| %d | %s | %d | %v | %.1f KiB | %.1f KiB | %v | %.1f %% |\n", m.Subscribers, m.Transport, m.Conns,
			m.Connect.Round(time.Millisecond), m.PerSubIdle/1024, m.PerSubBusy/1024, m.Deliver.Round(time.Millisecond), 100*m.ServerCPUIdle)
	}
	fmt.Fprintf(w, "\nCommit-to-delivery latency at %d single-record writes/s (from the commit time stamp in the event, taken before the durable commit, to its receipt)\n\n", o.Rate)
	fmt.Fprintf(w, "| subscribers | transport | records | writes/s | p50 | p99 | max | deliveries | write p50 | server CPU | bench CPU |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.Latency {
		fmt.Fprintf(w, "| %d | %s | %v | %.0f | %v | %v | %v | %d | %v | %.0f %% | %.0f %% |\n", l.Subscribers, transportName(l.HTTP1), yesNo(l.Records), l.Rate,
			l.P50.Round(10*time.Microsecond), l.P99.Round(10*time.Microsecond), l.Max.Round(100*time.Microsecond), l.Deliveries,
			l.WriteP50.Round(10*time.Microsecond), 100*l.ServerCPU, 100*l.BenchCPU)
	}
	fmt.Fprintf(w, "\nFan-out: the highest event rate sustained by every subscriber (rates tried: %v events/s, written in batches of rate/200; sustained: p99 latency at most %v, and every event received within %v of the last write)\n\n", fanoutRates, sustainedP99, sustainedP99)
	fmt.Fprintf(w, "| subscribers | transport | records | events/s to each | deliveries/s in all | p50 | p99 | MB/s in all | server CPU | bench CPU | next rate |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, f := range r.Fanout {
		transport := transportName(f.HTTP1)
		next := "—"
		if last := f.Tried[len(f.Tried)-1]; float64(last.Rate) > f.Rate*1.2 || f.Rate == 0 {
			switch {
			case last.WriteBound:
				next = fmt.Sprintf("%d/s: writers fell behind", last.Rate)
			default:
				next = fmt.Sprintf("%d/s: p99 %v, caught up after %v", last.Rate, last.P99.Round(time.Millisecond), last.CaughtUp.Round(time.Millisecond))
			}
		}
		fmt.Fprintf(w, "| %d | %s | %v | %.0f | %.0f | %v | %v | %.0f | %.0f %% | %.0f %% | %s |\n", f.Subscribers, transport, yesNo(f.Records),
			f.Rate, f.Rate*float64(f.Subscribers), f.P50.Round(10*time.Microsecond), f.P99.Round(10*time.Microsecond), f.MBps/1e6,
			100*f.ServerCPU, 100*f.BenchCPU, next)
	}
	wc := &r.WriteCost
	where := "the server, the writers and the subscribers (a process of their own) share every CPU"
	if wc.CPUsApart {
		where = "the server and the writers share CPU 0, the subscribers (a process of their own) read on the other CPUs"
	}
	fmt.Fprintf(w, "\nWrite throughput, %d concurrent single-record writers, without and with %d subscribers; data in %s; %s. "+
		"Each pass runs on a fresh server with an empty store; each pass with subscribers lies between two without, whose mean is its baseline; the median pass by cost. "+
		"Server cost: 1 − (server CPU per upsert without) / (… with); caught up: from the last write until every subscriber had every event\n\n",
		wc.Writers, wc.Subscribers, filepath.Dir(wc.Dir), where)
	fmt.Fprintf(w, "| subscribers | upserts/s | baseline | cost | server CPU per upsert | baseline | server cost | caught up |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, p := range wc.Passes {
		if i == 0 {
			fmt.Fprintf(w, "| %s (median) | %.0f | | | %v | | | |\n", p.name(), p.PerSec, p.ServerCPU.Round(time.Microsecond))
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.1f %% | %v | %v | %.1f %% | %v |\n", p.name(), p.PerSec, p.Without.PerSec, 100*p.Cost(),
			p.ServerCPU.Round(time.Microsecond), p.Without.ServerCPU.Round(time.Microsecond), 100*p.ServerCost(), p.CaughtUp.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "\n(load average when the run ended: %s)\n", r.LoadEnd)
}

func transportName(http1 bool) string {
	if http1 {
		return "HTTP/1.1"
	}
	return "HTTP/2"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// mapSlice returns f of each element of s.
func mapSlice[T, U any](s []T, f func(T) U) []U {
	out := make([]U, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}
