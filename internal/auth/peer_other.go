//go:build !linux

package auth

import (
	"errors"
	"net"
)

// PeerCredSupported reports whether PeerOf can tell who the peer is here.
const PeerCredSupported = false

func peerCred(*net.UnixConn) (*PeerCred, error) {
	return nil, errors.New("peer credentials are supported on Linux only")
}
