package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/serde"
)

// Errors of the wire format and the serdes.
var (
	// ErrMalformed is returned (wrapped) by Decode and ParseHeader for bytes
	// that are not in Confluent's wire format or not valid Avro for their
	// schema. Retrying does not help.
	ErrMalformed = errors.New("serde/registry: malformed record")
	// ErrNoSubject is returned by a serde that was neither bound to a topic
	// (ForTopic) nor given a Subject.
	ErrNoSubject = errors.New("serde/registry: no subject: bind the serde with ForTopic or set Subject")
)

// readers are reused Avro readers (each one allocates a buffer).
var readers = sync.Pool{New: func() any { return avro.NewReader(nil, 0) }}

// HeaderSize is the size of the wire-format header: magic byte and id.
const HeaderSize = 5

// AppendHeader appends the wire-format header for schema id to dst.
func AppendHeader(dst []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, 0), uint32(id))
}

// ParseHeader splits b into the schema id and the body. It returns an
// error wrapping ErrMalformed if b is shorter than the header or does not
// start with the magic byte 0.
func ParseHeader(b []byte) (id int, body []byte, err error) {
	if len(b) < HeaderSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformed, len(b), HeaderSize)
	}
	if b[0] != 0 {
		return 0, nil, fmt.Errorf("%w: magic byte %d, want 0", ErrMalformed, b[0])
	}
	return int(int32(binary.BigEndian.Uint32(b[1:5]))), b[5:], nil
}

// SubjectStrategy derives a subject from a topic, the key/value side and
// the record's full name.
type SubjectStrategy func(topic string, isKey bool, recordName string) string

func suffix(isKey bool) string {
	if isKey {
		return "-key"
	}
	return "-value"
}

// TopicName is Confluent's default: "<topic>-key" or "<topic>-value".
func TopicName(topic string, isKey bool, _ string) string { return topic + suffix(isKey) }

// RecordName uses the record's full name.
func RecordName(_ string, _ bool, recordName string) string { return recordName }

// TopicRecordName is "<topic>-<record full name>".
func TopicRecordName(topic string, _ bool, recordName string) string {
	return topic + "-" + recordName
}

// Opt configures an Avro serde.
type Opt interface{ apply(*serdeCfg) }

type optFunc func(*serdeCfg)

func (f optFunc) apply(c *serdeCfg) { f(c) }

type serdeCfg struct {
	strategy     SubjectStrategy
	subject      string
	isKey        bool
	autoRegister bool
	useLatest    bool
	timeout      time.Duration
}

// Strategy sets the subject name strategy; default TopicName.
func Strategy(s SubjectStrategy) Opt { return optFunc(func(c *serdeCfg) { c.strategy = s }) }

// Subject fixes the subject, for serdes used without ForTopic.
func Subject(s string) Opt { return optFunc(func(c *serdeCfg) { c.subject = s }) }

// Key makes an unbound serde serve record keys (it matters for the subject).
func Key() Opt { return optFunc(func(c *serdeCfg) { c.isKey = true }) }

// AutoRegister registers the serde's schema on first use (the default,
// like Confluent's auto.register.schemas=true). With false, the schema must
// already be registered in the subject.
func AutoRegister(b bool) Opt { return optFunc(func(c *serdeCfg) { c.autoRegister = b }) }

// UseLatest encodes with the subject's latest registered schema instead of
// the serde's own (Confluent's use.latest.version); it implies
// AutoRegister(false). Decoding still reads into the serde's schema.
func UseLatest() Opt {
	return optFunc(func(c *serdeCfg) { c.useLatest, c.autoRegister = true, false })
}

// Timeout bounds each registry request; default 10s.
func Timeout(d time.Duration) Opt { return optFunc(func(c *serdeCfg) { c.timeout = d }) }

// Avro is a registry-aware Avro serde for values of type T (Go structs with
// avro tags, or map[string]any for generic records). Encoding prefixes the
// Avro body with the wire-format header of the schema's id; decoding looks
// the writer's schema up by the id and resolves it into the serde's schema
// (schema evolution on read). Ids, schemas and resolved decoders are cached:
// after the first record of a subject or id, no request reaches the
// registry. Avro is safe for concurrent use.
type Avro[T any] struct {
	cl     *sr.Client
	schema avro.Schema // the reader schema, and the writer one unless UseLatest
	text   string
	name   string // record full name, for the RecordName strategies
	cfg    serdeCfg
	topic  string
	shared *avroCache
}

// avroCache is shared by the serdes ForTopic derives from one Avro.
type avroCache struct {
	mu       sync.RWMutex
	ids      map[string]writeTarget // subject -> id and schema to encode with
	decoders map[int]avro.Schema    // writer id -> resolved reader schema
}

type writeTarget struct {
	id     int
	schema avro.Schema
}

// NewAvro returns a serde for schema (Avro JSON) talking to the registry
// through cl.
func NewAvro[T any](cl *sr.Client, schema string, opts ...Opt) (*Avro[T], error) {
	cfg := serdeCfg{strategy: TopicName, autoRegister: true, timeout: 10 * time.Second}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cl == nil {
		return nil, errors.New("serde/registry: nil registry client")
	}
	s, err := parseHamba(schema, nil)
	if err != nil {
		return nil, fmt.Errorf("serde/registry: parse schema: %w", err)
	}
	a := &Avro[T]{cl: cl, schema: s, text: schema, cfg: cfg, shared: &avroCache{ids: map[string]writeTarget{}, decoders: map[int]avro.Schema{}}}
	if n, ok := s.(avro.NamedSchema); ok {
		a.name = n.FullName()
	}
	return a, nil
}

// parseHamba parses with a fresh cache: hamba's default cache is global and
// keyed by name, so two versions of one record would collide.
func parseHamba(text string, cache *avro.SchemaCache) (avro.Schema, error) {
	if cache == nil {
		cache = &avro.SchemaCache{}
	}
	return avro.ParseWithCache(text, "", cache)
}

// ForTopic implements serde.TopicAware.
func (a *Avro[T]) ForTopic(topic string, isKey bool) serde.Serde[T] {
	b := *a
	b.topic, b.cfg.isKey = topic, isKey
	return &b
}

var _ serde.TopicAware[int] = (*Avro[int])(nil)

// Subject returns the subject the serde registers and looks schemas up in.
func (a *Avro[T]) Subject() (string, error) {
	if a.cfg.subject != "" {
		return a.cfg.subject, nil
	}
	if a.topic == "" {
		return "", ErrNoSubject
	}
	return a.cfg.strategy(a.topic, a.cfg.isKey, a.name), nil
}

func (a *Avro[T]) target(ctx context.Context) (writeTarget, error) {
	subject, err := a.Subject()
	if err != nil {
		return writeTarget{}, err
	}
	a.shared.mu.RLock()
	t, ok := a.shared.ids[subject]
	a.shared.mu.RUnlock()
	if ok {
		return t, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.timeout)
	defer cancel()
	switch {
	case a.cfg.useLatest:
		ss, err := a.cl.SchemaByVersion(ctx, subject, -1)
		if err != nil {
			return writeTarget{}, fmt.Errorf("serde/registry: latest schema of %s: %w", subject, err)
		}
		s, err := a.parseRegistered(ctx, ss.Schema)
		if err != nil {
			return writeTarget{}, err
		}
		t = writeTarget{ss.ID, s}
	case a.cfg.autoRegister:
		id, err := a.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: a.text, Type: sr.TypeAvro}, -1, -1)
		if err != nil {
			return writeTarget{}, fmt.Errorf("serde/registry: register schema in %s: %w", subject, err)
		}
		t = writeTarget{id, a.schema}
	default:
		ss, err := a.cl.LookupSchema(ctx, subject, sr.Schema{Schema: a.text, Type: sr.TypeAvro})
		if err != nil {
			return writeTarget{}, fmt.Errorf("serde/registry: look schema up in %s: %w", subject, err)
		}
		t = writeTarget{ss.ID, a.schema}
	}
	a.shared.mu.Lock()
	a.shared.ids[subject] = t
	a.shared.mu.Unlock()
	return t, nil
}

// parseRegistered parses a schema from the registry, with its references.
func (a *Avro[T]) parseRegistered(ctx context.Context, s sr.Schema) (avro.Schema, error) {
	cache := &avro.SchemaCache{}
	if err := a.loadRefs(ctx, s.References, cache, 0); err != nil {
		return nil, err
	}
	out, err := parseHamba(s.Schema, cache)
	if err != nil {
		return nil, fmt.Errorf("serde/registry: parse registered schema: %w", err)
	}
	return out, nil
}

func (a *Avro[T]) loadRefs(ctx context.Context, refs []sr.SchemaReference, cache *avro.SchemaCache, depth int) error {
	if depth > 32 {
		return errors.New("serde/registry: schema references nested too deeply")
	}
	for _, r := range refs {
		ss, err := a.cl.SchemaByVersion(ctx, r.Subject, r.Version)
		if err != nil {
			return fmt.Errorf("serde/registry: reference %s: %w", r.Name, err)
		}
		if err := a.loadRefs(ctx, ss.References, cache, depth+1); err != nil {
			return err
		}
		if _, err := parseHamba(ss.Schema.Schema, cache); err != nil {
			return fmt.Errorf("serde/registry: parse reference %s: %w", r.Name, err)
		}
	}
	return nil
}

// AppendEncode implements serde.Serde: header, then the Avro body.
func (a *Avro[T]) AppendEncode(dst []byte, v T) ([]byte, error) {
	t, err := a.target(context.Background())
	if err != nil {
		return dst, err
	}
	body, err := avro.Marshal(t.schema, v)
	if err != nil {
		return dst, fmt.Errorf("serde/registry: encode: %w", err)
	}
	return append(AppendHeader(dst, t.id), body...), nil
}

// Decode implements serde.Serde: it reads the header, fetches the writer's
// schema by id (once), and decodes the body into the serde's schema.
func (a *Avro[T]) Decode(b []byte) (T, error) {
	var v T
	id, body, err := ParseHeader(b)
	if err != nil {
		return v, err
	}
	s, err := a.decoder(context.Background(), id)
	if err != nil {
		return v, err
	}
	// Not avro.Unmarshal: it reports a body cut short as success.
	r := readers.Get().(*avro.Reader)
	r.Reset(body)
	r.ReadVal(s, &v)
	err = r.Error
	r.Error = nil
	r.Reset(nil)
	readers.Put(r)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%w: schema id %d: %w", ErrMalformed, id, err)
	}
	return v, nil
}

func (a *Avro[T]) decoder(ctx context.Context, id int) (avro.Schema, error) {
	a.shared.mu.RLock()
	s, ok := a.shared.decoders[id]
	a.shared.mu.RUnlock()
	if ok {
		return s, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.timeout)
	defer cancel()
	ws, err := a.cl.SchemaByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("serde/registry: schema id %d: %w", id, err)
	}
	if ws.Type != sr.TypeAvro {
		return nil, fmt.Errorf("serde/registry: schema id %d is %s, not AVRO", id, ws.Type)
	}
	writer, err := a.parseRegistered(ctx, ws)
	if err != nil {
		return nil, err
	}
	s = writer
	if writer.Fingerprint() != a.schema.Fingerprint() {
		// A fresh SchemaCompatibility per resolution: hamba's caches by
		// fingerprint, which ignores defaults and aliases.
		if s, err = avro.NewSchemaCompatibility().Resolve(a.schema, writer); err != nil {
			return nil, fmt.Errorf("serde/registry: schema id %d cannot be read with the serde's schema: %w", id, err)
		}
	} else {
		s = a.schema
	}
	a.shared.mu.Lock()
	a.shared.decoders[id] = s
	a.shared.mu.Unlock()
	return s, nil
}
