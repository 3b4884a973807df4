package ivfpq

import (
	"encoding/binary"
	"hash/crc32"
)

var binaryLE = binary.LittleEndian

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
