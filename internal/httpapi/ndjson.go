package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// errLineTooLong is returned by lineReader for a line over its limit; the
// reader has skipped the rest of that line and may be read on.
var errLineTooLong = errors.New("line too long")

// lineReader splits an NDJSON stream into lines of at most max bytes, in
// constant memory, counting lines from 1. A final line without a newline is
// a line; a trailing "\r" is dropped.
type lineReader struct {
	br   *bufio.Reader
	max  int
	line int
	buf  []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line and its number. The line is valid until the
// following call. At the end it returns io.EOF.
func (l *lineReader) next() ([]byte, int, error) {
	l.buf = l.buf[:0]
	tooLong := false
	for {
		chunk, err := l.br.ReadSlice('\n')
		if !tooLong {
			if len(l.buf)+len(chunk) > l.max+2 { // +2: room for "\r\n"
				tooLong = true
				l.buf = l.buf[:0]
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && (len(l.buf) > 0 || tooLong):
			// a last line without a newline
		case err != nil:
			return nil, l.line, err
		}
		l.line++
		if tooLong {
			return nil, l.line, fmt.Errorf("%w: the limit is %d bytes", errLineTooLong, l.max)
		}
		line := bytes.TrimSuffix(bytes.TrimSuffix(l.buf, []byte{'\n'}), []byte{'\r'})
		if len(line) > l.max {
			return nil, l.line, fmt.Errorf("%w: the limit is %d bytes", errLineTooLong, l.max)
		}
		return line, l.line, nil
	}
}

// buffered reports whether more input is already in memory, so a writer can
// delay flushing until the reader would block.
func (l *lineReader) buffered() bool { return l.br.Buffered() > 0 }
