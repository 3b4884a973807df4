//go:build !unix

package client

import "net"

// peekAlive cannot peek without waiting here.
func peekAlive(net.Conn) (alive, ok bool) { return false, false }
