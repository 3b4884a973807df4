package auth

import (
	"net"

	"golang.org/x/sys/unix"
)

// PeerCredSupported reports whether PeerOf can tell who the peer is here.
const PeerCredSupported = true

func peerCred(c *net.UnixConn) (*PeerCred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if credErr != nil {
		return nil, credErr
	}
	return &PeerCred{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}, nil
}
