package auth

import (
	"fmt"
	"net"
)

// PeerCred is the identity of the process at the other end of a Unix
// socket, as the kernel reports it when the connection is accepted
// (SO_PEERCRED on Linux). GID is the peer's effective group id; the kernel
// does not report supplementary groups.
type PeerCred struct {
	PID int32
	UID uint32
	GID uint32
}

func (p *PeerCred) String() string {
	if p == nil {
		return "unknown"
	}
	return fmt.Sprintf("pid=%d uid=%d gid=%d", p.PID, p.UID, p.GID)
}

// PeerOf returns the credentials of c's peer if c is a Unix-socket
// connection on a system that reports them, and nil otherwise. A wrapper
// of a connection (a TLS connection, a buffered reader) is looked through
// if it has a NetConn method that returns what it wraps.
func PeerOf(c net.Conn) *PeerCred {
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	p, err := peerCred(uc)
	if err != nil {
		return nil
	}
	return p
}
