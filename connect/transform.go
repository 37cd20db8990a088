package connect

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Transformation is a single message transform (SMT). Apply returns the
// transformed record and whether to keep it; it must not modify the maps
// and slices of r in place (copy them first). Implementations are used from
// one goroutine.
type Transformation interface {
	Apply(r Record) (out Record, keep bool, err error)
}

// Predicate decides whether a transformation applies to a record.
type Predicate interface {
	Test(r Record) bool
}

// transformError is a failed transformation, naming its class for the
// __connect.errors.class.name header.
type transformError struct {
	class string
	err   error
}

func (e *transformError) Error() string { return e.class + ": " + e.err.Error() }
func (e *transformError) Unwrap() error { return e.err }

type step struct {
	class  string
	tr     Transformation
	pred   Predicate
	negate bool
}

// chain is a connector's transformations, in order.
type chain []step

func (c chain) apply(r Record) (Record, bool, error) {
	for _, s := range c {
		if s.pred != nil && s.pred.Test(r) == s.negate {
			continue
		}
		out, keep, err := s.tr.Apply(r)
		if err != nil {
			return r, false, &transformError{s.class, err}
		}
		if !keep {
			return out, false, nil
		}
		r = out
	}
	return r, true, nil
}

// props returns the names under prefix, without it.
func props(cfg map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range cfg {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out
}

// newChain builds the transformations and predicates that cfg configures
// with Kafka Connect's names (transforms, transforms.<alias>.type, ...,
// predicates, predicates.<alias>.type, ...).
func newChain(cfg map[string]string) (chain, error) {
	preds := map[string]Predicate{}
	for _, alias := range splitList(cfg["predicates"]) {
		key := "predicates." + alias + ".type"
		p, err := newPredicate(cfg[key], props(cfg, "predicates."+alias+"."))
		if err != nil {
			return nil, ConfigError{key, err.Error()}
		}
		preds[alias] = p
	}
	var c chain
	for _, alias := range splitList(cfg["transforms"]) {
		pre := "transforms." + alias + "."
		ps := props(cfg, pre)
		tr, err := newTransformation(ps["type"], ps)
		if err != nil {
			return nil, ConfigError{pre + "type", err.Error()}
		}
		s := step{class: ps["type"], tr: tr}
		if name := ps["predicate"]; name != "" {
			p, ok := preds[name]
			if !ok {
				return nil, ConfigError{pre + "predicate", fmt.Sprintf("unknown predicate %q (not in predicates)", name)}
			}
			s.pred = p
		}
		if n := ps["negate"]; n != "" {
			b, err := strconv.ParseBool(n)
			if err != nil {
				return nil, ConfigError{pre + "negate", "want true or false"}
			}
			s.negate = b
		}
		c = append(c, s)
	}
	return c, nil
}

// shortClass drops the Java package: "org.apache.kafka.connect.transforms.RegexRouter" -> "RegexRouter".
func shortClass(class string) string {
	if i := strings.LastIndexByte(class, '.'); i >= 0 {
		return class[i+1:]
	}
	return class
}

func newTransformation(class string, ps map[string]string) (Transformation, error) {
	switch shortClass(class) {
	case "RegexRouter":
		return newRegexRouter(ps)
	case "InsertField$Key", "InsertField$Value":
		return newInsertField(ps, strings.HasSuffix(class, "$Key"))
	case "ReplaceField$Key", "ReplaceField$Value":
		return newReplaceField(ps, strings.HasSuffix(class, "$Key"))
	case "Filter":
		return filter{}, nil
	case "ExtractNewRecordState":
		return newExtractNewRecordState(ps)
	case "":
		return nil, fmt.Errorf("missing transformation type")
	}
	return nil, fmt.Errorf("unknown transformation %q (want RegexRouter, InsertField$Key|$Value, ReplaceField$Key|$Value, Filter or io.debezium.transforms.ExtractNewRecordState)", class)
}

func newPredicate(class string, ps map[string]string) (Predicate, error) {
	switch shortClass(class) {
	case "TopicNameMatches":
		re, err := javaRegexp(ps["pattern"])
		if err != nil || ps["pattern"] == "" {
			return nil, fmt.Errorf("pattern: want a regular expression")
		}
		return topicNameMatches{re}, nil
	case "HasHeaderKey":
		if ps["name"] == "" {
			return nil, fmt.Errorf("name: want a header key")
		}
		return hasHeaderKey{ps["name"]}, nil
	case "RecordIsTombstone":
		return recordIsTombstone{}, nil
	}
	return nil, fmt.Errorf("unknown predicate %q (want TopicNameMatches, HasHeaderKey or RecordIsTombstone)", class)
}

// javaRegexp compiles re to match whole strings, as Java's Matcher.matches.
func javaRegexp(re string) (*regexp.Regexp, error) { return regexp.Compile(`^(?:` + re + `)$`) }

type topicNameMatches struct{ re *regexp.Regexp }

func (p topicNameMatches) Test(r Record) bool { return p.re.MatchString(r.Topic) }

type hasHeaderKey struct{ name string }

func (p hasHeaderKey) Test(r Record) bool {
	return slices.ContainsFunc(r.Headers, func(h Header) bool { return h.Key == p.name })
}

type recordIsTombstone struct{}

func (recordIsTombstone) Test(r Record) bool { return r.Value == nil }

// filter is org.apache.kafka.connect.transforms.Filter: it drops every
// record it is applied to, so it is used with a predicate.
type filter struct{}

func (filter) Apply(r Record) (Record, bool, error) { return r, false, nil }

// regexRouter is org.apache.kafka.connect.transforms.RegexRouter: topics
// matching regex (whole) become replacement, where $1 refers to groups.
type regexRouter struct {
	re          *regexp.Regexp
	replacement string
}

var javaGroupRef = regexp.MustCompile(`\$(\d+)`)

func newRegexRouter(ps map[string]string) (Transformation, error) {
	re, err := javaRegexp(ps["regex"])
	if err != nil || ps["regex"] == "" {
		return nil, fmt.Errorf("regex: want a regular expression")
	}
	if _, ok := ps["replacement"]; !ok {
		return nil, fmt.Errorf("replacement is required")
	}
	return regexRouter{re, javaGroupRef.ReplaceAllString(ps["replacement"], "$${$1}")}, nil
}

func (t regexRouter) Apply(r Record) (Record, bool, error) {
	if m := t.re.FindStringSubmatchIndex(r.Topic); m != nil {
		r.Topic = string(t.re.ExpandString(nil, t.replacement, r.Topic, m))
	}
	return r, true, nil
}

// insertField is InsertField$Key and InsertField$Value (schemaless).
type insertField struct {
	key                                    bool
	static, staticValue                    string
	topic, partition, offset, timestampFld string
}

func fieldName(s string) string { return strings.TrimRight(s, "!?") }

func newInsertField(ps map[string]string, key bool) (Transformation, error) {
	t := insertField{key: key, static: fieldName(ps["static.field"]), staticValue: ps["static.value"],
		topic: fieldName(ps["topic.field"]), partition: fieldName(ps["partition.field"]),
		offset: fieldName(ps["offset.field"]), timestampFld: fieldName(ps["timestamp.field"])}
	if t.static == "" && t.topic == "" && t.partition == "" && t.offset == "" && t.timestampFld == "" {
		return nil, fmt.Errorf("want at least one of static.field, topic.field, partition.field, offset.field, timestamp.field")
	}
	return t, nil
}

func (t insertField) Apply(r Record) (Record, bool, error) {
	v := &r.Value
	if t.key {
		v = &r.Key
	}
	if *v == nil {
		return r, true, nil // tombstones and null keys pass unchanged, as in Kafka
	}
	m, ok := (*v).(map[string]any)
	if !ok {
		return r, false, fmt.Errorf("only maps are supported without a schema, got %T", *v)
	}
	m = maps.Clone(m)
	if t.static != "" {
		m[t.static] = t.staticValue
	}
	if t.topic != "" {
		m[t.topic] = r.Topic
	}
	if t.partition != "" && r.Partition >= 0 {
		m[t.partition] = int64(r.Partition)
	}
	if t.offset != "" && r.Offset >= 0 {
		m[t.offset] = r.Offset
	}
	if t.timestampFld != "" && !r.Timestamp.IsZero() {
		m[t.timestampFld] = r.Timestamp.UnixMilli()
	}
	*v = m
	return r, true, nil
}

// replaceField is ReplaceField$Key and ReplaceField$Value (schemaless):
// exclude, include and renames (old:new,...).
type replaceField struct {
	key              bool
	exclude, include []string
	renames          map[string]string
}

func newReplaceField(ps map[string]string, key bool) (Transformation, error) {
	t := replaceField{key: key, exclude: splitList(cmp(ps["exclude"], ps["blacklist"])),
		include: splitList(cmp(ps["include"], ps["whitelist"])), renames: map[string]string{}}
	for _, pair := range splitList(ps["renames"]) {
		from, to, ok := strings.Cut(pair, ":")
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("renames: want old:new pairs, got %q", pair)
		}
		t.renames[from] = to
	}
	return t, nil
}

func (t replaceField) Apply(r Record) (Record, bool, error) {
	v := &r.Value
	if t.key {
		v = &r.Key
	}
	if *v == nil {
		return r, true, nil
	}
	m, ok := (*v).(map[string]any)
	if !ok {
		return r, false, fmt.Errorf("only maps are supported without a schema, got %T", *v)
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		if slices.Contains(t.exclude, k) || (len(t.include) > 0 && !slices.Contains(t.include, k)) {
			continue
		}
		if n, ok := t.renames[k]; ok {
			k = n
		}
		out[k] = e
	}
	*v = out
	return r, true, nil
}

// extractNewRecordState is Debezium's io.debezium.transforms.ExtractNewRecordState.
type extractNewRecordState struct {
	mode      string // delete.tombstone.handling.mode
	addFields []string
	prefix    string
}

func newExtractNewRecordState(ps map[string]string) (Transformation, error) {
	t := extractNewRecordState{mode: cmp(ps["delete.tombstone.handling.mode"], "tombstone"),
		addFields: splitList(ps["add.fields"]), prefix: cmp(ps["add.fields.prefix"], "__")}
	switch t.mode {
	case "drop", "tombstone", "rewrite", "rewrite-with-tombstone":
	default:
		return nil, fmt.Errorf("delete.tombstone.handling.mode: want drop, tombstone, rewrite or rewrite-with-tombstone, got %q", t.mode)
	}
	return t, nil
}

// Apply unwraps a Debezium change event to its row state:
//
//   - c, u, r events become their "after" row;
//   - d events are dropped (modes drop and tombstone) or become their
//     "before" row with __deleted "true" (rewrite modes, where other rows
//     get __deleted "false");
//   - tombstones are kept in modes tombstone and rewrite-with-tombstone and
//     dropped otherwise;
//   - add.fields copies op and ts_ms from the envelope and other names from
//     its source block ("source.x" also accepted), as prefix+name with dots
//     as underscores.
//
// Records that are not change events pass unchanged.
func (t extractNewRecordState) Apply(r Record) (Record, bool, error) {
	if r.Value == nil {
		return r, t.mode == "tombstone" || t.mode == "rewrite-with-tombstone", nil
	}
	env, ok := r.Value.(map[string]any)
	op, hasOp := env["op"].(string)
	if !ok || !hasOp {
		return r, true, nil
	}
	rewrite := strings.HasPrefix(t.mode, "rewrite")
	var row map[string]any
	if op == "d" {
		if !rewrite {
			return r, false, nil
		}
		row, _ = env["before"].(map[string]any)
		row = maps.Clone(row)
		if row == nil {
			row = map[string]any{}
		}
		row[t.prefix+"deleted"] = "true"
	} else {
		after, _ := env["after"].(map[string]any)
		row = maps.Clone(after)
		if row == nil {
			row = map[string]any{}
		}
		if rewrite {
			row[t.prefix+"deleted"] = "false"
		}
	}
	src, _ := env["source"].(map[string]any)
	for _, f := range t.addFields {
		name := strings.TrimPrefix(f, "source.")
		var v any
		if f == "op" || f == "ts_ms" {
			v = env[f]
		} else if src != nil {
			v = src[name]
		}
		row[t.prefix+strings.ReplaceAll(f, ".", "_")] = v
	}
	r.Value = row
	return r, true, nil
}
