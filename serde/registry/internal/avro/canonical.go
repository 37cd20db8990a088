package avro

// Normalize parses text and returns it in the registry's identity form:
// the schema re-serialised the way Avro's Java Schema.toString writes it
// (attributes in a fixed order, names split into name and namespace with
// the namespace written only where it changes, a named type written in
// full once and by name afterwards, a primitive without properties as a
// bare string), keeping docs, defaults, aliases, orders and custom
// properties. Two texts with the same normal form are the same schema;
// schemas differing in a default or a doc are not (unlike Parsing
// Canonical Form). refs are the named types of referenced schemas, which
// are written by name.
func Normalize(text string, refs map[string]*Schema) (string, error) {
	s, err := Parse(text, refs)
	if err != nil {
		return "", err
	}
	w := writer{defined: map[*Schema]bool{}}
	for _, r := range refs {
		w.defined[r] = true
	}
	return string(w.schema(nil, s, "")), nil
}

type writer struct {
	defined map[*Schema]bool
}

func namespaceAndName(full string) (ns, name string) {
	ns = namespaceOf(full)
	if ns == "" {
		return "", full
	}
	return ns, full[len(ns)+1:]
}

func (w *writer) schema(dst []byte, s *Schema, space string) []byte {
	switch s.Type {
	case Record, Enum, Fixed:
		if w.defined[s] {
			ns, name := namespaceAndName(s.FullName)
			if ns == space {
				return appendString(dst, name)
			}
			return appendString(dst, s.FullName)
		}
		w.defined[s] = true
		return w.named(dst, s, space)
	case Array:
		dst = append(dst, `{"type":"array","items":`...)
		dst = w.schema(dst, s.Items, space)
		return append(appendProps(dst, s.Props), '}')
	case Map:
		dst = append(dst, `{"type":"map","values":`...)
		dst = w.schema(dst, s.Values, space)
		return append(appendProps(dst, s.Props), '}')
	case Union:
		dst = append(dst, '[')
		for i, b := range s.Branches {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = w.schema(dst, b, space)
		}
		return append(dst, ']')
	}
	if len(s.Props) == 0 {
		return appendString(dst, string(s.Type))
	}
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, string(s.Type))
	return append(appendProps(dst, s.Props), '}')
}

func (w *writer) named(dst []byte, s *Schema, space string) []byte {
	typ := string(s.Type)
	if s.Error {
		typ = "error"
	}
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, typ)
	ns, name := namespaceAndName(s.FullName)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, name)
	if ns != space {
		dst = append(dst, `,"namespace":`...)
		dst = appendString(dst, ns)
	}
	if s.Doc != "" {
		dst = append(dst, `,"doc":`...)
		dst = appendString(dst, s.Doc)
	}
	switch s.Type {
	case Record:
		dst = append(dst, `,"fields":[`...)
		for i, f := range s.Fields {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = appendString(dst, f.Name)
			dst = append(dst, `,"type":`...)
			dst = w.schema(dst, f.Type, ns)
			if f.Doc != "" {
				dst = append(dst, `,"doc":`...)
				dst = appendString(dst, f.Doc)
			}
			if f.HasDefault {
				dst = append(dst, `,"default":`...)
				dst = appendJSON(dst, f.Default)
			}
			if f.Order != "" {
				dst = append(dst, `,"order":`...)
				dst = appendString(dst, f.Order)
			}
			if len(f.Aliases) > 0 {
				dst = append(dst, `,"aliases":`...)
				dst = appendStrings(dst, f.Aliases)
			}
			dst = append(appendProps(dst, f.Props), '}')
		}
		dst = append(dst, ']')
	case Enum:
		dst = append(dst, `,"symbols":`...)
		dst = appendStrings(dst, s.Symbols)
		if s.EnumDefault != "" {
			dst = append(dst, `,"default":`...)
			dst = appendString(dst, s.EnumDefault)
		}
	case Fixed:
		dst = append(dst, `,"size":`...)
		dst = appendJSON(dst, jsonInt(s.Size))
	}
	dst = appendProps(dst, s.Props)
	if len(s.Aliases) > 0 {
		// Aliases are written relative to the type's namespace when they
		// share it, in full otherwise.
		short := make([]string, len(s.Aliases))
		for i, a := range s.Aliases {
			if ans, an := namespaceAndName(a); ans == ns {
				short[i] = an
			} else {
				short[i] = a
			}
		}
		dst = append(dst, `,"aliases":`...)
		dst = appendStrings(dst, short)
	}
	return append(dst, '}')
}

func appendProps(dst []byte, props []Prop) []byte {
	for _, p := range props {
		dst = append(dst, ',')
		dst = appendString(dst, p.Key)
		dst = append(dst, ':')
		dst = appendJSON(dst, p.Value)
	}
	return dst
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}
