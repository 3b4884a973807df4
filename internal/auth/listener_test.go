package auth

import (
	"os"
	"reflect"
	"testing"
	"time"
)

func TestParseListener(t *testing.T) {
	f := func(in string, want ListenerSpec) {
		t.Helper()
		got, err := ParseListener(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", in, got, want)
		}
	}
	base := func(network, addr string, class Class, mode AuthMode) ListenerSpec {
		sp := ListenerSpec{Network: network, Address: addr, Class: class, Auth: mode, Burst: 1,
			MaxRequests: DefaultMaxRequests, MaxStreams: DefaultMaxStreams}
		if network == "unix" {
			sp.Mode = DefaultSocketMode
			if class == ClassAdmin {
				sp.Mode = DefaultAdminMode
			}
		}
		return sp
	}
	f("127.0.0.1:7700", base("tcp", "127.0.0.1:7700", ClassAdmin, AuthKey))
	f("tcp://[::1]:7700?class=read", base("tcp", "[::1]:7700", ClassRead, AuthKey))
	f("localhost:0?auth=none", base("tcp", "localhost:0", ClassRead, AuthNone))
	f("unix:/run/h/ro.sock", base("unix", "/run/h/ro.sock", ClassRead, AuthNone))
	f("unix:///run/h/admin.sock?class=admin", base("unix", "/run/h/admin.sock", ClassAdmin, AuthNone))
	f("./rw.sock?class=write&auth=key", base("unix", "./rw.sock", ClassWrite, AuthKey))

	sp := base("unix", "d/ro.sock", ClassRead, AuthNone)
	sp.Mode, sp.Group, sp.UIDs, sp.GIDs = 0o640, "hippo", []uint32{1000, 1001, 7}, []uint32{100}
	f("unix:d/ro.sock?class=read&mode=0640&group=hippo&uids=1000,1001&uids=7&gids=100", sp)

	sp = base("tcp", "0.0.0.0:7700", ClassWrite, AuthKey)
	sp.TLSCert, sp.TLSKey, sp.Rate, sp.Burst, sp.MaxRequests, sp.MaxStreams = "c.pem", "k.pem", 2.5, 3, 0, 10
	f("0.0.0.0:7700?class=write&tls_cert=c.pem&tls_key=k.pem&rate=2.5&max_requests=0&max_streams=10", sp)

	for _, bad := range []string{
		"", "nohost", "unix:", "0.0.0.0:7700?auth=none", ":7700?auth=none", "10.0.0.1:7700?auth=none",
		"127.0.0.1:7700?class=root", "127.0.0.1:7700?auth=basic", "127.0.0.1:7700?mode=0660",
		"unix:x.sock?tls_cert=c.pem&tls_key=k.pem", "127.0.0.1:7700?tls_cert=c.pem",
		"unix:x.sock?mode=999", "unix:x.sock?uids=alice", "unix:x.sock?color=red", "unix:x.sock?class=read&class=write",
		"127.0.0.1:1?rate=-1", "127.0.0.1:1?rate=NaN", "127.0.0.1:1?burst=0", "127.0.0.1:1?max_streams=-2", "unix:x?%zz",
	} {
		if sp, err := ParseListener(bad); err == nil {
			t.Errorf("%q accepted: %+v", bad, sp)
		}
	}
}

func TestSplitListenList(t *testing.T) {
	got := SplitListenList("unix:a.sock?uids=1,2&gids=3,4, 127.0.0.1:7700,unix:/b?uids=5,[::1]:1?auth=none,./c.sock,")
	want := []string{"unix:a.sock?uids=1,2&gids=3,4", "127.0.0.1:7700", "unix:/b?uids=5", "[::1]:1?auth=none", "./c.sock"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestClasses(t *testing.T) {
	for _, tc := range []struct {
		have, need Class
		ok         bool
	}{
		{ClassRead, ClassRead, true}, {ClassRead, ClassWrite, false}, {ClassWrite, ClassRead, true},
		{ClassWrite, ClassAdmin, false}, {ClassAdmin, ClassWrite, true}, {"", ClassRead, false},
		{ClassAdmin, "", false}, {"root", ClassRead, false},
	} {
		if got := tc.have.Allows(tc.need); got != tc.ok {
			t.Errorf("%q allows %q = %v", tc.have, tc.need, got)
		}
	}
}

func TestGateAndRate(t *testing.T) {
	l := NewListener(ListenerSpec{MaxRequests: 2, Rate: 1, Burst: 2})
	if !l.Requests.TryAcquire() || !l.Requests.TryAcquire() || l.Requests.TryAcquire() {
		t.Fatal("gate of 2")
	}
	l.Requests.Release()
	if !l.Requests.TryAcquire() {
		t.Fatal("released place not reusable")
	}
	for i, want := range []bool{true, true, false} {
		ok, wait := l.Allow()
		if ok != want || (!ok && (wait <= 0 || wait > time.Second)) {
			t.Fatalf("request %d: %v %v", i, ok, wait)
		}
	}
	if !l.PeerAllowed(nil) {
		t.Fatal("a listener without uids refused an unknown peer")
	}
	l = NewListener(ListenerSpec{UIDs: []uint32{uint32(os.Getuid())}})
	if l.PeerAllowed(nil) || !l.PeerAllowed(&PeerCred{UID: uint32(os.Getuid())}) || l.PeerAllowed(&PeerCred{UID: 12345}) {
		t.Fatal("uid allow list")
	}
}

// FuzzParseListener: no panic, and what parses is consistent.
func FuzzParseListener(f *testing.F) {
	for _, s := range []string{"127.0.0.1:7700", "unix:d/ro.sock?class=read&mode=0660&uids=1,2", "[::1]:0?auth=none&rate=1.5&burst=3", "0.0.0.0:1?tls_cert=a&tls_key=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseListener(s)
		if err != nil {
			return
		}
		if !sp.Class.Valid() || (sp.Network != "tcp" && sp.Network != "unix") || sp.Burst < 1 {
			t.Fatalf("%q parsed to %+v", s, sp)
		}
		if sp.Network == "tcp" && sp.Auth == AuthNone && !loopback(sp.Address) {
			t.Fatalf("%q: auth=none on %s", s, sp.Address)
		}
	})
}
