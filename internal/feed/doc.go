// Package feed serves the change log to live subscribers: in seq order,
// resumable from any retained position, in bounded memory.
//
// The log itself is durable and lives in the store: every committed change
// has its event there, written in the same batch (internal/store). The feed
// adds no durability of its own; it only reads.
//
// Invariants:
//
//   - One reader for all: the Hub's goroutine takes the events a commit
//     hands it (PublishEvents) or else reads each new event from the store
//     once, looks up the record an upsert wrote once, and keeps the newest
//     events in a ring of shared Entries. An Entry is encoded to JSON at
//     most once per format, however many subscribers receive it.
//   - Bounded memory: the ring has a fixed capacity. A subscriber holds only
//     its position and the batch it is writing. One that falls behind the
//     ring (a slow reader) catches up from the store in bounded batches and
//     rejoins the ring; nothing is dropped and nothing piles up. The batches
//     read for catching up go into a second, small fixed-size history that
//     every catching-up subscriber reads first, so that subscribers behind
//     together share their reads and encodings too.
//   - Rounds: the hub reads and wakes subscribers at most every
//     roundInterval (50 µs per subscriber, at most 5 ms), so that a burst
//     of commits costs each subscriber one wake-up and one write, not one
//     per commit.
//   - Order and completeness: a subscription yields every event after its
//     position whose collection and type pass its filter, in seq order, each
//     once. If events it needs were trimmed by retention, it returns a
//     *GapError naming the oldest retained seq instead of skipping silently.
//
// Locking: Hub.mu guards the ring, the history and the broadcast channel;
// the Hub's goroutine is the only writer of the ring, catching-up
// subscribers write the history. Subscriptions are used by one goroutine;
// Poll lets it wait for new events on a channel of the hub's instead of a
// timer or goroutine of its own.
package feed
