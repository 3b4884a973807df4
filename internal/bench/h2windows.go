package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Browsers give an HTTP/2 stream a window of several megabytes and send a
// WINDOW_UPDATE once half of it is read; Go's HTTP/2 transport sends one for
// every 4 KiB read, for the stream and for the connection, and the server
// reads and handles each. Subscribers opened with large windows flow-control
// as browsers do, so that the write-cost figure can tell the server's own
// cost of an HTTP/2 stream from what its client's updates add.
const (
	largeStreamWindow = 16 << 20
	largeConnWindow   = 1 << 30
)

// largeWindowConn is an HTTP/2 connection whose streams are event
// subscriptions, read by a goroutine of its own.
type largeWindowConn struct {
	bw       *bufio.Writer
	fr       *http2.Framer
	streams  map[uint32]*largeWindowStream
	connRead int // bytes read since the last connection WINDOW_UPDATE
}

// largeWindowStream hands one stream's data to its subscriber.
type largeWindowStream struct {
	s    *subscriber
	body *io.PipeWriter
	read int // bytes read since the last stream WINDOW_UPDATE
}

// openLargeWindows opens an HTTP/2 connection to the Unix socket and a
// stream on it for each of subs, to GET path; each subscriber reads its
// stream as the Go transport's subscribers do (subscriber.read). The
// connection closes when ctx is done.
func openLargeWindows(ctx context.Context, socket, path string, subs []*subscriber) error {
	c := &largeWindowConn{streams: make(map[uint32]*largeWindowStream)}
	for i, s := range subs {
		body, w := io.Pipe()
		c.streams[uint32(2*i+1)] = &largeWindowStream{s: s, body: w}
		go func() {
			defer close(s.done)
			s.err = s.read(body)
		}()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		c.end(err)
		return err
	}
	c.bw = bufio.NewWriterSize(nc, 16<<10)
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(nc, 64<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.bw.WriteString(http2.ClientPreface)
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: largeStreamWindow})
	c.fr.WriteWindowUpdate(0, largeConnWindow-65535) // from the initial 65,535
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := range subs {
		block.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "localhost"}, {":path", path},
			{"accept", "text/event-stream"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
	}
	if err := c.bw.Flush(); err != nil {
		nc.Close()
		c.end(err)
		return err
	}
	context.AfterFunc(ctx, func() { nc.Close() })
	go func() { c.end(c.readFrames()) }()
	return nil
}

// readFrames reads the connection until it fails.
func (c *largeWindowConn) readFrames() error {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			st := c.streams[f.StreamID]
			if st == nil {
				continue
			}
			if status := f.PseudoValue("status"); status != "200" {
				st.body.CloseWithError(fmt.Errorf("status %s", status))
				continue
			}
			close(st.s.connected)
		case *http2.DataFrame:
			st := c.streams[f.StreamID]
			if st == nil {
				continue
			}
			// Data is valid until the next ReadFrame; the pipe returns once
			// the subscriber has read all of it.
			st.body.Write(f.Data())
			if f.StreamEnded() {
				st.body.CloseWithError(io.ErrUnexpectedEOF)
			}
			n := int(f.Length) // padding counts against the windows too
			if st.read += n; st.read >= largeStreamWindow/2 {
				c.fr.WriteWindowUpdate(f.StreamID, uint32(st.read))
				st.read = 0
			}
			if c.connRead += n; c.connRead >= largeConnWindow/2 {
				c.fr.WriteWindowUpdate(0, uint32(c.connRead))
				c.connRead = 0
			}
		case *http2.RSTStreamFrame:
			if st := c.streams[f.StreamID]; st != nil {
				st.body.CloseWithError(fmt.Errorf("stream reset: %v", f.ErrCode))
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			return fmt.Errorf("the server went away: %v", f.ErrCode)
		}
		if c.bw.Buffered() > 0 {
			if err := c.bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// end ends every stream with err.
func (c *largeWindowConn) end(err error) {
	if errors.Is(err, net.ErrClosed) {
		err = context.Canceled
	}
	for _, st := range c.streams {
		st.body.CloseWithError(err)
	}
}
