// Package avro parses Avro schemas (JSON form) into a small tree and checks
// whether a reader schema can read data written with a writer schema,
// following the Avro specification's schema resolution rules as the Java
// implementation (and so Confluent's Schema Registry) applies them.
//
// The parser keeps what resolution needs: types, full names, aliases,
// fields with their defaults, enum symbols and defaults, fixed sizes.
// Named types may refer to themselves (recursive schemas): a reference is the
// same *Schema pointer as the definition.
package avro

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidSchema is returned (wrapped) by Parse for text that is not a
// valid Avro schema. The registry maps it to error code 42201.
var ErrInvalidSchema = errors.New("avro: invalid schema")

// Type is an Avro type name.
type Type string

// The Avro types.
const (
	Null    Type = "null"
	Boolean Type = "boolean"
	Int     Type = "int"
	Long    Type = "long"
	Float   Type = "float"
	Double  Type = "double"
	Bytes   Type = "bytes"
	String  Type = "string"
	Record  Type = "record"
	Enum    Type = "enum"
	Array   Type = "array"
	Map     Type = "map"
	Fixed   Type = "fixed"
	Union   Type = "union"
)

var primitives = map[string]Type{
	"null": Null, "boolean": Boolean, "int": Int, "long": Long, "float": Float,
	"double": Double, "bytes": Bytes, "string": String,
}

// Schema is a parsed Avro schema node.
type Schema struct {
	Type Type
	// FullName is the namespace-qualified name of records, enums and fixed.
	FullName string
	// Aliases are the full names of a named type's aliases.
	Aliases []string
	Fields  []*Field // records
	Symbols []string // enums
	// EnumDefault is the reader's fallback symbol ("" if none).
	EnumDefault string
	Size        int       // fixed
	Items       *Schema   // arrays
	Values      *Schema   // maps
	Branches    []*Schema // unions
	// Doc, Error ("error" rather than "record") and Props (custom
	// properties, logicalType included, in the order given) do not affect
	// resolution but are part of the schema's identity.
	Doc   string
	Error bool
	Props []Prop
}

// Prop is a custom property: a key and its JSON value.
type Prop struct {
	Key   string
	Value any
}

// Name returns the unqualified name of a named type.
func (s *Schema) Name() string {
	if i := strings.LastIndexByte(s.FullName, '.'); i >= 0 {
		return s.FullName[i+1:]
	}
	return s.FullName
}

// Field is a record field.
type Field struct {
	Name       string
	Aliases    []string
	Type       *Schema
	HasDefault bool
	Default    any // as decoded: *object, []any, string, json.Number, bool, nil
	Doc        string
	Order      string // "" for ascending (the default)
	Props      []Prop
}

// Parse parses an Avro schema. refs maps the full names of named types
// defined by referenced schemas (Confluent schema references) to their
// parsed form; it may be nil.
func Parse(text string, refs map[string]*Schema) (*Schema, error) {
	v, err := decodeJSON(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	p := &parser{names: map[string]*Schema{}}
	for k, s := range refs {
		p.names[k] = s
	}
	s, err := p.parse(v, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	return s, nil
}

// Names returns the named types defined in s (and reachable from it), by
// full name, for use as references of other schemas.
func Names(s *Schema) map[string]*Schema {
	out := map[string]*Schema{}
	var walk func(*Schema)
	walk = func(s *Schema) {
		if s == nil {
			return
		}
		if s.FullName != "" {
			if _, ok := out[s.FullName]; ok {
				return
			}
			out[s.FullName] = s
		}
		for _, f := range s.Fields {
			walk(f.Type)
		}
		walk(s.Items)
		walk(s.Values)
		for _, b := range s.Branches {
			walk(b)
		}
	}
	walk(s)
	return out
}

type parser struct {
	names map[string]*Schema
}

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		switch {
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func validFullName(n string) bool {
	for part := range strings.SplitSeq(n, ".") {
		if !validName(part) {
			return false
		}
	}
	return true
}

func (p *parser) parse(v any, ns string) (*Schema, error) {
	switch v := v.(type) {
	case string:
		if t, ok := primitives[v]; ok {
			return &Schema{Type: t}, nil
		}
		if s, ok := p.names[fullName(v, ns)]; ok {
			return s, nil
		}
		if s, ok := p.names[v]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("undefined name: %q", v)
	case []any:
		u := &Schema{Type: Union}
		seen := map[string]bool{}
		for _, b := range v {
			s, err := p.parse(b, ns)
			if err != nil {
				return nil, err
			}
			if s.Type == Union {
				return nil, errors.New("unions may not immediately contain other unions")
			}
			key := string(s.Type)
			if s.FullName != "" {
				key = s.FullName
			}
			if seen[key] {
				return nil, fmt.Errorf("duplicate in union: %s", key)
			}
			seen[key] = true
			u.Branches = append(u.Branches, s)
		}
		return u, nil
	case *object:
		return p.parseObject(v, ns)
	default:
		return nil, fmt.Errorf("not a schema: %v", v)
	}
}

func (p *parser) parseObject(m *object, ns string) (*Schema, error) {
	tv, ok := m.get("type")
	if !ok {
		return nil, errors.New(`no "type" property`)
	}
	ts, ok := tv.(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: a wrapped schema.
		return p.parse(tv, ns)
	}
	switch ts {
	case "record", "error", "enum", "fixed":
		return p.parseNamed(m, ts, ns)
	case "array":
		items, ok := m.get("items")
		if !ok {
			return nil, errors.New(`array without "items"`)
		}
		it, err := p.parse(items, ns)
		if err != nil {
			return nil, err
		}
		return &Schema{Type: Array, Items: it, Props: props(m, "items")}, nil
	case "map":
		values, ok := m.get("values")
		if !ok {
			return nil, errors.New(`map without "values"`)
		}
		vt, err := p.parse(values, ns)
		if err != nil {
			return nil, err
		}
		return &Schema{Type: Map, Values: vt, Props: props(m, "values")}, nil
	}
	// A primitive with properties (e.g. a logical type), or a name.
	if t, ok := primitives[ts]; ok {
		return &Schema{Type: t, Props: props(m)}, nil
	}
	return p.parse(ts, ns)
}

// reserved are the attributes Avro interprets; everything else is a
// custom property, kept and written back.
var reserved = map[string]bool{"type": true, "name": true, "namespace": true, "doc": true, "aliases": true}

// props returns m's custom properties in order, skipping reserved
// attributes and the type-specific ones given.
func props(m *object, also ...string) []Prop {
	var out []Prop
	for _, k := range m.keys {
		if reserved[k] || slices.Contains(also, k) {
			continue
		}
		out = append(out, Prop{k, m.m[k]})
	}
	return out
}

func stringList(v any, what string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be an array of strings", what)
	}
	out := make([]string, 0, len(arr))
	for _, a := range arr {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("%s must be an array of strings", what)
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *parser) parseNamed(m *object, ts, ns string) (*Schema, error) {
	name, _ := m.m["name"].(string)
	if name == "" {
		return nil, fmt.Errorf("%s without a name", ts)
	}
	if nsv, ok := m.m["namespace"].(string); ok && !strings.Contains(name, ".") {
		ns = nsv
	}
	full := fullName(name, ns)
	if !validFullName(full) {
		return nil, fmt.Errorf("invalid name: %q", full)
	}
	if _, ok := primitives[full]; ok {
		return nil, fmt.Errorf("cannot redefine primitive type %q", full)
	}
	if _, dup := p.names[full]; dup {
		return nil, fmt.Errorf("duplicate definition of %q", full)
	}
	ns = namespaceOf(full)
	aliases, err := stringList(m.m["aliases"], "aliases")
	if err != nil {
		return nil, err
	}
	s := &Schema{FullName: full, Error: ts == "error"}
	s.Doc, _ = m.m["doc"].(string)
	for _, a := range aliases {
		s.Aliases = append(s.Aliases, fullName(a, ns))
	}
	p.names[full] = s // before the fields: recursive references resolve to s
	switch ts {
	case "record", "error":
		s.Type = Record
		s.Props = props(m, "fields")
		fv, ok := m.m["fields"].([]any)
		if !ok {
			return nil, fmt.Errorf("record %q: fields must be an array", full)
		}
		seen := map[string]bool{}
		for _, f := range fv {
			fm, ok := f.(*object)
			if !ok {
				return nil, fmt.Errorf("record %q: field is not an object", full)
			}
			fname, _ := fm.m["name"].(string)
			if !validName(fname) {
				return nil, fmt.Errorf("record %q: invalid field name %q", full, fname)
			}
			if seen[fname] {
				return nil, fmt.Errorf("record %q: duplicate field %q", full, fname)
			}
			seen[fname] = true
			ftv, ok := fm.get("type")
			if !ok {
				return nil, fmt.Errorf("record %q: field %q has no type", full, fname)
			}
			ft, err := p.parse(ftv, ns)
			if err != nil {
				return nil, err
			}
			fal, err := stringList(fm.m["aliases"], "field aliases")
			if err != nil {
				return nil, err
			}
			fld := &Field{Name: fname, Aliases: fal, Type: ft, Props: props(fm, "default", "order")}
			fld.Doc, _ = fm.m["doc"].(string)
			if o, ok := fm.m["order"]; ok {
				ord, _ := o.(string)
				if ord != "ascending" && ord != "descending" && ord != "ignore" {
					return nil, fmt.Errorf("record %q: field %q: invalid order %v", full, fname, o)
				}
				if ord != "ascending" {
					fld.Order = ord
				}
			}
			if d, ok := fm.get("default"); ok {
				fld.HasDefault = true
				fld.Default = d
				if err := checkDefault(ft, d); err != nil {
					return nil, fmt.Errorf("record %q: field %q: invalid default: %w", full, fname, err)
				}
			}
			s.Fields = append(s.Fields, fld)
		}
	case "enum":
		s.Type = Enum
		s.Props = props(m, "symbols", "default")
		syms, err := stringList(m.m["symbols"], "symbols")
		if err != nil || m.m["symbols"] == nil {
			return nil, fmt.Errorf("enum %q: symbols must be an array of strings", full)
		}
		seen := map[string]bool{}
		for _, sym := range syms {
			if !validName(sym) || seen[sym] {
				return nil, fmt.Errorf("enum %q: invalid or duplicate symbol %q", full, sym)
			}
			seen[sym] = true
		}
		s.Symbols = syms
		if d, ok := m.get("default"); ok {
			ds, ok := d.(string)
			if !ok || !seen[ds] {
				return nil, fmt.Errorf("enum %q: default %v is not a symbol", full, d)
			}
			s.EnumDefault = ds
		}
	case "fixed":
		s.Type = Fixed
		s.Props = props(m, "size")
		n, ok := m.m["size"].(json.Number)
		if !ok {
			return nil, fmt.Errorf("fixed %q: size must be a number", full)
		}
		size, err := n.Int64()
		if err != nil || size < 0 || size > 1<<31-1 {
			return nil, fmt.Errorf("fixed %q: invalid size %s", full, n)
		}
		s.Size = int(size)
	}
	return s, nil
}

// checkDefault validates a field default against its type (for a union,
// against the first branch), as Avro's Java parser does with validation on.
func checkDefault(s *Schema, d any) error {
	bad := fmt.Errorf("%s default %s", s.Type, short(d))
	switch s.Type {
	case Null:
		if d != nil {
			return bad
		}
	case Boolean:
		if _, ok := d.(bool); !ok {
			return bad
		}
	case Int, Long:
		n, ok := d.(json.Number)
		if !ok {
			return bad
		}
		if _, err := n.Int64(); err != nil {
			return bad
		}
	case Float, Double:
		if _, ok := d.(json.Number); !ok {
			return bad
		}
	case Bytes, String, Fixed:
		if _, ok := d.(string); !ok {
			return bad
		}
	case Enum:
		ds, ok := d.(string)
		if !ok {
			return bad
		}
		for _, sym := range s.Symbols {
			if sym == ds {
				return nil
			}
		}
		return bad
	case Array:
		arr, ok := d.([]any)
		if !ok {
			return bad
		}
		for _, e := range arr {
			if err := checkDefault(s.Items, e); err != nil {
				return err
			}
		}
	case Map:
		m, ok := d.(*object)
		if !ok {
			return bad
		}
		for _, e := range m.m {
			if err := checkDefault(s.Values, e); err != nil {
				return err
			}
		}
	case Record:
		m, ok := d.(*object)
		if !ok {
			return bad
		}
		for _, f := range s.Fields {
			fv, ok := m.m[f.Name]
			if !ok {
				if f.HasDefault {
					continue
				}
				return fmt.Errorf("record default misses field %q", f.Name)
			}
			if err := checkDefault(f.Type, fv); err != nil {
				return err
			}
		}
	case Union:
		if len(s.Branches) == 0 {
			return bad
		}
		return checkDefault(s.Branches[0], d)
	}
	return nil
}

func short(v any) string {
	b := appendJSON(nil, v)
	if len(b) > 40 {
		b = append(b[:37], "..."...)
	}
	return string(b)
}
