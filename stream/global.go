package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/table"
)

// globalDef is a global table: a topic read in full, on every instance,
// into one store.
type globalDef struct {
	name  string // store name
	topic string
}

// GlobalKTable is a table replicated in full on every instance of the app:
// all partitions of its topic are read into one store, before the app's
// tasks start and then continuously. Lookups need no co-partitioning
// (KStream-GlobalKTable joins, interactive queries). Create it with
// GlobalTable.
type GlobalKTable[K, V any] struct {
	b      *Builder
	def    *globalDef
	kSerde serde.Serde[K]
	vSerde serde.Serde[V]
}

// StoreName returns the name of the global table's store.
func (g GlobalKTable[K, V]) StoreName() string { return g.def.name }

// GlobalTable reads a topic (compacted, usually) into a global table. Name
// its store with Materialized to query it.
func GlobalTable[K, V any](b *Builder, topic string, k serde.Serde[K], v serde.Serde[V], opts ...Opt) GlobalKTable[K, V] {
	o := collect(opts)
	name := o.store
	if name == "" {
		name = o.name
	}
	if name == "" {
		name = fmt.Sprintf("GLOBAL-STORE-%010d", b.seq)
		b.seq++
	}
	def := &globalDef{name: name, topic: topic}
	if prev, dup := b.topicNodes[topic]; dup {
		b.fail(buildErr("global table "+name, "topic %q is already read by %s", topic, prev.name))
	}
	for _, g := range b.globals {
		if g.topic == topic {
			b.fail(buildErr("global table "+name, "topic %q is already read by global table %s", topic, g.name))
		}
	}
	if _, dup := b.stores[name]; dup {
		b.fail(buildErr("global table "+name, "store %q is declared twice", name))
	}
	if k == nil || v == nil {
		b.fail(fmt.Errorf("%w: %w: global table %s: needs a key and a value serde", ErrInvalidTopology, ErrMissingSerde, name))
	}
	b.globals = append(b.globals, def)
	return GlobalKTable[K, V]{b: b, def: def, kSerde: k, vSerde: v}
}

// globalStores holds the global tables' stores of an app or harness.
type globalStores struct {
	mu     sync.RWMutex
	stores map[string]*taskStore // by store name
}

func (g *globalStores) get(name string) *taskStore {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.stores[name]
}

func (g *globalStores) set(name string, st *taskStore) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stores == nil {
		g.stores = map[string]*taskStore{}
	}
	g.stores[name] = st
}

// applyGlobal applies one record of a global topic: upsert, or delete for
// a null value.
func applyGlobal(st *taskStore, key, value []byte) error {
	if key == nil {
		return nil // a table has no row for a null key
	}
	if value == nil {
		return st.delete(key)
	}
	return st.put(key, value)
}

// runGlobals reads every global table's topic from the start: it returns
// once all have caught up with the end offsets they had when it started
// (bootstrapped), then keeps them current in the background until ctx ends.
func (a *App) runGlobals(ctx context.Context, wg *sync.WaitGroup) error {
	if len(a.topo.globals) == 0 {
		return nil
	}
	byTopic := map[string]*taskStore{}
	var topics []string
	for _, g := range a.topo.globals {
		st, _ := newTaskStore(&storeDef{name: g.name}, table.NewMemory(), -1, nil, nil) // a plain memory store: no error
		a.globals.set(g.name, st)
		byTopic[g.topic] = st
		topics = append(topics, g.topic)
	}
	opts := []kgo.Opt{kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	eos := a.cfg.guarantee == ExactlyOnce
	if eos {
		// Committed records only; control records are kept (and not
		// applied) so the bootstrap sees the position reach the LSO.
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	}
	cl, err := a.newClient(opts...)
	if err != nil {
		return err
	}
	listEnds := kadm.NewClient(cl).ListEndOffsets
	if eos {
		listEnds = kadm.NewClient(cl).ListCommittedOffsets // the LSO
	}
	ends, err := listEnds(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		cl.Close()
		return fmt.Errorf("stream: global table topics %v: %w", topics, err)
	}
	pending := map[tp]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[tp{o.Topic, o.Partition}] = o.Offset
		}
	})
	poll := func() error {
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return ctx.Err()
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("global table topic %s-%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var aerr error
		fs.EachRecord(func(r *kgo.Record) {
			if aerr == nil && !r.Attrs.IsControl() {
				aerr = applyGlobal(byTopic[r.Topic], r.Key, r.Value)
			}
			k := tp{r.Topic, r.Partition}
			if end, ok := pending[k]; ok && r.Offset+1 >= end {
				delete(pending, k)
			}
		})
		return aerr
	}
	for len(pending) > 0 {
		if err := poll(); err != nil {
			cl.Close()
			return fmt.Errorf("stream: bootstrap global tables: %w", err)
		}
	}
	a.log.Info("global tables bootstrapped", "topics", topics)
	wg.Go(func() {
		defer cl.Close()
		for ctx.Err() == nil {
			if err := poll(); err != nil && ctx.Err() == nil {
				a.log.Error("global table update failed", "err", err)
			}
		}
	})
	return nil
}
