package hnsw

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/scalar"
)

// ErrCorrupt is wrapped by the errors Read returns for input that is not a
// well-formed snapshot: bad magic, unknown version, a truncated stream, a
// checksum mismatch or inconsistent contents.
var ErrCorrupt = errors.New("hippo: hnsw snapshot corrupt")

// Snapshot format, version 1. All integers are little-endian.
//
//	header
//	  [8]byte  magic "HIPPOHNS"
//	  uint32   version (1)
//	  uint32   dim
//	  uint32   M
//	  uint32   efConstruction
//	  uint32   flags: bit 0 KeepPruned; bit 1 int8 quantization; bits 2-3
//	           the metric (0 L2, 1 dot, 2 cosine); other bits zero
//	  uint64   seed
//	  uint32   nodes (n)
//	  uint32   entry point id (0 when there is none)
//	  uint32   entry point level + 1 (0 when no node is linked)
//	  uint32   CRC-32C (Castagnoli) of the header bytes above
//	if flags bit 1, the quantization section
//	  uint32   length L of what follows, up to the section's CRC
//	  uint8    flags: bit 0 symmetric, bit 1 global; other bits zero
//	  [3]byte  zero
//	  float64  quantile
//	  uint32   train size
//	  uint32   rerank
//	  uint32   next training at (0: never)
//	  uint32   trained at (0: not trained; nothing follows)
//	  if trained: the quantizer (package scalar's AppendBinary)
//	  uint32   CRC-32C of the section from L on
//	n node records, in id order
//	  uint8    flags: bit 0 linked, bit 1 deleted; other bits zero
//	  uint8    level L (0 when not linked)
//	  dim×float32 vector (IEEE-754 bits)
//	  if linked, for each layer 0..L:
//	    uint32       count c (≤ 2M on layer 0, ≤ M above)
//	    c×uint32     neighbour ids
//	trailer
//	  uint32   CRC-32C of every byte before it, header included
//
// The header has its own checksum so that a damaged header is rejected
// before its sizes are trusted. Read checks, beyond the checksums, that every
// neighbour id is a linked node whose level reaches the layer, that unlinked
// nodes have level 0, and that the entry point is a linked node of the
// highest level, so that no input can make a later Search index out of range.
// Nodes that were being linked while WriteTo ran are stored unlinked.
//
// The int8 codes are not stored: Read recomputes them from the vectors with
// the stored quantizer, which gives the same codes, in about 4 ms per 10,000
// vectors of 784 dimensions.
const (
	snapshotMagic   = "HIPPOHNS"
	snapshotVersion = 1
	headerSize      = 8 + 4*5 + 8 + 4*4 // magic, 5 words, seed, 3 words and the CRC
	maxSnapshotDim  = 1 << 16
	maxSnapshotM    = 1 << 10
	maxSnapshotEfC  = 1 << 20

	flagKeepPruned = 1 << 0
	flagInt8       = 1 << 1
	metricShift    = 2
	metricMask     = 3 << metricShift
	knownFlags     = flagKeepPruned | flagInt8 | metricMask

	quantFixedSize = 4 + 8 + 4*4 // flags and padding, quantile, 4 words
)

// WriteTo writes a snapshot of the index to w: its configuration (less the
// distance function), vectors, levels, neighbour lists, linked and deleted
// flags and entry point, with checksums. It waits for running Link calls to
// finish and holds off new ones until it returns; Search, Scan, Append and
// Delete go on meanwhile. Nodes appended or deleted during the call may or may
// not be included.
func (ix *Index) WriteTo(w io.Writer) (int64, error) {
	ix.linkMu.Lock()
	defer ix.linkMu.Unlock()
	cw := &index.CRCWriter{W: w}
	bw := bufio.NewWriterSize(cw, 1<<16)
	n := ix.count.Load()
	entryID, entryLevel := unpackEntry(ix.entry.Load())

	buf := make([]byte, 0, max(headerSize, 2+4*ix.dim, 4*ix.stride0))
	buf = append(buf, snapshotMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, snapshotVersion)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(ix.dim))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(ix.m))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(ix.efConstruction))
	flags := uint32(ix.metric) << metricShift
	if ix.keepPruned {
		flags |= flagKeepPruned
	}
	if ix.quantization.Int8 {
		flags |= flagInt8
	}
	buf = binary.LittleEndian.AppendUint32(buf, flags)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(ix.seed))
	buf = binary.LittleEndian.AppendUint32(buf, n)
	buf = binary.LittleEndian.AppendUint32(buf, entryID)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(entryLevel+1))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, index.Castagnoli))
	bw.Write(buf)
	if ix.quantization.Int8 {
		bw.Write(ix.appendQuantSection(nil))
	}

	for id := range n {
		c, slot := ix.node(id)
		st := c.state[slot].Load()
		linked := st&stateLinked != 0
		var flags, level byte
		if linked {
			flags |= 1
			level = c.levels[slot]
		}
		if st&stateDeleted != 0 {
			flags |= 2
		}
		buf = append(buf[:0], flags, level)
		for _, v := range ix.vector(id) {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		bw.Write(buf)
		if !linked {
			continue
		}
		for layer := 0; layer <= int(level); layer++ {
			list := ix.list(c, slot, layer)
			// Link calls are excluded, so the lists are stable.
			cnt := list[0]
			buf = binary.LittleEndian.AppendUint32(buf[:0], cnt)
			for _, nb := range list[1 : 1+cnt] {
				buf = binary.LittleEndian.AppendUint32(buf, nb)
			}
			bw.Write(buf)
		}
	}
	if err := cw.End(bw); err != nil {
		return cw.N, fmt.Errorf("write hnsw snapshot: %w", err)
	}
	return cw.N, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Read loads a snapshot written by WriteTo, with distance as the index's
// distance function (nil means the stored metric's; a function passed must
// compute that metric). It reads exactly the snapshot's bytes from r;
// wrap an unbuffered r in a bufio.Reader. Malformed input gives an error
// wrapping ErrCorrupt, never a panic, and memory grows only with the input
// actually read, whatever the header claims. Errors from r are wrapped as
// they are.
func Read(r io.Reader, distance func(a, b []float32) float32) (*Index, error) {
	cr := &index.CRCReader{R: r, Corrupt: ErrCorrupt}
	head, err := cr.Header(headerSize, snapshotMagic)
	if err != nil {
		return nil, fmt.Errorf("read hnsw snapshot header: %w", err)
	}
	le := binary.LittleEndian
	if v := le.Uint32(head[8:]); v != snapshotVersion {
		return nil, corrupt("version %d, want %d", v, snapshotVersion)
	}
	dim, m, efc, flags := le.Uint32(head[12:]), le.Uint32(head[16:]), le.Uint32(head[20:]), le.Uint32(head[24:])
	seed := int64(le.Uint64(head[28:]))
	n, entryID, entryLevel := le.Uint32(head[36:]), le.Uint32(head[40:]), int(le.Uint32(head[44:]))-1
	switch {
	case dim < 1 || dim > maxSnapshotDim:
		return nil, corrupt("dim %d", dim)
	case m < 2 || m > maxSnapshotM:
		return nil, corrupt("M %d", m)
	case efc < 1 || efc > maxSnapshotEfC:
		return nil, corrupt("efConstruction %d", efc)
	case flags&^knownFlags != 0 || !index.Metric(flags>>metricShift&3).Valid():
		return nil, corrupt("flags %#x", flags)
	case n == math.MaxUint32:
		return nil, corrupt("%d nodes", n)
	case entryLevel >= maxLayers:
		return nil, corrupt("entry level %d", entryLevel)
	case entryLevel >= 0 && entryID >= n:
		return nil, corrupt("entry point %d of %d nodes", entryID, n)
	case entryLevel < 0 && entryID != 0:
		return nil, corrupt("entry point %d without a level", entryID)
	}
	cfg := Config{Dim: int(dim), M: int(m), EfConstruction: int(efc), Metric: index.Metric(flags >> metricShift & 3),
		Distance: distance, Seed: seed, KeepPruned: flags&flagKeepPruned != 0}
	var quant *quantSection
	if flags&flagInt8 != 0 {
		var err error
		if quant, err = readQuantSection(cr, int(dim), cfg.Metric); err != nil {
			return nil, fmt.Errorf("read hnsw quantization: %w", err)
		}
		cfg.Quantization = quant.config
	}
	ix := New(cfg)

	buf := make([]byte, max(2+4*dim, 4*(2*m+1)))
	anyLinked := false
	for id := range n {
		if err := cr.Full(buf[:2+4*dim]); err != nil {
			return nil, fmt.Errorf("read hnsw node %d: %w", id, err)
		}
		nodeFlags, level := buf[0], int(buf[1])
		if nodeFlags&^3 != 0 {
			return nil, corrupt("node %d: flags %#x", id, nodeFlags)
		}
		linked := nodeFlags&1 != 0
		if level >= maxLayers || (!linked && level != 0) || (linked && level > entryLevel) {
			return nil, corrupt("node %d: level %d (linked %t, top %d)", id, level, linked, entryLevel)
		}
		// Nodes are added one at a time, so a header that claims more nodes
		// than the input holds costs at most one chunk before the input ends.
		v := ix.slot(id)
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(buf[2+4*i:]))
		}
		c, slot := ix.node(id)
		var st uint32
		if linked {
			st |= stateLinking | stateLinked
			anyLinked = true
			c.levels[slot] = uint8(level)
			if level > 0 {
				c.upper[slot] = make([]uint32, level*ix.strideUp)
				ix.upperWords.Add(int64(level * ix.strideUp))
			}
			for layer := 0; layer <= level; layer++ {
				if err := ix.readList(cr, buf, c, slot, layer, n); err != nil {
					return nil, fmt.Errorf("read hnsw node %d layer %d: %w", id, layer, err)
				}
			}
		}
		if nodeFlags&2 != 0 {
			st |= stateDeleted
		}
		c.state[slot].Store(st)
		ix.count.Store(id + 1)
	}
	if err := cr.Trailer(); err != nil {
		return nil, fmt.Errorf("read hnsw snapshot trailer: %w", err)
	}
	if err := ix.checkGraph(anyLinked, entryID, entryLevel); err != nil {
		return nil, err
	}
	if entryLevel >= 0 {
		ix.entry.Store(packEntry(entryID, entryLevel))
	}
	if quant != nil {
		ix.nextTrain = quant.nextTrain
		if quant.quantizer != nil {
			ix.publishCodes(quant.quantizer, quant.trainedAt, n)
		}
	}
	return ix, nil
}

// appendQuantSection appends the quantization section to b.
func (ix *Index) appendQuantSection(b []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0) // length, filled in below
	q := ix.quantization
	var flags byte
	if q.Symmetric {
		flags |= 1
	}
	if q.Global {
		flags |= 2
	}
	b = append(b, flags, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(q.Quantile))
	b = binary.LittleEndian.AppendUint32(b, uint32(q.TrainSize))
	b = binary.LittleEndian.AppendUint32(b, uint32(q.Rerank))
	// nextTrain is the appender's; WriteTo may run concurrently with
	// Append, so it is recomputed from the published generation rather than
	// read.
	cs := ix.codes.Load()
	var trainedAt, next uint32
	if cs != nil {
		trainedAt = cs.trainedAt
		next = nextTrainAfter(trainedAt, uint32(q.TrainSize))
	} else {
		next = uint32(q.TrainSize)
	}
	b = binary.LittleEndian.AppendUint32(b, next)
	b = binary.LittleEndian.AppendUint32(b, trainedAt)
	if cs != nil {
		b, _ = cs.quantizer.AppendBinary(b)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], index.Castagnoli))
}

// quantSection is the quantization section as read.
type quantSection struct {
	config               Quantization
	nextTrain, trainedAt uint32
	quantizer            *scalar.Quantizer // nil when not trained
}

func readQuantSection(cr *index.CRCReader, dim int, metric index.Metric) (*quantSection, error) {
	var head [4]byte
	if err := cr.Full(head[:]); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	size := le.Uint32(head[:])
	if size != quantFixedSize && size != quantFixedSize+uint32(scalar.EncodedSize(dim)) {
		return nil, corrupt("quantization section of %d bytes", size)
	}
	b := make([]byte, size+4)
	if err := cr.Full(b); err != nil {
		return nil, err
	}
	body := b[:size]
	if got, want := le.Uint32(b[size:]), crc32.Update(crc32.Checksum(head[:], index.Castagnoli), index.Castagnoli, body); got != want {
		return nil, corrupt("quantization checksum %08x, want %08x", got, want)
	}
	qs := &quantSection{config: Quantization{
		Int8:      true,
		Symmetric: body[0]&1 != 0,
		Global:    body[0]&2 != 0,
		Quantile:  math.Float64frombits(le.Uint64(body[4:])),
		TrainSize: int(le.Uint32(body[12:])),
		Rerank:    int(le.Uint32(body[16:])),
	}}
	qs.nextTrain, qs.trainedAt = le.Uint32(body[20:]), le.Uint32(body[24:])
	c := qs.config
	switch {
	case body[0]&^3 != 0 || body[1] != 0 || body[2] != 0 || body[3] != 0:
		return nil, corrupt("quantization flags %x", body[:4])
	case !(c.Quantile >= 0 && c.Quantile <= 0.1):
		return nil, corrupt("quantile %v", c.Quantile)
	case c.TrainSize < 1 || c.TrainSize > maxTrainSize || c.Rerank < 0 || c.Rerank > maxSnapshotEfC:
		return nil, corrupt("train size %d, rerank %d", c.TrainSize, c.Rerank)
	case (qs.trainedAt == 0) != (size == quantFixedSize):
		return nil, corrupt("trained at %d with a %d-byte section", qs.trainedAt, size)
	}
	if qs.trainedAt > 0 {
		q, err := scalar.Unmarshal(body[quantFixedSize:])
		if err != nil {
			return nil, corrupt("%v", err)
		}
		if o := q.Options(); q.Dim() != dim || o.Metric != metric || o.Symmetric != c.Symmetric || o.Global != c.Global || o.Quantile != c.Quantile {
			return nil, corrupt("quantizer %+v (dim %d) does not match the index", o, q.Dim())
		}
		qs.quantizer = q
	}
	return qs, nil
}

// readList reads one neighbour list into the node's storage, using buf,
// which is at least 4*(M+1) bytes, as scratch.
func (ix *Index) readList(cr *index.CRCReader, buf []byte, c *chunk, slot, layer int, n uint32) error {
	list := ix.list(c, slot, layer)
	if err := cr.Full(buf[:4]); err != nil {
		return err
	}
	cnt := binary.LittleEndian.Uint32(buf)
	if int64(cnt) > int64(len(list)-1) {
		return corrupt("%d neighbours, capacity %d", cnt, len(list)-1)
	}
	ids := buf[:4*cnt]
	if err := cr.Full(ids); err != nil {
		return err
	}
	list[0] = cnt
	for i := range cnt {
		nb := binary.LittleEndian.Uint32(ids[4*i:])
		if nb >= n {
			return corrupt("neighbour %d of %d nodes", nb, n)
		}
		list[1+i] = nb
	}
	return nil
}

// checkGraph verifies what Read could not check node by node: neighbours are
// linked and reach the layer they appear on, and the entry point is sound.
func (ix *Index) checkGraph(anyLinked bool, entryID uint32, entryLevel int) error {
	if anyLinked != (entryLevel >= 0) {
		return corrupt("entry level %d with linked nodes %t", entryLevel, anyLinked)
	}
	if entryLevel >= 0 {
		c, slot := ix.node(entryID)
		if c.state[slot].Load()&stateLinked == 0 || int(c.levels[slot]) != entryLevel {
			return corrupt("entry point %d is not a linked node of level %d", entryID, entryLevel)
		}
	}
	n := ix.count.Load()
	for id := range n {
		c, slot := ix.node(id)
		if c.state[slot].Load()&stateLinked == 0 {
			continue
		}
		for layer := 0; layer <= int(c.levels[slot]); layer++ {
			list := ix.list(c, slot, layer)
			for _, nb := range list[1 : 1+list[0]] {
				nc, ns := ix.node(nb)
				if nc.state[ns].Load()&stateLinked == 0 || int(nc.levels[ns]) < layer {
					return corrupt("node %d layer %d: neighbour %d is not linked at that layer", id, layer, nb)
				}
			}
		}
	}
	return nil
}
