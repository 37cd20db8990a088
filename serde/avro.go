package serde

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/hamba/avro/v2"
)

// AvroOpt configures Avro and AvroGeneric.
type AvroOpt interface{ applyAvro(*avroCfg) }

type avroCfg struct{ writerSchema string }

type avroOpt func(*avroCfg)

func (f avroOpt) applyAvro(c *avroCfg) { f(c) }

// WriterSchema declares that the bytes Decode reads were written with
// schema, an older (or newer) version of the serde's own schema. Decode
// resolves them to the serde's schema by Avro's schema resolution: fields
// the writer lacks take their defaults, fields the reader lacks are
// skipped, fields are matched by name or reader alias, and int, long and
// float widen (int->long/float/double, long->float/double, float->double,
// string<->bytes). AppendEncode still writes with the serde's own schema,
// so with this option Decode(AppendEncode(v)) does not round-trip unless the
// schemas are equal: use it to read a topic that holds older data, not for a
// state store. Without it, the writer schema is the serde's schema.
func WriterSchema(schema string) AvroOpt {
	return avroOpt(func(c *avroCfg) { c.writerSchema = schema })
}

// Avro returns a serde for Go values of type T (usually a struct with `avro`
// field tags) in Avro's binary encoding of schema, with no header: the body
// of Confluent's wire format without its 5 bytes of magic and schema id
// (serde/registry adds those). The schema is parsed once, here.
//
// Avro checks at construction that T fits the schema by decoding the
// schema's shortest value into a T and encoding it back; a mismatch there
// (a field of the wrong Go type, a non-pointer field for a nullable union)
// is ErrSchema. Types reached only inside arrays, maps or later union
// branches are checked on first use, as AppendEncode or Decode errors.
//
// Decode checks the whole input against the writer schema before decoding,
// so it never allocates more than a small multiple of len(b) (times the Go
// size of the values it builds): lengths and block counts must fit in the
// bytes left, block byte sizes must be right, and trailing bytes are
// ErrMalformed. Two limits reject values the Avro spec allows: nesting is
// at most 1000 deep, and a value holds at most 16384 array or map items of
// types that encode to no bytes (null, empty records). Decode(nil), a tombstone, returns T's zero
// value; a non-nil empty input is decoded (the Avro null type, or an empty
// record, encodes to no bytes).
func Avro[T any](schema string, opts ...AvroOpt) (Serde[T], error) {
	s, err := newAvro[T](schema, opts)
	if err != nil {
		return nil, err
	}
	if reflect.TypeFor[T]().Kind() != reflect.Interface {
		if err := s.checkFit(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// AvroGeneric returns a serde for Avro values of any schema, decoded into
// Go's generic forms: records are map[string]any, arrays []any, maps
// map[string]any, enums string, fixed [N]byte, bytes []byte, ints int, longs
// int64, floats float32, doubles float64, null nil, and a union its branch's
// value; logical types as the codec maps them (time.Time, time.Duration,
// *big.Rat). AppendEncode accepts the same forms, choosing a union's branch
// by the value's Go type, and also map[string]any{branchName: value} for
// unions whose branches a Go type cannot tell apart (int and long, say).
// It is Avro[any]: the same format, options and bounds.
func AvroGeneric(schema string, opts ...AvroOpt) (Serde[any], error) {
	return Avro[any](schema, opts...)
}

type avroSerde[T any] struct {
	api    avro.API
	schema avro.Schema // AppendEncode writes with it
	writer avro.Schema // Decode's input is a value of it
	decode avro.Schema // writer resolved to schema, or schema itself
	bufs   sync.Pool   // *avro.Writer
}

func newAvro[T any](schema string, opts []AvroOpt) (*avroSerde[T], error) {
	var cfg avroCfg
	for _, o := range opts {
		o.applyAvro(&cfg)
	}
	// One API per serde: the codec caches decoders by schema fingerprint,
	// which ignores defaults, so two serdes must not share a cache. Lengths
	// are checked against the input by checkAvro, so the codec's own 1 MiB
	// cap on strings is lifted. Blocks are written as Java's encoder writes
	// them, a positive count and no byte size.
	api := avro.Config{MaxByteSliceSize: -1, DisableBlockSizeHeader: true}.Freeze()
	s := &avroSerde[T]{api: api}
	var err error
	// A cache per parse: the default cache is global, and a second version of
	// a named type would resolve to the first.
	if s.schema, err = avro.ParseWithCache(schema, "", &avro.SchemaCache{}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	s.writer, s.decode = s.schema, s.schema
	if cfg.writerSchema != "" {
		if s.writer, err = avro.ParseWithCache(cfg.writerSchema, "", &avro.SchemaCache{}); err != nil {
			return nil, fmt.Errorf("%w: writer schema: %w", ErrSchema, err)
		}
		// A fresh SchemaCompatibility per resolution: it caches verdicts by
		// fingerprint, which ignores defaults and aliases.
		if s.decode, err = avro.NewSchemaCompatibility().Resolve(s.schema, s.writer); err != nil {
			return nil, fmt.Errorf("%w: writer schema cannot be read with the schema: %w", ErrSchema, err)
		}
	}
	s.bufs.New = func() any { return avro.NewWriter(nil, 512, avro.WithWriterConfig(api)) }
	return s, nil
}

// checkFit decodes the writer schema's shortest value into a T and encodes
// it back, so a T that does not fit the schemas fails at construction.
func (s *avroSerde[T]) checkFit() error {
	b, ok := appendMinimalAvro(nil, s.writer, 0)
	if !ok {
		return fmt.Errorf("%w: the schema has no finite value", ErrSchema)
	}
	v, err := s.Decode(b)
	if err != nil {
		return fmt.Errorf("%w: %s does not fit the schema: %w", ErrSchema, reflect.TypeFor[T](), err)
	}
	if _, err := s.AppendEncode(nil, v); err != nil {
		return fmt.Errorf("%w: %s does not fit the schema: %w", ErrSchema, reflect.TypeFor[T](), err)
	}
	return nil
}

// maxPooledWriter is the largest buffer kept for reuse between encodes.
const maxPooledWriter = 64 << 10

func (s *avroSerde[T]) AppendEncode(dst []byte, v T) ([]byte, error) {
	w := s.bufs.Get().(*avro.Writer)
	w.Reset(nil)
	w.Error = nil
	w.WriteVal(s.schema, v)
	err := w.Error
	if err == nil {
		dst = append(dst, w.Buffer()...)
	}
	if cap(w.Buffer()) <= maxPooledWriter {
		s.bufs.Put(w)
	}
	if err != nil {
		return dst, fmt.Errorf("serde/avro: encode: %w", err)
	}
	return dst, nil
}

func (s *avroSerde[T]) Decode(b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	if err := checkAvro(s.writer, b); err != nil {
		return v, err
	}
	if err := s.api.Unmarshal(s.decode, b, &v); err != nil {
		var zero T
		return zero, malformed("avro", b, -1, "", err)
	}
	return v, nil
}
