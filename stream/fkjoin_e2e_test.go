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
		t.Run(name, func(t *testing.T) { testForeignKeyJoin(t, start(t)) })
	}
}

func testForeignKeyJoin(t *testing.T, addr string) {
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

	app := startApp(t, addr, fkJoins(t), stream.AppID("fk"))
	history(200)
	waitIdle(t, addr, "fk", "orders", "products")
	// Stop in the middle of more work (some of it may still be in the
	// internal topics), write more while the app is down, then restart
	// on a new state directory: the stores, the subscription stores
	// included, are restored from their changelogs.
	history(20)
	app.stop(t)
	history(40)
	app = startApp(t, addr, fkJoins(t), stream.AppID("fk"))
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
	waitIdle(t, addr, "fk", "orders", "products")

	inner, left := map[string]string{}, map[string]string{}
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
	if len(inner) == 0 || len(inner) == len(left) {
		t.Fatalf("the history should leave rows with and without a right row: inner %v, left %v", inner, left)
	}
	for _, c := range []struct {
		name string
		want map[string]string
	}{{"enrich", inner}, {"enrich-left", left}} {
		if got := lastStrings(t, addr, c.name); !maps.Equal(got, c.want) {
			t.Errorf("topic %s:\n got  %v\n want %v", c.name, got, c.want)
		}
		got := map[string]string{}
		for k, v := range stream.Query(app.app, c.name, str, str).All() {
			got[k] = v
		}
		if !maps.Equal(got, c.want) {
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

// lastStrings reads topic to its end and returns the last value per key,
// without the keys whose last record is a tombstone.
func lastStrings(t *testing.T, addr, topic string) map[string]string {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
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
			if next[e.Partition] < e.Offset {
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
