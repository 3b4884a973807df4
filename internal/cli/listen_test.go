package cli

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// Accepted connections read small reads through a pooled buffer that one
// syscall fills, hold no buffer while idle, keep their deadlines and errors,
// and still show their peer's credentials.
func TestBufferedConn(t *testing.T) {
	sp, err := auth.ParseListener("unix:" + filepath.Join(t.TempDir(), "b.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := openListener(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer closeListeners([]*listener{l})
	client, err := net.Dial("unix", sp.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accepted, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	c, ok := accepted.(*bufferedConn)
	if !ok {
		t.Fatalf("accepted a %T", accepted)
	}
	if p := auth.PeerOf(accepted); auth.PeerCredSupported && (p == nil || p.PID != int32(os.Getpid()) || p.UID != uint32(os.Getuid())) {
		t.Fatalf("peer through the buffer: %v", p)
	}

	// Frames sent one by one are taken by one read.
	var sent []byte
	for i := range 20 {
		frame := []byte(strings.Repeat(strconv.Itoa(i%10), 13))
		sent = append(sent, frame...)
		if _, err := client.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	head := make([]byte, 9)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatal(err)
	}
	if c.buf == nil || c.w != len(sent) {
		t.Fatalf("one read buffered %d of the %d bytes sent", c.w, len(sent))
	}
	rest := make([]byte, len(sent)-len(head))
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatal(err)
	}
	if got := string(head) + string(rest); got != string(sent) {
		t.Fatalf("read %q, sent %q", got, sent)
	}
	if c.buf != nil {
		t.Fatal("a drained connection still holds its buffer")
	}

	// A read as large as the buffer goes straight to the socket: it can
	// return more than the buffer holds, and leaves no buffer behind.
	big := []byte(strings.Repeat("x", readBufSize+100))
	if _, err := client.Write(big); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(big)+1)
	if n, err := c.Read(got); err != nil || n != len(big) || string(got[:n]) != string(big) || c.buf != nil {
		t.Fatalf("large read: %d bytes, %v, buffer held %v; want %d bytes straight from the socket", n, err, c.buf != nil, len(big))
	}

	// Deadlines give a timeout, as net.Conn's reads do, and no buffer.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err = c.Read(head)
	var ne net.Error
	var oe *net.OpError
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &oe) || oe.Op != "read" || c.buf != nil {
		t.Fatalf("read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	client.Close()
	if _, err := c.Read(head); err != io.EOF {
		t.Fatalf("read after the peer closed: %v", err)
	}
}
