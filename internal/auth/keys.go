package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/hippo-db/hippo/internal/store"
)

// An API key as a client sends it:
//
//	hk_<id>_<secret>
//
// id is 16 hex digits (8 random bytes), which names the key in lists, logs
// and revocation; secret is 52 lowercase base32 characters (32 random bytes,
// 256 bits). Only SHA-256(secret) is stored.
const (
	keyPrefix    = "hk_"
	keyIDBytes   = 8
	secretBytes  = 32
	keyIDLen     = 2 * keyIDBytes
	secretLen    = (secretBytes*8 + 4) / 5 // base32 without padding
	tokenLen     = len(keyPrefix) + keyIDLen + 1 + secretLen
	maxKeyName   = 64
	maxPatterns  = 64
	maxPatternLn = 128
)

var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Key describes an API key. It never holds the secret.
type Key struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Scope       Class     `json:"scope"`
	Collections []string  `json:"collections"` // glob patterns (path.Match); ["*"] is every collection
	Rate        float64   `json:"rate,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Unrestricted reports whether the key reaches every collection.
func (k *Key) Unrestricted() bool { return slices.Contains(k.Collections, "*") }

// AllowsCollection reports whether one of the key's patterns matches name.
func (k *Key) AllowsCollection(name string) bool {
	for _, p := range k.Collections {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// KeySpec is what a new key is made of.
type KeySpec struct {
	Name        string
	Scope       Class
	Collections []string // empty: ["*"]
	Rate        float64  // requests per second; 0: the server's default
}

// KeyringOptions configure a Keyring. The zero value means no per-key rate
// limit and no per-key stream limit.
type KeyringOptions struct {
	// DefaultRate is the requests per second of keys created without a rate
	// of their own; 0 is unlimited.
	DefaultRate float64
	// MaxStreams bounds the event streams and WebSockets one key may hold
	// open at once; 0 is unlimited.
	MaxStreams int
}

// Keyring holds the API keys in memory, in front of the store that keeps
// them. It is safe for concurrent use. Every change goes to the store first
// (synced), then to memory, under one lock: a change answered is in force.
type Keyring struct {
	store store.KeyStore
	opts  KeyringOptions

	mu struct {
		sync.RWMutex
		keys map[string]*ActiveKey // by id
	}
}

// ActiveKey is a key in force, with its limits. Obtained from Authenticate;
// its Key must not be modified.
type ActiveKey struct {
	Key     Key
	hash    [sha256.Size]byte
	limiter *rate.Limiter // nil: unlimited
	Streams Gate
	// done is cancelled by Revoke.
	done   context.Context
	revoke context.CancelFunc
}

// Allow takes one request from the key's rate limit; if none is left it
// returns false and how long until one is.
func (a *ActiveKey) Allow() (bool, time.Duration) { return allow(a.limiter) }

// Context is cancelled when the key is revoked: requests and streams
// holding the key end with it (context.AfterFunc).
func (a *ActiveKey) Context() context.Context { return a.done }

// OpenKeyring loads the keys of ks.
func OpenKeyring(ks store.KeyStore, opts KeyringOptions) (*Keyring, error) {
	kr := &Keyring{store: ks, opts: opts}
	kr.mu.keys = make(map[string]*ActiveKey)
	stored, err := ks.Keys()
	if err != nil {
		return nil, fmt.Errorf("load API keys: %w", err)
	}
	for _, sk := range stored {
		if len(sk.Hash) != sha256.Size {
			return nil, fmt.Errorf("load API keys: %w: key %q has a %d-byte hash", store.ErrCorrupt, sk.ID, len(sk.Hash))
		}
		k := Key{ID: sk.ID, Name: sk.Name, Scope: Class(sk.Scope), Collections: sk.Collections, Rate: sk.Rate, CreatedAt: sk.CreatedAt}
		kr.mu.keys[k.ID] = kr.activate(k, [sha256.Size]byte(sk.Hash))
	}
	return kr, nil
}

func (kr *Keyring) activate(k Key, hash [sha256.Size]byte) *ActiveKey {
	a := &ActiveKey{Key: k, hash: hash}
	a.done, a.revoke = context.WithCancel(context.Background())
	r := k.Rate
	if r == 0 {
		r = kr.opts.DefaultRate
	}
	if r > 0 {
		a.limiter = rate.NewLimiter(rate.Limit(r), max(1, int(math.Ceil(r))))
	}
	a.Streams.Max = int64(kr.opts.MaxStreams)
	return a
}

// Create makes a new key and returns it with its token, the only time the
// token exists outside the client.
func (kr *Keyring) Create(spec KeySpec, now time.Time) (Key, string, error) {
	if err := spec.validate(); err != nil {
		return Key{}, "", err
	}
	var idb [keyIDBytes]byte
	var secret [secretBytes]byte
	rand.Read(idb[:]) // crypto/rand.Read never fails
	rand.Read(secret[:])
	k := Key{
		ID: hex.EncodeToString(idb[:]), Name: spec.Name, Scope: spec.Scope,
		Collections: spec.Collections, Rate: spec.Rate, CreatedAt: now.UTC().Truncate(time.Second),
	}
	if len(k.Collections) == 0 {
		k.Collections = []string{"*"}
	}
	secretText := secretEncoding.EncodeToString(secret[:])
	hash := sha256.Sum256([]byte(secretText))
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if _, dup := kr.mu.keys[k.ID]; dup {
		return Key{}, "", errors.New("hippo: key id collision; try again")
	}
	if err := kr.store.PutKey(&store.APIKey{
		ID: k.ID, Name: k.Name, Scope: string(k.Scope), Collections: k.Collections,
		Rate: k.Rate, Hash: hash[:], CreatedAt: k.CreatedAt,
	}); err != nil {
		return Key{}, "", err
	}
	kr.mu.keys[k.ID] = kr.activate(k, hash)
	return k, keyPrefix + k.ID + "_" + secretText, nil
}

func (s *KeySpec) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if s.Name == "" || len(s.Name) > maxKeyName || !utf8.ValidString(s.Name) ||
		strings.ContainsFunc(s.Name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return bad("key name must be 1 to %d printable characters", maxKeyName)
	}
	if !s.Scope.Valid() {
		return bad("scope %q: want read, write or admin", s.Scope)
	}
	if len(s.Collections) > maxPatterns {
		return bad("at most %d collection patterns, got %d", maxPatterns, len(s.Collections))
	}
	for _, p := range s.Collections {
		if p == "" || len(p) > maxPatternLn {
			return bad("collection pattern %q: want 1 to %d characters", p, maxPatternLn)
		}
		if _, err := path.Match(p, ""); err != nil {
			return bad("collection pattern %q: %v", p, err)
		}
	}
	if s.Rate < 0 || math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) {
		return bad("rate must be a non-negative number of requests per second")
	}
	return nil
}

// List returns every key, ordered by creation time then id.
func (kr *Keyring) List() []Key {
	kr.mu.RLock()
	out := make([]Key, 0, len(kr.mu.keys))
	for _, a := range kr.mu.keys {
		out = append(out, a.Key)
	}
	kr.mu.RUnlock()
	slices.SortFunc(out, func(a, b Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Revoke deletes a key. Requests that present it from now on are refused,
// and the Context of its ActiveKey is cancelled so that streams holding it
// end.
func (kr *Keyring) Revoke(id string) (Key, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	a, ok := kr.mu.keys[id]
	if !ok {
		return Key{}, fmt.Errorf("%w: no key %q", ErrKeyNotFound, id)
	}
	if err := kr.store.DeleteKey(id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return Key{}, err
	}
	delete(kr.mu.keys, id)
	a.revoke()
	return a.Key, nil
}

// Authenticate returns the key a token belongs to, or an error wrapping
// ErrUnauthenticated that says what is wrong without revealing whether the
// id exists.
func (kr *Keyring) Authenticate(token string) (*ActiveKey, error) {
	if len(token) != tokenLen || !strings.HasPrefix(token, keyPrefix) || token[len(keyPrefix)+keyIDLen] != '_' {
		return nil, fmt.Errorf("%w: malformed API key (want hk_<id>_<secret>)", ErrUnauthenticated)
	}
	id := token[len(keyPrefix) : len(keyPrefix)+keyIDLen]
	hash := sha256.Sum256([]byte(token[len(keyPrefix)+keyIDLen+1:]))
	kr.mu.RLock()
	a := kr.mu.keys[id]
	kr.mu.RUnlock()
	if a == nil || subtle.ConstantTimeCompare(hash[:], a.hash[:]) != 1 {
		return nil, fmt.Errorf("%w: unknown or revoked API key", ErrUnauthenticated)
	}
	return a, nil
}

// KeyIDOf returns the id part of a token, for logs; "" if it has none.
func KeyIDOf(token string) string {
	if len(token) < len(keyPrefix)+keyIDLen || !strings.HasPrefix(token, keyPrefix) {
		return ""
	}
	return token[len(keyPrefix) : len(keyPrefix)+keyIDLen]
}
