package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// The byte layout of keys and values is specified in docs/format/store.md.
// Keep that file and this one in step.

const (
	prefixCollection = 'c' // 'c' collectionID(8, BE) → collection JSON
	prefixRecord     = 'r' // 'r' collectionID(8, BE) recordID → record value
	prefixEvent      = 'f' // 'f' seq(8, BE) → event value
	prefixMeta       = 'm' // 'm' name → value
	prefixKey        = 'k' // 'k' key id → API key JSON (APIKey)

	recordVersion = 1
	eventVersion  = 1
)

var (
	keyLastSeq          = []byte("mseq")
	keyLastCollectionID = []byte("mcid")
)

func collectionKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixCollection}, id)
}

// recordPrefix returns the key prefix of all records of a collection.
func recordPrefix(collectionID uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixRecord}, collectionID)
}

func recordKey(collectionID uint64, id string) []byte {
	k := make([]byte, 0, 9+len(id))
	k = append(k, prefixRecord)
	k = binary.BigEndian.AppendUint64(k, collectionID)
	return append(k, id...)
}

func apiKeyKey(id string) []byte {
	return append([]byte{prefixKey}, id...)
}

func eventKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixEvent}, seq)
}

func appendUvarintBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendRecord encodes r (without its id, which lives in the key).
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendVarint(b, r.CreatedAt.UnixNano())
	b = binary.AppendVarint(b, r.UpdatedAt.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(r.Vector)))
	for _, f := range r.Vector {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	b = appendUvarintBytes(b, []byte(r.Text))
	return appendUvarintBytes(b, r.Metadata)
}

// decoder reads the primitive fields of the formats; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrCorrupt, what)
	}
}

func (d *decoder) byte1(what string) byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func decodeRecord(d *decoder, id string) *Record {
	if v := d.byte1("record version"); d.err == nil && v != recordVersion {
		d.err = fmt.Errorf("%w: record version %d", ErrCorrupt, v)
	}
	r := &Record{ID: id}
	r.Seq = d.uvarint("record seq")
	r.CreatedAt = time.Unix(0, d.varint("record created_at")).UTC()
	r.UpdatedAt = time.Unix(0, d.varint("record updated_at")).UTC()
	dim := d.uvarint("record dimension")
	if d.err == nil && dim*4 > uint64(len(d.b)) {
		d.fail("record vector")
	}
	if d.err != nil {
		return nil
	}
	r.Vector = make([]float32, dim)
	for i := range r.Vector {
		r.Vector[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[4*i:]))
	}
	d.b = d.b[4*dim:]
	r.Text = string(d.bytes("record text"))
	if m := d.bytes("record metadata"); len(m) > 0 {
		r.Metadata = append([]byte(nil), m...)
	}
	if d.err != nil {
		return nil
	}
	return r
}

// appendEvent encodes e (without its seq, which lives in the key).
func appendEvent(b []byte, e *Event) ([]byte, error) {
	b = append(b, eventVersion, byte(e.Op))
	b = binary.AppendVarint(b, e.Time.UnixNano())
	b = binary.AppendUvarint(b, e.Collection.ID)
	b = appendUvarintBytes(b, []byte(e.Collection.Name))
	switch e.Op {
	case OpCollectionCreated:
		desc, err := json.Marshal(&e.Collection)
		if err != nil {
			return nil, fmt.Errorf("encode collection: %w", err)
		}
		b = appendUvarintBytes(b, desc)
	case OpRecordUpserted, OpRecordDeleted:
		// An upsert's record lives under its record key only: the log says
		// which record changed, at which seq, not what it holds. That halves
		// the bytes every upsert writes.
		b = appendUvarintBytes(b, []byte(e.RecordID))
	}
	return b, nil
}

func decodeEvent(seq uint64, value []byte) (*Event, error) {
	d := &decoder{b: value}
	if v := d.byte1("event version"); d.err == nil && v != eventVersion {
		return nil, fmt.Errorf("%w: event %d version %d", ErrCorrupt, seq, v)
	}
	e := &Event{Seq: seq, Op: Op(d.byte1("event op"))}
	e.Time = time.Unix(0, d.varint("event time")).UTC()
	e.Collection.ID = d.uvarint("event collection id")
	e.Collection.Name = string(d.bytes("event collection name"))
	switch e.Op {
	case OpCollectionCreated:
		desc := d.bytes("event collection")
		if d.err == nil {
			if err := json.Unmarshal(desc, &e.Collection); err != nil {
				return nil, fmt.Errorf("%w: event %d collection: %v", ErrCorrupt, seq, err)
			}
		}
	case OpCollectionDeleted:
	case OpRecordUpserted, OpRecordDeleted:
		e.RecordID = string(d.bytes("event record id"))
	default:
		if d.err == nil {
			return nil, fmt.Errorf("%w: event %d op %d", ErrCorrupt, seq, e.Op)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("event %d: %w", seq, d.err)
	}
	return e, nil
}
