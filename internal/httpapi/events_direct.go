package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hippo-db/hippo/internal/feed"
)

// Event streams on plain HTTP/1.1 connections are written by one goroutine,
// the direct writer, straight to their sockets.
//
// Why: through net/http every stream is a goroutine that each round of the
// feed wakes to write its batch, and net/http adds its own goroutine per
// connection to notice the client going away. On a small virtual machine
// the wake-ups and net/http's layers cost more than the write itself: with
// 100 subscribers they took about a third of the server's CPU at full write
// load (docs/benchmarks.md). The direct writer takes the connection over
// (Hijack), and in each round writes every stream's batch as one chunk with
// one system call that never blocks. A stream whose socket does not take
// the whole batch gets a goroutine that finishes the write, under the
// stream write timeout, and hands the stream back.
//
// The request's handler returns, and net/http lets go of the connection
// and its buffers. A goroutine of the stream's own waits, blocked on a read
// of the connection, which tells it at once when the client goes away; it
// holds the stream's admission (max_streams) and ends the stream when its
// API key is revoked. It needs no buffer and does not wake while the stream
// runs.
type directWriter struct {
	api     *API
	once    sync.Once
	started atomic.Bool
	done    chan struct{} // closed when run returns
	kick    chan struct{} // buffered(1): a stream joined, or may be written again
	mu      struct {
		sync.Mutex // held for a whole pass over the streams
		streams    map[*directStream]struct{}
	}
}

// directStream is an event stream on a connection the direct writer owns.
type directStream struct {
	st   *eventStream
	conn net.Conn
	raw  syscall.RawConn // nil if the connection has no descriptor: every write then drains
	sent bool            // written since the last heartbeat tick (only the writer uses it)
	// draining is set while a goroutine of its own finishes a write the
	// socket would not take at once; the writer skips the stream meanwhile.
	draining atomic.Bool
	ended    atomic.Bool
	// last says that what is being written ends the answer: the
	// connection closes once it is written.
	last atomic.Bool
}

// chunkHead is the room left before a chunk's data for its size line: eight
// hex digits (leading zeros are allowed) and CRLF.
const chunkHead = 10

// hijack takes over the connection of a plain HTTP/1.1 event stream, writes
// the answer's head and the stream's first message, and returns the
// stream; nil if the stream stays with net/http. If the write fails it
// returns nil with ok false: the stream is over.
func (a *API) hijack(w http.ResponseWriter, r *http.Request, st *eventStream) (ds *directStream, ok bool) {
	// HTTP/1.0 has no chunked answers, HEAD no body, TLS no socket to
	// write to directly.
	if r.ProtoMajor != 1 || !r.ProtoAtLeast(1, 1) || r.Method != http.MethodGet || r.TLS != nil {
		return nil, true
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, true
	}
	// What net/http had buffered of the connection is dropped: a client of
	// an event stream sends nothing more.
	ds = &directStream{st: st, conn: conn, raw: rawConnOf(conn)}

	h := w.Header()
	h.Set("Transfer-Encoding", "chunked")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h.Write(&head)
	b := append(head.Bytes(), "\r\n"...)
	start := len(b)
	if b = st.appendPrelude(append(b, make([]byte, chunkHead)...)); len(b) > start+chunkHead {
		b = finishChunk(b, start)
	} else {
		b = b[:start] // a chunk of no data would end the answer
	}
	conn.SetWriteDeadline(time.Now().Add(st.api.writeTimeout))
	if _, err := conn.Write(b); err != nil {
		conn.Close()
		return nil, false
	}
	conn.SetWriteDeadline(time.Time{})
	return ds, true
}

// rawConnOf returns the descriptor of c, looking through wrappers that say
// what they wrap (a NetConn method), or nil; never that under TLS, where
// writing to it would bypass the encryption.
func rawConnOf(c net.Conn) syscall.RawConn {
	for range 8 {
		if _, ok := c.(*tls.Conn); ok {
			return nil
		}
		if sc, ok := c.(syscall.Conn); ok {
			raw, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			return raw
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// finishChunk fills in the size line of the chunk whose data follows
// b[start:start+chunkHead] and closes it.
func finishChunk(b []byte, start int) []byte {
	n := len(b) - start - chunkHead
	if n > 0xffffffff {
		panic("httpapi: event chunk over 4 GiB") // a bug: batches are about 1 MiB (fitBatch)
	}
	const hex = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		b[start+i] = hex[n&0xf]
		n >>= 4
	}
	b[start+8], b[start+9] = '\r', '\n'
	return append(b, "\r\n"...)
}

// awaitEnd waits, blocked on a read, until the client goes away, the stream
// ends, or revoked (the context of the stream's API key, if any) is done;
// then it takes the stream out of the writer, closes its subscription and
// calls release. Any bytes the client sends are discarded.
func (d *directWriter) awaitEnd(ds *directStream, revoked context.Context, release func()) {
	d.add(ds)
	if revoked != nil {
		stop := context.AfterFunc(revoked, ds.end)
		defer stop()
	}
	var b [64]byte
	for {
		if _, err := ds.conn.Read(b[:]); err != nil {
			break
		}
	}
	ds.end()
	d.remove(ds)
	ds.st.close()
	release()
}

// end closes the stream's connection, once.
func (ds *directStream) end() {
	if ds.ended.CompareAndSwap(false, true) {
		ds.conn.Close()
	}
}

func (d *directWriter) add(ds *directStream) {
	d.once.Do(func() {
		d.kick = make(chan struct{}, 1)
		d.done = make(chan struct{})
		d.mu.streams = map[*directStream]struct{}{}
		d.started.Store(true)
		go d.run()
	})
	d.mu.Lock()
	d.mu.streams[ds] = struct{}{}
	d.mu.Unlock()
	if d.api.closing.Err() != nil {
		ds.end() // the writer may have ended its streams already
	}
	d.wake()
}

// remove takes ds out of the writer; once it returns the writer no longer
// uses the stream's subscription.
func (d *directWriter) remove(ds *directStream) {
	d.mu.Lock()
	delete(d.mu.streams, ds)
	d.mu.Unlock()
}

// wait returns once the writer has ended its streams, after the API's
// Shutdown.
func (d *directWriter) wait() {
	if d.started.Load() {
		<-d.done
	}
}

func (d *directWriter) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// run writes the streams' events as the feed reads them, and their
// heartbeats, until the API shuts down.
//
// Passes that write are paced (writePace). With a few streams a pass takes
// microseconds and events go out at once; with 100 it takes about a
// millisecond on a small machine, and their events go out in batches some
// 20 ms apart.
func (d *directWriter) run() {
	defer close(d.done)
	var bufs passBuffers
	closing := d.api.closing.Done()
	pause := time.NewTimer(0)
	<-pause.C
	var next time.Time // the earliest start of the next pass
	tick := d.api.heartbeats.tick()
	for {
		if wait := time.Until(next); wait > 0 {
			pause.Reset(wait)
			select {
			case <-closing:
				d.endAll()
				return
			case <-pause.C:
			}
		}
		select {
		case <-closing:
			d.endAll()
			return
		case <-tick:
			tick = d.heartbeats()
		default:
		}
		var wait <-chan struct{} // the earliest of the streams' channels
		again, wrote := false, 0
		began := time.Now()
		d.mu.Lock()
		for ds := range d.mu.streams {
			if ds.draining.Load() || ds.ended.Load() {
				continue
			}
			more, w, ch := d.pass(ds, &bufs)
			again = again || more
			if w {
				wrote++
			}
			if wait == nil {
				// Channels are closed in the order they were handed
				// out: the earliest is closed whenever a later one is.
				wait = ch
			}
		}
		d.mu.Unlock()
		bufs.trim()
		if wrote > 0 {
			next = began.Add(writePace(time.Since(began), wrote))
		}
		if again {
			continue
		}
		select {
		case <-closing:
			d.endAll()
			return
		case <-wait:
		case <-d.kick:
		case <-tick:
			tick = d.heartbeats()
		}
	}
}

// heartbeats writes a keep-alive to every stream that was sent nothing since
// the previous tick, and returns the next tick.
func (d *directWriter) heartbeats() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	var buf []byte
	for ds := range d.mu.streams {
		if ds.sent || ds.draining.Load() || ds.ended.Load() {
			ds.sent = false
			continue
		}
		buf = d.heartbeat(ds, buf)
	}
	return d.api.heartbeats.tick()
}

// writePace is how long after the start of writing `streams` streams,
// which took `took`, the next writing may start: writePacing times as long,
// so that writing takes at most 1/writePacing of the time; but at most
// maxWriteInterval (latency first: a long pass, over thousands of streams
// or bulk records, leaves the writer busy longer), and at most
// maxPacePerStream per stream written.
func writePace(took time.Duration, streams int) time.Duration {
	return min(writePacing*took, time.Duration(streams)*maxPacePerStream, maxWriteInterval)
}

const (
	writePacing      = 20
	maxWriteInterval = 25 * time.Millisecond
	// maxPacePerStream bounds the pause after writing by the streams
	// written: a pass that took long because the writer was descheduled
	// midway does not hold back the events of a few streams.
	maxPacePerStream = maxWriteInterval / 100
)

// endAll ends every stream: the server is shutting down. Each resumes from
// its last seq when it reconnects.
func (d *directWriter) endAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ds := range d.mu.streams {
		if ds.draining.Load() {
			ds.end()
		} else {
			ds.finish(nil)
		}
	}
}

// passBuffers are the writer's buffers, kept from pass to pass.
type passBuffers struct {
	buf    []byte
	shared sharedChunk
}

// trim lets go of buffers grown large by a catch-up batch of records.
func (b *passBuffers) trim() {
	if cap(b.buf) > 1<<20 {
		b.buf = nil
	}
	if cap(b.shared.chunk) > 1<<20 {
		b.shared = sharedChunk{}
	}
}

// sharedChunk is the batch of events last encoded, as a finished chunk.
// Streams at the same place in the feed with the same filter and format
// send the same bytes, and on a busy feed most streams are: a pass encodes
// each batch once, not once per stream.
type sharedChunk struct {
	entries []*feed.Entry
	sse     bool
	format  feed.Format
	chunk   []byte
}

// of returns the chunk of entries in the stream's encoding, encoding it
// unless it is the one it holds.
func (c *sharedChunk) of(entries []*feed.Entry, sse bool, f feed.Format) []byte {
	if c.sse == sse && c.format == f && slices.Equal(c.entries, entries) {
		return c.chunk
	}
	c.entries = append(c.entries[:0], entries...)
	c.sse, c.format = sse, f
	c.chunk = append(c.chunk[:0], make([]byte, chunkHead)...)
	for _, e := range entries {
		c.chunk = appendEntry(c.chunk, e, sse, f)
	}
	c.chunk = finishChunk(c.chunk, 0)
	return c.chunk
}

// pass writes what the stream has to send. more says to pass over it again
// at once; else wait, if it has nothing now, is closed once it may have.
// wrote says it wrote.
func (d *directWriter) pass(ds *directStream, bufs *passBuffers) (more, wrote bool, wait <-chan struct{}) {
	st := ds.st
	buf := append(bufs.buf[:0], make([]byte, chunkHead)...)
	defer func() { bufs.buf = buf }()
	if st.gap != nil {
		var goOn bool
		if buf, goOn = st.takeGap(buf); !goOn {
			ds.finish(finishChunk(buf, 0))
			return false, true, nil
		}
		if st.gap != nil { // trimmed again meanwhile
			ds.write(finishChunk(buf, 0))
			return true, true, nil
		}
	}
	entries, w, err := st.sub.PollStep(eventBatch)
	entries, _ = fitBatch(st.sub, entries, st.req.format)
	switch {
	case errors.As(err, &st.gap):
		more = true // told in the next pass
	case err != nil:
		ds.finish(nil) // the feed failed or closed
		return false, false, nil
	case len(entries) > 0 && len(buf) == chunkHead:
		// Only events to send: the chunk may be the one the stream
		// before sent.
		ds.write(bufs.shared.of(entries, st.req.sse, st.req.format))
		ds.sent = true
		return true, true, nil
	case len(entries) > 0:
		for _, e := range entries {
			buf = appendEntry(buf, e, st.req.sse, st.req.format)
		}
		more = true // Poll again: it has more, or says what to wait on
	case w == nil:
		more = true // a stretch of the log with nothing for this stream
	default:
		wait = w
	}
	if len(buf) > chunkHead {
		ds.write(finishChunk(buf, 0))
		ds.sent, wrote = true, true
	}
	return more, wrote, wait
}

// heartbeat writes a keep-alive to an idle stream.
func (d *directWriter) heartbeat(ds *directStream, buf []byte) []byte {
	buf = ds.st.appendHeartbeat(append(buf[:0], make([]byte, chunkHead)...))
	ds.write(finishChunk(buf, 0))
	return buf
}

// write sends b without blocking; what the socket does not take is copied
// and written by a goroutine of the stream's own, under the stream write
// timeout, and the stream skipped until it is done.
func (ds *directStream) write(b []byte) {
	n := 0
	if ds.raw != nil {
		var werr error
		err := ds.raw.Write(func(fd uintptr) bool {
			for n < len(b) {
				m, err := syscall.Write(int(fd), b[n:])
				if err == syscall.EINTR {
					continue
				}
				if err != nil {
					if err != syscall.EAGAIN {
						werr = err
					}
					break
				}
				n += m
			}
			return true // never wait here
		})
		if err != nil || werr != nil {
			ds.end() // the client is gone, or the connection closed
			return
		}
	}
	if n == len(b) {
		return
	}
	rest := append([]byte(nil), b[n:]...)
	ds.draining.Store(true)
	go ds.drain(rest)
}

// finish writes b and the answer's last chunk, then closes the connection
// (once written, if the socket does not take it at once).
func (ds *directStream) finish(b []byte) {
	ds.last.Store(true)
	ds.write(append(b, "0\r\n\r\n"...))
	if !ds.draining.Load() {
		ds.end()
	}
}

// drain writes rest, blocking, and hands the stream back to the writer.
func (ds *directStream) drain(rest []byte) {
	ds.conn.SetWriteDeadline(time.Now().Add(ds.st.api.writeTimeout))
	_, err := ds.conn.Write(rest)
	if err != nil || ds.last.Load() {
		ds.end() // too slow or gone (it resumes by seq), or the end
		return
	}
	// The descriptor's writes check the deadline too.
	ds.conn.SetWriteDeadline(time.Time{})
	ds.draining.Store(false)
	ds.st.api.direct.wake()
}

// appendEntry appends one event as an SSE message or an NDJSON line.
func appendEntry(b []byte, e *feed.Entry, sse bool, f feed.Format) []byte {
	b = append(appendEntryHead(b, e, sse), e.JSON(f)...)
	return append(b, entryTail(sse)...)
}

// appendEntryHead appends what comes before an event's JSON: over SSE its
// id and event lines, and the data field's name.
func appendEntryHead(b []byte, e *feed.Entry, sse bool) []byte {
	if !sse {
		return b
	}
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, e.Seq(), 10)
	b = append(b, "\nevent: "...)
	b = append(b, e.Event.Op.String()...)
	return append(b, "\ndata: "...)
}

// entryTail is what ends an event: an empty line over SSE, a line end in
// NDJSON.
func entryTail(sse bool) string {
	if sse {
		return "\n\n"
	}
	return "\n"
}

// appendID appends an SSE message of a line and the id of a position.
func appendID(b []byte, line string, pos uint64) []byte {
	b = append(b, line...)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, pos, 10)
	return append(b, "\n\n"...)
}
