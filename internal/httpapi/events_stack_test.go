//go:build !race

package httpapi

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// An open event stream costs the server a goroutine, and most of an idle
// subscriber's memory is that goroutine's stack. Over HTTP/2 the calls a
// stream makes (opening, writing an event, a flush through the connection)
// stay within 4 KiB of stack, so that it keeps a 4 KiB stack rather than
// 8 KiB: this fails when a frame on that path grows (guard, events, the
// write path). The client speaks HTTP/2 frames by hand on one connection,
// so that it adds no goroutine, and so no stack, of its own; the test runs
// in a process of its own, whose runtime has no stacks of earlier tests to
// reuse. Not run with -race, which makes every frame larger.
func TestEventStreamsKeepSmallStacks(t *testing.T) {
	if os.Getenv("HIPPO_TEST_STACKS") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEventStreamsKeepSmallStacks$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "HIPPO_TEST_STACKS=1")
		out, err := cmd.CombinedOutput()
		t.Logf("%s", out)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	_, e := newServer(t)
	api := New(e, Options{})
	srv := httptest.NewUnstartedServer(api)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer func() { api.Shutdown(); srv.Close() }()
	do(t, srv, "PUT", "/v1/collections/a", "", `{"dimension":1,"metric":"l2"}`)

	const streams = 200
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.StackInuse
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	frame := func(typ, flags byte, stream uint32, payload []byte) {
		var h [9]byte
		h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
		h[3], h[4] = typ, flags
		binary.BigEndian.PutUint32(h[5:], stream)
		if _, err := conn.Write(append(h[:], payload...)); err != nil {
			t.Fatal(err)
		}
	}
	io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	frame(0x4, 0, 0, nil)   // SETTINGS
	frame(0x4, 0x1, 0, nil) // the ACK of the server's
	// HPACK: GET, http, :path and :authority (literals with indexed
	// names), accept (a literal with a literal name).
	path, authority := "/v1/events?records=false", "localhost"
	block := []byte{0x82, 0x86, 0x04, byte(len(path))}
	block = append(block, path...)
	block = append(block, 0x01, byte(len(authority)))
	block = append(block, authority...)
	block = append(block, 0x00, 6)
	block = append(block, "accept"...)
	block = append(block, byte(len("text/event-stream")))
	block = append(block, "text/event-stream"...)
	for i := range streams {
		frame(0x1, 0x5, uint32(2*i+1), block) // HEADERS, END_STREAM|END_HEADERS
	}
	// Each stream writes its prelude, then the event.
	waitData := func(want string) {
		seen := map[uint32]bool{}
		var h [9]byte
		for len(seen) < streams {
			if _, err := io.ReadFull(conn, h[:]); err != nil {
				t.Fatalf("%d streams had %q: %v", len(seen), want, err)
			}
			payload := make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
			if _, err := io.ReadFull(conn, payload); err != nil {
				t.Fatal(err)
			}
			if h[3] == 0x0 && bytes.Contains(payload, []byte(want)) {
				seen[binary.BigEndian.Uint32(h[5:])&0x7fffffff] = true
			}
		}
	}
	waitData("retry: 1000")
	do(t, srv, "PUT", "/v1/collections/a/records/x", "", `{"vector":[1]}`)
	waitData(`"id":"x"`)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	perStream := float64(ms.StackInuse-before) / streams
	t.Logf("stack per open stream: %.0f bytes", perStream)
	if perStream > 6<<10 {
		t.Fatalf("each open stream holds %.0f bytes of stack; 4 KiB is the aim", perStream)
	}
}
