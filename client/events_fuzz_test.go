package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzEventsRead feeds arbitrary bytes to the change feed's parser
// (eventStream.read) as the body of one connection, starting at position
// from, with a consumer that breaks out of the loop at the stopAt-th value (0:
// never). It checks that:
//
//   - the parser ends, reading the body no further than its end, with io.EOF
//     (the body ended between lines), io.ErrUnexpectedEOF (it ended inside a
//     line), an *eventDecodeError (which Events does not retry) or
//     errStopped (the loop broke out), and yields nothing after the break;
//   - every value yielded is an event or a *GapError, never both; events come
//     in strictly increasing seq order after from, each with the seq of the
//     data it was decoded from, and at most one per two line ends;
//   - the values, the position afterwards and the way it ended are those of a
//     model that splits the whole body into lines at once, so the same
//     whatever the read buffer's size: the parser is run with the production
//     64 KiB buffer and with one of 16 to 271 bytes, where most lines are
//     longer than the buffer and take the assembling path.
func FuzzEventsRead(f *testing.F) {
	const ev1 = `{"seq":1,"type":"record.upserted","collection":"c","id":"a","time":"2026-01-01T00:00:00Z"}`
	const ev2 = `{"seq":2,"type":"record.deleted","collection":"c","id":"a","time":"2026-01-01T00:00:01Z"}`
	const ev3 = `{"seq":3,"type":"record.upserted","collection":"c","id":"b","time":"2026-01-01T00:00:02Z","record":{"id":"b","vector_b64":"AACAPwAAAEA=","text":"t","metadata":{"k":1},"seq":3}}`
	for _, seed := range []struct {
		stream string
		from   uint64
		stopAt uint8
	}{
		{"id: 1\nevent: record.upserted\ndata: " + ev1 + "\n\nid: 2\nevent: record.deleted\ndata: " + ev2 + "\n\n", 0, 0},
		{"id: 1\r\nevent: record.upserted\r\ndata: " + ev1 + "\r\n\r\n: heartbeat\r\n\r\nid: 3\r\ndata: " + ev3 + "\r\n\r\n", 0, 0},
		{": heartbeat\n\n:\n\nretry: 500\n\nid: 7\n\n", 2, 0},              // comments, retry, a position only
		{"id: 2\ndata: " + ev2 + "\n\nid: 1\ndata: " + ev1 + "\n\n", 1, 0}, // seq 1 is already behind
		{"id: 1\ndata: " + ev1 + "\n\nid: 2\ndata: " + ev2 + "\n\n", 0, 1}, // the loop breaks at the first
		{"event: feed.gap\ndata: {\"type\":\"feed.gap\",\"requested_seq\":1,\"oldest_seq\":3,\"message\":\"trimmed\"}\n\nid: 2\ndata: " + ev2 + "\n\nid: 3\ndata: " + ev3 + "\n\n", 0, 0},
		{"data: {\"seq\":4,\n" + `data: "type":"x"}` + "\n\n", 0, 0},                // data on two lines
		{"data: {\"seq\":4,\"type\":\"a\ndata: b\"}\n\n", 0, 0},                     // a string across two: a raw LF in it
		{"event: feed.gap\ndata: {\"requested_seq\":1,\"oldest_seq\":3}\n\n", 0, 0}, // a gap by its event type alone
		{"data\n\nfoo: bar\nid\n\n", 0, 0},                                          // fields without values
		{"id: 1\ndata: " + ev1 + "\n\nid: 2\ndata: " + ev2[:20], 0, 0},              // cut off
		{"id: 1\ndata: " + ev1 + "\n", 0, 0},                                        // no blank line to dispatch it
		{"id: x\n\n", 0, 0},
		{"id:  7\n\nevent:  feed.gap\ndata: {}\n\n", 0, 0}, // the second space belongs to the value
		{"id: 18446744073709551616\n\n", 0, 0},
		{"data: {\"seq\":\n\n", 0, 0},
		{"data: {\"seq\":5,\"record\":{\"vector_b64\":\"AAA\"}}\n\n", 0, 0},
		{"\r\n\r\r\n\n", 0, 0},
		{"", 0, 0},
	} {
		f.Add([]byte(seed.stream), seed.from, uint8(0), seed.stopAt)
	}
	f.Fuzz(func(t *testing.T, stream []byte, from uint64, bufSize, stopAt uint8) {
		want := modelEventsRead(stream, from, int(stopAt))
		checkEventsRun(t, stream, from, int(stopAt), want)
		for _, size := range []int{16 + int(bufSize), eventsReadBufSize} {
			got := runEventsRead(t, stream, from, int(stopAt), size)
			checkEventsRun(t, stream, from, int(stopAt), got)
			if len(got.yields) != len(want.yields) {
				t.Fatalf("buffer %d: %d values, the model %d\n%q", size, len(got.yields), len(want.yields), stream)
			}
			for i := range got.yields {
				if !sameYield(got.yields[i], want.yields[i]) {
					t.Fatalf("buffer %d: value %d is %+v, %v; the model's %+v, %v\n%q", size, i,
						got.yields[i].event, got.yields[i].err, want.yields[i].event, want.yields[i].err, stream)
				}
			}
			if got.pos != want.pos || got.end != want.end {
				t.Fatalf("buffer %d: ended at %d with %v (%v); the model at %d with %v\n%q", size, got.pos, got.end, got.err, want.pos, want.end, stream)
			}
		}
	})
}

// eventsEnd is how a read ended.
type eventsEnd int

const (
	eventsEndEOF     eventsEnd = iota // io.EOF: the body ended between lines
	eventsEndCut                      // io.ErrUnexpectedEOF: it ended inside a line
	eventsEndDecode                   // an *eventDecodeError
	eventsEndStopped                  // errStopped
)

func (e eventsEnd) String() string {
	return [...]string{"EOF", "cut", "decode error", "stopped"}[e]
}

// eventsYield is one value yielded, with the data it was decoded from (the
// model's only).
type eventsYield struct {
	event *Event
	err   error
	data  []byte
}

type eventsRun struct {
	yields []eventsYield
	pos    uint64 // the eventStream's position afterwards
	end    eventsEnd
	err    error
}

// runEventsRead runs the real parser over stream through a bufio.Reader of
// size bytes.
func runEventsRead(t *testing.T, stream []byte, from uint64, stopAt, size int) eventsRun {
	t.Helper()
	var run eventsRun
	s := &eventStream{pos: from, havePos: true}
	s.yield = func(ev *Event, err error) bool {
		if s.stopped {
			t.Fatalf("buffer %d: yielded %+v, %v after the loop broke out\n%q", size, ev, err, stream)
		}
		run.yields = append(run.yields, eventsYield{event: ev, err: err})
		return len(run.yields) != stopAt
	}
	body := &pastEOFReader{r: bytes.NewReader(stream)}
	run.err = s.read(bufio.NewReaderSize(body, size))
	run.pos = s.pos
	if body.pastEOF > 0 {
		t.Fatalf("buffer %d: the parser read the body %d times after its end\n%q", size, body.pastEOF, stream)
	}
	var decodeErr *eventDecodeError
	switch {
	case run.err == io.EOF:
		run.end = eventsEndEOF
	case run.err == io.ErrUnexpectedEOF:
		run.end = eventsEndCut
	case errors.As(run.err, &decodeErr) && run.err.Error() != "":
		run.end = eventsEndDecode
	case run.err == errStopped:
		run.end = eventsEndStopped
	default:
		t.Fatalf("buffer %d: read returned %T %v\n%q", size, run.err, run.err, stream)
	}
	if s.stopped != (run.end == eventsEndStopped) {
		t.Fatalf("buffer %d: stopped is %v but read returned %v\n%q", size, s.stopped, run.err, stream)
	}
	if run.end != eventsEndStopped && retryable(run.err) != (run.end != eventsEndDecode) {
		t.Fatalf("buffer %d: retryable(%v) = %v\n%q", size, run.err, retryable(run.err), stream)
	}
	return run
}

// checkEventsRun checks what holds of any run, model or not.
func checkEventsRun(t *testing.T, stream []byte, from uint64, stopAt int, run eventsRun) {
	t.Helper()
	if n := bytes.Count(stream, []byte("\n")); len(run.yields) > n/2 {
		t.Fatalf("%d values from %d line ends\n%q", len(run.yields), n, stream)
	}
	if run.end == eventsEndStopped && len(run.yields) != stopAt {
		t.Fatalf("stopped after %d values, the loop broke at %d\n%q", len(run.yields), stopAt, stream)
	}
	switch ends := len(stream) == 0 || stream[len(stream)-1] == '\n'; {
	case run.end == eventsEndEOF && !ends:
		t.Fatalf("io.EOF, but the body ends inside a line\n%q", stream)
	case run.end == eventsEndCut && ends:
		t.Fatalf("io.ErrUnexpectedEOF, but the body ends with a line end\n%q", stream)
	}
	last := from
	for i, y := range run.yields {
		if (y.event == nil) == (y.err == nil) {
			t.Fatalf("value %d: event %+v and error %v\n%q", i, y.event, y.err, stream)
		}
		if y.err != nil {
			if _, ok := y.err.(*GapError); !ok {
				t.Fatalf("value %d: error %T %v, want a *GapError\n%q", i, y.err, y.err, stream)
			}
			continue
		}
		if y.event.Seq <= last {
			t.Fatalf("value %d: seq %d after %d\n%q", i, y.event.Seq, last, stream)
		}
		last = y.event.Seq
		if y.data != nil {
			var seq struct {
				Seq uint64 `json:"seq"`
			}
			if !json.Valid(y.data) || json.Unmarshal(y.data, &seq) != nil || seq.Seq != y.event.Seq {
				t.Fatalf("value %d: seq %d decoded from %q\n%q", i, y.event.Seq, y.data, stream)
			}
		}
	}
	if run.pos < last {
		t.Fatalf("position %d is behind the last seq yielded, %d\n%q", run.pos, last, stream)
	}
}

// modelEventsRead is what read should do with stream, written from the SSE
// format as Events uses it: lines end in LF or CRLF; a blank line dispatches
// the message; a line beginning with a colon is a comment; "data" fields are
// joined by LF and decoded as an event or a feed.gap notice; the "id" field
// is a seq, which moves the position when it comes without data; events at
// or behind the position were delivered before and are skipped; a message
// not followed by a blank line is not dispatched.
func modelEventsRead(stream []byte, from uint64, stopAt int) eventsRun {
	run := eventsRun{pos: from}
	yield := func(y eventsYield) bool {
		run.yields = append(run.yields, y)
		if len(run.yields) == stopAt {
			run.end = eventsEndStopped
			return false
		}
		return true
	}
	lines := strings.Split(string(stream), "\n")
	var (
		eventType, id string
		data          []string
		hasID         bool
	)
	for _, line := range lines[:len(lines)-1] {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			if hasID {
				seq, err := strconv.ParseUint(id, 10, 64)
				if err != nil {
					run.end = eventsEndDecode
					return run
				}
				if data == nil && seq > run.pos {
					run.pos = seq
				}
			}
			if data != nil {
				raw := []byte(strings.Join(data, "\n"))
				var w eventWire
				if json.Unmarshal(raw, &w) != nil {
					run.end = eventsEndDecode
					return run
				}
				switch {
				case eventType == feedGapType || w.Type == feedGapType:
					if w.OldestSeq > 0 && w.OldestSeq-1 > run.pos {
						run.pos = w.OldestSeq - 1
					}
					if !yield(eventsYield{err: &GapError{Requested: w.RequestedSeq, Oldest: w.OldestSeq, Message: w.Message}, data: raw}) {
						return run
					}
				case w.Seq > run.pos:
					ev := w.event()
					run.pos = w.Seq
					if !yield(eventsYield{event: ev, data: raw}) {
						return run
					}
				}
			}
			eventType, id, data, hasID = "", "", nil, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "data":
			data = append(data, value)
		case "event":
			eventType = value
		case "id":
			id, hasID = value, true
		}
	}
	if lines[len(lines)-1] != "" {
		run.end = eventsEndCut
	} else {
		run.end = eventsEndEOF
	}
	return run
}

// sameYield compares a value the parser yielded with the model's; vectors
// bit for bit, since vector_b64 can hold NaNs.
func sameYield(got, want eventsYield) bool {
	if (got.err == nil) != (want.err == nil) || (got.event == nil) != (want.event == nil) {
		return false
	}
	if got.err != nil {
		g, ok := got.err.(*GapError)
		return ok && *g == *want.err.(*GapError)
	}
	a, b := got.event, want.event
	if a.Seq != b.Seq || a.Type != b.Type || a.Collection != b.Collection || a.ID != b.ID || !a.Time.Equal(b.Time) ||
		(a.Record == nil) != (b.Record == nil) {
		return false
	}
	if a.Record == nil {
		return true
	}
	ra, rb := a.Record, b.Record
	return ra.ID == rb.ID && ra.Text == rb.Text && ra.Seq == rb.Seq &&
		ra.CreatedAt.Equal(rb.CreatedAt) && ra.UpdatedAt.Equal(rb.UpdatedAt) &&
		reflect.DeepEqual(ra.Metadata, rb.Metadata) && (ra.Vector == nil) == (rb.Vector == nil) &&
		slices.EqualFunc(ra.Vector, rb.Vector, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// pastEOFReader counts the reads made after r reported its end: a parser
// that keeps reading there would never end on a real connection's EOF.
type pastEOFReader struct {
	r       io.Reader
	eof     bool
	pastEOF int
}

func (r *pastEOFReader) Read(p []byte) (int, error) {
	if r.eof {
		r.pastEOF++
	}
	n, err := r.r.Read(p)
	if err == io.EOF {
		r.eof = true
	}
	return n, err
}
