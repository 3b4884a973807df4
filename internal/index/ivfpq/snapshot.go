package ivfpq

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync/atomic"

	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/kmeans"
	"github.com/hippo-db/hippo/internal/index/pq"
)

// ErrCorrupt is wrapped by the errors Read returns for input that is not a
// well-formed snapshot.
var ErrCorrupt = errors.New("hippo: ivfpq snapshot corrupt")

// Snapshot format, version 1; the full description with diagrams is
// docs/format/ivfpq.md. All integers are little-endian, checksums CRC-32C.
//
//	header (56 bytes)
//	  [8]byte "HIPPOIVF", u32 version (1), u32 dim, u32 nlist, u32 M,
//	  u32 flags (bits 0-1 metric; bit 2 trained; others zero),
//	  u32 train size, u32 iterations, u32 rerank, u64 seed, u32 nodes n,
//	  u32 CRC of the header bytes before it
//	if trained: nlist×dim f32 centroids, then the product quantizer
//	  (pq.AppendBinary: 8 + 1024·dim bytes)
//	n node records: u8 flags (bit 0 linked, bit 1 deleted, bit 2 encoded,
//	  bit 3 vector follows), then dim f32 if bit 3
//	if trained, nlist lists: u32 count, then count entries of
//	  u32 id, M bytes code, f32 extra
//	u32 CRC of every byte before it
const (
	snapshotMagic   = "HIPPOIVF"
	snapshotVersion = 1
	headerSize      = 8 + 4*9 + 8 + 4
	flagTrained     = 1 << 2

	nodeLinked  = 1 << 0
	nodeDeleted = 1 << 1
	nodeEncoded = 1 << 2
	nodeVector  = 1 << 3
)

// WriteTo writes a snapshot of the index to w. It waits for running Link
// calls (and a training) to finish and holds off new ones until it returns;
// Search, Scan, Append and Delete go on meanwhile. Nodes appended or deleted
// during the call may or may not be included.
func (ix *Index) WriteTo(w io.Writer) (int64, error) {
	ix.linkMu.Lock()
	defer ix.linkMu.Unlock()
	cw := &index.CRCWriter{W: w}
	bw := bufio.NewWriterSize(cw, 1<<16)
	n := ix.count.Load()
	m := ix.model.Load()
	le := binary.LittleEndian

	buf := make([]byte, 0, max(headerSize, 1+4*ix.dim, 8+ix.m))
	buf = append(buf, snapshotMagic...)
	flags := uint32(ix.metric)
	if m != nil {
		flags |= flagTrained
	}
	for _, v := range []uint32{snapshotVersion, uint32(ix.dim), uint32(ix.nlist), uint32(ix.m), flags,
		uint32(ix.trainSize), uint32(ix.iterations), uint32(ix.rerank)} {
		buf = le.AppendUint32(buf, v)
	}
	buf = le.AppendUint64(buf, uint64(ix.seed))
	buf = le.AppendUint32(buf, n)
	buf = le.AppendUint32(buf, crc32.Checksum(buf, index.Castagnoli))
	bw.Write(buf)
	if m != nil {
		for _, v := range m.coarse.Rows {
			bw.Write(le.AppendUint32(buf[:0], math.Float32bits(v)))
		}
		b, _ := m.pq.AppendBinary(nil)
		bw.Write(b)
	}
	for id := range n {
		c, slot := ix.node(id)
		v := ix.floats(c, slot) // before the state: see the package documentation
		st := c.state[slot].Load()
		var f byte
		if st&stateLinked != 0 {
			f |= nodeLinked
		}
		if st&stateDeleted != 0 {
			f |= nodeDeleted
		}
		if st&stateEncoded != 0 {
			f |= nodeEncoded
		}
		if v != nil {
			f |= nodeVector
		}
		buf = append(buf[:0], f)
		for _, x := range v {
			buf = le.AppendUint32(buf, math.Float32bits(x))
		}
		bw.Write(buf)
	}
	if m != nil {
		// Links are excluded, so the lists are stable. Entries of nodes
		// appended after n was loaded are left out.
		for l := range ix.lists {
			d := ix.lists[l].data.Load()
			var entries []int
			if d != nil {
				for j := range int(d.n.Load()) {
					if d.ids[j] < n {
						entries = append(entries, j)
					}
				}
			}
			bw.Write(le.AppendUint32(buf[:0], uint32(len(entries))))
			for _, j := range entries {
				buf = le.AppendUint32(buf[:0], d.ids[j])
				buf = append(buf, d.codes[j*ix.m:(j+1)*ix.m]...)
				buf = le.AppendUint32(buf, math.Float32bits(d.extra[j]))
				bw.Write(buf)
			}
		}
	}
	if err := cw.End(bw); err != nil {
		return cw.N, fmt.Errorf("write ivfpq snapshot: %w", err)
	}
	return cw.N, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Read loads a snapshot written by WriteTo, with distance as the exact
// distance function (nil means the stored metric's; a function passed must
// compute it). It reads exactly the snapshot's bytes from r; wrap an
// unbuffered r in a bufio.Reader. Malformed input gives an error wrapping
// ErrCorrupt, never a panic, and memory grows only with the input actually
// read, whatever the header claims. Errors from r are wrapped as they are.
func Read(r io.Reader, distance func(a, b []float32) float32) (*Index, error) {
	cr := &index.CRCReader{R: r, Corrupt: ErrCorrupt}
	head, err := cr.Header(headerSize, snapshotMagic)
	if err != nil {
		return nil, fmt.Errorf("read ivfpq snapshot header: %w", err)
	}
	le := binary.LittleEndian
	word := func(i int) uint32 { return le.Uint32(head[8+4*i:]) }
	if v := word(0); v != snapshotVersion {
		return nil, corrupt("version %d, want %d", v, snapshotVersion)
	}
	flags := word(4)
	if flags&^(3|flagTrained) != 0 || !index.Metric(flags&3).Valid() {
		return nil, corrupt("flags %#x", flags)
	}
	cfg := Config{Dim: int(word(1)), NList: int(word(2)), M: int(word(3)), Metric: index.Metric(flags & 3),
		TrainSize: int(word(5)), Iterations: int(word(6)), Rerank: int(word(7)),
		Seed: int64(le.Uint64(head[8+4*8:])), Distance: distance}
	n := le.Uint32(head[8+4*8+8:])
	if cfg.Dim == 0 || cfg.NList == 0 || cfg.M == 0 || cfg.TrainSize == 0 || cfg.Iterations == 0 {
		return nil, corrupt("zero in header %+v", cfg)
	}
	if err := cfg.fill(); err != nil {
		return nil, corrupt("%v", err)
	}
	if n == math.MaxUint32 {
		return nil, corrupt("%d nodes", n)
	}
	ix := New(cfg)
	var m *model
	if flags&flagTrained != 0 {
		var err error
		if m, err = readModel(cr, cfg); err != nil {
			return nil, err
		}
	}

	buf := make([]byte, max(1+4*cfg.Dim, 8+cfg.M))
	for id := range n {
		if err := cr.Full(buf[:1]); err != nil {
			return nil, fmt.Errorf("read ivfpq node %d: %w", id, err)
		}
		f := buf[0]
		if f&^15 != 0 || (f&nodeEncoded != 0 && m == nil) || (f&(nodeEncoded|nodeDeleted|nodeVector) == 0) ||
			(ix.keepVectors() && f&nodeVector == 0) {
			return nil, corrupt("node %d: flags %#x", id, f)
		}
		// Chunks are created without vectors, which are allocated only
		// when a node carries one, so a header claiming many nodes costs
		// nothing until they are read.
		dir := *ix.chunks.Load()
		if ci := int(id >> ix.chunkShift); ci == len(dir) {
			c := &chunk{state: make([]atomic.Uint32, 1<<ix.chunkShift), where: make([]uint64, 1<<ix.chunkShift)}
			c.pending.Store(int32(1 << ix.chunkShift))
			dir = append(dir, c)
			ix.chunks.Store(&dir)
		}
		c, slot := ix.node(id)
		if f&nodeVector != 0 {
			if err := cr.Full(buf[:4*cfg.Dim]); err != nil {
				return nil, fmt.Errorf("read ivfpq node %d: %w", id, err)
			}
			if c.vectors.Load() == nil {
				v := make([]float32, cfg.Dim<<ix.chunkShift)
				c.vectors.Store(&v)
			}
			v := ix.floats(c, slot)
			for i := range v {
				v[i] = math.Float32frombits(le.Uint32(buf[4*i:]))
			}
		}
		var st uint32
		if f&nodeLinked != 0 {
			st |= stateLinking | stateLinked
		}
		if f&nodeDeleted != 0 {
			st |= stateDeleted
		}
		if f&nodeEncoded != 0 {
			st |= stateEncoding // stateEncoded once its list entry is read
		}
		if f&(nodeEncoded|nodeDeleted) != 0 {
			st |= stateDone
			c.pending.Add(-1)
		}
		c.state[slot].Store(st)
		ix.count.Store(id + 1)
	}
	if m != nil {
		ix.model.Store(m)
		if err := ix.readLists(cr, buf, n); err != nil {
			return nil, err
		}
	}
	if err := cr.Trailer(); err != nil {
		return nil, fmt.Errorf("read ivfpq snapshot trailer: %w", err)
	}
	// Chunks with nodes still to be appended or without a code need vector
	// storage (such nodes carried their vectors, so only the last chunk's
	// free slots can lack it); fully encoded chunks need none unless the
	// index keeps its vectors.
	for _, c := range *ix.chunks.Load() {
		if c.vectors.Load() == nil && c.pending.Load() > 0 {
			v := make([]float32, cfg.Dim<<ix.chunkShift)
			c.vectors.Store(&v)
		}
		if c.pending.Load() == 0 && !ix.keepVectors() {
			c.vectors.Store(nil)
		}
	}
	if m != nil {
		for id := range n {
			c, slot := ix.node(id)
			st := c.state[slot].Load()
			if st&stateEncoding != 0 && st&stateEncoded == 0 {
				return nil, corrupt("encoded node %d is in no list", id)
			}
			if st&(stateEncoded|stateDeleted) == 0 && ix.floats(c, slot) == nil {
				return nil, corrupt("node %d has neither a code nor a vector", id)
			}
		}
		ix.ready.Store(true)
	}
	return ix, nil
}

func readModel(cr *index.CRCReader, cfg Config) (*model, error) {
	rows := make([]float32, 0, min(cfg.NList*cfg.Dim, 1<<20))
	var word [4]byte
	for range cfg.NList * cfg.Dim {
		if err := cr.Full(word[:]); err != nil {
			return nil, fmt.Errorf("read ivfpq centroids: %w", err)
		}
		v := math.Float32frombits(binary.LittleEndian.Uint32(word[:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, corrupt("centroid value %v", v)
		}
		rows = append(rows, v)
	}
	b := make([]byte, pq.EncodedSize(cfg.Dim))
	if err := cr.Full(b); err != nil {
		return nil, fmt.Errorf("read ivfpq codebooks: %w", err)
	}
	q, err := pq.Unmarshal(b)
	if err != nil {
		return nil, corrupt("%v", err)
	}
	if q.Dim() != cfg.Dim || q.M() != cfg.M {
		return nil, corrupt("codebooks of %d subspaces of %d dimensions", q.M(), q.Dim())
	}
	return &model{coarse: kmeans.NewCentroids(rows, cfg.Dim), pq: q}, nil
}

// readLists reads the inverted lists and sets every listed node's position;
// each must be an encoded node listed once.
func (ix *Index) readLists(cr *index.CRCReader, buf []byte, n uint32) error {
	le := binary.LittleEndian
	entry := buf[:8+ix.m]
	for l := range ix.lists {
		if err := cr.Full(buf[:4]); err != nil {
			return fmt.Errorf("read ivfpq list %d: %w", l, err)
		}
		count := le.Uint32(buf)
		if count > n {
			return corrupt("list %d of %d entries in an index of %d nodes", l, count, n)
		}
		for range count {
			if err := cr.Full(entry); err != nil {
				return fmt.Errorf("read ivfpq list %d: %w", l, err)
			}
			id := le.Uint32(entry)
			extra := math.Float32frombits(le.Uint32(entry[4+ix.m:]))
			if id >= n || math.IsNaN(float64(extra)) || math.IsInf(float64(extra), 0) {
				return corrupt("list %d: entry %d, extra %v", l, id, extra)
			}
			c, slot := ix.node(id)
			st := c.state[slot].Load()
			if st&stateEncoding == 0 || st&stateEncoded != 0 {
				return corrupt("list %d: node %d is not encoded or listed twice", l, id)
			}
			pos := ix.lists[l].add(id, entry[4:4+ix.m], extra, ix.m)
			c.where[slot] = uint64(l)<<32 | uint64(pos)
			c.state[slot].Store(st | stateEncoded)
		}
	}
	return nil
}
