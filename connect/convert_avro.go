package connect

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/serde/registry"
)

// AvroConverter is Confluent's io.confluent.connect.avro.AvroConverter:
// records in Confluent's wire format (magic byte 0, 4-byte schema id, Avro
// binary body) with their schemas in a Schema Registry.
//
// Records here carry no schemas, so FromConnect infers one from each value
// and registers it under the subject <topic>-value or <topic>-key
// (TopicNameStrategy):
//
//   - an object becomes a record, io.confluent.connect.avro.ConnectDefault
//     at the top and ConnectDefault_<path> nested (path: the field names,
//     "_item" for array items), its fields in name order, each a union
//     ["null", type] with default null, so that a field appearing later is
//     a BACKWARD-compatible change;
//   - a field that is null has the type it had in an earlier record of the
//     subject (the converter remembers them, starting from the subject's
//     latest schema when that is one it could have inferred), else "null";
//   - an array becomes an array of the type inferred from all its items
//     (objects merged field by field; integers and numbers mixed become
//     double); int64 is long, float64 double, string string, bool boolean,
//     []byte bytes;
//   - a top-level primitive or array has its plain type (no union).
//
// A schema is registered once per distinct shape and then found in a cache
// by its text (the cache keeps every shape seen, so it suits topics of a
// bounded number of shapes). An incompatible change (a field whose type changes) is
// refused by the registry, and FromConnect returns its error.
//
// ToConnect fetches the writer's schema by id (once per id) and decodes the
// body into the data model: records and maps as map[string]any, arrays
// []any, unions as their branch's value, int and long int64, float and
// double float64, enums string, fixed []byte; logical types as decimal
// strings (decimal) and epoch milliseconds (timestamps, dates, times).
// Schemas with references are not supported.
//
// AvroConverter is safe for concurrent use.
type AvroConverter struct {
	cl      *sr.Client
	isKey   bool
	timeout time.Duration

	mu struct {
		sync.Mutex
		writers map[string]avroWriter     // subject + "\x00" + schema text
		readers map[int]avroReader        // schema id
		known   map[string]map[string]any // subject -> path -> last non-null type; never modified, replaced
	}
}

type avroReader struct {
	s serde.Serde[any]
	u *avroUnwrapper
}

type avroWriter struct {
	id int
	s  serde.Serde[any]
}

// NewAvroConverter returns an Avro converter for record values (or keys,
// when isKey) that registers and fetches schemas through cl.
func NewAvroConverter(cl *sr.Client, isKey bool) *AvroConverter {
	c := &AvroConverter{cl: cl, isKey: isKey, timeout: 10 * time.Second}
	c.mu.writers = map[string]avroWriter{}
	c.mu.readers = map[int]avroReader{}
	c.mu.known = map[string]map[string]any{}
	return c
}

// avroNamespace is the namespace of inferred records, Kafka Connect's.
const avroNamespace = "io.confluent.connect.avro"

// FromConnect implements Converter.
func (c *AvroConverter) FromConnect(topic string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	subject := topic + "-value"
	if c.isKey {
		subject = topic + "-key"
	}
	in := avroInference{known: c.knownTypes(subject), learned: map[string]any{}, names: map[string]bool{}}
	node, err := in.infer([]any{v}, "")
	if err != nil {
		return nil, fmt.Errorf("connect: avro converter: %w", err)
	}
	text, err := json.Marshal(node)
	if err != nil {
		return nil, fmt.Errorf("connect: avro converter: %w", err)
	}
	w, err := c.writer(subject, string(text), in.learned)
	if err != nil {
		return nil, err
	}
	gv, err := avroValue(node, v)
	if err != nil {
		return nil, fmt.Errorf("connect: avro converter: %w", err)
	}
	out, err := w.s.AppendEncode(registry.AppendHeader(nil, w.id), gv)
	if err != nil {
		return nil, fmt.Errorf("connect: avro converter: %w", err)
	}
	return out, nil
}

// writer returns the id and serde of schema text in subject, registering
// it the first time.
func (c *AvroConverter) writer(subject, text string, learned map[string]any) (avroWriter, error) {
	key := subject + "\x00" + text
	c.mu.Lock()
	w, ok := c.mu.writers[key]
	c.mu.Unlock()
	if ok {
		return w, nil
	}
	s, err := serde.AvroGeneric(text)
	if err != nil {
		return avroWriter{}, fmt.Errorf("connect: avro converter: inferred schema: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	id, err := c.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: text, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		return avroWriter{}, fmt.Errorf("connect: avro converter: register schema in %s: %w", subject, err)
	}
	w = avroWriter{id, s}
	c.mu.Lock()
	c.mu.writers[key] = w
	// Copy on write: inferences in flight read the old map unlocked.
	k := maps.Clone(c.mu.known[subject])
	if k == nil {
		k = map[string]any{}
	}
	maps.Copy(k, learned)
	c.mu.known[subject] = k
	c.mu.Unlock()
	return w, nil
}

// knownTypes returns the types the fields of subject had: on first use,
// those of the subject's latest schema (when it is one this converter
// infers), so that a field that is null after a restart keeps its type
// instead of becoming "null", which BACKWARD compatibility would refuse.
func (c *AvroConverter) knownTypes(subject string) map[string]any {
	c.mu.Lock()
	k, ok := c.mu.known[subject]
	c.mu.Unlock()
	if ok {
		return k
	}
	k = map[string]any{}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	// Errors (no such subject yet, say) leave nothing known; a registry
	// that is down fails the registration that follows, with its error.
	if ss, err := c.cl.SchemaByVersion(ctx, subject, -1); err == nil && ss.Type == sr.TypeAvro {
		var root any
		if json.Unmarshal([]byte(ss.Schema.Schema), &root) == nil {
			seedAvroTypes(root, "", k)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.mu.known[subject]; ok {
		return prev
	}
	c.mu.known[subject] = k
	return k
}

// seedAvroTypes converts node, a schema in the JSON form this converter
// writes, into inferred types, recording the type of each path in k. It
// returns false for schemas of other shapes, whose paths it skips.
func seedAvroTypes(node any, path string, k map[string]any) (any, bool) {
	var out any
	switch t := node.(type) {
	case string:
		switch t {
		case "boolean", "long", "double", "string", "bytes":
			out = t
		default:
			return nil, false
		}
	case map[string]any:
		switch t["type"] {
		case "record":
			name, _ := t["name"].(string)
			ns, ok := t["namespace"].(string)
			if !ok { // the registry drops a namespace equal to the enclosing one
				ns = avroNamespace
			}
			r := avroRecord{Type: "record", Name: name, Namespace: ns, Fields: []avroField{}}
			fields, _ := t["fields"].([]any)
			for _, f := range fields {
				fm, _ := f.(map[string]any)
				fname, _ := fm["name"].(string)
				ft, ok := seedAvroNullable(fm["type"], path+"."+fname, k)
				if !ok {
					return nil, false
				}
				r.Fields = append(r.Fields, avroField{Name: fname, Type: ft})
			}
			out = r
		case "array":
			it, ok := seedAvroNullable(t["items"], path+"[]", k)
			if !ok {
				return nil, false
			}
			out = avroArray{Type: "array", Items: it}
		default:
			return nil, false
		}
	default:
		return nil, false
	}
	k[path] = out
	return out, true
}

// seedAvroNullable converts a field or item type: "null" or ["null", t].
func seedAvroNullable(node any, path string, k map[string]any) (any, bool) {
	if node == "null" {
		return "null", true
	}
	u, ok := node.([]any)
	if !ok || len(u) != 2 || u[0] != "null" {
		return nil, false
	}
	t, ok := seedAvroTypes(u[1], path, k)
	if !ok {
		return nil, false
	}
	return []any{"null", t}, true
}

// ToConnect implements Converter.
func (c *AvroConverter) ToConnect(_ string, data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	id, body, err := registry.ParseHeader(data)
	if err != nil {
		return nil, fmt.Errorf("connect: avro converter: %w", err)
	}
	rd, err := c.reader(id)
	if err != nil {
		return nil, err
	}
	v, err := rd.s.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("connect: avro converter: schema id %d: %w", id, err)
	}
	return fromAvro(rd.u.unwrap(rd.u.root, "", v)), nil
}

func (c *AvroConverter) reader(id int) (avroReader, error) {
	c.mu.Lock()
	rd, ok := c.mu.readers[id]
	c.mu.Unlock()
	if ok {
		return rd, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	ws, err := c.cl.SchemaByID(ctx, id)
	if err != nil {
		return avroReader{}, fmt.Errorf("connect: avro converter: schema id %d: %w", id, err)
	}
	if ws.Type != sr.TypeAvro {
		return avroReader{}, fmt.Errorf("connect: avro converter: schema id %d is %s, not AVRO", id, ws.Type)
	}
	if len(ws.References) > 0 {
		return avroReader{}, fmt.Errorf("connect: avro converter: schema id %d has references, which are not supported", id)
	}
	if rd.s, err = serde.AvroGeneric(ws.Schema); err != nil {
		return avroReader{}, fmt.Errorf("connect: avro converter: schema id %d: %w", id, err)
	}
	if rd.u, err = newAvroUnwrapper(ws.Schema); err != nil {
		return avroReader{}, fmt.Errorf("connect: avro converter: schema id %d: %w", id, err)
	}
	c.mu.Lock()
	c.mu.readers[id] = rd
	c.mu.Unlock()
	return rd, nil
}

// Inferred schemas, as they marshal to Avro's JSON form.
type (
	avroRecord struct {
		Type      string      `json:"type"` // "record"
		Name      string      `json:"name"`
		Namespace string      `json:"namespace"`
		Fields    []avroField `json:"fields"`
	}
	avroField struct {
		Name    string `json:"name"`
		Type    any    `json:"type"` // "null" or ["null", type]
		Default any    `json:"default"`
	}
	avroArray struct {
		Type  string `json:"type"` // "array"
		Items any    `json:"items"`
	}
)

// validAvroName reports whether s is a valid Avro name:
// [A-Za-z_][A-Za-z0-9_]*.
func validAvroName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return s != ""
}

// recordPath turns a field path (".a.b", "[]" for array items) into the
// suffix of a nested record's name.
var recordPath = strings.NewReplacer(".", "_", "[]", "_item")

// avroInference infers one schema.
type avroInference struct {
	known   map[string]any // path -> type, from earlier schemas (read only)
	learned map[string]any // path -> type, from this one
	names   map[string]bool
}

// infer returns the one non-null type that fits every value of vals (nil
// values fit any), or nil when all are nil.
func (in *avroInference) infer(vals []any, path string) (any, error) {
	var first any
	for _, v := range vals {
		if v != nil {
			first = v
			break
		}
	}
	if first == nil {
		return nil, nil
	}
	var node any
	switch first.(type) {
	case map[string]any:
		var err error
		if node, err = in.record(vals, path); err != nil {
			return nil, err
		}
	case []any:
		var items []any
		for _, v := range vals {
			a, ok := v.([]any)
			if !ok && v != nil {
				return nil, fmt.Errorf("%s: an array and %T mixed", describePath(path), v)
			}
			items = append(items, a...)
		}
		it, err := in.infer(items, path+"[]")
		if err != nil {
			return nil, err
		}
		node = avroArray{Type: "array", Items: in.nullable(it, path+"[]")}
	default:
		prim := ""
		for _, v := range vals {
			if v == nil {
				continue
			}
			p, err := avroPrimitive(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", describePath(path), err)
			}
			switch {
			case prim == "" || prim == p:
				prim = p
			case (prim == "long" && p == "double") || (prim == "double" && p == "long"):
				prim = "double"
			default:
				return nil, fmt.Errorf("%s: %s and %s mixed", describePath(path), prim, p)
			}
		}
		node = prim
	}
	in.learned[path] = node
	return node, nil
}

func describePath(path string) string {
	if path == "" {
		return "value"
	}
	return "field " + strings.TrimPrefix(path, ".")
}

func avroPrimitive(v any) (string, error) {
	switch v.(type) {
	case bool:
		return "boolean", nil
	case int64, int, int32:
		return "long", nil
	case float64, float32:
		return "double", nil
	case string:
		return "string", nil
	case []byte:
		return "bytes", nil
	case map[string]any:
		return "record", nil
	case []any:
		return "array", nil
	}
	return "", fmt.Errorf("unsupported type %T", v)
}

// nullable is the type of a field or array item: ["null", t], or for a
// value that was always null the type the path had before, else "null".
func (in *avroInference) nullable(t any, path string) any {
	if t == nil {
		if t = in.known[path]; t == nil {
			return "null"
		}
		in.learned[path] = t
	}
	return []any{"null", t}
}

func (in *avroInference) record(vals []any, path string) (any, error) {
	keys := map[string]bool{}
	for _, v := range vals {
		m, ok := v.(map[string]any)
		if !ok && v != nil {
			return nil, fmt.Errorf("%s: an object and %T mixed", describePath(path), v)
		}
		for k := range m {
			keys[k] = true
		}
	}
	name := "ConnectDefault"
	if path != "" {
		name += recordPath.Replace(path)
	}
	for base, n := name, 2; in.names[name]; n++ {
		name = base + strconv.Itoa(n)
	}
	in.names[name] = true
	r := avroRecord{Type: "record", Name: name, Namespace: avroNamespace, Fields: []avroField{}}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if !validAvroName(k) {
			return nil, fmt.Errorf("%s: %q is not a valid Avro field name ([A-Za-z_][A-Za-z0-9_]*)", describePath(path), k)
		}
		fv := make([]any, 0, len(vals))
		for _, v := range vals {
			if m, _ := v.(map[string]any); m != nil {
				fv = append(fv, m[k])
			}
		}
		t, err := in.infer(fv, path+"."+k)
		if err != nil {
			return nil, err
		}
		r.Fields = append(r.Fields, avroField{Name: k, Type: in.nullable(t, path+"."+k)})
	}
	return r, nil
}

// avroValue returns v in the generic form the Avro encoder takes for
// schema node: union values wrapped as {branch: value}, so that a record,
// an array or a long is never guessed from its Go type.
func avroValue(node, v any) (any, error) {
	switch n := node.(type) {
	case avroRecord:
		m, _ := v.(map[string]any)
		out := make(map[string]any, len(n.Fields))
		for _, f := range n.Fields {
			fv, err := avroUnion(f.Type, m[f.Name])
			if err != nil {
				return nil, err
			}
			out[f.Name] = fv
		}
		return out, nil
	case avroArray:
		a, _ := v.([]any)
		out := make([]any, len(a))
		for i, e := range a {
			var err error
			if out[i], err = avroUnion(n.Items, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case string:
		switch n {
		case "long":
			switch t := v.(type) {
			case int:
				return int64(t), nil
			case int32:
				return int64(t), nil
			}
		case "double":
			switch t := v.(type) {
			case int64:
				return float64(t), nil
			case int:
				return float64(t), nil
			case int32:
				return float64(t), nil
			case float32:
				return float64(t), nil
			}
		}
		return v, nil
	}
	return nil, fmt.Errorf("unexpected schema node %T", node)
}

// avroUnion encodes v for a field or item type: "null" or ["null", t].
func avroUnion(typ, v any) (any, error) {
	u, ok := typ.([]any)
	if !ok || v == nil {
		return nil, nil
	}
	inner := u[1]
	gv, err := avroValue(inner, v)
	if err != nil {
		return nil, err
	}
	return map[string]any{avroBranch(inner): gv}, nil
}

// avroBranch is the name that selects node in a union.
func avroBranch(node any) string {
	switch n := node.(type) {
	case avroRecord:
		return n.Namespace + "." + n.Name
	case avroArray:
		return "array"
	case string:
		return n
	}
	return ""
}

// fromAvro turns the Avro codec's generic values into the data model.
func fromAvro(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = fromAvro(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = fromAvro(e)
		}
		return t
	case int:
		return int64(t)
	case int32:
		return int64(t)
	case float32:
		return float64(t)
	case time.Time:
		return t.UnixMilli()
	case time.Duration:
		return t.Milliseconds()
	case *big.Rat:
		return decimalString(t)
	case nil, bool, int64, float64, string, []byte:
		return v
	}
	if b, ok := fixedBytes(v); ok {
		return b
	}
	return fmt.Sprint(v)
}

// decimalString writes r, a decimal's value (a finite decimal fraction),
// in decimal notation.
func decimalString(r *big.Rat) string {
	ten, x := big.NewRat(10, 1), new(big.Rat).Set(r)
	for scale := 0; scale < 100; scale++ {
		if x.IsInt() {
			return r.FloatString(scale)
		}
		x.Mul(x, ten)
	}
	return r.RatString()
}

// fixedBytes returns the bytes of an Avro fixed value ([N]byte).
func fixedBytes(v any) ([]byte, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Array || rv.Type().Elem().Kind() != reflect.Uint8 {
		return nil, false
	}
	out := make([]byte, rv.Len())
	reflect.Copy(reflect.ValueOf(out), rv)
	return out, true
}

// newAvroConverter builds an AvroConverter from <prefix>.schema.registry.url
// and <prefix>.basic.auth.user.info.
func newAvroConverter(cfg map[string]string, prefix string) (Converter, error) {
	url := strings.TrimSpace(cfg[prefix+".schema.registry.url"])
	if url == "" {
		return nil, ConfigError{prefix + ".schema.registry.url", "the Avro converter needs the Schema Registry's URL"}
	}
	opts := []sr.ClientOpt{sr.URLs(splitList(url)...)}
	if ui := cfg[prefix+".basic.auth.user.info"]; ui != "" {
		user, pass, ok := strings.Cut(ui, ":")
		if !ok {
			return nil, ConfigError{prefix + ".basic.auth.user.info", "want user:password"}
		}
		opts = append(opts, sr.BasicAuth(user, pass))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, ConfigError{prefix + ".schema.registry.url", err.Error()}
	}
	return NewAvroConverter(cl, prefix == "key.converter"), nil
}

// avroUnwrapper removes the {branch: value} wrappers the Avro codec leaves
// around union values it cannot map to a Go type (records, enums, fixed,
// arrays and maps, and every branch of a union holding one of them), by
// walking the writer's schema alongside the value. At a union, a decoded
// map[string]any is always such a wrapper: the branches that decode to maps
// are exactly the ones that make the codec wrap.
type avroUnwrapper struct {
	root  any
	named map[string]map[string]any // full name -> definition
}

func newAvroUnwrapper(text string) (*avroUnwrapper, error) {
	u := &avroUnwrapper{named: map[string]map[string]any{}}
	if err := json.Unmarshal([]byte(text), &u.root); err != nil {
		return nil, err
	}
	u.collect(u.root, "")
	return u, nil
}

// fullName is the full name of a named definition in namespace ns.
func avroFullName(def map[string]any, ns string) string {
	name, _ := def["name"].(string)
	if strings.Contains(name, ".") {
		return name
	}
	if n, ok := def["namespace"].(string); ok {
		ns = n
	}
	if ns == "" {
		return name
	}
	return ns + "." + name
}

func avroSpace(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

func (u *avroUnwrapper) collect(n any, ns string) {
	switch t := n.(type) {
	case []any:
		for _, e := range t {
			u.collect(e, ns)
		}
	case map[string]any:
		switch typ := t["type"].(type) {
		case string:
			switch typ {
			case "record", "error", "enum", "fixed":
				full := avroFullName(t, ns)
				u.named[full] = t
				fields, _ := t["fields"].([]any)
				for _, f := range fields {
					if fm, ok := f.(map[string]any); ok {
						u.collect(fm["type"], avroSpace(full))
					}
				}
			case "array":
				u.collect(t["items"], ns)
			case "map":
				u.collect(t["values"], ns)
			}
		default:
			u.collect(typ, ns)
		}
	}
}

var avroPrimitives = map[string]bool{"null": true, "boolean": true, "int": true, "long": true, "float": true, "double": true, "bytes": true, "string": true}

// resolve returns the definition a type name refers to, and its namespace.
func (u *avroUnwrapper) resolve(name, ns string) (map[string]any, string) {
	full := name
	if !strings.Contains(name, ".") && ns != "" {
		full = ns + "." + name
	}
	if d, ok := u.named[full]; ok {
		return d, avroSpace(full)
	}
	d := u.named[name]
	return d, avroSpace(name)
}

// branchName is the name the codec wraps a value of schema s with.
func (u *avroUnwrapper) branchName(s any, ns string) string {
	switch t := s.(type) {
	case string:
		if avroPrimitives[t] {
			return t
		}
		if d, dns := u.resolve(t, ns); d != nil {
			return avroFullName(d, dns)
		}
		return t
	case map[string]any:
		typ, _ := t["type"].(string)
		switch typ {
		case "record", "error", "enum", "fixed":
			return avroFullName(t, ns)
		}
		if lt, ok := t["logicalType"].(string); ok {
			return typ + "." + lt
		}
		return typ
	}
	return ""
}

// unwrap returns v, a decoded value of schema s, without union wrappers.
func (u *avroUnwrapper) unwrap(s any, ns string, v any) any {
	if v == nil {
		return nil
	}
	switch t := s.(type) {
	case string:
		if avroPrimitives[t] {
			return v
		}
		if d, dns := u.resolve(t, ns); d != nil {
			return u.unwrap(d, dns, v)
		}
	case []any:
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v
		}
		for k, inner := range m {
			for _, b := range t {
				if u.branchName(b, ns) == k {
					return u.unwrap(b, ns, inner)
				}
			}
		}
	case map[string]any:
		switch typ := t["type"].(type) {
		case string:
			switch typ {
			case "record", "error":
				m, _ := v.(map[string]any)
				rns := avroSpace(avroFullName(t, ns))
				fields, _ := t["fields"].([]any)
				for _, f := range fields {
					fm, _ := f.(map[string]any)
					name, _ := fm["name"].(string)
					if fv, ok := m[name]; ok {
						m[name] = u.unwrap(fm["type"], rns, fv)
					}
				}
			case "array":
				a, _ := v.([]any)
				for i, e := range a {
					a[i] = u.unwrap(t["items"], ns, e)
				}
			case "map":
				m, _ := v.(map[string]any)
				for k, e := range m {
					m[k] = u.unwrap(t["values"], ns, e)
				}
			}
		default:
			return u.unwrap(typ, ns, v)
		}
	}
	return v
}
