package serde

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
)

// String returns the serde of Kafka's StringSerializer: the bytes of the
// string (UTF-8 by convention; Decode does not validate). Decode(nil), a
// tombstone, returns "".
func String() Serde[string] { return stringSerde{} }

type stringSerde struct{}

func (stringSerde) AppendEncode(dst []byte, v string) ([]byte, error) { return append(dst, v...), nil }
func (stringSerde) Decode(b []byte) (string, error)                   { return string(b), nil }

// Bytes returns the serde of Kafka's ByteArraySerializer: the bytes
// themselves. Decode returns a copy of b (so the result may outlive the
// record); Decode(nil), a tombstone, returns nil and a non-nil empty input
// returns a non-nil empty slice.
func Bytes() Serde[[]byte] { return bytesSerde{} }

type bytesSerde struct{}

func (bytesSerde) AppendEncode(dst []byte, v []byte) ([]byte, error) { return append(dst, v...), nil }
func (bytesSerde) Decode(b []byte) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	return append([]byte{}, b...), nil
}

// fixedLen checks the length of input to a fixed-width serde. It returns
// ok=false, err=nil for a tombstone (nil), which decodes to the zero value as
// Kafka's deserializers decode null to null.
func fixedLen(format string, b []byte, n int) (ok bool, err error) {
	if b == nil {
		return false, nil
	}
	if len(b) != n {
		return false, malformed(format, b, -1, fmt.Sprintf("want %d bytes", n), nil)
	}
	return true, nil
}

// Int32 returns the serde of Kafka's IntegerSerializer: 4 bytes, big-endian
// two's complement. Decode(nil), a tombstone, returns 0; any other length
// but 4 is ErrMalformed.
func Int32() Serde[int32] { return int32Serde{} }

type int32Serde struct{}

func (int32Serde) AppendEncode(dst []byte, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, uint32(v)), nil
}

func (int32Serde) Decode(b []byte) (int32, error) {
	if ok, err := fixedLen("int32", b, 4); !ok {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}

// Int64 returns the serde of Kafka's LongSerializer: 8 bytes, big-endian two's
// complement (42 is 00 00 00 00 00 00 00 2a). Decode(nil), a tombstone,
// returns 0; any other length but 8 is ErrMalformed.
func Int64() Serde[int64] { return int64Serde{} }

type int64Serde struct{}

func (int64Serde) AppendEncode(dst []byte, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}

func (int64Serde) Decode(b []byte) (int64, error) {
	if ok, err := fixedLen("int64", b, 8); !ok {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// canonicalNaN is what Java's Double.doubleToLongBits returns for every NaN.
const canonicalNaN = 0x7ff8000000000000

// Float64 returns the serde of Kafka's DoubleSerializer: the IEEE-754 bits,
// 8 bytes big-endian. Like Java's Double.doubleToLongBits, every NaN encodes
// as 7f f8 00 00 00 00 00 00; Decode keeps the bits it is given. Decode(nil),
// a tombstone, returns 0; any other length but 8 is ErrMalformed.
func Float64() Serde[float64] { return float64Serde{} }

type float64Serde struct{}

func (float64Serde) AppendEncode(dst []byte, v float64) ([]byte, error) {
	bits := math.Float64bits(v)
	if v != v {
		bits = canonicalNaN
	}
	return binary.BigEndian.AppendUint64(dst, bits), nil
}

func (float64Serde) Decode(b []byte) (float64, error) {
	if ok, err := fixedLen("float64", b, 8); !ok {
		return 0, err
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// Bool returns the serde of Kafka's BooleanSerializer: one byte, 01 for true
// and 00 for false. Decode(nil), a tombstone, returns false; any other byte
// value or length is ErrMalformed, as in Kafka's BooleanDeserializer.
func Bool() Serde[bool] { return boolSerde{} }

type boolSerde struct{}

func (boolSerde) AppendEncode(dst []byte, v bool) ([]byte, error) {
	if v {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}

func (boolSerde) Decode(b []byte) (bool, error) {
	if ok, err := fixedLen("bool", b, 1); !ok {
		return false, err
	}
	switch b[0] {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, malformed("bool", b, 0, "want 00 or 01", nil)
}

// UUID returns the serde of Kafka's UUIDSerializer: the 36-character string
// form (8-4-4-4-12 hex digits, lower case when encoding, as Java's
// UUID.toString). Values are [16]byte, the underlying type of the common Go
// UUID types, so convert with UUID(v) / [16]byte(u). Decode accepts upper-
// or lower-case hex but only the canonical 36-character layout; Decode(nil),
// a tombstone, returns the zero UUID.
func UUID() Serde[[16]byte] { return uuidSerde{} }

type uuidSerde struct{}

// uuidDashes are the offsets of the '-' in the string form.
var uuidDashes = [4]int{8, 13, 18, 23}

func (uuidSerde) AppendEncode(dst []byte, v [16]byte) ([]byte, error) {
	dst = hex.AppendEncode(dst, v[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, v[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, v[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, v[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, v[10:16]), nil
}

func (uuidSerde) Decode(b []byte) ([16]byte, error) {
	var u [16]byte
	if ok, err := fixedLen("uuid", b, 36); !ok {
		return u, err
	}
	var digits [32]byte
	n, prev := 0, 0
	for _, d := range uuidDashes {
		if b[d] != '-' {
			return u, malformed("uuid", b, d, "want '-'", nil)
		}
		n += copy(digits[n:], b[prev:d])
		prev = d + 1
	}
	copy(digits[n:], b[prev:])
	if _, err := hex.Decode(u[:], digits[:]); err != nil {
		return [16]byte{}, malformed("uuid", b, -1, "", err)
	}
	return u, nil
}
