package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/serde/registry/internal/avro"
)

// The compatibility levels.
const (
	Backward           = "BACKWARD"
	BackwardTransitive = "BACKWARD_TRANSITIVE"
	Forward            = "FORWARD"
	ForwardTransitive  = "FORWARD_TRANSITIVE"
	Full               = "FULL"
	FullTransitive     = "FULL_TRANSITIVE"
	None               = "NONE"
)

var levels = map[string]bool{Backward: true, BackwardTransitive: true, Forward: true, ForwardTransitive: true, Full: true, FullTransitive: true, None: true}

// The modes.
const (
	ReadWrite = "READWRITE"
	ReadOnly  = "READONLY"
	Import    = "IMPORT"
)

var modes = map[string]bool{ReadWrite: true, ReadOnly: true, Import: true}

// The schema types.
const (
	TypeAvro     = "AVRO"
	TypeJSON     = "JSON"
	TypeProtobuf = "PROTOBUF"
)

// parsed is a schema validated for registration.
type parsed struct {
	content
	avro *avro.Schema // for AVRO
}

// parseSchema validates a schema of the given type with its references
// resolved against st, and computes its identity form.
func parseSchema(st *state, typ, text string, refs []Reference) (*parsed, error) {
	if typ == "" {
		typ = TypeAvro
	}
	p := &parsed{content: content{schemaType: typ, refs: refs}}
	switch typ {
	case TypeAvro:
		names := map[string]*avro.Schema{}
		if err := resolveAvroRefs(st, refs, names, 0); err != nil {
			return nil, err
		}
		s, err := avro.Parse(text, names)
		if err != nil {
			return nil, apiErr(CodeInvalidSchema, "Invalid schema %s, details: %v", short(text), err)
		}
		p.avro = s
		if p.schema, err = avro.Normalize(text, names); err != nil {
			return nil, apiErr(CodeInvalidSchema, "Invalid schema %s, details: %v", short(text), err)
		}
	case TypeJSON:
		if err := checkRefsExist(st, refs); err != nil {
			return nil, err
		}
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			return nil, apiErr(CodeInvalidSchema, "Invalid schema %s, details: %v", short(text), err)
		}
		switch v.(type) {
		case map[string]any, bool:
		default:
			return nil, apiErr(CodeInvalidSchema, "Invalid schema %s, details: a JSON Schema is an object or a boolean", short(text))
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, []byte(strings.TrimSpace(text)))
		p.schema = buf.String()
	case TypeProtobuf:
		if err := checkRefsExist(st, refs); err != nil {
			return nil, err
		}
		if strings.TrimSpace(text) == "" {
			return nil, apiErr(CodeInvalidSchema, "Invalid schema: empty protobuf schema")
		}
		p.schema = strings.TrimSpace(text)
	default:
		return nil, apiErr(CodeInvalidSchema, "Invalid schema type %s; supported: AVRO, JSON, PROTOBUF", typ)
	}
	return p, nil
}

func short(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func lookupRef(st *state, r Reference) (*content, error) {
	vs := st.versions(r.Subject, false)
	var v *version
	for _, x := range vs {
		if x.version == r.Version || r.Version == -1 {
			v = x
		}
	}
	if v == nil {
		return nil, apiErr(CodeInvalidSchema, "Invalid schema: reference %q to subject %q version %d not found", r.Name, r.Subject, r.Version)
	}
	return st.byID[v.id], nil
}

func checkRefsExist(st *state, refs []Reference) error {
	for _, r := range refs {
		if _, err := lookupRef(st, r); err != nil {
			return err
		}
	}
	return nil
}

// resolveAvroRefs parses the referenced schemas (depth first, their own
// references first) and collects the named types they define.
func resolveAvroRefs(st *state, refs []Reference, names map[string]*avro.Schema, depth int) error {
	if depth > 32 {
		return apiErr(CodeInvalidSchema, "Invalid schema: references nested too deeply")
	}
	for _, r := range refs {
		c, err := lookupRef(st, r)
		if err != nil {
			return err
		}
		if err := resolveAvroRefs(st, c.refs, names, depth+1); err != nil {
			return err
		}
		s, err := avro.Parse(c.schema, names)
		if err != nil {
			if errors.Is(err, avro.ErrInvalidSchema) && strings.Contains(err.Error(), "duplicate definition") {
				continue // already collected through another path
			}
			return apiErr(CodeInvalidSchema, "Invalid schema: reference %q: %v", r.Name, err)
		}
		for k, v := range avro.Names(s) {
			names[k] = v
		}
	}
	return nil
}

// parsedAt parses the stored schema of a version.
func parsedAt(st *state, v *version) (*parsed, error) {
	c := st.byID[v.id]
	return parseSchema(st, c.schemaType, c.schema, c.refs)
}

// checkCompat checks p against the versions of subject its level requires
// (latest only, or all live versions for transitive levels) and returns the
// verbose messages; no messages means compatible. against, if non-nil,
// overrides the versions to check.
func checkCompat(st *state, level string, p *parsed, against []*version) ([]string, error) {
	if level == None || len(against) == 0 {
		return nil, nil
	}
	if !strings.HasSuffix(level, "_TRANSITIVE") {
		against = against[len(against)-1:]
	}
	backward := strings.HasPrefix(level, "BACKWARD") || strings.HasPrefix(level, "FULL")
	forward := strings.HasPrefix(level, "FORWARD") || strings.HasPrefix(level, "FULL")
	var msgs []string
	for i := len(against) - 1; i >= 0; i-- {
		v := against[i]
		old, err := parsedAt(st, v)
		if err != nil {
			return nil, fmt.Errorf("stored schema id %d: %w", v.id, err)
		}
		if p.schemaType != TypeAvro || old.schemaType != TypeAvro {
			if p.schemaType != old.schemaType {
				msgs = append(msgs, fmt.Sprintf("{errorType:'TYPE_MISMATCH', description:'The schema type changed from %s to %s', additionalInfo:''}", old.schemaType, p.schemaType))
			} else {
				msgs = append(msgs, fmt.Sprintf("{errorType:'UNSUPPORTED', description:'Compatibility checks for %s schemas are not implemented by this registry; set the subject compatibility level to NONE', additionalInfo:''}", p.schemaType))
			}
		} else {
			var found []string
			if backward {
				for _, in := range avro.Check(p.avro, old.avro) {
					found = append(found, in.Message(true))
				}
			}
			if forward {
				for _, in := range avro.Check(old.avro, p.avro) {
					found = append(found, in.Message(false))
				}
			}
			if len(found) == 0 {
				continue
			}
			msgs = append(msgs, found...)
		}
		msgs = append(msgs,
			fmt.Sprintf("{oldSchemaVersion: %d}", v.version),
			fmt.Sprintf("{oldSchema: '%s'}", old.schema),
			fmt.Sprintf("{compatibility: '%s'}", level))
	}
	return msgs, nil
}

// level returns the effective compatibility level of subject.
func (st *state) level(subject string) string {
	if l, ok := st.config[subject]; ok && subject != "" {
		return l
	}
	if l, ok := st.config[""]; ok {
		return l
	}
	return Backward
}

// modeOf returns the effective mode of subject.
func (st *state) modeOf(subject string) string {
	if m, ok := st.mode[subject]; ok && subject != "" {
		return m
	}
	if m, ok := st.mode[""]; ok {
		return m
	}
	return ReadWrite
}

// CheckAvro reports every reason a reader with schema reader cannot read
// data written with schema writer (both Avro JSON, without references), as
// Confluent-style messages; none means compatible. It returns an error
// wrapping ErrInvalidSchema if either does not parse.
func CheckAvro(reader, writer string) ([]string, error) {
	r, err := avro.Parse(reader, nil)
	if err != nil {
		return nil, fmt.Errorf("serde/registry: reader: %w", err)
	}
	w, err := avro.Parse(writer, nil)
	if err != nil {
		return nil, fmt.Errorf("serde/registry: writer: %w", err)
	}
	var msgs []string
	for _, in := range avro.Check(r, w) {
		msgs = append(msgs, in.Message(true))
	}
	return msgs, nil
}

// ErrInvalidSchema is returned (wrapped) by CheckAvro for text that is not a
// valid Avro schema; the server answers it with error code 42201.
var ErrInvalidSchema = avro.ErrInvalidSchema
