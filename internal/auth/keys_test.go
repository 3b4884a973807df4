package auth

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/store"
)

// memKeys is a KeyStore in memory.
type memKeys struct {
	mu   sync.Mutex
	keys map[string]store.APIKey
	fail error
}

func (m *memKeys) PutKey(k *store.APIKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.keys == nil {
		m.keys = map[string]store.APIKey{}
	}
	m.keys[k.ID] = *k
	return nil
}

func (m *memKeys) DeleteKey(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if _, ok := m.keys[id]; !ok {
		return store.ErrNotFound
	}
	delete(m.keys, id)
	return nil
}

func (m *memKeys) Keys() ([]store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.APIKey
	for _, k := range m.keys {
		out = append(out, k)
	}
	return out, nil
}

func TestKeyring(t *testing.T) {
	ks := &memKeys{}
	kr, err := OpenKeyring(ks, KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	key, token, err := kr.Create(KeySpec{Name: "agent", Scope: ClassWrite, Collections: []string{"agent-*", "notes"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != tokenLen || !strings.HasPrefix(token, "hk_"+key.ID+"_") || KeyIDOf(token) != key.ID {
		t.Fatalf("token %q for id %s", token, key.ID)
	}
	stored := ks.keys[key.ID]
	if strings.Contains(string(stored.Hash), token[len(token)-52:]) || len(stored.Hash) != 32 {
		t.Fatal("the secret is stored")
	}
	a, err := kr.Authenticate(token)
	if err != nil || a.Key.ID != key.ID {
		t.Fatalf("authenticate: %v", err)
	}
	if !a.Key.AllowsCollection("agent-7") || !a.Key.AllowsCollection("notes") || a.Key.AllowsCollection("notes2") || a.Key.Unrestricted() {
		t.Fatal("collection patterns")
	}
	for _, bad := range []string{"", token[:len(token)-1], token + "a", strings.Replace(token, "hk_", "hx_", 1),
		token[:len(token)-1] + "b", "hk_" + strings.Repeat("0", 16) + "_" + token[len(token)-52:]} {
		if _, err := kr.Authenticate(bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Reopened from the store, the key still works.
	kr2, err := OpenKeyring(ks, KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr2.Authenticate(token); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if l := kr2.List(); len(l) != 1 || l[0].Name != "agent" || !l[0].CreatedAt.Equal(now) {
		t.Fatalf("list: %+v", l)
	}
	// Revocation: refused at once, its context cancelled.
	if _, err := kr.Revoke(key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Authenticate(token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked key: %v", err)
	}
	select {
	case <-a.Context().Done():
	default:
		t.Fatal("revoked key's context not cancelled")
	}
	if _, err := kr.Revoke(key.ID); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	// A store that fails leaves memory as it was.
	_, token2, _ := kr.Create(KeySpec{Name: "b", Scope: ClassRead}, now)
	ks.fail = errors.New("disk full")
	if _, _, err := kr.Create(KeySpec{Name: "c", Scope: ClassRead}, now); err == nil {
		t.Fatal("create with a failing store")
	}
	if _, err := kr.Revoke(KeyIDOf(token2)); err == nil {
		t.Fatal("revoke with a failing store")
	}
	if _, err := kr.Authenticate(token2); err != nil {
		t.Fatalf("a revocation that failed to persist took effect: %v", err)
	}
	for _, spec := range []KeySpec{{Scope: ClassRead}, {Name: "x", Scope: "root"}, {Name: "x", Scope: ClassRead, Collections: []string{"[a"}},
		{Name: "x\n", Scope: ClassRead}, {Name: "x", Scope: ClassRead, Rate: -1}} {
		if _, _, err := kr.Create(spec, now); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", spec, err)
		}
	}
}

// FuzzAuthenticate: arbitrary tokens never panic and never authenticate.
func FuzzAuthenticate(f *testing.F) {
	kr, _ := OpenKeyring(&memKeys{}, KeyringOptions{})
	_, token, _ := kr.Create(KeySpec{Name: "k", Scope: ClassRead}, time.Now())
	f.Add(token)
	f.Add("hk_0000000000000000_" + strings.Repeat("a", 52))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := kr.Authenticate(s); err == nil && s != token {
			t.Fatalf("%q authenticated", s)
		}
	})
}
