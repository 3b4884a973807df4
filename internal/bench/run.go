package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hippo-db/hippo/client"
	"github.com/hippo-db/hippo/internal/dataset"
)

// Options configure Run.
type Options struct {
	Binary  string  // the hippo binary to start
	Dir     string  // data directory for the servers; removed by the caller
	Indexes []Index // indexes the search sweep runs on, one server each
	Efs     []int   // ef values to sweep
	Clients []int   // concurrent clients per sweep
	// Transports are the client transports of the search sweep, each
	// swept in turn: "h2c" (HTTP/2 cleartext, the client's default) or
	// "http1" (WithHTTP1Pool(1)). Empty means h2c.
	Transports []string
	Repeats    int // passes per figure; the median is reported
	K          int
	Queries    int // queries per pass (≤ test rows)
	Gets       int // get-by-id requests per pass
	// SearchOnly skips what does not depend on the index: gets, writes,
	// 1,000-record imports and restarts. Otherwise they run on the server
	// of the first index.
	SearchOnly bool
}

// Index is a collection index setting the end-to-end benchmark serves.
type Index struct {
	Name string // as given to ServerIndex and printed in the tables
	Spec client.IndexSpec
}

// transports are the client's transports, in the order gets by id run
// (HTTP/1.1 first: its first pass is the first read of the records since
// the import); a search sweep can use either, by name. Every client is its
// own connection either way.
var transports = []transport{
	{"http1", "HTTP/1.1 (WithHTTP1Pool)", []client.Option{client.WithHTTP1Pool(1)}},
	{"h2c", "HTTP/2 cleartext", nil},
}

type transport struct {
	name, label string // as given in Options.Transports; as printed
	opts        []client.Option
}

// transportOptions returns the client options of the transport called name.
func transportOptions(name string) ([]client.Option, bool) {
	for _, tr := range transports {
		if tr.name == name {
			return tr.opts, true
		}
	}
	return nil, false
}

// SweepTransports are the names Options.Transports may hold.
var SweepTransports = names(transports, func(tr transport) string { return tr.name })

// serverIndexes are the index settings ServerIndex knows: "hnsw" (float32)
// and "hnsw-int8" (searched on int8 codes, re-ranked with float32), both
// with M = 16 and ef_construction = 200 as for the systems we compare with;
// "ivfpq", 1,024 lists and 261 sub-quantizers without re-ranking (the
// setting that fits in 1/8 of the float32 memory), whose ef is nprobe.
var serverIndexes = []Index{
	{"hnsw", client.IndexSpec{Type: client.IndexHNSW, M: 16, EfConstruction: 200}},
	{"hnsw-int8", client.IndexSpec{Type: client.IndexHNSW, M: 16, EfConstruction: 200, Quantization: client.QuantizationInt8}},
	{"ivfpq", client.IndexSpec{Type: client.IndexIVFPQ, NList: 1024, M: 261}},
}

// ServerIndexes are the names ServerIndex knows.
var ServerIndexes = names(serverIndexes, func(ix Index) string { return ix.Name })

// ServerIndex returns the index setting called name (serverIndexes).
func ServerIndex(name string) (Index, error) {
	for _, ix := range serverIndexes {
		if ix.Name == name {
			return ix, nil
		}
	}
	return Index{}, fmt.Errorf("unknown server index %q (%s)", name, ServerIndexes)
}

// names joins the name of each element of s, for help and error messages.
func names[T any](s []T, name func(T) string) string {
	return strings.Join(mapSlice(s, name), ", ")
}

// Report holds what Run measured. Durations are medians of Repeats. With
// Options.SearchOnly only Indexes and Sweep are set.
type Report struct {
	Vectors, Dim int
	Indexes      []IndexPoint
	Sweep        []SweepPoint
	Gets         []GetPoint
	Writes       []WritePoint
	Import1k     time.Duration // one /import of 1,000 records, acknowledged (durable, searchable)
	Import1kIdx  time.Duration // … until linked into the graph
	Shutdown     time.Duration // SIGTERM to exit, snapshots included
	Restart      time.Duration // start to /readyz after a clean stop
	RestartKill  time.Duration // start to /readyz after SIGKILL (log replay)
	KillIndexed  time.Duration // … until every node was linked again
}

// IndexPoint is the import of every vector into a collection with one index.
type IndexPoint struct {
	Index        string
	ImportAll    time.Duration // NDJSON import of every vector, acknowledged
	IndexedAll   time.Duration // from the import's start until the graph held every vector
	RSSPerVector float64       // the server's resident memory over the vectors
}

// GetPoint is get-by-id latency over one client transport: medians over
// the passes, which all get the same ids, and the first pass's p50 (for the
// first transport, the first read of those records since the import).
type GetPoint struct {
	Transport string
	P50, P99  time.Duration
	PerSec    float64
	FirstP50  time.Duration
}

// WritePoint is single-record upserts from concurrent writers, each waiting
// for its answer (durable) before sending the next.
type WritePoint struct {
	Writers  int
	PerSec   float64
	P50, P99 time.Duration
}

// SweepPoint is one index, client transport, client count and ef.
type SweepPoint struct {
	Index       string
	Transport   string
	Ef, Clients int
	Recall      float64
	QPS         float64
	P50, P99    time.Duration
	// ServerCPU and ClientCPU are the CPU time per query of the server and
	// of the benchmark's clients. Other work competing for the CPUs changes
	// them much less than QPS, so 2 CPUs / (ServerCPU + ClientCPU) estimates
	// what the pass could reach with the machine to itself.
	ServerCPU, ClientCPU time.Duration
}

func say(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// coll is the benchmark's collection.
const coll = "fashion"

// Run measures the served database on train/test with the given ground truth:
// for each index a server of its own (so that its memory is the index's),
// the import of train and the search sweep; then, unless opt.SearchOnly, the
// rest on the first index's server.
func Run(train, test *dataset.Matrix, truth [][]int32, opt Options, progress io.Writer) (*Report, error) {
	rep := &Report{Vectors: train.Rows, Dim: train.Dim}
	if len(opt.Transports) == 0 {
		opt.Transports = []string{"h2c"}
	}
	for _, tr := range opt.Transports {
		if _, ok := transportOptions(tr); !ok {
			return nil, fmt.Errorf("unknown client transport %q (%s)", tr, SweepTransports)
		}
	}
	for i, ix := range opt.Indexes {
		if err := runIndex(rep, train, test, truth, opt, ix, i == 0 && !opt.SearchOnly, progress); err != nil {
			return nil, fmt.Errorf("%s: %w", ix.Name, err)
		}
	}
	return rep, nil
}

// runIndex starts a server for ix, imports train, sweeps the searches and,
// if rest, measures the figures that do not depend on the index.
func runIndex(rep *Report, train, test *dataset.Matrix, truth [][]int32, opt Options, ix Index, rest bool, progress io.Writer) (err error) {
	ctx := context.Background()
	dir := filepath.Join(opt.Dir, ix.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	srv := newServer(opt.Binary, dir)
	if _, err := srv.start(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = srv.explain(err)
		}
		if srv.cmd.ProcessState == nil {
			srv.kill()
		}
	}()
	c, err := srv.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, _, err := c.CreateCollection(ctx, coll, client.CollectionSpec{Dimension: train.Dim, Metric: client.MetricL2, Index: ix.Spec}); err != nil {
		return err
	}

	// Import everything, then wait for the graph.
	began := time.Now()
	res, err := c.ImportRecords(ctx, coll, rows(train, 0, train.Rows, ""), nil)
	if err != nil {
		return err
	}
	if res.Imported != train.Rows {
		return fmt.Errorf("imported %d of %d: %+v", res.Imported, train.Rows, res.Errors)
	}
	point := IndexPoint{Index: ix.Name, ImportAll: time.Since(began)}
	if err := waitIndexed(ctx, c, coll); err != nil {
		return err
	}
	point.IndexedAll = time.Since(began)
	point.RSSPerVector = float64(srv.rssBytes()) / float64(train.Rows)
	rep.Indexes = append(rep.Indexes, point)
	say(progress, "%s: import %d: %v acknowledged, %v indexed, RSS %.0f B/vector", ix.Name, train.Rows, point.ImportAll, point.IndexedAll, point.RSSPerVector)

	// Search sweeps.
	queries := min(opt.Queries, test.Rows)
	for _, tr := range opt.Transports {
		for _, clients := range opt.Clients {
			conns := make([]*client.Client, clients)
			for i := range conns {
				opts, _ := transportOptions(tr)
				if conns[i], err = srv.client(opts...); err != nil {
					return err
				}
				defer conns[i].Close()
			}
			for _, ef := range opt.Efs {
				var passes []SweepPoint
				for range opt.Repeats {
					p, err := sweep(ctx, srv, conns, coll, test, truth, queries, opt.K, ef)
					if err != nil {
						return err
					}
					passes = append(passes, p)
				}
				p := medianQPS(passes)
				p.Index, p.Transport = ix.Name, tr
				rep.Sweep = append(rep.Sweep, p)
				say(progress, "%s over %s: search clients=%d ef=%d: recall %.4f, %.0f QPS, p50 %v, p99 %v, CPU/query server %v client %v",
					ix.Name, tr, clients, ef, p.Recall, p.QPS, p.P50, p.P99, p.ServerCPU, p.ClientCPU)
			}
		}
	}
	if rest {
		return runRest(ctx, rep, srv, c, train, opt, progress)
	}
	_, err = srv.stop()
	return err
}

// runRest measures, on srv holding every train vector in coll, gets by id,
// concurrent writes, small imports and restarts, and stops srv.
func runRest(ctx context.Context, rep *Report, srv *server, c *client.Client, train *dataset.Matrix, opt Options, progress io.Writer) error {
	// Get by id, one client, over each of the client's transports.
	for _, tr := range transports {
		gc, err := srv.client(tr.opts...)
		if err != nil {
			return err
		}
		var p50s, p99s []time.Duration
		var rates []float64
		for range opt.Repeats {
			lat, took, err := gets(ctx, gc, coll, train.Rows, opt.Gets)
			if err != nil {
				return err
			}
			p50s = append(p50s, percentile(lat, 50))
			p99s = append(p99s, percentile(lat, 99))
			rates = append(rates, float64(len(lat))/took.Seconds())
		}
		gc.Close()
		p := GetPoint{Transport: tr.label, P50: median(p50s), P99: median(p99s), PerSec: medianF(rates), FirstP50: p50s[0]}
		rep.Gets = append(rep.Gets, p)
		say(progress, "get over %s: p50 %v, p99 %v, %.0f/s; first pass p50 %v", p.Transport, p.P50, p.P99, p.PerSec, p.FirstP50)
	}

	// Concurrent single-record writers: group commit lets them share fsyncs.
	for _, writers := range []int{1, 4, 16, 64} {
		p, err := writeLoad(ctx, c, coll, train, writers, 2*time.Second)
		if err != nil {
			return err
		}
		rep.Writes = append(rep.Writes, p)
		say(progress, "upserts, %d writers: %.0f/s, p50 %v, p99 %v", writers, p.PerSec, p.P50, p.P99)
	}

	// 1,000-record imports into fresh collections.
	var acks, idx []time.Duration
	for i := range max(opt.Repeats, 5) {
		name := fmt.Sprintf("import%d", i)
		if _, _, err := c.CreateCollection(ctx, name, client.CollectionSpec{Dimension: train.Dim, Metric: client.MetricL2}); err != nil {
			return err
		}
		from := (i * 1000) % (train.Rows - 1000)
		began := time.Now()
		res, err := c.ImportRecords(ctx, name, rows(train, from, from+1000, ""), nil)
		if err != nil || res.Imported != 1000 {
			return fmt.Errorf("import 1k: %+v %v", res, err)
		}
		acks = append(acks, time.Since(began))
		if err := waitIndexed(ctx, c, name); err != nil {
			return err
		}
		idx = append(idx, time.Since(began))
		if _, err := c.DeleteCollection(ctx, name); err != nil {
			return err
		}
	}
	rep.Import1k, rep.Import1kIdx = median(acks), median(idx)
	say(progress, "import 1,000: %v acknowledged, %v indexed (median of %d)", rep.Import1k, rep.Import1kIdx, len(acks))

	// Restarts: clean (snapshot) and after SIGKILL (replay of the log since).
	var downs, ups []time.Duration
	for range opt.Repeats {
		d, err := srv.stop()
		if err != nil {
			return fmt.Errorf("stop: %v", err)
		}
		u, err := srv.start()
		if err != nil {
			return err
		}
		downs, ups = append(downs, d), append(ups, u)
	}
	rep.Shutdown, rep.Restart = median(downs), median(ups)
	say(progress, "clean restart: shutdown %v, ready %v", rep.Shutdown, rep.Restart)

	c2, err := srv.client()
	if err != nil {
		return err
	}
	defer c2.Close()
	// Writes after the last snapshot are replayed from the log.
	if _, err := c2.ImportRecords(ctx, coll, rows(train, 0, min(5000, train.Rows), "late-"), nil); err != nil {
		return err
	}
	srv.kill()
	began := time.Now()
	if rep.RestartKill, err = srv.start(); err != nil {
		return err
	}
	c3, err := srv.client()
	if err != nil {
		return err
	}
	defer c3.Close()
	if err := waitIndexed(ctx, c3, coll); err != nil {
		return err
	}
	rep.KillIndexed = time.Since(began)
	say(progress, "restart after SIGKILL with 5,000 writes since the snapshot: ready %v, indexed %v", rep.RestartKill, rep.KillIndexed)
	_, err = srv.stop()
	return err
}

// rows yields train rows [from, to) as records with ids prefix+row.
func rows(m *dataset.Matrix, from, to int, prefix string) func(func(client.Record) bool) {
	return func(yield func(client.Record) bool) {
		for i := from; i < to; i++ {
			if !yield(client.Record{ID: prefix + strconv.Itoa(i), Vector: m.Row(i)}) {
				return
			}
		}
	}
}

// sweep runs the first n queries split over the clients and measures recall
// and throughput.
func sweep(ctx context.Context, srv *server, conns []*client.Client, coll string, test *dataset.Matrix, truth [][]int32, n, k, ef int) (SweepPoint, error) {
	got := make([][]int32, n)
	lat := make([]time.Duration, n)
	var next = make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	serverCPU, clientCPU := srv.cpuTime(), selfCPUTime()
	began := time.Now()
	for _, c := range conns {
		wg.Go(func() {
			for q := range next {
				t := time.Now()
				res, err := c.Search(ctx, coll, client.SearchRequest{Vector: test.Row(q), K: k, Ef: ef, Include: []string{}})
				if err != nil {
					errs <- err
					return
				}
				lat[q] = time.Since(t)
				ids := make([]int32, len(res.Results))
				for j, r := range res.Results {
					id, _ := strconv.Atoi(r.ID)
					ids[j] = int32(id)
				}
				got[q] = ids
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	serverCPU, clientCPU = srv.cpuTime()-serverCPU, selfCPUTime()-clientCPU
	select {
	case err := <-errs:
		return SweepPoint{}, err
	default:
	}
	return SweepPoint{Ef: ef, Clients: len(conns), Recall: dataset.Recall(got, truth[:n], k),
		QPS: float64(n) / took.Seconds(), P50: percentile(lat, 50), P99: percentile(lat, 99),
		ServerCPU: serverCPU / time.Duration(n), ClientCPU: clientCPU / time.Duration(n)}, nil
}

// writeLoad runs writers goroutines upserting one record at a time for d,
// over one multiplexed connection, and measures acknowledged writes.
func writeLoad(ctx context.Context, c *client.Client, coll string, train *dataset.Matrix, writers int, d time.Duration) (WritePoint, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				row := (w*7919 + i) % train.Rows
				t := time.Now()
				_, err := c.Upsert(ctx, coll, client.Record{ID: fmt.Sprintf("w%d-%d", w, i), Vector: train.Row(row)})
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return WritePoint{}, firstErr
	}
	return WritePoint{Writers: writers, PerSec: float64(len(lat)) / d.Seconds(), P50: percentile(lat, 50), P99: percentile(lat, 99)}, nil
}

func gets(ctx context.Context, c *client.Client, coll string, rows, n int) ([]time.Duration, time.Duration, error) {
	r := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, n)
	began := time.Now()
	for i := range lat {
		t := time.Now()
		if _, err := c.Get(ctx, coll, strconv.Itoa(r.IntN(rows))); err != nil {
			return nil, 0, err
		}
		lat[i] = time.Since(t)
	}
	return lat, time.Since(began), nil
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func median(d []time.Duration) time.Duration { return percentile(d, 50) }

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianQPS(ps []SweepPoint) SweepPoint {
	s := slices.Clone(ps)
	slices.SortFunc(s, func(a, b SweepPoint) int {
		switch {
		case a.QPS < b.QPS:
			return -1
		case a.QPS > b.QPS:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

// WriteTables prints the report as Markdown tables.
func (r *Report) WriteTables(w io.Writer) {
	fmt.Fprintf(w, "\nEnd to end: hippo serve on a Unix socket, Go client (vector_b64; h2c: HTTP/2 cleartext, http1: WithHTTP1Pool(1); "+
		"a connection per client), %d × %d vectors\n\n", r.Vectors, r.Dim)
	fmt.Fprintf(w, "| index | transport | clients | ef | recall@10 | QPS | p50 | p99 | CPU/query: server + clients |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Sweep {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %.4f | %.0f | %v | %v | %v + %v |\n", p.Index, p.Transport, p.Clients, p.Ef, p.Recall, p.QPS,
			p.P50.Round(time.Microsecond), p.P99.Round(time.Microsecond), p.ServerCPU.Round(time.Microsecond), p.ClientCPU.Round(time.Microsecond))
	}
	fmt.Fprintf(w, "\n| figure | value |\n|---|---|\n")
	row := func(name string, v any) { fmt.Fprintf(w, "| %s | %v |\n", name, v) }
	for _, p := range r.Indexes {
		row(fmt.Sprintf("%s: import of %d vectors (NDJSON, acknowledged)", p.Index, r.Vectors), p.ImportAll.Round(time.Millisecond))
		row(fmt.Sprintf("%s: … until all %d are in the index (linked, or encoded for ivfpq)", p.Index, r.Vectors), p.IndexedAll.Round(time.Millisecond))
		row(fmt.Sprintf("%s: server RSS per vector", p.Index), fmt.Sprintf("%.0f B", p.RSSPerVector))
	}
	if len(r.Writes) == 0 {
		return // SearchOnly
	}
	fmt.Fprintf(w, "\nSingle-record upserts (784 dimensions), each writer waiting for its durable answer\n\n")
	fmt.Fprintf(w, "| writers | upserts/s | p50 | p99 |\n|---|---|---|---|\n")
	for _, p := range r.Writes {
		fmt.Fprintf(w, "| %d | %.0f | %v | %v |\n", p.Writers, p.PerSec, p.P50.Round(time.Microsecond), p.P99.Round(time.Microsecond))
	}
	fmt.Fprintf(w, "\n| figure (on the %s server) | value |\n|---|---|\n", r.Indexes[0].Index)
	row("import of 1,000 × 784 through /import (acknowledged: durable and searchable)", r.Import1k.Round(time.Microsecond*100))
	row("… until linked into HNSW", r.Import1kIdx.Round(time.Microsecond*100))
	for _, g := range r.Gets {
		row("get by id, 1 client, "+g.Transport+": p50 / p99 / per second (first pass p50)",
			fmt.Sprintf("%v / %v / %.0f (%v)", g.P50.Round(time.Microsecond), g.P99.Round(time.Microsecond), g.PerSec, g.FirstP50.Round(time.Microsecond)))
	}
	row("clean shutdown (SIGTERM, snapshot written)", r.Shutdown.Round(time.Millisecond))
	row("restart to ready after clean shutdown", r.Restart.Round(time.Millisecond))
	row("restart to ready after SIGKILL (5,000 writes replayed)", r.RestartKill.Round(time.Millisecond))
	row("… until those are linked into HNSW", r.KillIndexed.Round(time.Millisecond))
}
