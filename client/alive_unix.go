//go:build unix

package client

import (
	"net"
	"syscall"
)

// peekAlive peeks at c's socket without waiting: nothing to read means the
// connection is open and idle; EOF or stray bytes mean it is not. ok is
// false if c gives no access to its socket.
func peekAlive(c net.Conn) (alive, ok bool) {
	sc, isSyscall := c.(syscall.Conn)
	if !isSyscall {
		return false, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return alive && err == nil, true
}
