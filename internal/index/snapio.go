package index

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Castagnoli is the CRC-32C table the index snapshots are checksummed with.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRCWriter passes writes through to W, counting the bytes in N and
// checksumming them (CRC-32C) in CRC. Index snapshots end with CRC.
type CRCWriter struct {
	W   io.Writer
	N   int64
	CRC uint32
}

func (cw *CRCWriter) Write(p []byte) (int, error) {
	n, err := cw.W.Write(p)
	cw.N += int64(n)
	cw.CRC = crc32.Update(cw.CRC, Castagnoli, p[:n])
	return n, err
}

// CRCReader reads exactly what it is asked for from R, so that a snapshot
// reader never consumes bytes past the snapshot's end, and checksums it in
// CRC. A short read is reported as corruption: an error wrapping Corrupt.
type CRCReader struct {
	R       io.Reader
	CRC     uint32
	Corrupt error
}

// Full fills p.
func (cr *CRCReader) Full(p []byte) error {
	n, err := io.ReadFull(cr.R, p)
	cr.CRC = crc32.Update(cr.CRC, Castagnoli, p[:n])
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated: %w", cr.Corrupt, io.ErrUnexpectedEOF)
	}
	return err
}

// End flushes bw, which writes to cw, and writes the snapshot's trailer: the
// CRC of everything before it.
func (cw *CRCWriter) End(bw *bufio.Writer) error {
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := cw.Write(binary.LittleEndian.AppendUint32(nil, cw.CRC))
	return err
}

// Header reads a snapshot header of size bytes that starts with magic and
// ends with the CRC-32C of the rest, and checks both, so that its sizes can
// be trusted. Errors are the reader's or wrap Corrupt; callers say which
// snapshot.
func (cr *CRCReader) Header(size int, magic string) ([]byte, error) {
	head := make([]byte, size)
	if err := cr.Full(head); err != nil {
		return nil, err
	}
	if string(head[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: bad magic %q", cr.Corrupt, head[:len(magic)])
	}
	if got, want := binary.LittleEndian.Uint32(head[size-4:]), crc32.Checksum(head[:size-4], Castagnoli); got != want {
		return nil, fmt.Errorf("%w: header checksum %08x, want %08x", cr.Corrupt, got, want)
	}
	return head, nil
}

// Trailer reads the snapshot's trailer and checks it against the CRC of
// everything read before it.
func (cr *CRCReader) Trailer() error {
	want := cr.CRC
	var trailer [4]byte
	if err := cr.Full(trailer[:]); err != nil {
		return err
	}
	if got := binary.LittleEndian.Uint32(trailer[:]); got != want {
		return fmt.Errorf("%w: checksum %08x, want %08x", cr.Corrupt, got, want)
	}
	return nil
}
