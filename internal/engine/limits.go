package engine

// Limits on what one request may carry. They bound memory per request and are
// documented in the README; the HTTP layer enforces the byte limits on bodies.
const (
	MaxDimension      = 4096
	MaxIDBytes        = 256
	MaxNameBytes      = 64
	MaxMetadataBytes  = 64 << 10
	MaxTextBytes      = 1 << 20
	MaxBatchRecords   = 1000
	MaxK              = 1000
	MaxEf             = 10000
	MaxM              = 128
	MaxEfConstruction = 4096
	MaxListLimit      = 1000

	// exactThreshold is the live-record count at or under which search scans
	// exactly: at that size a scan is as fast as a graph walk and always exact.
	exactThreshold = 1000
)

// Defaults for collection index settings.
const (
	DefaultM              = 16
	DefaultEfConstruction = 200
	DefaultEf             = 64
)
