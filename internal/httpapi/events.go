package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/feed"
	"github.com/hippo-db/hippo/internal/store"
	"github.com/hippo-db/hippo/internal/wire"
)

const (
	// eventBatch is how many events a stream writes between flushes.
	eventBatch = 256
	// streamWriteTimeout drops a subscriber that cannot take a batch for
	// this long; it resumes from its last seq when it reconnects.
	streamWriteTimeout = time.Minute
	// defaultHeartbeat keeps idle streams alive through proxies.
	defaultHeartbeat = 15 * time.Second
)

// eventTypes are the types a subscriber may filter on.
var eventTypes = map[string]bool{
	store.OpCollectionCreated.String(): true,
	store.OpCollectionDeleted.String(): true,
	store.OpRecordUpserted.String():    true,
	store.OpRecordDeleted.String():     true,
}

// streamRequest is a parsed GET /v1/events.
type streamRequest struct {
	after     uint64 // deliver events with seq > after
	filter    feed.Filter
	format    feed.Format
	sse       bool
	failOnGap bool
	heartbeat time.Duration
}

func (a *API) parseStream(r *http.Request) (*streamRequest, error) {
	q, err := queryParams(r)
	if err != nil {
		return nil, err
	}
	sr := &streamRequest{after: a.engine.LastSeq(), format: feed.RecordsJSON, heartbeat: a.heartbeat}
	accept := r.Header.Get("Accept")
	sr.sse = strings.Contains(accept, "text/event-stream")
	if !sr.sse && accept != "" && !strings.Contains(accept, "application/x-ndjson") &&
		!strings.Contains(accept, "*/*") && !strings.Contains(accept, "application/*") {
		return nil, &apiError{Status: http.StatusNotAcceptable, Code: "not_acceptable",
			Message: fmt.Sprintf("cannot answer %q: accept text/event-stream or application/x-ndjson", accept)}
	}
	if s := q.Get("from"); s != "" {
		if sr.after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, newError("invalid_argument", fmt.Sprintf("from %q is not a sequence number", s))
		}
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if sr.after, err = strconv.ParseUint(strings.TrimSpace(id), 10, 64); err != nil {
			return nil, newError("invalid_argument", fmt.Sprintf("Last-Event-ID %q is not a sequence number", id))
		}
	}
	if s := q.Get("collections"); s != "" {
		sr.filter.Collections = map[string]bool{}
		for _, name := range strings.Split(s, ",") {
			if err := engine.ValidName(name); err != nil {
				return nil, err
			}
			sr.filter.Collections[name] = true
		}
	}
	if s := q.Get("types"); s != "" {
		sr.filter.Types = map[string]bool{}
		for _, t := range strings.Split(s, ",") {
			if !eventTypes[t] {
				return nil, newError("invalid_argument", fmt.Sprintf("unknown event type %q", t))
			}
			sr.filter.Types[t] = true
		}
	}
	switch q.Get("records") {
	case "", "true", "1":
	case "false", "0":
		sr.format = feed.NoRecords
	default:
		return nil, newError("invalid_argument", "records must be true or false")
	}
	if sr.format == feed.RecordsJSON && vectorsAsB64(r) {
		sr.format = feed.RecordsBase64
	}
	switch q.Get("on_gap") {
	case "", "event":
	case "fail":
		sr.failOnGap = true
	default:
		return nil, newError("invalid_argument", "on_gap must be event or fail")
	}
	return sr, nil
}

// events streams the change feed as Server-Sent Events or NDJSON.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	sr, err := a.parseStream(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	hub := a.engine.Feed()
	sub, err := hub.Subscribe(sr.after, sr.filter)
	var gap *feed.GapError
	if errors.As(err, &gap) && sr.failOnGap {
		a.writeError(w, r, gapError(gap))
		return
	}
	if err != nil && !errors.As(err, &gap) {
		a.writeError(w, r, err)
		return
	}
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.closing, cancel)
	defer stop()

	h := w.Header()
	if sr.sse {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // let nginx-like proxies stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 32<<10)
	flush := func() error {
		rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	if sr.sse {
		// The client's retry delay, and a first byte so it knows it is on.
		fmt.Fprintf(bw, "retry: 1000\n\n")
	}
	if err := flush(); err != nil {
		return
	}
	for {
		if gap != nil {
			writeGap(bw, gap, sr.sse)
			if sr.failOnGap {
				flush()
				return
			}
			if sub != nil {
				sub.Close()
			}
			if sub, err = hub.Subscribe(gap.Oldest-1, sr.filter); err != nil {
				if !errors.As(err, &gap) {
					return
				}
				continue
			}
			gap = nil
		}
		wait, cancelWait := context.WithTimeout(ctx, sr.heartbeat)
		entries, err := sub.Next(wait, eventBatch)
		cancelWait()
		switch {
		case errors.As(err, &gap):
			continue
		case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			if sr.sse {
				bw.WriteString(": heartbeat\n\n")
			} else {
				bw.WriteString("\n")
			}
		case err != nil:
			return // client gone, server closing, or the feed failed
		}
		for _, e := range entries {
			if sr.sse {
				bw.WriteString("id: ")
				bw.WriteString(strconv.FormatUint(e.Seq(), 10))
				bw.WriteString("\nevent: ")
				bw.WriteString(e.Event.Op.String())
				bw.WriteString("\ndata: ")
				bw.Write(e.JSON(sr.format))
				bw.WriteString("\n\n")
			} else {
				bw.Write(e.JSON(sr.format))
				bw.WriteByte('\n')
			}
		}
		if err := flush(); err != nil {
			return // the subscriber is too slow or gone; it resumes by seq
		}
	}
}

func gapError(gap *feed.GapError) *apiError {
	return &apiError{Status: http.StatusGone, Code: "gone", Message: gap.Error(),
		Details: map[string]any{"requested_seq": gap.Requested, "oldest_seq": gap.Oldest}}
}

// writeGap tells a subscriber that events it asked for are gone; the stream
// goes on from the oldest retained one.
func writeGap(bw *bufio.Writer, gap *feed.GapError, sse bool) {
	b := []byte(`{"type":"feed.gap","requested_seq":`)
	b = strconv.AppendUint(b, gap.Requested, 10)
	b = append(b, `,"oldest_seq":`...)
	b = strconv.AppendUint(b, gap.Oldest, 10)
	b = append(b, `,"message":`...)
	b = wire.AppendString(b, gap.Error())
	b = append(b, '}')
	if sse {
		bw.WriteString("event: feed.gap\ndata: ")
		bw.Write(b)
		bw.WriteString("\n\n")
		return
	}
	bw.Write(append(b, '\n'))
}
