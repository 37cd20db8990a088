package streamtest_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/stream/streamtest"
)

// orderProduct is the foreign key of an order "product:qty"; an order
// without a product (":qty") has a null foreign key (serde.String encodes
// "" to nil).
func orderProduct(order string) string {
	p, _, _ := strings.Cut(order, ":")
	return p
}

// fkTopology joins orders (key order id, value "product:qty") with products
// (key product id, value name) by product, into the table "enrich" written
// to the topic "enriched".
func fkTopology(t *testing.T, left bool, opts ...stream.Opt) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	orders := stream.Table(b, "orders", str, str, stream.Materialized("orders"))
	products := stream.Table(b, "products", str, str, stream.Materialized("products"))
	opts = append([]stream.Opt{stream.Named("enrich"), stream.ValueSerde(str)}, opts...)
	var joined stream.KTable[string, string]
	if left {
		joined = stream.ForeignKeyLeftJoin(orders, products, orderProduct, func(o, p string, found bool) string {
			if !found {
				p = "-"
			}
			return o + "/" + p
		}, opts...)
	} else {
		joined = stream.ForeignKeyJoin(orders, products, orderProduct, func(o, p string) string { return o + "/" + p }, opts...)
	}
	joined.ToStream().To("enriched")
	return build(t, b)
}

// readChanges returns the records written to topic since the last read as
// "key=value" or "key=<deleted>", sorted: within one piped record, results
// of several partitions come out in partition order, not in an order that
// the join defines.
func readChanges(d *streamtest.Driver, topic string) []string {
	var got []string
	for _, r := range streamtest.Output(d, topic, str, str).ReadRecords() {
		if r.Tombstone {
			got = append(got, r.Key+"=<deleted>")
		} else {
			got = append(got, r.Key+"="+r.Value)
		}
	}
	slices.Sort(got)
	return got
}

func TestForeignKeyJoin(t *testing.T) {
	type step struct {
		topic, key, value string // value "": a tombstone
		inner, left       []string
	}
	steps := []step{
		{"products", "p1", "Kettle", nil, nil},
		{"orders", "o1", "p1:2", []string{"o1=p1:2/Kettle"}, []string{"o1=p1:2/Kettle"}},
		// The right row does not exist yet.
		{"orders", "o2", "p2:1", nil, []string{"o2=p2:1/-"}},
		{"products", "p2", "Mug", []string{"o2=p2:1/Mug"}, []string{"o2=p2:1/Mug"}},
		{"orders", "o3", "p1:1", []string{"o3=p1:1/Kettle"}, []string{"o3=p1:1/Kettle"}},
		// A right update reaches every left row subscribed to it.
		{"products", "p1", "Kettle v2", []string{"o1=p1:2/Kettle v2", "o3=p1:1/Kettle v2"}, []string{"o1=p1:2/Kettle v2", "o3=p1:1/Kettle v2"}},
		// A new foreign key: the result follows the new right row...
		{"orders", "o1", "p2:3", []string{"o1=p2:3/Mug"}, []string{"o1=p2:3/Mug"}},
		// ...and is retracted (inner) when there is none.
		{"orders", "o1", "p9:1", []string{"o1=<deleted>"}, []string{"o1=p9:1/-"}},
		// Left deletion.
		{"orders", "o2", "", []string{"o2=<deleted>"}, []string{"o2=<deleted>"}},
		// Right deletion: o1 left p1 above, only o3 is affected.
		{"products", "p1", "", []string{"o3=<deleted>"}, []string{"o3=p1:1/-"}},
		// Null foreign keys.
		{"orders", "o4", ":5", nil, []string{"o4=:5/-"}},
		{"orders", "o5", "p2:4", []string{"o5=p2:4/Mug"}, []string{"o5=p2:4/Mug"}},
		{"orders", "o5", ":4", []string{"o5=<deleted>"}, []string{"o5=:4/-"}},
		// o1 subscribed to p9 before it existed; o3 is still subscribed
		// to p1 after its deletion.
		{"products", "p9", "Pan", []string{"o1=p9:1/Pan"}, []string{"o1=p9:1/Pan"}},
		{"products", "p1", "Kettle v3", []string{"o3=p1:1/Kettle v3"}, []string{"o3=p1:1/Kettle v3"}},
		// A right update with no subscriber, a left deletion of a row that
		// never joined, and an update keeping the foreign key.
		{"products", "p7", "Lid", nil, nil},
		{"orders", "o4", "", nil, []string{"o4=<deleted>"}},
		{"orders", "o3", "p1:6", []string{"o3=p1:6/Kettle v3"}, []string{"o3=p1:6/Kettle v3"}},
	}
	for _, tc := range []struct {
		name  string
		left  bool
		store map[string]string
	}{
		{"inner", false, map[string]string{"o1": "p9:1/Pan", "o3": "p1:6/Kettle v3"}},
		{"left", true, map[string]string{"o1": "p9:1/Pan", "o3": "p1:6/Kettle v3", "o5": ":4/-"}},
	} {
		for _, cached := range []bool{true, false} {
			name := tc.name + "/cached"
			var opts []stream.Opt
			if !cached {
				name = tc.name + "/uncached"
				opts = append(opts, stream.WithoutCache())
			}
			t.Run(name, func(t *testing.T) {
				// Different partition counts: the join needs no
				// co-partitioning.
				d := streamtest.New(t, fkTopology(t, tc.left, opts...),
					streamtest.Partitions("orders", 3), streamtest.Partitions("products", 2))
				in := map[string]*streamtest.InputTopic[string, string]{
					"orders": streamtest.Input(d, "orders", str, str), "products": streamtest.Input(d, "products", str, str)}
				for i, s := range steps {
					if s.value == "" {
						in[s.topic].PipeTombstone(s.key, ts(int64(i)))
					} else {
						in[s.topic].Pipe(s.key, s.value, ts(int64(i)))
					}
					want := s.inner
					if tc.left {
						want = s.left
					}
					if got := readChanges(d, "enriched"); !slices.Equal(got, want) {
						t.Fatalf("step %d (%s %s=%q): got %v, want %v", i, s.topic, s.key, s.value, got, want)
					}
				}
				check(t, "store", streamtest.Store(d, "enrich", str, str), tc.store)
			})
		}
	}
}

// TestForeignKeyJoinDropsStaleResponses replays a response to an earlier
// left value, as if it had been delayed behind the subscription of the
// current one (they go through different partitions of the subscription
// topic when the foreign key changes): its hash does not match the
// current value, so it is dropped.
func TestForeignKeyJoinDropsStaleResponses(t *testing.T) {
	for _, left := range []bool{false, true} {
		t.Run(map[bool]string{false: "inner", true: "left"}[left], func(t *testing.T) {
			d := streamtest.New(t, fkTopology(t, left), streamtest.Partitions("orders", 3), streamtest.Partitions("products", 2))
			const respTopic = "streamtest-enrich-subscription-response-topic"
			orders, products := streamtest.Input(d, "orders", str, str), streamtest.Input(d, "products", str, str)
			responses := streamtest.Input(d, respTopic, serde.Bytes(), serde.Bytes())
			products.Pipe("p1", "Kettle", ts(1))
			products.Pipe("p2", "Mug", ts(2))
			orders.Pipe("o1", "p1:1", ts(3))
			check(t, "joined", readChanges(d, "enriched"), []string{"o1=p1:1/Kettle"})
			stale := streamtest.OutputRaw(d, respTopic)
			if len(stale) != 1 {
				t.Fatalf("responses to the first subscription: %v", stale)
			}
			orders.Pipe("o1", "p2:1", ts(4))
			check(t, "updated", readChanges(d, "enriched"), []string{"o1=p2:1/Mug"})
			current := streamtest.OutputRaw(d, respTopic)
			if len(current) != 1 {
				t.Fatalf("responses to the second subscription: %v", current)
			}

			if err := responses.PipeRaw(stale[0].Key, stale[0].Value, ts(5)); err != nil {
				t.Fatal(err)
			}
			check(t, "after the stale response", readChanges(d, "enriched"), []string(nil))
			check(t, "store after the stale response", streamtest.Store(d, "enrich", str, str), map[string]string{"o1": "p2:1/Mug"})

			// The check is not vacuous: the current value's response is
			// taken (again).
			if err := responses.PipeRaw(current[0].Key, current[0].Value, ts(6)); err != nil {
				t.Fatal(err)
			}
			check(t, "after the current response", readChanges(d, "enriched"), []string{"o1=p2:1/Mug"})

			// So is a left row deleted since it subscribed.
			orders.PipeTombstone("o1", ts(7))
			check(t, "deleted", readChanges(d, "enriched"), []string{"o1=<deleted>"})
			if err := responses.PipeRaw(current[0].Key, current[0].Value, ts(8)); err != nil {
				t.Fatal(err)
			}
			check(t, "after a response for a deleted row", readChanges(d, "enriched"), []string(nil))
			check(t, "store", streamtest.Store(d, "enrich", str, str), map[string]string{})
		})
	}
}

func TestForeignKeyJoinTopology(t *testing.T) {
	desc := fkTopology(t, false).Describe()
	for _, want := range []string{
		"Sub-topology: 0", "Sub-topology: 1",
		"Sink: enrich-subscription-registration-sink (topic: enrich-subscription-registration-topic)",
		"Source: enrich-subscription-registration-source (topics: [enrich-subscription-registration-topic])",
		"Processor: enrich-subscription-processor (stores: [enrich-subscription-store, products])",
		"Processor: enrich-foreign-table-processor (stores: [enrich-subscription-store])",
		"Sink: enrich-subscription-response-sink (topic: enrich-subscription-response-topic)",
		"Source: enrich-subscription-response-source (topics: [enrich-subscription-response-topic])",
		"Processor: enrich-subscription-response-resolver (stores: [orders])",
		"Processor: enrich (stores: [enrich])",
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
	if strings.Contains(desc, "Sub-topology: 2") {
		t.Errorf("more than the left and the right sub-topology:\n%s", desc)
	}
}

func TestForeignKeyJoinBuildErrors(t *testing.T) {
	fk := func(v string) string { return v }
	join := func(a, b string) string { return a + b }
	for _, tc := range []struct {
		name  string
		build func(b *stream.Builder)
		want  error
		text  string
	}{
		{"no result serde", func(b *stream.Builder) {
			stream.ForeignKeyJoin(stream.Table(b, "l", str, str), stream.Table(b, "r", str, str), fk, join, stream.Named("j"))
		}, stream.ErrMissingSerde, "j: no serde for the join's results: pass one with stream.ValueSerde"},
		{"wrong result serde", func(b *stream.Builder) {
			stream.ForeignKeyJoin(stream.Table(b, "l", str, str), stream.Table(b, "r", str, str), fk, join, stream.Named("j"), stream.ValueSerde(i64))
		}, stream.ErrInvalidTopology, "ValueSerde"},
		{"right not materialized", func(b *stream.Builder) {
			r := stream.Table(b, "r", str, str).Filter(func(_, v string) bool { return v != "" })
			stream.ForeignKeyJoin(stream.Table(b, "l", str, str), r, fk, join, stream.Named("j"), stream.ValueSerde(str))
		}, stream.ErrInvalidTopology, "materialized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := stream.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Build: %v, want %v mentioning %q", err, tc.want, tc.text)
			}
		})
	}
}

// TestForeignKeyJoinSelfAndUnnamed joins a table with itself (employees
// with their managers; one sub-topology then holds both sides) without
// naming the join, and queries the result by its generated store name.
func TestForeignKeyJoinSelfAndUnnamed(t *testing.T) {
	b := stream.NewBuilder()
	emp := stream.Table(b, "employees", str, str, stream.Materialized("employees")) // value "name:manager id"
	manager := func(v string) string {
		_, m, _ := strings.Cut(v, ":")
		return m
	}
	name := func(v string) string {
		n, _, _ := strings.Cut(v, ":")
		return n
	}
	reports := stream.ForeignKeyLeftJoin(emp, emp, manager, func(e, m string, found bool) string {
		if !found {
			return name(e) + " reports to nobody"
		}
		return name(e) + " reports to " + name(m)
	}, stream.ValueSerde(str))
	reports.ToStream().To("reports")
	store := reports.StoreName()
	if !strings.HasPrefix(store, "KTABLE-FK-JOIN-OUTPUT-STATE-STORE-") {
		t.Fatalf("generated store name %q", store)
	}
	topo := build(t, b)
	if desc := topo.Describe(); strings.Contains(desc, "Sub-topology: 1") || !strings.Contains(desc, "-subscription-registration-topic") {
		t.Fatalf("one sub-topology reading its own subscriptions:\n%s", desc)
	}
	d := streamtest.New(t, topo, streamtest.Partitions("employees", 4))
	in := streamtest.Input(d, "employees", str, str)
	in.Pipe("e1", "Ada:", ts(1))
	in.Pipe("e2", "Bob:e1", ts(2))
	in.Pipe("e3", "Cy:e1", ts(3))
	check(t, "reports", readChanges(d, "reports"), []string{"e1=Ada reports to nobody", "e2=Bob reports to Ada", "e3=Cy reports to Ada"})
	// A rename reaches both reports, and the manager's own row.
	in.Pipe("e1", "Ada Lovelace:", ts(4))
	check(t, "rename", readChanges(d, "reports"),
		[]string{"e1=Ada Lovelace reports to nobody", "e2=Bob reports to Ada Lovelace", "e3=Cy reports to Ada Lovelace"})
	in.Pipe("e3", "Cy:e2", ts(5))
	in.PipeTombstone("e1", ts(6))
	check(t, "store", streamtest.Store(d, store, str, str), map[string]string{"e2": "Bob reports to nobody", "e3": "Cy reports to Bob"})
}

// TestForeignKeyJoinExtractorPanics: a panicking foreign-key extractor
// goes to the processing-error handler (here: skip the row) also when the
// left table is cached and the extractor runs at commit.
func TestForeignKeyJoinExtractorPanics(t *testing.T) {
	for _, cached := range []bool{true, false} {
		t.Run(map[bool]string{true: "cached", false: "uncached"}[cached], func(t *testing.T) {
			var opts []stream.Opt
			if !cached {
				opts = append(opts, stream.WithoutCache())
			}
			b := stream.NewBuilder()
			orders := stream.Table(b, "orders", str, str, append(opts, stream.Materialized("orders"))...)
			products := stream.Table(b, "products", str, str, stream.Materialized("products"))
			fk := func(v string) string {
				if v == "boom" {
					panic("bad order")
				}
				return orderProduct(v)
			}
			stream.ForeignKeyJoin(orders, products, fk, func(o, p string) string { return o + "/" + p },
				stream.Named("enrich"), stream.ValueSerde(str)).ToStream().To("enriched")
			var errs []string
			d := streamtest.New(t, build(t, b), streamtest.OnProcessingError(func(e *stream.ProcessingError) error {
				errs = append(errs, e.Processor+": "+e.Err.Error())
				return nil
			}))
			streamtest.Input(d, "products", str, str).Pipe("p1", "Kettle", ts(1))
			in := streamtest.Input(d, "orders", str, str)
			in.Pipe("o1", "boom", ts(2))
			in.Pipe("o2", "p1:1", ts(3))
			check(t, "joined", readChanges(d, "enriched"), []string{"o2=p1:1/Kettle"})
			if len(errs) != 1 || !strings.Contains(errs[0], "bad order") || !strings.HasPrefix(errs[0], "enrich-subscription-registration: ") {
				t.Fatalf("processing errors %q", errs)
			}
		})
	}
}
