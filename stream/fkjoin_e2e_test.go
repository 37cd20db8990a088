package stream_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/stream"
)

// fkJoins joins orders (key order id, value "product:qty"; ":qty" has a
// null foreign key) with products (key product id, value name) twice: an
// inner join into the store and topic "enrich", a left join into
// "enrich-left".
func fkJoins(t *testing.T) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	orders := stream.Table(b, "orders", str, str, stream.Materialized("orders"))
	products := stream.Table(b, "products", str, str, stream.Materialized("products"))
	product := func(order string) string {
		p, _, _ := strings.Cut(order, ":")
		return p
	}
	stream.ForeignKeyJoin(orders, products, product, func(o, p string) string { return o + "/" + p },
		stream.Named("enrich"), stream.ValueSerde(str)).ToStream().To("enrich")
	stream.ForeignKeyLeftJoin(orders, products, product, func(o, p string, found bool) string {
		if !found {
			p = "-"
		}
		return o + "/" + p
	}, stream.Named("enrich-left"), stream.ValueSerde(str)).ToStream().To("enrich-left")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestForeignKeyJoinEndToEnd runs the joins on tables with different
// partition counts (orders 3, products 2) through a random history of
// inserts, updates (foreign keys changing, null ones) and deletes on both
// sides, with the app stopped in the middle while more history is written,
// and checks the results against the joins of the final tables.
func TestForeignKeyJoinEndToEnd(t *testing.T) {
	for name, start := range clusters {
		for _, g := range []stream.ProcessingGuarantee{stream.AtLeastOnce, stream.ExactlyOnce} {
			t.Run(name+"/"+g.String(), func(t *testing.T) { testForeignKeyJoin(t, start(t), g) })
		}
	}
}

func testForeignKeyJoin(t *testing.T, addr string, g stream.ProcessingGuarantee) {
	createTopics(t, addr, 3, "orders", "enrich", "enrich-left")
	createTopics(t, addr, 2, "products")
	cl := client(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	tables := map[string]map[string]string{"orders": {}, "products": {}}
	put := func(topic, k, v string) { // v "": delete
		t.Helper()
		r := &kgo.Record{Topic: topic, Key: []byte(k)}
		if v == "" {
			delete(tables[topic], k)
		} else {
			tables[topic][k] = v
			r.Value = []byte(v)
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(213, 1))
	history := func(n int) {
		t.Helper()
		for i := range n {
			switch x := rng.IntN(100); {
			case x < 55:
				v := fmt.Sprintf("p%d:%d", rng.IntN(6), i)
				if rng.IntN(10) == 0 {
					v = fmt.Sprintf(":%d", i) // null foreign key
				}
				put("orders", fmt.Sprintf("o%d", rng.IntN(20)), v)
			case x < 70:
				put("orders", fmt.Sprintf("o%d", rng.IntN(20)), "")
			case x < 93:
				put("products", fmt.Sprintf("p%d", rng.IntN(6)), fmt.Sprintf("name%d", i))
			default:
				put("products", fmt.Sprintf("p%d", rng.IntN(6)), "")
			}
		}
	}

	// expect joins the tables as they are now.
	expect := func() (inner, left map[string]string) {
		inner, left = map[string]string{}, map[string]string{}
		for k, o := range tables["orders"] {
			p, _, _ := strings.Cut(o, ":")
			name, ok := tables["products"][p]
			if ok && p != "" {
				inner[k] = o + "/" + name
				left[k] = o + "/" + name
			} else {
				left[k] = o + "/-"
			}
		}
		return inner, left
	}
	// settle waits until the app has processed everything: under
	// at-least-once, until the group has committed every input and
	// internal topic to its end; under exactly-once (where transaction
	// markers keep committed offsets short of the ends), until the
	// stores hold the joins of the tables as written.
	settle := func(app *running) {
		t.Helper()
		if g == stream.AtLeastOnce {
			waitIdle(t, addr, "fk", "orders", "products")
			return
		}
		inner, left := expect()
		deadline := time.Now().Add(30 * time.Second)
		for !maps.Equal(storeStrings(app, "enrich"), inner) || !maps.Equal(storeStrings(app, "enrich-left"), left) {
			if time.Now().After(deadline) {
				t.Fatalf("stores after 30s:\n enrich      %v\n want        %v\n enrich-left %v\n want        %v",
					storeStrings(app, "enrich"), inner, storeStrings(app, "enrich-left"), left)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}

	app := startApp(t, addr, fkJoins(t), stream.AppID("fk"), stream.Guarantee(g))
	history(200)
	settle(app)
	// Stop in the middle of more work (some of it may still be in the
	// internal topics), write more while the app is down, then restart
	// on a new state directory: the stores, the subscription stores
	// included, are restored from their changelogs.
	history(20)
	app.stop(t)
	history(40)
	app = startApp(t, addr, fkJoins(t), stream.AppID("fk"), stream.Guarantee(g))
	// Every right row changes last, and no left row: the answers reach
	// the left rows through their subscriptions, those made before the
	// restart included.
	for i := range 5 {
		put("products", fmt.Sprintf("p%d", i), fmt.Sprintf("final%d", i))
	}
	// Make sure the end has rows without a right row.
	put("orders", "o20", ":1")
	put("orders", "o21", "p9:1")
	put("products", "p5", "")
	settle(app)

	inner, left := expect()
	if len(inner) == 0 || len(inner) == len(left) {
		t.Fatalf("the history should leave rows with and without a right row: inner %v, left %v", inner, left)
	}
	for _, c := range []struct {
		name string
		want map[string]string
	}{{"enrich", inner}, {"enrich-left", left}} {
		got := lastStrings(t, addr, c.name, g)
		// Under exactly-once the stores may show the last results just
		// before their transaction commits: read again until then.
		for deadline := time.Now().Add(10 * time.Second); g == stream.ExactlyOnce && !maps.Equal(got, c.want) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
			got = lastStrings(t, addr, c.name, g)
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("topic %s:\n got  %v\n want %v", c.name, got, c.want)
		}
		if got := storeStrings(app, c.name); !maps.Equal(got, c.want) {
			t.Errorf("store %s:\n got  %v\n want %v", c.name, got, c.want)
		}
	}
	// The internal topics exist with the partition counts of the tables
	// they are keyed like.
	td, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for topic, n := range map[string]int{
		"fk-enrich-subscription-registration-topic":  2,
		"fk-enrich-subscription-response-topic":      3,
		"fk-enrich-subscription-store-changelog":     2,
		"fk-enrich-left-subscription-response-topic": 3,
	} {
		if got := len(td[topic].Partitions); got != n {
			t.Errorf("%s: %d partitions, want %d", topic, got, n)
		}
	}
}

// storeStrings returns the contents of a running app's store.
func storeStrings(app *running, store string) map[string]string {
	got := map[string]string{}
	for k, v := range stream.Query(app.app, store, str, str).All() {
		got[k] = v
	}
	return got
}

// lastStrings reads topic to its end and returns the last value per key,
// without the keys whose last record is a tombstone. Under exactly-once
// it reads committed records only, and the end is the last record before
// the last transaction marker.
func lastStrings(t *testing.T, addr, topic string, g stream.ProcessingGuarantee) map[string]string {
	t.Helper()
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if g == stream.ExactlyOnce {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := client(t, addr, opts...)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	next := map[int32]int64{}
	got := map[string]string{}
	for {
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			end := e.Offset
			if g == stream.ExactlyOnce && end > 0 {
				end-- // the commit marker
			}
			if next[e.Partition] < end {
				done = false
			}
		})
		if done {
			return got
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: not read to its end after 30s", topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				delete(got, string(r.Key))
			} else {
				got[string(r.Key)] = string(r.Value)
			}
			next[r.Partition] = r.Offset + 1
		})
	}
}
