package index

import (
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
