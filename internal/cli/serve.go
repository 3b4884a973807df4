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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hippo-db/hippo/internal/auth"
	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/h1"
	"github.com/hippo-db/hippo/internal/httpapi"
	"github.com/hippo-db/hippo/internal/store"
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
	dataDir           string
	listen            listFlag
	listeners         []auth.ListenerSpec
	snapshotInterval  time.Duration
	indexWorkers      int
	logLevel          string
	accessLog         bool
	shutdownTimeout   time.Duration
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	requestTimeout    time.Duration
	keyRate           float64
	keyMaxStreams     int
	corsOrigins       string
	feedCapacity      int
	feedMemoryBytes   int64
	retention         engine.Retention
	cacheMiB          int64
}

const listenHelp = `address to serve on, with options; repeat for several:
  host:port[?OPTIONS]     TCP (API keys required unless auth=none, loopback only)
  unix:PATH[?OPTIONS]     a Unix socket
OPTIONS are name=value pairs joined by '&', e.g.
  unix:hippo-data/ro.sock?class=read&mode=0660&group=hippo&uids=1000,1001
  127.0.0.1:7700?tls_cert=cert.pem&tls_key=key.pem
  127.0.0.1:7701?auth=none&class=write
Options:
%s(env HIPPO_LISTEN, comma-separated; default: 127.0.0.1:7700 (API keys),
unix:DATA-DIR/ro.sock (class=read), unix:DATA-DIR/rw.sock (class=write) and
unix:DATA-DIR/admin.sock (class=admin, mode 0600, for hippo keys))`

func serve(args []string, stdout, stderr io.Writer) int {
	var cfg serveConfig
	fs := flag.NewFlagSet("hippo serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.dataDir, "data-dir", envOr("HIPPO_DATA_DIR", "hippo-data"),
		"directory of the embedded store and index snapshots (env HIPPO_DATA_DIR)")
	fs.Var(&cfg.listen, "listen", fmt.Sprintf(listenHelp, auth.ListenerOptionsHelp()))
	for _, d := range []struct {
		p     *time.Duration
		name  string
		env   string
		def   time.Duration
		usage string
	}{
		{&cfg.readHeaderTimeout, "read-header-timeout", "HIPPO_READ_HEADER_TIMEOUT", 10 * time.Second,
			"how long a client may take to send a request's headers (and a TLS handshake) before its connection is closed (env HIPPO_READ_HEADER_TIMEOUT)"},
		{&cfg.idleTimeout, "idle-timeout", "HIPPO_IDLE_TIMEOUT", 2 * time.Minute,
			"how long an idle keep-alive connection stays open (env HIPPO_IDLE_TIMEOUT)"},
		{&cfg.requestTimeout, "request-timeout", "HIPPO_REQUEST_TIMEOUT", time.Minute,
			"how long reading a request and writing its answer may take, streams (import, export, batch search, events) excepted; negative: no limit (env HIPPO_REQUEST_TIMEOUT)"},
	} {
		if err := envFlag(fs.DurationVar, d.p, d.name, d.env, d.def, time.ParseDuration, d.usage); err != nil {
			fmt.Fprintf(stderr, "hippo serve: %v\n", err)
			return 2
		}
	}
	if err := envFlag(fs.Float64Var, &cfg.keyRate, "key-rate", "HIPPO_KEY_RATE", 1000, parseFloat64,
		"requests per second each API key may make, unless the key has a rate of its own; 0: unlimited (env HIPPO_KEY_RATE)"); err != nil {
		fmt.Fprintf(stderr, "hippo serve: %v\n", err)
		return 2
	}
	fs.IntVar(&cfg.keyMaxStreams, "key-max-streams", 32, "event streams and WebSockets each API key may hold open at once; 0: unlimited")
	fs.StringVar(&cfg.corsOrigins, "cors-origins", envOr("HIPPO_CORS_ORIGINS", ""),
		"browser origins allowed to call the API, comma-separated (https://app.example), or *; default none (env HIPPO_CORS_ORIGINS)")
	fs.BoolVar(&cfg.accessLog, "access-log", envOr("HIPPO_ACCESS_LOG", "") == "1",
		"log every request (method, path, status, listener, peer uid/gid/pid, key id) at info level; otherwise at debug level (env HIPPO_ACCESS_LOG=1)")
	if err := envFlag(fs.DurationVar, &cfg.snapshotInterval, "snapshot-interval", "HIPPO_SNAPSHOT_INTERVAL", 5*time.Minute, time.ParseDuration,
		"how often changed indexes are snapshotted; negative: only at shutdown (env HIPPO_SNAPSHOT_INTERVAL)"); err != nil {
		fmt.Fprintf(stderr, "hippo serve: %v\n", err)
		return 2
	}
	fs.IntVar(&cfg.indexWorkers, "index-workers", 0, "goroutines that build the vector index; 0: one per CPU")
	fs.IntVar(&cfg.feedCapacity, "feed-memory-events", 0, "recent change-feed events kept in memory for live subscribers; 0: 4096")
	fs.Int64Var(&cfg.feedMemoryBytes, "feed-memory-bytes", 0, "bytes those events may hold (records, encodings); 0: 128 MiB")
	if err := envFlag(fs.DurationVar, &cfg.retention.MaxAge, "feed-retain-age", "HIPPO_FEED_RETAIN_AGE", 0, time.ParseDuration,
		"trim change-feed events older than this; 0 keeps them (env HIPPO_FEED_RETAIN_AGE)"); err != nil {
		fmt.Fprintf(stderr, "hippo serve: %v\n", err)
		return 2
	}
	if err := envFlag(fs.Int64Var, &cfg.retention.MaxBytes, "feed-retain-bytes", "HIPPO_FEED_RETAIN_BYTES", 0, parseInt64,
		"trim the oldest change-feed events beyond about this many bytes on disk; 0: no limit (env HIPPO_FEED_RETAIN_BYTES)"); err != nil {
		fmt.Fprintf(stderr, "hippo serve: %v\n", err)
		return 2
	}
	if err := envFlag(fs.Int64Var, &cfg.cacheMiB, "cache-mib", "HIPPO_CACHE_MIB", store.DefaultCacheBytes>>20, parseInt64,
		"MiB of memory for the store's block cache: records, events and their indexes read recently (env HIPPO_CACHE_MIB)"); err != nil {
		fmt.Fprintf(stderr, "hippo serve: %v\n", err)
		return 2
	}
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
			cfg.listen.values = auth.SplitListenList(env)
		}
	}
	if len(cfg.listen.values) == 0 {
		cfg.listeners = defaultListeners(cfg.dataDir)
	}
	for _, v := range cfg.listen.values {
		sp, err := auth.ParseListener(v)
		if err != nil {
			fmt.Fprintf(stderr, "hippo serve: %v\n", err)
			return 2
		}
		cfg.listeners = append(cfg.listeners, sp)
	}
	if cfg.feedCapacity < 0 || cfg.feedMemoryBytes < 0 {
		fmt.Fprintf(stderr, "hippo serve: --feed-memory-events and --feed-memory-bytes: want 0 (the default) or more, got %d and %d\n",
			cfg.feedCapacity, cfg.feedMemoryBytes)
		return 2
	}
	if cfg.cacheMiB < 1 || cfg.cacheMiB > 1<<30 {
		fmt.Fprintf(stderr, "hippo serve: --cache-mib: want 1 to %d, got %d\n", 1<<30, cfg.cacheMiB)
		return 2
	}
	if cfg.corsOrigins != "" {
		if err := httpapi.CheckCORSOrigins(strings.Split(cfg.corsOrigins, ",")); err != nil {
			fmt.Fprintf(stderr, "hippo serve: --cors-origins: %v\n", err)
			return 2
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

// envFlag defines a flag with define (a FlagSet's Int64Var, DurationVar…)
// whose default is the environment variable env, parsed by parse, if set,
// else def.
func envFlag[T any](define func(p *T, name string, value T, usage string), p *T, name, env string, def T,
	parse func(string) (T, error), usage string) error {
	if v, ok := os.LookupEnv(env); ok {
		var err error
		if def, err = parse(v); err != nil {
			return fmt.Errorf("%s: %v", env, err)
		}
	}
	define(p, name, def, usage)
	return nil
}

func parseInt64(s string) (int64, error)     { return strconv.ParseInt(s, 10, 64) }
func parseFloat64(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

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
		FeedMemoryBytes:  cfg.feedMemoryBytes,
		Retention:        cfg.retention,
		CacheBytes:       cfg.cacheMiB << 20,
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

	keyStore, err := eng.KeyStore()
	if err != nil {
		return err
	}
	keys, err := auth.OpenKeyring(keyStore, auth.KeyringOptions{DefaultRate: cfg.keyRate, MaxStreams: cfg.keyMaxStreams})
	if err != nil {
		return err
	}
	listeners, err := openListeners(cfg.listeners)
	if err != nil {
		return err
	}
	var cors []string
	if cfg.corsOrigins != "" {
		cors = strings.Split(cfg.corsOrigins, ",")
	}
	api := httpapi.New(eng, httpapi.Options{
		Logger:         log,
		Keys:           keys,
		RefuseUnlisted: true,
		RequestTimeout: cfg.requestTimeout,
		CORSOrigins:    cors,
		AccessLog:      cfg.accessLog,
	})
	errc := make(chan error, len(listeners))
	var wg sync.WaitGroup
	servers := make([]server, len(listeners))
	needKeys := false
	for i, l := range listeners {
		// One server per listener: each has its own identity for its
		// connections (ConnContext), protocols and TLS configuration.
		var protocols http.Protocols
		protocols.SetHTTP1(true)
		if l.cert != nil {
			protocols.SetHTTP2(true)
		} else {
			protocols.SetUnencryptedHTTP2(true)
		}
		srv := &http.Server{
			Handler:           api,
			Protocols:         &protocols,
			TLSConfig:         l.tlsConfig(),
			ReadHeaderTimeout: cfg.readHeaderTimeout,
			IdleTimeout:       cfg.idleTimeout,
			ConnContext:       l.connContext,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		srv.RegisterOnShutdown(api.Shutdown)
		servers[i] = srv
		if l.cert == nil {
			// Plain HTTP/1.1 requests are served by package h1, which
			// hands the rest (HTTP/2, streams, upgrades) to srv, whose
			// settings it shares.
			servers[i] = &h1.Server{Fallback: srv, Lean: api.Lean}
		}
		sp := &l.policy.Spec
		needKeys = needKeys || sp.Auth == auth.AuthKey
		log.Info("listening", "addr", l.describe(), "class", sp.Class, "auth", sp.Auth)
		wg.Go(func() {
			var err error
			if l.cert != nil {
				err = srv.ServeTLS(l, "", "")
			} else {
				err = servers[i].Serve(l)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", l.describe(), err)
			}
		})
	}
	if needKeys && len(keys.List()) == 0 {
		log.Warn("listeners that need API keys refuse every request until one exists: create one with hippo keys create")
	}
	log.Info("ready", "took", time.Since(start).Round(time.Millisecond))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	var serveErr error
wait:
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				reloadCertificates(listeners, log)
				continue
			}
			log.Info("shutting down", "signal", s.String())
			break wait
		case serveErr = <-errc:
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	var shutdown sync.WaitGroup
	for _, srv := range servers {
		shutdown.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				log.Warn("shutdown: requests still running were cut off", "err", err)
				srv.Close()
			}
		})
	}
	shutdown.Wait()
	api.Shutdown() // the streams taken over from the servers, which they do not wait for
	wg.Wait()
	closeListeners(listeners)
	return serveErr
}

// server is what serves one listener: an *http.Server for TLS, an
// *h1.Server for plain connections.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// reloadCertificates reads every TLS listener's certificate files again
// (SIGHUP). A listener whose files fail to load keeps its certificate.
func reloadCertificates(listeners []*listener, log *slog.Logger) {
	for _, l := range listeners {
		if l.cert == nil {
			continue
		}
		if err := l.cert.Reload(); err != nil {
			log.Error("TLS certificate not reloaded; the previous one stays in use", "addr", l.describe(), "err", err)
			continue
		}
		log.Info("TLS certificate reloaded", "addr", l.describe())
	}
}
