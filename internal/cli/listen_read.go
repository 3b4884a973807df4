//go:build unix

package cli

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// readBufSize is the read buffer of an accepted connection: enough for the
// many small frames an HTTP/2 client sends at once.
const readBufSize = 4 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// bufferedListener gives every connection it accepts a read buffer.
//
// Why: net/http's HTTP/2 server reads each frame with two reads, its 9-byte
// header and then its payload, straight from the connection. A client that
// streams events back sends a WINDOW_UPDATE or two for every few KiB it
// reads, so an event stream cost two read syscalls per 13-byte frame: 37 %
// of the server's CPU in the change feed's fan-out. Buffered, one syscall
// takes every frame that has arrived, and fan-out of records doubled.
//
// The buffer is taken from a pool only when a read finds data, and given
// back once it is drained, so an idle connection, such as an HTTP/1.1 event
// stream whose server waits on a 1-byte read, holds none: 10,000 idle
// subscribers would otherwise hold 40 MiB of empty buffers.
type bufferedListener struct{ net.Listener }

func (l bufferedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c, nil
	}
	return &bufferedConn{Conn: c, raw: raw}, nil
}

// bufferedConn is a connection whose small reads are served from a pooled
// buffer. Reads must not be concurrent (net/http never makes them so).
type bufferedConn struct {
	net.Conn
	raw  syscall.RawConn
	buf  *[]byte // nil while nothing is buffered
	r, w int     // buffered bytes are (*buf)[r:w]
}

// NetConn returns the accepted connection, so that auth.PeerOf finds the
// *net.UnixConn that reports its peer's credentials.
func (c *bufferedConn) NetConn() net.Conn { return c.Conn }

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.buf == nil {
		if len(p) >= readBufSize {
			return c.Conn.Read(p)
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*c.buf)[c.r:c.w])
	c.r += n
	if c.r == c.w {
		readBufs.Put(c.buf)
		c.buf = nil
	}
	return n, nil
}

// fill waits until the socket has data, honouring the read deadline, and
// only then takes a buffer and reads into it.
func (c *bufferedConn) fill() error {
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		buf := readBufs.Get().(*[]byte)
		for {
			n, rerr = syscall.Read(int(fd), *buf)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			readBufs.Put(buf)
			return false // wait until readable
		}
		if n > 0 {
			c.buf, c.r, c.w = buf, 0, n
		} else {
			readBufs.Put(buf)
		}
		return true
	})
	var oe *net.OpError
	switch {
	case errors.As(err, &oe):
		// A deadline or a closed connection, as net.Conn.Read says them:
		// net/http tells a common read error by its Op.
		oe.Op = "read"
		return oe
	case err != nil:
		return err
	case rerr != nil:
		return &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(),
			Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return io.EOF
	}
	return nil
}

// CloseWrite half-closes a TCP or Unix connection, as net/http does before
// it closes one that sent a malformed request.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
