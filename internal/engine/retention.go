package engine

import (
	"fmt"
	"time"
)

// Retention bounds the change log. Events older than MaxAge, and the oldest
// events beyond MaxBytes on disk, are trimmed; zero fields do not limit.
// Trimming never costs recovery: collections whose index snapshot still
// needs trimmed events are snapshotted first.
type Retention struct {
	MaxAge   time.Duration
	MaxBytes int64
	// Interval is how often retention runs; 0 means one minute.
	Interval time.Duration
}

// retentionLoop trims the log periodically until Close.
func (e *Engine) retentionLoop() {
	defer close(e.retentionDone)
	r := e.opts.Retention
	if r.MaxAge <= 0 && r.MaxBytes <= 0 {
		<-e.quit
		return
	}
	interval := r.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.quit:
			return
		case <-t.C:
			if err := e.applyRetention(time.Now()); err != nil {
				e.log.Error("feed retention", "err", err)
			}
		}
	}
}

// applyRetention trims the events that retention no longer keeps.
func (e *Engine) applyRetention(now time.Time) error {
	oldest, err := e.store.OldestSeq()
	if err != nil {
		return err
	}
	last := e.lastSeq.Load()
	if oldest > last {
		return nil
	}
	trim := oldest // trim events with seq < trim
	if age := e.opts.Retention.MaxAge; age > 0 {
		// The first event not older than the cutoff; events are in time
		// order because seq order is commit order.
		cutoff := now.Add(-age)
		lo, hi := oldest, last+1
		for lo < hi {
			mid := lo + (hi-lo)/2
			t, seq, ok, err := e.store.EventTime(mid)
			if err != nil {
				return err
			}
			if !ok || !t.Before(cutoff) {
				hi = mid
			} else {
				lo = seq + 1
			}
		}
		trim = max(trim, lo)
	}
	if limit := e.opts.Retention.MaxBytes; limit > 0 {
		// The smallest start whose suffix of the log fits the limit,
		// counting the events the store still holds in memory: without a
		// flush, the log could outgrow the limit by the store's memory
		// tables (tens of MiB) before anything counted.
		if err := e.store.Flush(); err != nil {
			return err
		}
		lo, hi := oldest, last+1
		for lo < hi {
			mid := lo + (hi-lo)/2
			n, err := e.store.EventBytes(mid, last+1)
			if err != nil {
				return err
			}
			if int64(n) <= limit {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		trim = max(trim, lo)
	}
	if trim <= oldest {
		return nil
	}
	// Recovery replays the log after each collection's snapshot: make sure
	// no snapshot needs what is about to go.
	for _, c := range e.allCollections() {
		if c.snapshotSeq.Load()+1 < trim {
			if err := e.writeSnapshot(c); err != nil {
				return fmt.Errorf("snapshot before trimming: %w", err)
			}
		}
	}
	if err := e.store.TrimEvents(trim); err != nil {
		return err
	}
	e.log.Info("feed retention", "trimmed_before", trim, "oldest_was", oldest)
	return nil
}
