package stream

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

type nodeKind int

const (
	kindSource nodeKind = iota
	kindProcessor
	kindSink
)

// node is one operator of the topology graph. Typed behaviour lives in
// closures; the graph itself is untyped so Build can validate and describe
// it.
type node struct {
	id       int
	name     string
	kind     nodeKind
	parents  []*node
	children []*node
	sub      int // sub-topology, set by Build

	topics []string // sources: topics read
	sinkTo string   // sinks: fixed topic ("" when chosen per record)
	stores []string // stores the processor uses
	partOf string   // repartition topic this node reads or writes ("" if none)
	// copartition marks a join: the source topics of its sub-topology must
	// have equal partition counts (checked when the app starts).
	copartition bool
	missing     []string // serdes this operator needs but lacks (checked by Build)

	// entry builds, for a task, the function records of topic enter by
	// (sources only).
	entry func(t *task) func(in *inRecord)
}

// storeDef describes a state store declared by the topology.
type storeDef struct {
	name        string
	owner       *node
	persistent  bool // pebble (true) or in-memory
	changelog   bool
	cached      bool  // updates go through the record cache and are forwarded at flush
	windowed    bool  // keys end with an 8-byte window start (window.KeySerde)
	session     bool  // keys are sessionKey's: length, key, end, start
	retentionMs int64 // windowed, session: records older than this (by start, or session end, vs stream time) expire
	// windowSizeMs is the size of a windowed store's windows, so queries
	// can tell window ends (0: unknown, queries report End = Start).
	windowSizeMs int64
	users        []*node

	// valueTimestamps: values start with an 8-byte timestamp that only the
	// owning operator reads (sliding windows); queries see the rest.
	valueTimestamps bool
}

// Builder builds a topology. Create streams and tables with the package
// functions (Stream, Table), chain operators, then call Build. A Builder is
// not safe for concurrent use.
type Builder struct {
	nodes      []*node
	stores     map[string]*storeDef
	topicNodes map[string]*node // source topic -> its source node
	errs       []error
	seq        int

	repartitions []*repartitionDef
	globals      []*globalDef
}

// NewBuilder returns an empty topology builder.
func NewBuilder() *Builder {
	return &Builder{stores: map[string]*storeDef{}, topicNodes: map[string]*node{}}
}

// newNode adds a node named after Kafka Streams' conventions
// (KSTREAM-FILTER-0000000003) unless the user named it.
func (b *Builder) newNode(kind nodeKind, prefix, name string, parents ...*node) *node {
	id := b.seq
	b.seq++
	if name == "" {
		name = fmt.Sprintf("%s-%010d", prefix, id)
	}
	n := &node{id: id, name: name, kind: kind, parents: parents}
	for _, p := range parents {
		p.children = append(p.children, n)
	}
	b.nodes = append(b.nodes, n)
	return n
}

func (b *Builder) fail(err error) { b.errs = append(b.errs, err) }

// addStore declares a store; names must be unique.
func (b *Builder) addStore(sd *storeDef) {
	if _, dup := b.stores[sd.name]; dup {
		b.fail(buildErr("store "+sd.name, "declared twice"))
		return
	}
	b.stores[sd.name] = sd
}

// Topology is a validated, immutable topology, ready to run in an App or a
// streamtest.Driver.
type Topology struct {
	nodes        []*node
	stores       map[string]*storeDef
	subs         []*subTopology
	repartitions []*repartitionDef
	globals      []*globalDef
}

type subTopology struct {
	id      int
	nodes   []*node
	sources []*node
	topics  []string // every topic read, sorted
	repart  []string // of which repartition topics (named without the app id)
	stores  []string
}

// Build validates the topology: every operator has the serdes it needs,
// stores used by processors exist, names are unique, sub-topologies read
// distinct topics. Errors name the operator at fault and wrap
// ErrInvalidTopology (and ErrMissingSerde where that is the cause).
func (b *Builder) Build() (*Topology, error) {
	var errs []error
	errs = append(errs, b.errs...)
	if len(b.nodes) == 0 && len(b.globals) == 0 {
		errs = append(errs, buildErr("topology", "no sources: add a stream or table"))
	}
	names := map[string]bool{}
	for _, n := range b.nodes {
		if names[n.name] {
			errs = append(errs, buildErr(n.name, "the name is used by more than one operator"))
		}
		names[n.name] = true
		for _, m := range n.missing {
			errs = append(errs, fmt.Errorf("%w: %w: %s: no %s serde: give the result serdes with .WithSerdes(k, v) after the operator (for an aggregation, its value serde argument; for a foreign-key join, stream.ValueSerde)", ErrInvalidTopology, ErrMissingSerde, n.name, m))
		}
		for _, s := range n.stores {
			sd, ok := b.stores[s]
			if !ok {
				errs = append(errs, buildErr(n.name, "uses store %q, which no operator declares", s))
				continue
			}
			if !slices.Contains(sd.users, n) {
				sd.users = append(sd.users, n)
			}
		}
	}
	for name, sd := range b.stores {
		if sd.owner == nil && len(sd.users) == 0 {
			delete(b.stores, name) // declared but unused: nothing to run
		}
	}
	if len(errs) > 0 {
		return nil, joinBuildErrs(errs)
	}
	t := &Topology{nodes: b.nodes, stores: b.stores, repartitions: b.repartitions, globals: b.globals}
	t.assignSubTopologies()
	// A store must live in one sub-topology: its users must be connected.
	for _, sd := range b.stores {
		if sd.owner == nil && len(sd.users) > 0 {
			sd.owner = sd.users[0]
		}
		for _, u := range sd.users {
			if u.sub != sd.owner.sub {
				return nil, buildErr(u.name, "uses store %q of another sub-topology (%d, not %d): stores cannot be shared across a repartition", sd.name, sd.owner.sub, u.sub)
			}
		}
	}
	if err := t.checkExplicitCopartitioning(); err != nil {
		return nil, err
	}
	return t, nil
}

func joinBuildErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &multiErr{errs: errs, msg: strings.Join(msgs, "\n")}
}

type multiErr struct {
	errs []error
	msg  string
}

func (m *multiErr) Error() string   { return m.msg }
func (m *multiErr) Unwrap() []error { return m.errs }

// assignSubTopologies splits the graph into connected components: nodes
// linked by operator edges share a sub-topology; topics (repartition topics
// included) are the only links between sub-topologies. Sub-topologies are
// numbered in the order of their first source.
func (t *Topology) assignSubTopologies() {
	parent := make([]int, len(t.nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	idx := map[*node]int{}
	for i, n := range t.nodes {
		idx[n] = i
	}
	for i, n := range t.nodes {
		for _, p := range n.parents {
			parent[find(i)] = find(idx[p])
		}
	}
	// Nodes that use the same store belong together too (a join reads the
	// store of the table it joins).
	storeUser := map[string]int{}
	for i, n := range t.nodes {
		for _, s := range n.stores {
			if j, ok := storeUser[s]; ok {
				parent[find(i)] = find(j)
			} else {
				storeUser[s] = i
			}
		}
	}
	byComp := map[int][]*node{}
	var order []int
	for i, n := range t.nodes {
		r := find(i)
		if _, seen := byComp[r]; !seen {
			order = append(order, r)
		}
		byComp[r] = append(byComp[r], n)
	}
	for sid, r := range order {
		st := &subTopology{id: sid, nodes: byComp[r]}
		for _, n := range st.nodes {
			n.sub = sid
			if n.kind == kindSource {
				st.sources = append(st.sources, n)
				st.topics = append(st.topics, n.topics...)
				if n.partOf != "" {
					st.repart = append(st.repart, n.partOf)
				}
			}
			for _, s := range n.stores {
				if !slices.Contains(st.stores, s) {
					st.stores = append(st.stores, s)
				}
			}
		}
		sort.Strings(st.topics)
		sort.Strings(st.stores)
		t.subs = append(t.subs, st)
	}
}

// Describe prints the topology like Kafka Streams' TopologyDescription:
// sub-topologies, their sources, processors (with stores) and sinks.
func (t *Topology) Describe() string {
	var sb strings.Builder
	sb.WriteString("Topologies:\n")
	for _, st := range t.subs {
		fmt.Fprintf(&sb, "   Sub-topology: %d\n", st.id)
		for _, n := range st.nodes {
			var head string
			switch n.kind {
			case kindSource:
				head = fmt.Sprintf("    Source: %s (topics: [%s])", n.name, strings.Join(n.topics, ", "))
			case kindSink:
				to := n.sinkTo
				if n.partOf != "" {
					to = n.partOf
				} else if to == "" {
					to = "<chosen per record>"
				}
				head = fmt.Sprintf("    Sink: %s (topic: %s)", n.name, to)
			default:
				head = fmt.Sprintf("    Processor: %s (stores: [%s])", n.name, strings.Join(n.stores, ", "))
			}
			sb.WriteString(head + "\n")
			if len(n.children) > 0 {
				var cs []string
				for _, c := range n.children {
					cs = append(cs, c.name)
				}
				fmt.Fprintf(&sb, "      --> %s\n", strings.Join(cs, ", "))
			} else {
				sb.WriteString("      --> none\n")
			}
			if len(n.parents) > 0 {
				var ps []string
				for _, p := range n.parents {
					ps = append(ps, p.name)
				}
				fmt.Fprintf(&sb, "      <-- %s\n", strings.Join(ps, ", "))
			}
		}
		sb.WriteString("\n")
	}
	for _, g := range t.globals {
		fmt.Fprintf(&sb, "   Global table: %s (topic: %s)\n", g.name, g.topic)
	}
	return sb.String()
}

// SourceTopics returns every topic the topology reads that is not an
// internal (repartition) topic, sorted.
func (t *Topology) SourceTopics() []string {
	var out []string
	for _, st := range t.subs {
		for _, tp := range st.topics {
			if !slices.Contains(st.repart, tp) && !slices.Contains(out, tp) {
				out = append(out, tp)
			}
		}
	}
	sort.Strings(out)
	return out
}
