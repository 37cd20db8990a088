package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Reference is a Confluent schema reference: a name the referring schema
// uses (for Avro, the full name of a named type) and the subject and
// version that define it.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// The record formats of the _schemas topic, as Confluent writes them.
type (
	storeKey struct {
		KeyType string  `json:"keytype"`
		Subject *string `json:"subject,omitempty"`
		Version *int    `json:"version,omitempty"`
		Magic   int     `json:"magic"`
	}
	schemaValue struct {
		Subject    string      `json:"subject"`
		Version    int         `json:"version"`
		ID         int         `json:"id"`
		SchemaType string      `json:"schemaType,omitempty"`
		References []Reference `json:"references,omitempty"`
		Schema     string      `json:"schema"`
		Deleted    bool        `json:"deleted"`
	}
	configValue struct {
		CompatibilityLevel string `json:"compatibilityLevel"`
	}
	modeValue struct {
		Mode string `json:"mode"`
	}
	deleteSubjectValue struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
	}
)

const (
	keySchema        = "SCHEMA"
	keyConfig        = "CONFIG"
	keyMode          = "MODE"
	keyDeleteSubject = "DELETE_SUBJECT"
	keyNoop          = "NOOP"
)

func schemaKey(subject string, version int) storeKey {
	return storeKey{KeyType: keySchema, Subject: &subject, Version: &version, Magic: 1}
}

// configKey and modeKey address the global setting for subject "".
func configKey(subject string) storeKey {
	k := storeKey{KeyType: keyConfig}
	if subject != "" {
		k.Subject = &subject
	}
	return k
}

func modeKey(subject string) storeKey {
	k := storeKey{KeyType: keyMode}
	if subject != "" {
		k.Subject = &subject
	}
	return k
}

// marshalKey writes the key with "subject":null for global keys, as
// Confluent does.
func marshalKey(k storeKey) []byte {
	if k.Subject == nil && (k.KeyType == keyConfig || k.KeyType == keyMode) {
		return fmt.Appendf(nil, `{"keytype":%q,"subject":null,"magic":%d}`, k.KeyType, k.Magic)
	}
	b, _ := json.Marshal(k)
	return b
}

// version is one registered (subject, version).
type version struct {
	subject string
	version int
	id      int
	deleted bool
}

// content is a schema as registered under a global id.
type content struct {
	schemaType string // "AVRO", "JSON", "PROTOBUF"
	schema     string // identity form
	refs       []Reference
	ident      string // key(), computed once
}

// key is the content's identity: type, schema text and references.
func (c *content) key() string {
	if c.ident == "" {
		r, _ := json.Marshal(c.refs)
		c.ident = c.schemaType + "\x00" + c.schema + "\x00" + string(r)
	}
	return c.ident
}

// state is the registry's view of the _schemas topic. It is guarded by the
// server's mu and changed only by apply.
type state struct {
	subjects map[string]map[int]*version // subject -> version -> entry
	byID     map[int]*content
	idOf     map[string]int // content key -> id
	maxID    int
	config   map[string]string // "" is global
	mode     map[string]string // "" is global
}

func newState() *state {
	return &state{
		subjects: map[string]map[int]*version{},
		byID:     map[int]*content{},
		idOf:     map[string]int{},
		config:   map[string]string{},
		mode:     map[string]string{},
	}
}

// apply applies one record of _schemas. Unknown or malformed records are
// skipped (returned as an error for logging): a registry must keep reading a
// topic other implementations also write.
func (st *state) apply(key, value []byte) error {
	var k storeKey
	if err := json.Unmarshal(key, &k); err != nil {
		return fmt.Errorf("bad key %q: %w", key, err)
	}
	subj := ""
	if k.Subject != nil {
		subj = *k.Subject
	}
	switch k.KeyType {
	case keySchema:
		if k.Subject == nil || k.Version == nil {
			return fmt.Errorf("schema key without subject or version: %s", key)
		}
		if value == nil { // permanent delete
			if vs := st.subjects[subj]; vs != nil {
				delete(vs, *k.Version)
				if len(vs) == 0 {
					delete(st.subjects, subj)
				}
			}
			return nil
		}
		var v schemaValue
		if err := json.Unmarshal(value, &v); err != nil {
			return fmt.Errorf("bad schema value: %w", err)
		}
		if v.SchemaType == "" {
			v.SchemaType = "AVRO"
		}
		c := &content{schemaType: v.SchemaType, schema: v.Schema, refs: v.References}
		if _, ok := st.byID[v.ID]; !ok {
			st.byID[v.ID] = c
			st.idOf[c.key()] = v.ID
		}
		st.maxID = max(st.maxID, v.ID)
		vs := st.subjects[v.Subject]
		if vs == nil {
			vs = map[int]*version{}
			st.subjects[v.Subject] = vs
		}
		vs[v.Version] = &version{subject: v.Subject, version: v.Version, id: v.ID, deleted: v.Deleted}
	case keyConfig:
		if value == nil {
			delete(st.config, subj)
			return nil
		}
		var v configValue
		if err := json.Unmarshal(value, &v); err != nil {
			return fmt.Errorf("bad config value: %w", err)
		}
		st.config[subj] = v.CompatibilityLevel
	case keyMode:
		if value == nil {
			delete(st.mode, subj)
			return nil
		}
		var v modeValue
		if err := json.Unmarshal(value, &v); err != nil {
			return fmt.Errorf("bad mode value: %w", err)
		}
		st.mode[subj] = v.Mode
	case keyDeleteSubject:
		if value == nil {
			return nil
		}
		var v deleteSubjectValue
		if err := json.Unmarshal(value, &v); err != nil {
			return fmt.Errorf("bad delete-subject value: %w", err)
		}
		for n, e := range st.subjects[v.Subject] {
			if n <= v.Version {
				e.deleted = true
			}
		}
	case keyNoop:
	default:
		return fmt.Errorf("unknown key type %q", k.KeyType)
	}
	return nil
}

// versions returns the subject's versions in ascending order, including
// soft-deleted ones when deleted is set.
func (st *state) versions(subject string, deleted bool) []*version {
	var out []*version
	for _, v := range st.subjects[subject] {
		if deleted || !v.deleted {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out
}

// subjectNames lists subjects with at least one version (live unless
// deleted is set), sorted.
func (st *state) subjectNames(deleted bool, prefix string) []string {
	out := []string{}
	for s := range st.subjects {
		if strings.HasPrefix(s, prefix) && len(st.versions(s, deleted)) > 0 {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// maxVersion is the highest version of subject, soft-deleted included.
func (st *state) maxVersion(subject string) int {
	m := 0
	for n := range st.subjects[subject] {
		m = max(m, n)
	}
	return m
}

// referencedBy returns the ids of live schemas referring to subject/version.
func (st *state) referencedBy(subject string, ver int) []int {
	var ids []int
	for _, vs := range st.subjects {
		for _, v := range vs {
			if v.deleted {
				continue
			}
			for _, r := range st.byID[v.id].refs {
				if r.Subject == subject && r.Version == ver && !slices.Contains(ids, v.id) {
					ids = append(ids, v.id)
				}
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// usesOfID returns the (subject, version) pairs registered with id.
func (st *state) usesOfID(id int, deleted bool) []*version {
	var out []*version
	for _, vs := range st.subjects {
		for _, v := range vs {
			if v.id == id && (deleted || !v.deleted) {
				out = append(out, v)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].subject != out[j].subject {
			return out[i].subject < out[j].subject
		}
		return out[i].version < out[j].version
	})
	return out
}
