package ivfpq

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/hippo-db/hippo/internal/index"
)

var binaryLE = binary.LittleEndian

func crcOf(b []byte) uint32 { return crc32.Checksum(b, index.Castagnoli) }
