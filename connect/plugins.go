package connect

import (
	"fmt"
	"slices"
)

// Plugin describes a connector implementation, found by its class name
// (connector.class) or one of its aliases. Exactly one of Source and Sink
// is set.
type Plugin struct {
	Class   string
	Aliases []string
	Version string
	Source  func() Source
	Sink    func() Sink
}

// Type returns "source" or "sink", as the REST API spells it.
func (p Plugin) Type() string {
	if p.Source != nil {
		return "source"
	}
	return "sink"
}

// plugins finds plugins by class name or alias.
type plugins struct {
	list   []Plugin
	byName map[string]int
}

func newPlugins(ps []Plugin) (*plugins, error) {
	r := &plugins{byName: map[string]int{}}
	for _, p := range ps {
		if p.Class == "" || (p.Source == nil) == (p.Sink == nil) {
			return nil, fmt.Errorf("connect: plugin %q: want a class and exactly one of Source and Sink", p.Class)
		}
		for _, n := range append([]string{p.Class}, p.Aliases...) {
			if _, dup := r.byName[n]; dup {
				return nil, fmt.Errorf("connect: plugin name %q registered twice", n)
			}
			r.byName[n] = len(r.list)
		}
		r.list = append(r.list, p)
	}
	slices.SortFunc(r.list, func(a, b Plugin) int { return compareStrings(a.Class, b.Class) })
	for i, p := range r.list {
		for _, n := range append([]string{p.Class}, p.Aliases...) {
			r.byName[n] = i
		}
	}
	return r, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *plugins) lookup(class string) (Plugin, bool) {
	i, ok := r.byName[class]
	if !ok {
		return Plugin{}, false
	}
	return r.list[i], true
}
