package engine

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/index/hnsw"
	"github.com/hippo-db/hippo/internal/index/ivfpq"
	"github.com/hippo-db/hippo/internal/store"
)

// The snapshot file format is specified in docs/format/snapshot.md.
const (
	snapshotMagic   = "HIPPOSNP"
	snapshotVersion = 1
	snapshotHeader  = 8 + 4 + 8 + 8 + 4 + 4 // magic, version, seq, collection id, linked, nodes
	nodeLive        = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errSnapshotCorrupt marks a snapshot that must be ignored.
var errSnapshotCorrupt = fmt.Errorf("%w: index snapshot", store.ErrCorrupt)

func (e *Engine) snapshotPath(collectionID uint64) string {
	return filepath.Join(e.opts.Dir, "index", fmt.Sprintf("%016x.snap", collectionID))
}

func (e *Engine) removeSnapshot(collectionID uint64) {
	if err := os.Remove(e.snapshotPath(collectionID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.log.Warn("remove index snapshot", "err", err)
	}
}

// removeStaleSnapshots deletes temporary files and snapshots of collections
// that no longer exist.
func (e *Engine) removeStaleSnapshots(live []store.Collection) {
	dir := filepath.Join(e.opts.Dir, "index")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, d := range live {
		keep[filepath.Base(e.snapshotPath(d.ID))] = true
	}
	for _, ent := range entries {
		if !keep[ent.Name()] {
			os.Remove(filepath.Join(dir, ent.Name()))
		}
	}
}

// snapshotLoop snapshots changed collections periodically until Close.
func (e *Engine) snapshotLoop() {
	defer close(e.snapshotDone)
	if e.opts.SnapshotInterval < 0 {
		<-e.quit
		return
	}
	t := time.NewTicker(e.opts.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-e.quit:
			return
		case <-t.C:
			for _, c := range e.allCollections() {
				if err := e.snapshotIfChanged(c); err != nil {
					e.log.Error("index snapshot", "collection", c.desc.Name, "err", err)
				}
			}
		}
	}
}

// snapshotIfChanged writes a snapshot when the collection changed or its
// graph grew since the last one.
func (e *Engine) snapshotIfChanged(c *Collection) error {
	c.mu.RLock()
	applied := c.mu.appliedSeq
	c.mu.RUnlock()
	if applied <= c.snapshotSeq.Load() && c.linkedBelow.Load() == c.snapshotLinked.Load() {
		return nil
	}
	return e.writeSnapshot(c)
}

// writeSnapshot writes the collection's index and node table atomically:
// to a temporary file that is synced and then renamed over the old one.
// Writes to the collection wait while it runs.
func (e *Engine) writeSnapshot(c *Collection) error {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	c.mu.RLock()
	defer c.mu.RUnlock()

	path := e.snapshotPath(c.desc.ID)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("snapshot %q: %w", c.desc.Name, err)
	}
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	defer f.Close()
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)

	// The snapshot covers every change up to the last committed seq, not
	// just this collection's last change: under c.mu no change to it is half
	// applied, and every change up to lastSeq was applied before lastSeq was
	// stored. Recording the larger seq lets retention trim the log up to it.
	seq := max(c.mu.appliedSeq, e.lastSeq.Load())
	linked := c.linkedBelow.Load()
	hdr := make([]byte, 0, snapshotHeader)
	hdr = append(hdr, snapshotMagic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, snapshotVersion)
	hdr = binary.LittleEndian.AppendUint64(hdr, seq)
	hdr = binary.LittleEndian.AppendUint64(hdr, c.desc.ID)
	hdr = binary.LittleEndian.AppendUint32(hdr, linked)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(c.mu.nodes)))
	w.Write(hdr)
	var buf []byte
	for i := range c.mu.nodes {
		n := &c.mu.nodes[i]
		buf = buf[:0]
		if cur, ok := c.mu.ids[n.id]; !ok || cur != uint32(i) {
			buf = append(buf, 0)
		} else {
			var meta []byte
			if n.meta != nil {
				if meta, err = json.Marshal(n.meta); err != nil {
					return fmt.Errorf("snapshot %q: %w", c.desc.Name, err)
				}
			}
			buf = append(buf, nodeLive)
			buf = binary.AppendUvarint(buf, uint64(len(n.id)))
			buf = append(buf, n.id...)
			buf = binary.AppendVarint(buf, n.createdAt)
			buf = binary.AppendUvarint(buf, uint64(len(meta)))
			buf = append(buf, meta...)
		}
		w.Write(buf)
	}
	if _, err := c.index.WriteTo(w); err != nil {
		return fmt.Errorf("snapshot %q: %w", c.desc.Name, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("snapshot %q: %w", c.desc.Name, err)
	}
	if _, err := f.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return fmt.Errorf("snapshot %q: %w", c.desc.Name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snapshot %q: %w", c.desc.Name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("snapshot %q: %w", c.desc.Name, err)
	}
	syncDir(filepath.Dir(path))
	c.snapshotSeq.Store(seq)
	c.snapshotLinked.Store(linked)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// loadSnapshot reads a collection's snapshot; (nil, nil) when there is none.
func (e *Engine) loadSnapshot(desc store.Collection) (*Collection, error) {
	data, err := os.ReadFile(e.snapshotPath(desc.ID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(data) < snapshotHeader+4 || string(data[:8]) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad header", errSnapshotCorrupt)
	}
	body, trailer := data[:len(data)-4], data[len(data)-4:]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(trailer) {
		return nil, fmt.Errorf("%w: checksum mismatch", errSnapshotCorrupt)
	}
	if v := binary.LittleEndian.Uint32(body[8:]); v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d", errSnapshotCorrupt, v)
	}
	seq := binary.LittleEndian.Uint64(body[12:])
	if id := binary.LittleEndian.Uint64(body[20:]); id != desc.ID {
		return nil, fmt.Errorf("%w: belongs to collection %d", errSnapshotCorrupt, id)
	}
	linked := binary.LittleEndian.Uint32(body[28:])
	count := binary.LittleEndian.Uint32(body[32:])
	r := bytes.NewReader(body[snapshotHeader:])
	nodes := make([]node, 0, min(int(count), len(body)))
	for i := range count {
		flag, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: node %d: %v", errSnapshotCorrupt, i, err)
		}
		if flag == 0 {
			nodes = append(nodes, node{})
			continue
		}
		id, err1 := readBytes(r)
		created, err2 := binary.ReadVarint(r)
		meta, err3 := readBytes(r)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%w: node %d: %v", errSnapshotCorrupt, i, err)
		}
		m, err := parseMetadata(meta)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, node{id: string(id), meta: m, createdAt: created})
	}
	idx, err := readIndex(r, desc)
	if err != nil {
		return nil, err
	}
	if idx.Len() != len(nodes) {
		return nil, fmt.Errorf("%w: %d nodes but %d vectors", errSnapshotCorrupt, len(nodes), idx.Len())
	}
	c := newCollection(desc, idx)
	for i, n := range nodes {
		if n.id != "" {
			c.mu.ids[n.id] = uint32(i)
			c.mu.live++
		}
	}
	c.mu.nodes = nodes
	c.mu.appliedSeq = seq
	c.linkedBelow.Store(min(linked, uint32(len(nodes))))
	c.snapshotSeq.Store(seq)
	c.snapshotLinked.Store(c.linkedBelow.Load())
	return c, nil
}

// readIndex reads the index payload, an hnsw or ivfpq snapshot told apart by
// its magic, and checks that it is the index the descriptor asks for: a
// snapshot that is not (say, written by an older version with other
// settings) is corrupt, and the collection is rebuilt from its records.
func readIndex(r *bytes.Reader, desc store.Collection) (index.Index, error) {
	var magic [8]byte
	if _, err := r.ReadAt(magic[:], int64(r.Size())-int64(r.Len())); err != nil {
		return nil, fmt.Errorf("%w: index payload: %v", errSnapshotCorrupt, err)
	}
	dist, _ := distanceFor(desc.Metric)
	switch string(magic[:]) {
	case hnswMagic:
		ix, err := hnsw.Read(r, dist)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errSnapshotCorrupt, err)
		}
		// Snapshots from before int8 quantization label every index L2;
		// the metric matters (and is checked) only for quantized ones,
		// whose snapshots are newer.
		cfg := ix.Config()
		quantized := desc.Index.Quantization == "int8"
		if desc.Index.Type == "ivfpq" || cfg.Quantization.Int8 != quantized || (quantized && cfg.Metric != metricOf(desc.Metric)) {
			return nil, fmt.Errorf("%w: hnsw index %+v does not match %+v", errSnapshotCorrupt, cfg.Quantization, desc.Index)
		}
		return ix, nil
	case ivfpqMagic:
		ix, err := ivfpq.Read(r, dist)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errSnapshotCorrupt, err)
		}
		cfg, spec := ix.Config(), desc.Index
		if spec.Type != "ivfpq" || cfg.Metric != metricOf(desc.Metric) || cfg.NList != spec.NList || cfg.M != spec.M || cfg.Rerank != spec.Rerank {
			return nil, fmt.Errorf("%w: ivfpq index (nlist %d, m %d) does not match %+v", errSnapshotCorrupt, cfg.NList, cfg.M, spec)
		}
		return ix, nil
	}
	return nil, fmt.Errorf("%w: unknown index payload %q", errSnapshotCorrupt, magic[:])
}

// Magics of the index payloads (docs/format/hnsw.md, docs/format/ivfpq.md).
const (
	hnswMagic  = "HIPPOHNS"
	ivfpqMagic = "HIPPOIVF"
)

func readBytes(r *bytes.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(r.Len()) {
		return nil, io.ErrUnexpectedEOF
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}
