package client

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzSessionRead feeds arbitrary bytes to a Session's frame reader
// (readMessage, and readFrameHeader and control under it) as what the server
// sent after the handshake, reading messages until one read fails. It checks
// that:
//
//   - the reader ends, each message taking at least one frame of the input;
//   - every message is UTF-8 and at most sessionMaxMessage bytes, and the
//     messages, the frames written back (pongs echoing pings, the echo of a
//     close) and the way it ended (the input's end, a protocol error with
//     its close code, or the server's close code and reason) are those of a
//     model written from RFC 6455 section 5;
//   - what the reader allocates is bounded by the input plus the message
//     limit: a frame that declares a length over the limit is refused
//     before anything of that size is allocated.
func FuzzSessionRead(f *testing.F) {
	text := func(fin bool, op byte, payload string) []byte { return wsFuzzFrame(fin, op, []byte(payload), 0) }
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	long := string(bytes.Repeat([]byte("x"), 300))
	for _, seed := range [][]byte{
		text(true, opText, `{"type":"result","id":"1","result":{"seq":3}}`),
		cat(text(true, opPing, "p"), text(true, opText, "a"), text(true, opPong, ""), text(true, opText, "b")),
		cat(text(false, opText, "hel"), text(true, opPing, ""), text(false, opContinuation, "l"), text(true, opContinuation, "lo")),
		text(true, opClose, "\x03\xe8bye"),
		text(true, opClose, ""),
		wsFuzzFrame(true, opText, []byte(long[:200]), 126),
		wsFuzzFrame(true, opText, []byte(long), 127),
		wsFuzzFrame(true, opText, []byte("short"), 127), // a length not in its shortest form
		// A masked frame, which a server must not send.
		{0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1},
		{0x81, 127, 0x40, 0, 0, 0, 0, 0, 0, 0},                                                // 2^62 bytes
		{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1},                                                // the length's top bit
		{0x81, 127, 0, 0, 0, 0, 0x04, 0, 0, 1, 'x'},                                           // one byte over the limit
		{0x01, 127, 0, 0, 0, 0, 0x03, 0xff, 0xff, 0xff, 'x'},                                  // within it, cut off
		cat(text(false, opText, "ab"), []byte{0x80, 127, 0, 0, 0, 0, 0x03, 0xff, 0xff, 0xff}), // the sum over it
		text(true, opBinary, "b"),
		text(true, 0x3, "reserved"),
		text(true, 0xB, "reserved control"),
		{0xC1, 0x00}, // a reserved bit
		text(false, opPing, ""),
		wsFuzzFrame(true, opPing, []byte(long[:126]), 126),
		text(true, opClose, "\x03"),
		text(true, opText, "\xff"),
		text(true, opContinuation, "x"),
		cat(text(false, opText, "a"), text(true, opText, "b")),
		{0x81},
		{0x81, 126, 0},
		{0x81, 0x05, 'h'},
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		want := modelSessionRead(input)
		conn := &wsFuzzConn{}
		s := newSession(nil, conn, bufio.NewReaderSize(bytes.NewReader(input), 32<<10))
		messages := make([][]byte, 0, len(input)/2+1)

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var err error
		for {
			var msg []byte
			if msg, err = s.readMessage(); err != nil {
				break
			}
			if len(messages) == cap(messages) {
				t.Fatalf("message %d from %d bytes: the reader does not advance\n%x", len(messages)+1, len(input), input)
			}
			messages = append(messages, msg)
		}
		runtime.ReadMemStats(&after)
		// Writing a pong allocates tens of bytes for a 2-byte ping, and a
		// message grows by doubling; a frame cut off is allocated whole,
		// up to the limit.
		if alloc, bound := after.TotalAlloc-before.TotalAlloc, uint64(sessionMaxMessage+64*len(input)+1<<20); alloc > bound {
			t.Fatalf("allocated %d bytes reading %d, more than %d\n%x", alloc, len(input), bound, input)
		}

		for i, msg := range messages {
			if len(msg) > sessionMaxMessage || !utf8.Valid(msg) {
				t.Fatalf("message %d: %d bytes, UTF-8 %v\n%x", i, len(msg), utf8.Valid(msg), input)
			}
		}
		if len(messages) != len(want.messages) {
			t.Fatalf("%d messages, the model %d\n%x", len(messages), len(want.messages), input)
		}
		for i := range messages {
			if !bytes.Equal(messages[i], want.messages[i]) {
				t.Fatalf("message %d is %q, the model's %q\n%x", i, messages[i], want.messages[i], input)
			}
		}

		written := readClientFrames(t, conn.out.Bytes())
		if len(written) != len(want.written) {
			t.Fatalf("wrote %d frames, the model %d: %v\n%x", len(written), len(want.written), written, input)
		}
		for i := range written {
			if written[i].opcode != want.written[i].opcode || !bytes.Equal(written[i].payload, want.written[i].payload) {
				t.Fatalf("written frame %d is %#x %q, the model's %#x %q\n%x", i, written[i].opcode, written[i].payload,
					want.written[i].opcode, want.written[i].payload, input)
			}
		}

		var pe *protocolError
		var ce *CloseError
		switch want.end {
		case wsEndInput:
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("ended with %T %v, want the end of the input\n%x", err, err, input)
			}
		case wsEndProtocol:
			if !errors.As(err, &pe) || pe.code != want.code || pe.reason == "" {
				t.Fatalf("ended with %T %v, want a protocol error %d\n%x", err, err, want.code, input)
			}
		case wsEndClose:
			if !errors.As(err, &ce) || ce.Code != want.code || ce.Reason != want.reason || ce.Local || s.Err() != err {
				t.Fatalf("ended with %T %v (session: %v), want the server's close %d %q\n%x", err, err, s.Err(), want.code, want.reason, input)
			}
		}
	})
}

// wsFuzzFrame encodes a frame from the server: unmasked, with the length
// in 7 bits if lengthForm is 0 (and the length fits), else in the 16 or 64
// bits that lengthForm 126 or 127 says.
func wsFuzzFrame(fin bool, opcode byte, payload []byte, lengthForm byte) []byte {
	first := opcode
	if fin {
		first |= 0x80
	}
	switch lengthForm {
	case 126:
		return append(binary.BigEndian.AppendUint16([]byte{first, 126}, uint16(len(payload))), payload...)
	case 127:
		return append(binary.BigEndian.AppendUint64([]byte{first, 127}, uint64(len(payload))), payload...)
	}
	return append([]byte{first, byte(len(payload))}, payload...)
}

// wsEnd is how reading ended.
type wsEnd int

const (
	wsEndInput    wsEnd = iota // the input ended
	wsEndProtocol              // the server broke the protocol: a *protocolError
	wsEndClose                 // the server closed: a *CloseError
)

type wsControl struct {
	opcode  byte
	payload []byte
}

type wsModelRun struct {
	messages [][]byte
	written  []wsControl // the frames the Session sends back
	end      wsEnd
	code     int    // the close code the Session sends, or the server's
	reason   string // the server's close reason
}

// modelSessionRead reads input as RFC 6455 section 5 says a client reads
// frames from a server, with this client's choices: text messages only,
// fragmented or not, of at most sessionMaxMessage bytes; pings answered
// with pongs, between fragments too; a close frame echoed with its code and
// ending the reading; any violation ends it with a close code, a reserved
// control opcode (0xB to 0xF) too. Like the client, it accepts lengths not
// in their shortest form.
func modelSessionRead(input []byte) (run wsModelRun) {
	protocol := func(code int) wsModelRun {
		run.end, run.code = wsEndProtocol, code
		return run
	}
	take := func(n uint64) ([]byte, bool) {
		if uint64(len(input)) < n {
			return nil, false
		}
		b := input[:n]
		input = input[n:]
		return b, true
	}
	var message []byte
	started := false
	for {
		b, ok := take(2)
		if !ok {
			return run // wsEndInput
		}
		fin, rsv, opcode, masked, length := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0F, b[1]&0x80 != 0, uint64(b[1]&0x7F)
		if rsv != 0 || masked {
			return protocol(closeProtocolError)
		}
		switch length {
		case 126:
			if b, ok = take(2); !ok {
				return run
			}
			length = uint64(b[0])<<8 | uint64(b[1])
		case 127:
			if b, ok = take(8); !ok {
				return run
			}
			length = 0
			for _, c := range b {
				length = length<<8 | uint64(c)
			}
			if length >= 1<<63 {
				return protocol(closeProtocolError)
			}
		}
		if opcode >= 8 {
			if !fin || length > 125 {
				return protocol(closeProtocolError)
			}
			payload, ok := take(length)
			if !ok {
				return run
			}
			switch opcode {
			case opPing:
				run.written = append(run.written, wsControl{opPong, payload})
			case opClose:
				if len(payload) == 1 {
					return protocol(closeProtocolError)
				}
				run.end, run.code = wsEndClose, closeNoStatus
				var echo []byte
				if len(payload) >= 2 {
					run.code, run.reason, echo = int(payload[0])<<8|int(payload[1]), string(payload[2:]), payload[:2]
				}
				run.written = append(run.written, wsControl{opClose, echo})
				return run
			case opPong:
			default:
				return protocol(closeProtocolError)
			}
			continue
		}
		switch {
		case opcode == opText && !started:
			started = true
		case opcode == opContinuation && started:
		case opcode == opBinary:
			return protocol(closeUnsupportedData)
		default:
			return protocol(closeProtocolError)
		}
		if uint64(len(message))+length > sessionMaxMessage {
			return protocol(closeMessageTooBig)
		}
		payload, ok := take(length)
		if !ok {
			return run
		}
		message = append(message, payload...)
		if fin {
			if !utf8.Valid(message) {
				return protocol(closeInvalidPayload)
			}
			run.messages = append(run.messages, message)
			message, started = nil, false
		}
	}
}

// readClientFrames parses what the Session wrote: frames from a client,
// which are final, masked, and here control frames.
func readClientFrames(t *testing.T, out []byte) []wsControl {
	t.Helper()
	var frames []wsControl
	for len(out) > 0 {
		if len(out) < 6 || out[0]&0xF0 != 0x80 || out[1]&0x80 == 0 || out[1]&0x7F > 125 || len(out) < 6+int(out[1]&0x7F) {
			t.Fatalf("the Session wrote a frame that is not a final, masked control frame: %x", out)
		}
		n := int(out[1] & 0x7F)
		mask, payload := out[2:6], make([]byte, n)
		for i := range payload {
			payload[i] = out[6+i] ^ mask[i&3]
		}
		frames = append(frames, wsControl{out[0] & 0x0F, payload})
		out = out[6+n:]
	}
	return frames
}

// wsFuzzConn is the Session's connection: reads come from the Session's
// bufio.Reader over the input, and writes are kept.
type wsFuzzConn struct{ out bytes.Buffer }

func (c *wsFuzzConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c *wsFuzzConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *wsFuzzConn) Close() error                     { return nil }
func (c *wsFuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *wsFuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *wsFuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *wsFuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *wsFuzzConn) SetWriteDeadline(time.Time) error { return nil }
