package avro

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IncompatibilityType names a reason a reader cannot read a writer's data,
// with the names Avro's Java SchemaCompatibility uses.
type IncompatibilityType string

// The incompatibility types.
const (
	NameMismatch                   IncompatibilityType = "NAME_MISMATCH"
	FixedSizeMismatch              IncompatibilityType = "FIXED_SIZE_MISMATCH"
	MissingEnumSymbols             IncompatibilityType = "MISSING_ENUM_SYMBOLS"
	ReaderFieldMissingDefaultValue IncompatibilityType = "READER_FIELD_MISSING_DEFAULT_VALUE"
	TypeMismatch                   IncompatibilityType = "TYPE_MISMATCH"
	MissingUnionBranch             IncompatibilityType = "MISSING_UNION_BRANCH"
)

// Incompatibility is one reason a reader cannot read a writer's data.
type Incompatibility struct {
	Type IncompatibilityType
	// Path is a JSON-pointer-like location in the reader schema, e.g.
	// "/fields/1/type".
	Path string
	// Info is the detail: a field name, the missing symbols, the expected
	// name or size.
	Info string
}

// Message formats the incompatibility in Confluent's style. readerIsNew
// tells which of the two schemas is the one being registered: "new" names
// the reader for BACKWARD checks and the writer for FORWARD ones.
func (in Incompatibility) Message(readerIsNew bool) string {
	rd, wr := "new", "old"
	if !readerIsNew {
		rd, wr = "old", "new"
	}
	var desc string
	switch in.Type {
	case NameMismatch:
		desc = fmt.Sprintf("The name of the schema has changed (path '%s')", in.Path)
	case FixedSizeMismatch:
		desc = fmt.Sprintf("The size of FIXED type field at path '%s' in the %s schema does not match with the %s schema", in.Path, rd, wr)
	case MissingEnumSymbols:
		desc = fmt.Sprintf("The %s schema is missing enum symbols '%s' at path '%s' in the %s schema", rd, in.Info, in.Path, wr)
	case ReaderFieldMissingDefaultValue:
		desc = fmt.Sprintf("The field '%s' at path '%s' in the %s schema has no default value and is missing in the %s schema", in.Info, in.Path, rd, wr)
	case TypeMismatch:
		desc = fmt.Sprintf("The type (path '%s') of a field in the %s schema does not match with the %s schema", in.Path, rd, wr)
	case MissingUnionBranch:
		desc = fmt.Sprintf("The %s schema is missing a type inside a union field at path '%s' in the %s schema", rd, in.Path, wr)
	}
	return fmt.Sprintf("{errorType:'%s', description:'%s', additionalInfo:'%s'}", in.Type, desc, in.Info)
}

type pair struct{ r, w *Schema }

// Checker checks reader/writer pairs. A Checker memoises the pairs it has
// seen (which is what makes recursive schemas terminate) and must not be
// shared between goroutines; use a new one per check, it is cheap.
type Checker struct {
	memo map[pair]result
}

type result struct {
	inProgress bool
	errs       []Incompatibility
}

// Check reports every reason reader cannot read data written with writer;
// an empty result means compatible.
func Check(reader, writer *Schema) []Incompatibility {
	var c Checker
	return c.Check(reader, writer)
}

// Check is like the package function Check, reusing c's memo.
func (c *Checker) Check(reader, writer *Schema) []Incompatibility {
	if c.memo == nil {
		c.memo = make(map[pair]result, 16)
	}
	return c.compat(reader, writer, nil)
}

// path is the location under check, as a linked list of nodes on the
// callers' stacks; it is joined into a string only when reporting, so the
// compatible case (the common one) builds no strings.
type path struct {
	parent *path
	elem   string
	index  int // used when elem is ""
}

func (p *path) String() string {
	if p == nil {
		return "/"
	}
	var elems []string
	for n := p; n != nil; n = n.parent {
		if n.elem != "" {
			elems = append(elems, n.elem)
		} else {
			elems = append(elems, strconv.Itoa(n.index))
		}
	}
	slices.Reverse(elems)
	return "/" + strings.Join(elems, "/")
}

func (c *Checker) compat(r, w *Schema, p *path) []Incompatibility {
	k := pair{r, w}
	if res, ok := c.memo[k]; ok {
		if res.inProgress {
			// A recursive type reaching a pair under check: assume it
			// compatible; the outer check decides.
			return nil
		}
		return res.errs
	}
	c.memo[k] = result{inProgress: true}
	errs := c.calc(r, w, p)
	c.memo[k] = result{errs: errs}
	return errs
}

func mismatch(r, w *Schema, p *path) []Incompatibility {
	return []Incompatibility{{Type: TypeMismatch, Path: p.String(), Info: fmt.Sprintf("reader type: %s not compatible with writer type: %s", upper(r.Type), upper(w.Type))}}
}

func upper(t Type) string { return strings.ToUpper(string(t)) }

func (c *Checker) calc(r, w *Schema, p *path) []Incompatibility {
	if r.Type == w.Type {
		switch r.Type {
		case Array:
			return c.compat(r.Items, w.Items, &path{parent: p, elem: "items"})
		case Map:
			return c.compat(r.Values, w.Values, &path{parent: p, elem: "values"})
		case Fixed:
			errs := names(r, w, p)
			if r.Size != w.Size {
				errs = append(errs, Incompatibility{Type: FixedSizeMismatch, Path: (&path{parent: p, elem: "size"}).String(), Info: fmt.Sprintf("expected: %d, found: %d", w.Size, r.Size)})
			}
			return errs
		case Enum:
			errs := names(r, w, p)
			var missing []string
			for _, s := range w.Symbols {
				if !slices.Contains(r.Symbols, s) {
					missing = append(missing, s)
				}
			}
			if len(missing) > 0 && r.EnumDefault == "" {
				errs = append(errs, Incompatibility{Type: MissingEnumSymbols, Path: (&path{parent: p, elem: "symbols"}).String(), Info: "[" + strings.Join(missing, ", ") + "]"})
			}
			return errs
		case Record:
			return append(names(r, w, p), c.fields(r, w, p)...)
		case Union:
			var errs []Incompatibility
			for i, wb := range w.Branches {
				if len(c.compat(r, wb, p)) > 0 {
					errs = append(errs, Incompatibility{Type: MissingUnionBranch, Path: (&path{parent: p, index: i}).String(), Info: "reader union lacking writer type: " + upper(wb.Type)})
				}
			}
			return errs
		}
		return nil // same primitive
	}
	if w.Type == Union {
		// Every branch the writer may have used must be readable.
		var errs []Incompatibility
		for _, wb := range w.Branches {
			errs = append(errs, c.compat(r, wb, p)...)
		}
		return errs
	}
	switch r.Type {
	case Long:
		if w.Type == Int {
			return nil
		}
	case Float:
		if w.Type == Int || w.Type == Long {
			return nil
		}
	case Double:
		if w.Type == Int || w.Type == Long || w.Type == Float {
			return nil
		}
	case Bytes:
		if w.Type == String {
			return nil
		}
	case String:
		if w.Type == Bytes {
			return nil
		}
	case Union:
		for _, rb := range r.Branches {
			if len(c.compat(rb, w, p)) == 0 {
				return nil
			}
		}
		return []Incompatibility{{Type: MissingUnionBranch, Path: p.String(), Info: "reader union lacking writer type: " + upper(w.Type)}}
	}
	return mismatch(r, w, p)
}

// names checks that named types match: same unqualified name, or the
// writer's full name among the reader's aliases.
func names(r, w *Schema, p *path) []Incompatibility {
	if r.Name() == w.Name() || slices.Contains(r.Aliases, w.FullName) {
		return nil
	}
	return []Incompatibility{{Type: NameMismatch, Path: (&path{parent: p, elem: "name"}).String(), Info: "expected: " + w.FullName}}
}

func (c *Checker) fields(r, w *Schema, p *path) []Incompatibility {
	var errs []Incompatibility
	fields := path{parent: p, elem: "fields"}
	for i, rf := range r.Fields {
		fp := path{parent: &fields, index: i}
		wf := lookupField(w, rf)
		if wf == nil {
			if !rf.HasDefault {
				errs = append(errs, Incompatibility{Type: ReaderFieldMissingDefaultValue, Path: fp.String(), Info: rf.Name})
			}
			continue
		}
		errs = append(errs, c.compat(rf.Type, wf.Type, &path{parent: &fp, elem: "type"})...)
	}
	return errs
}

func lookupField(w *Schema, rf *Field) *Field {
	for _, wf := range w.Fields {
		if wf.Name == rf.Name {
			return wf
		}
	}
	for _, a := range rf.Aliases {
		for _, wf := range w.Fields {
			if wf.Name == a {
				return wf
			}
		}
	}
	return nil
}
