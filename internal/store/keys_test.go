package store

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestKeysPersistAndStayOutOfTheLog(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	k1 := APIKey{ID: "00aa", Name: "agent", Scope: "read", Collections: []string{"agent-*"}, Hash: make([]byte, 32), CreatedAt: t0}
	k2 := APIKey{ID: "00bb", Name: "ops", Scope: "admin", Collections: []string{"*"}, Rate: 5, Hash: []byte{1, 2, 3}, CreatedAt: t0}
	for _, k := range []APIKey{k2, k1} {
		if err := s.PutKey(&k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteKey("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
	last, _ := s.LastSeq()
	if last != 0 {
		t.Fatalf("keys wrote to the change log: last seq %d", last)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, fs)
	defer s.Close()
	got, err := s.Keys()
	if err != nil || !reflect.DeepEqual(got, []APIKey{k1, k2}) {
		t.Fatalf("keys after reopen: %+v, %v", got, err)
	}
	if err := s.DeleteKey("00aa"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Keys(); len(got) != 1 || got[0].ID != "00bb" {
		t.Fatalf("after delete: %+v", got)
	}
	if cs, err := s.Collections(); err != nil || len(cs) != 0 {
		t.Fatalf("keys seen as collections: %v %v", cs, err)
	}
}
