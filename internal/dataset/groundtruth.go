package dataset

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/hippo-db/hippo/internal/vec"
)

// Ground-truth cache file, one per (train, test, k), in
// os.UserCacheDir()/hippo/groundtruth-<key>-k<k>.bin, where <key> is the first
// 16 bytes, in hex, of SHA-256 over: "hippo groundtruth l2 v1", then for train
// and then test the row count and dimension as little-endian uint64 followed
// by every value's IEEE-754 bits as little-endian uint32, then k as uint64.
// Any change to the data or k gives a different file name; stale files are
// never reused.
//
// Layout, all integers little-endian:
//
//	offset  size        field
//	0       8           magic "HIPPOGT1"
//	8       4           uint32 queries (test rows)
//	12      4           uint32 k
//	16      4·queries·k int32 neighbour ids: row q holds query q's exact k
//	                    nearest train rows by L2, nearest first, ties broken
//	                    by the smaller id; -1 pads rows when train has fewer
//	                    than k rows
//	end−4   4           uint32 CRC-32C (Castagnoli) of all preceding bytes
//
// A file with a wrong size, magic, shape or checksum is ignored and rewritten.
const gtMagic = "HIPPOGT1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// GroundTruth returns, for each row of test, the ids (row numbers in train) of
// its k nearest rows of train by squared Euclidean distance, nearest first,
// ties broken by the smaller id. Each answer has min(k, train.Rows) ids.
//
// The answer is computed by brute force on all cores and cached on disk (see
// the format above); a cache that cannot be read or written only costs time,
// it is never an error.
func GroundTruth(train, test *Matrix, k int) ([][]int32, error) {
	if err := checkShapes(train, test, k); err != nil {
		return nil, err
	}
	path := ""
	if dir, err := os.UserCacheDir(); err == nil {
		path = filepath.Join(dir, "hippo", fmt.Sprintf("groundtruth-%x-k%d.bin", groundTruthKey(train, test, k), k))
		if truth, err := readGroundTruth(path, test.Rows, k, train.Rows); err == nil {
			return truth, nil
		}
	}
	truth, err := BruteForce(train, test, k)
	if err != nil {
		return nil, err
	}
	if path != "" {
		_ = writeGroundTruth(path, truth, k) // best effort: a read-only cache only costs time
	}
	return truth, nil
}

func checkShapes(train, test *Matrix, k int) error {
	switch {
	case k < 1:
		return fmt.Errorf("ground truth: k = %d, want at least 1", k)
	case train.Dim != test.Dim:
		return fmt.Errorf("ground truth: train has %d dimensions, test %d", train.Dim, test.Dim)
	case train.Rows > math.MaxInt32:
		return fmt.Errorf("ground truth: %d train rows do not fit int32 ids", train.Rows)
	}
	return nil
}

// BruteForce is GroundTruth without the cache.
func BruteForce(train, test *Matrix, k int) ([][]int32, error) {
	if err := checkShapes(train, test, k); err != nil {
		return nil, err
	}
	truth := make([][]int32, test.Rows)
	kk := min(k, train.Rows)
	// Queries are handed out in batches so that each train row, once loaded
	// into cache, is compared with a whole batch of queries: the train matrix
	// is streamed from memory once per batch instead of once per query.
	const batch = 32
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			heaps := make([]topK, batch)
			for i := range heaps {
				heaps[i] = make(topK, 0, kk)
			}
			for first := range next {
				last := min(first+batch, test.Rows)
				for q := first; q < last; q++ {
					heaps[q-first] = heaps[q-first][:0]
				}
				for id := range train.Rows {
					row := train.Row(id)
					for q := first; q < last; q++ {
						heaps[q-first].offer(vec.L2Squared(test.Row(q), row), int32(id), kk)
					}
				}
				for q := first; q < last; q++ {
					truth[q] = heaps[q-first].sorted()
				}
			}
		})
	}
	for first := 0; first < test.Rows; first += batch {
		next <- first
	}
	close(next)
	wg.Wait()
	return truth, nil
}

type neighbour struct {
	dist float32
	id   int32
}

// less orders by distance, then id, so that ties are deterministic.
func (a neighbour) less(b neighbour) bool {
	return a.dist < b.dist || (a.dist == b.dist && a.id < b.id)
}

// topK is a max-heap (by neighbour.less) holding the best k seen so far.
// It is kept apart from internal/index's heaps on purpose: the ground truth
// that judges the indexes shares no code with them.
type topK []neighbour

func (h *topK) offer(dist float32, id int32, k int) {
	n := neighbour{dist, id}
	s := *h
	if len(s) == k {
		if !n.less(s[0]) {
			return
		}
		s[0] = n
		s.down(0)
		return
	}
	s = append(s, n)
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s[p].less(s[i]) {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
	*h = s
}

func (h topK) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && h[l].less(h[r]) {
			c = r
		}
		if !h[i].less(h[c]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

func (h topK) sorted() []int32 {
	s := slices.Clone(h)
	slices.SortFunc(s, func(a, b neighbour) int {
		if c := cmp.Compare(a.dist, b.dist); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	ids := make([]int32, len(s))
	for i, n := range s {
		ids[i] = n.id
	}
	return ids
}

func groundTruthKey(train, test *Matrix, k int) []byte {
	h := sha256.New()
	h.Write([]byte("hippo groundtruth l2 v1"))
	buf := make([]byte, 0, 1<<16)
	for _, m := range []*Matrix{train, test} {
		buf = binary.LittleEndian.AppendUint64(buf[:0], uint64(m.Rows))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(m.Dim))
		h.Write(buf)
		data := m.Data[:m.Rows*m.Dim]
		for len(data) > 0 {
			n := min(len(data), cap(buf)/4)
			buf = buf[:0]
			for _, v := range data[:n] {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			}
			h.Write(buf)
			data = data[n:]
		}
	}
	h.Write(binary.LittleEndian.AppendUint64(buf[:0], uint64(k)))
	return h.Sum(nil)[:16]
}

var errBadCache = errors.New("bad ground-truth cache file")

func readGroundTruth(path string, queries, k, trainRows int) ([][]int32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != 16+4*queries*k+4 || !bytes.Equal(b[:8], []byte(gtMagic)) ||
		binary.LittleEndian.Uint32(b[8:]) != uint32(queries) || binary.LittleEndian.Uint32(b[12:]) != uint32(k) ||
		crc32.Checksum(b[:len(b)-4], castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errBadCache
	}
	kk := min(k, trainRows)
	truth := make([][]int32, queries)
	ids := make([]int32, queries*kk)
	p := b[16:]
	for q := range truth {
		truth[q] = ids[q*kk : (q+1)*kk : (q+1)*kk]
		for i := range k {
			id := int32(binary.LittleEndian.Uint32(p[4*i:]))
			if i < kk {
				if id < 0 || int(id) >= trainRows {
					return nil, errBadCache
				}
				truth[q][i] = id
			} else if id != -1 {
				return nil, errBadCache
			}
		}
		p = p[4*k:]
	}
	return truth, nil
}

func writeGroundTruth(path string, truth [][]int32, k int) error {
	b := make([]byte, 0, 16+4*len(truth)*k+4)
	b = append(b, gtMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(truth)))
	b = binary.LittleEndian.AppendUint32(b, uint32(k))
	for _, ids := range truth {
		for i := range k {
			id := int32(-1)
			if i < len(ids) {
				id = ids[i]
			}
			b = binary.LittleEndian.AppendUint32(b, uint32(id))
		}
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Write to a temporary file and rename, so a concurrent reader or a crash
	// never sees half a file.
	f, err := os.CreateTemp(filepath.Dir(path), ".groundtruth-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
