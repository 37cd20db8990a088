// Package serde turns typed values into bytes and back for Kafka records:
// the edge below which everything in Sluice (logs, state stores,
// changelogs) is []byte.
//
// A Serde encodes by appending to a caller's buffer, so hot paths can reuse
// one buffer per task, and decodes with bounds checks: malformed bytes give
// an error, never a panic.
//
// # Formats
//
// The built-in serdes write the bytes Kafka's own serializers write, so
// Sluice programs share topics with Java clients and Kafka Streams apps:
//
//	constructor    Go type    bytes                                  Kafka equivalent
//	String()       string     the string's bytes (UTF-8)             StringSerializer
//	Bytes()        []byte     the bytes; Decode copies               ByteArraySerializer
//	Int32()        int32      4 bytes big-endian                     IntegerSerializer
//	Int64()        int64      8 bytes big-endian (42: 00..00 2a)     LongSerializer
//	Float64()      float64    IEEE-754 bits, 8 bytes big-endian      DoubleSerializer
//	Bool()         bool       1 byte, 01 or 00                       BooleanSerializer
//	UUID()         [16]byte   36-char string, 8-4-4-4-12 lower hex   UUIDSerializer
//	JSON[T]()      T          encoding/json, no trailing newline     JsonSerializer / JsonConverter, schemas off
//	Avro[T](s)     T          Avro binary of schema s, no header     Confluent's Avro body, after 5 header bytes
//	AvroGeneric(s) any        Avro binary, generic Go forms          GenericRecord
//
// Schema Registry's wire format (a zero byte and a 4-byte schema id before
// the Avro body) is added by serde/registry.
//
// # Tombstones
//
// A nil input is a Kafka tombstone (a null value), which Kafka's
// deserializers turn into null. Every serde here decodes nil to T's zero
// value without error; a non-nil input is always decoded, so an empty
// non-nil input is ErrMalformed for the fixed-width serdes, "" for String
// and an empty slice for Bytes. Wrap a serde in Optional to see tombstones
// as nil pointers, and to encode them.
//
// # Untrusted input
//
// Decode never panics and never allocates more than a small multiple of
// len(b) (times the Go size of the values it builds; see Avro for its two
// limits): length prefixes are checked against the bytes left before
// anything is allocated. Every decode
// failure wraps ErrMalformed and is a *DecodeError.
//
// The Avro codec (github.com/hamba/avro/v2, unmaintained upstream) is an
// implementation detail: no type of it appears in this package's API, so it
// can be replaced (github.com/linkedin/goavro/v2 is the alternative).
package serde

// Serde encodes and decodes values of type T.
//
// AppendEncode appends the encoding of v to dst and returns the extended
// slice; it does not retain dst. Decode parses b, which it must not retain
// or modify (copy what must outlive the call); it returns an error wrapping
// ErrMalformed for bytes that are not a valid encoding. Implementations are
// safe for concurrent use.
type Serde[T any] interface {
	AppendEncode(dst []byte, v T) ([]byte, error)
	Decode(b []byte) (T, error)
}

// TopicAware is implemented by serdes whose encoding depends on the topic and
// on whether they serve keys or values (Schema Registry serdes derive their
// subject from them, like Confluent's TopicNameStrategy). Runtimes call
// ForTopic once per topic they read or write and use the returned serde for
// that topic; serdes that do not implement it are used as they are.
type TopicAware[T any] interface {
	Serde[T]
	ForTopic(topic string, isKey bool) Serde[T]
}
