//go:build !unix

package cli

import "net"

// bufferedListener is the listener itself where connections do not give
// raw access to their socket (see listen_read.go).
type bufferedListener struct{ net.Listener }
