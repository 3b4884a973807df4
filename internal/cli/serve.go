package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/httpapi"
)

// listFlag is a flag that may be given many times.
type listFlag struct {
	values []string
	set    bool
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }
func (l *listFlag) Set(v string) error {
	if !l.set {
		l.values, l.set = nil, true
	}
	l.values = append(l.values, v)
	return nil
}

type serveConfig struct {
	dataDir          string
	listen           listFlag
	snapshotInterval time.Duration
	indexWorkers     int
	logLevel         string
	shutdownTimeout  time.Duration
	feedCapacity     int
	retention        engine.Retention
}

func serve(args []string, stdout, stderr io.Writer) int {
	var cfg serveConfig
	fs := flag.NewFlagSet("hippo serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.dataDir, "data-dir", envOr("HIPPO_DATA_DIR", "hippo-data"),
		"directory of the embedded store and index snapshots (env HIPPO_DATA_DIR)")
	fs.Var(&cfg.listen, "listen",
		"address to serve on; repeat for several: host:port for TCP, unix:PATH for a Unix socket\n"+
			"(env HIPPO_LISTEN, comma-separated; default 127.0.0.1:7700 and unix:DATA-DIR/hippo.sock)")
	if err := durationFlag(fs, &cfg.snapshotInterval, "snapshot-interval", "HIPPO_SNAPSHOT_INTERVAL", 5*time.Minute,
		"how often changed indexes are snapshotted; negative: only at shutdown (env HIPPO_SNAPSHOT_INTERVAL)"); err != nil {
		fmt.Fprintf(stderr, "hippo serve: %v\n", err)
		return 2
	}
	fs.IntVar(&cfg.indexWorkers, "index-workers", 0, "goroutines that build the vector index; 0: one per CPU")
	fs.IntVar(&cfg.feedCapacity, "feed-memory-events", 0, "recent change-feed events kept in memory for live subscribers; 0: 4096")
	if err := durationFlag(fs, &cfg.retention.MaxAge, "feed-retain-age", "HIPPO_FEED_RETAIN_AGE", 0,
		"trim change-feed events older than this; 0 keeps them (env HIPPO_FEED_RETAIN_AGE)"); err != nil {
		fmt.Fprintf(stderr, "hippo serve: %v\n", err)
		return 2
	}
	retainBytes, err := strconv.ParseInt(envOr("HIPPO_FEED_RETAIN_BYTES", "0"), 10, 64)
	if err != nil {
		fmt.Fprintf(stderr, "hippo serve: HIPPO_FEED_RETAIN_BYTES: %v\n", err)
		return 2
	}
	fs.Int64Var(&cfg.retention.MaxBytes, "feed-retain-bytes", retainBytes,
		"trim the oldest change-feed events beyond about this many bytes on disk; 0: no limit (env HIPPO_FEED_RETAIN_BYTES)")
	fs.StringVar(&cfg.logLevel, "log-level", envOr("HIPPO_LOG_LEVEL", "info"), "debug, info, warn or error (env HIPPO_LOG_LEVEL)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for requests in flight")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hippo serve [flags]\n\nRuns Hippo on its embedded store.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hippo serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if !cfg.listen.set {
		if env := os.Getenv("HIPPO_LISTEN"); env != "" {
			cfg.listen.values = strings.Split(env, ",")
		} else {
			cfg.listen.values = []string{"127.0.0.1:7700", "unix:" + filepath.Join(cfg.dataDir, "hippo.sock")}
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		fmt.Fprintf(stderr, "hippo serve: --log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := run(cfg, log); err != nil {
		log.Error("hippo serve", "err", err)
		return 1
	}
	return 0
}

// durationFlag defines a duration flag whose default comes from env.
func durationFlag(fs *flag.FlagSet, p *time.Duration, name, env string, def time.Duration, usage string) error {
	d := def
	if v, ok := os.LookupEnv(env); ok {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("%s: %v", env, err)
		}
	}
	fs.DurationVar(p, name, d, usage)
	return nil
}

// run serves until SIGINT or SIGTERM, then shuts down in order: stop taking
// connections, finish requests, close the engine (which snapshots indexes).
func run(cfg serveConfig, log *slog.Logger) error {
	start := time.Now()
	eng, err := engine.Open(engine.Options{
		Dir:              cfg.dataDir,
		Logger:           log,
		IndexWorkers:     cfg.indexWorkers,
		SnapshotInterval: cfg.snapshotInterval,
		FeedCapacity:     cfg.feedCapacity,
		Retention:        cfg.retention,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := eng.Close(); err != nil {
			log.Error("close engine", "err", err)
		}
	}()
	log.Info("store open", "dir", cfg.dataDir, "collections", len(eng.Collections()),
		"seq", eng.LastSeq(), "took", time.Since(start).Round(time.Millisecond))

	listeners, err := openListeners(cfg.listen.values)
	if err != nil {
		return err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	api := httpapi.New(eng, httpapi.Options{Logger: log})
	srv := &http.Server{
		Handler:           api,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(api.Shutdown)
	errc := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		log.Info("listening", "addr", describe(l))
		wg.Go(func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", describe(l), err)
			}
		})
	}
	log.Info("ready", "took", time.Since(start).Round(time.Millisecond))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var serveErr error
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case serveErr = <-errc:
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown: requests still running were cut off", "err", err)
		srv.Close()
	}
	wg.Wait()
	return serveErr
}

func describe(l net.Listener) string {
	if l.Addr().Network() == "unix" {
		return "unix:" + l.Addr().String()
	}
	return "http://" + l.Addr().String()
}

// openListeners opens every address, or none: on an error the ones already
// open are closed.
func openListeners(addrs []string) ([]net.Listener, error) {
	var out []net.Listener
	for _, a := range addrs {
		l, err := listen(strings.TrimSpace(a))
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errors.New("no listen address")
	}
	return out, nil
}

// listen opens one listener. "unix:PATH", "unix://PATH" or a path (with a
// slash) is a Unix socket; anything else, with an optional "tcp://" or
// "http://", is a TCP host:port.
func listen(addr string) (net.Listener, error) {
	if path, ok := unixPath(addr); ok {
		return listenUnix(path)
	}
	hostport := strings.TrimPrefix(strings.TrimPrefix(addr, "tcp://"), "http://")
	l, err := net.Listen("tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

func unixPath(addr string) (string, bool) {
	switch {
	case strings.HasPrefix(addr, "unix://"):
		return strings.TrimPrefix(addr, "unix://"), true
	case strings.HasPrefix(addr, "unix:"):
		return strings.TrimPrefix(addr, "unix:"), true
	case strings.Contains(addr, "/"):
		return addr, true
	}
	return "", false
}

// listenUnix listens on a Unix socket with mode 0660. A socket file left by a
// dead process is replaced; one a live server answers on is an error.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("listen on unix:%s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on unix:%s: the path exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on unix:%s: another server is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen on unix:%s: remove stale socket: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on unix:%s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on unix:%s: %w", path, err)
	}
	return l, nil
}
