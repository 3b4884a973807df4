package cli

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hippo-db/hippo/internal/auth"
)

func TestDefaultListeners(t *testing.T) {
	specs := defaultListeners("data?&dir")
	var got []string
	for _, sp := range specs {
		got = append(got, sp.String()+" "+string(sp.Class)+" "+string(sp.Auth)+" "+strconv.FormatUint(uint64(sp.Mode), 8))
	}
	want := []string{
		"http://127.0.0.1:7700 admin key 0",
		"unix:data?&dir/ro.sock read none 660",
		"unix:data?&dir/rw.sock write none 660",
		"unix:data?&dir/admin.sock admin none 600",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "x.sock")
	sp, err := auth.ParseListener("unix:" + path + "?mode=0640&group=" + strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Fatal(err)
	}
	l, err := openListener(sp)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o640 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %v %v", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("the private directory was left behind: %v", entries)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the renamed socket: %v", err)
	}
	c.Close()
	// A live socket refuses a second server.
	if _, err := openListener(sp); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Fatalf("second listener: %v", err)
	}
	closeListeners([]*listener{l})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after close: %v", err)
	}
	// A stale socket file is replaced.
	stale, _ := net.Listen("unix", path)
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l, err = openListener(sp)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	closeListeners([]*listener{l})
	if _, err := auth.ParseListener("unix:" + path + "?group=no-such-group-hippo"); err != nil {
		t.Fatal(err)
	}
	bad, _ := auth.ParseListener("unix:" + path + "?group=no-such-group-hippo")
	if _, err := openListener(bad); err == nil || !strings.Contains(err.Error(), "no-such-group-hippo") {
		t.Fatalf("unknown group: %v", err)
	}
}
