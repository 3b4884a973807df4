package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DirEnv names the environment variable that overrides FashionMNISTDir.
const DirEnv = "HIPPO_FASHION_MNIST_DIR"

// FashionMNISTDir is where the Debian package dataset-fashion-mnist installs
// the Fashion-MNIST IDX files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// ErrNotInstalled is returned (wrapped) by FashionMNIST when the data files are
// missing.
var ErrNotInstalled = errors.New("hippo: data set not installed")

// ErrBadIDX is returned (wrapped) by ReadIDX for input that is not a well-formed
// IDX file of unsigned bytes.
var ErrBadIDX = errors.New("hippo: bad IDX data")

// maxIDXValues bounds the number of values ReadIDX accepts (4 GiB of floats),
// so that a corrupt header cannot ask for an absurd allocation.
const maxIDXValues = 1 << 30

// FashionMNIST loads the Fashion-MNIST images: train holds the 60,000 base
// vectors and test the 10,000 queries, 784 dimensions each, with the pixel
// bytes 0..255 converted to float32. It reads from the directory named by the
// environment variable HIPPO_FASHION_MNIST_DIR, or FashionMNISTDir when unset.
// If the files are missing the error wraps ErrNotInstalled and says how to
// install them.
func FashionMNIST() (train, test *Matrix, err error) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		dir = FashionMNISTDir
	}
	load := func(name string) (*Matrix, error) {
		path := filepath.Join(dir, name)
		m, err := LoadIDX(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("fashion-mnist: %s missing (%w): run `apt-get install -y dataset-fashion-mnist` or set %s",
				path, ErrNotInstalled, DirEnv)
		}
		if err != nil {
			return nil, fmt.Errorf("fashion-mnist: %w", err)
		}
		return m, nil
	}
	if train, err = load("train-images-idx3-ubyte.gz"); err != nil {
		return nil, nil, err
	}
	if test, err = load("t10k-images-idx3-ubyte.gz"); err != nil {
		return nil, nil, err
	}
	if train.Dim != test.Dim {
		return nil, nil, fmt.Errorf("fashion-mnist: train has %d dimensions, test %d: %w", train.Dim, test.Dim, ErrBadIDX)
	}
	return train, test, nil
}

// LoadIDX reads an IDX file of unsigned bytes (see ReadIDX), gzip-compressed or
// not; the compression is detected from the content, not the name.
func LoadIDX(path string) (*Matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	m, err := ReadIDX(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

// ReadIDX parses an uncompressed IDX file whose elements are unsigned bytes
// (type code 0x08), as used by MNIST and Fashion-MNIST. The first dimension
// becomes the rows and the product of the others the row length, so a
// 60000×28×28 image file gives a 60000×784 matrix. A file with a single
// dimension (labels) gives one column. Each byte becomes a float32 in 0..255.
// Malformed input gives an error wrapping ErrBadIDX; the allocation is bounded
// by the input's actual length, not by what its header claims.
func ReadIDX(r io.Reader) (*Matrix, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrBadIDX, err)
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, fmt.Errorf("%w: magic %x", ErrBadIDX, head)
	}
	if head[2] != 0x08 {
		return nil, fmt.Errorf("%w: element type 0x%02x, want 0x08 (unsigned byte)", ErrBadIDX, head[2])
	}
	ndims := int(head[3])
	if ndims < 1 {
		return nil, fmt.Errorf("%w: no dimensions", ErrBadIDX)
	}
	dimBuf := make([]byte, 4*ndims)
	if _, err := io.ReadFull(r, dimBuf); err != nil {
		return nil, fmt.Errorf("%w: dimensions: %w", ErrBadIDX, err)
	}
	rows := int64(binary.BigEndian.Uint32(dimBuf))
	dim := int64(1)
	for i := 1; i < ndims; i++ {
		dim *= int64(binary.BigEndian.Uint32(dimBuf[4*i:]))
		if dim > maxIDXValues {
			return nil, fmt.Errorf("%w: row of more than %d values", ErrBadIDX, maxIDXValues)
		}
	}
	total := rows * dim
	if total > maxIDXValues {
		return nil, fmt.Errorf("%w: %d×%d values is too many", ErrBadIDX, rows, dim)
	}
	// ReadAll over a LimitReader grows with what actually arrives, so a lying
	// header on a short input cannot make us allocate its claimed size.
	raw, err := io.ReadAll(io.LimitReader(r, total))
	if err != nil {
		return nil, fmt.Errorf("%w: data: %w", ErrBadIDX, err)
	}
	if int64(len(raw)) != total {
		return nil, fmt.Errorf("%w: %d data bytes, header says %d: %w", ErrBadIDX, len(raw), total, io.ErrUnexpectedEOF)
	}
	if dim == 0 && rows > 0 {
		return nil, fmt.Errorf("%w: rows of zero length", ErrBadIDX)
	}
	m := &Matrix{Rows: int(rows), Dim: int(dim), Data: make([]float32, total)}
	for i, b := range raw {
		m.Data[i] = float32(b)
	}
	return m, nil
}
