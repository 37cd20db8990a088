// Package serde turns typed values into bytes and back for Kafka records:
// the edge below which everything in Sluice (logs, state stores,
// changelogs) is []byte.
//
// A Serde encodes by appending to a caller's buffer, so hot paths can reuse
// one buffer per task, and decodes with bounds checks: malformed bytes give
// an error, never a panic.
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
