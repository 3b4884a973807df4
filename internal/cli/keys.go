package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hippo-db/hippo/client"
	"github.com/hippo-db/hippo/internal/auth"
	"github.com/hippo-db/hippo/internal/store"
)

const keysUsage = `Usage:
  hippo keys create --name NAME --scope read|write|admin [--collections 'agent-*,notes'] [--rate N]
  hippo keys list [--json]
  hippo keys revoke ID

Manages the API keys that TCP listeners require. A running server is asked
over its admin socket (DATA-DIR/admin.sock, or --server); with no server
running, the store in --data-dir is changed directly. A created key is
printed once, on standard output: the server keeps only its hash.

Flags of every subcommand:
  --data-dir DIR   the server's data directory (env HIPPO_DATA_DIR; default hippo-data)
  --server ADDR    the server's admin address: unix:PATH, or http(s)://host:port
                   with --key (env HIPPO_ADMIN)
  --key KEY        an admin API key, for a server reached over TCP (env HIPPO_API_KEY)
`

// keysConfig is what every keys subcommand needs to reach the keys.
type keysConfig struct {
	dataDir string
	server  string
	key     string
}

func (kc *keysConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&kc.dataDir, "data-dir", envOr("HIPPO_DATA_DIR", "hippo-data"), "the server's data directory (env HIPPO_DATA_DIR)")
	fs.StringVar(&kc.server, "server", envOr("HIPPO_ADMIN", ""), "the server's admin address; default unix:DATA-DIR/admin.sock (env HIPPO_ADMIN)")
	fs.StringVar(&kc.key, "key", envOr("HIPPO_API_KEY", ""), "an admin API key, for a server reached over TCP (env HIPPO_API_KEY)")
}

// keyManager is what the subcommands do, either through a running server or
// on the store directly.
type keyManager interface {
	create(ctx context.Context, spec client.KeySpec) (client.Key, string, error)
	list(ctx context.Context) ([]client.Key, error)
	revoke(ctx context.Context, id string) error
	close()
}

func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	fs := flag.NewFlagSet("hippo keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage) }
	var kc keysConfig
	kc.register(fs)
	var spec client.KeySpec
	var collections string
	var asJSON bool
	switch sub {
	case "create":
		fs.StringVar(&spec.Name, "name", "", "a name that says who or what holds the key")
		fs.StringVar(&spec.Scope, "scope", "", "read, write or admin")
		fs.StringVar(&collections, "collections", "*", "comma-separated glob patterns of the collections the key may use")
		fs.Float64Var(&spec.Rate, "rate", 0, "requests per second for this key; 0: the server's --key-rate")
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	case "revoke":
	default:
		fmt.Fprintf(stderr, "hippo keys: unknown subcommand %q\n\n%s", sub, keysUsage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if sub == "create" {
		if spec.Name == "" || spec.Scope == "" {
			fmt.Fprintln(stderr, "hippo keys create: --name and --scope are required")
			return 2
		}
		for _, p := range strings.Split(collections, ",") {
			if p = strings.TrimSpace(p); p != "" {
				spec.Collections = append(spec.Collections, p)
			}
		}
	}
	if (sub == "revoke") != (fs.NArg() == 1) || fs.NArg() > 1 {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}

	km, via, err := kc.open()
	if err != nil {
		fmt.Fprintf(stderr, "hippo keys: %v\n", err)
		return 1
	}
	defer km.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch sub {
	case "create":
		key, token, err := km.create(ctx, spec)
		if err != nil {
			fmt.Fprintf(stderr, "hippo keys create: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "Created key %s (%q, scope %s, collections %s) %s.\n"+
			"It is printed once, below; store it now. Send it as: Authorization: Bearer KEY\n",
			key.ID, key.Name, key.Scope, strings.Join(key.Collections, ","), via)
		fmt.Fprintln(stdout, token)
	case "list":
		keys, err := km.list(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "hippo keys list: %v\n", err)
			return 1
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if keys == nil {
				keys = []client.Key{}
			}
			enc.Encode(keys)
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tCOLLECTIONS\tRATE\tCREATED")
		for _, k := range keys {
			rate := "default"
			if k.Rate > 0 {
				rate = fmt.Sprintf("%g/s", k.Rate)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Scope, strings.Join(k.Collections, ","), rate, k.CreatedAt.Local().Format(time.DateTime))
		}
		tw.Flush()
	case "revoke":
		if err := km.revoke(ctx, fs.Arg(0)); err != nil {
			fmt.Fprintf(stderr, "hippo keys revoke: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "Revoked key %s %s; requests with it are refused from now on.\n", fs.Arg(0), via)
	}
	return 0
}

// open reaches the keys: through the server at --server, or the admin
// socket in the data directory; with neither answering, through the store
// in the data directory, which fails if a server holds it.
func (kc *keysConfig) open() (keyManager, string, error) {
	addr := kc.server
	explicit := addr != ""
	if !explicit {
		addr = "unix:" + filepath.Join(kc.dataDir, "admin.sock")
	}
	var opts []client.Option
	if kc.key != "" {
		opts = append(opts, client.WithHeader("Authorization", "Bearer "+kc.key))
	}
	c, err := client.New(addr, append(opts, client.WithTimeout(30*time.Second))...)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = c.Health(ctx)
	cancel()
	if err == nil || explicit || !refused(err) {
		return serverKeys{c}, "on the server at " + addr, nil
	}
	c.Close()
	// No server on the admin socket: change the store directly.
	dir := filepath.Join(kc.dataDir, "store")
	if _, err := os.Stat(dir); err != nil {
		return nil, "", fmt.Errorf("no server answers on %s and there is no store in %s", addr, kc.dataDir)
	}
	st, err := store.OpenPebble(dir, store.PebbleOptions{CacheBytes: 1 << 20})
	if err != nil {
		return nil, "", fmt.Errorf("no server answers on %s, and the store cannot be opened (is a server without an admin socket running? use --server): %w", addr, err)
	}
	kr, err := auth.OpenKeyring(st, auth.KeyringOptions{})
	if err != nil {
		st.Close()
		return nil, "", err
	}
	return storeKeys{kr, st}, "in the store in " + kc.dataDir + " (no server running)", nil
}

// refused reports whether err says that nothing listens at the address.
func refused(err error) bool {
	var oe *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		(errors.As(err, &oe) && oe.Op == "dial")
}

type serverKeys struct{ c *client.Client }

func (s serverKeys) create(ctx context.Context, spec client.KeySpec) (client.Key, string, error) {
	return s.c.CreateKey(ctx, spec)
}
func (s serverKeys) list(ctx context.Context) ([]client.Key, error) { return s.c.ListKeys(ctx) }
func (s serverKeys) revoke(ctx context.Context, id string) error    { return s.c.RevokeKey(ctx, id) }
func (s serverKeys) close()                                         { s.c.Close() }

type storeKeys struct {
	kr *auth.Keyring
	st *store.Pebble
}

func (s storeKeys) create(_ context.Context, spec client.KeySpec) (client.Key, string, error) {
	k, token, err := s.kr.Create(auth.KeySpec{Name: spec.Name, Scope: auth.Class(spec.Scope), Collections: spec.Collections, Rate: spec.Rate}, time.Now())
	return toClientKey(k), token, err
}

func (s storeKeys) list(context.Context) ([]client.Key, error) {
	var out []client.Key
	for _, k := range s.kr.List() {
		out = append(out, toClientKey(k))
	}
	return out, nil
}

func (s storeKeys) revoke(_ context.Context, id string) error {
	_, err := s.kr.Revoke(id)
	return err
}

func (s storeKeys) close() { s.st.Close() }

func toClientKey(k auth.Key) client.Key {
	return client.Key{ID: k.ID, Name: k.Name, Scope: string(k.Scope), Collections: k.Collections, Rate: k.Rate, CreatedAt: k.CreatedAt}
}
