package streamtest_test

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/stream/streamtest"
)

func TestStreamTableJoins(t *testing.T) {
	b := stream.NewBuilder()
	customers := stream.Table(b, "customers", str, str, stream.Materialized("customers"))
	orders := stream.Stream(b, []string{"orders"}, str, i64)
	stream.Join(orders, customers, func(amount int64, name string) string {
		return fmt.Sprintf("%s:%d", name, amount)
	}).WithSerdes(str, str).To("enriched")
	stream.LeftJoin(orders, customers, func(amount int64, name string, found bool) string {
		if !found {
			name = "?"
		}
		return fmt.Sprintf("%s:%d", name, amount)
	}).WithSerdes(str, str).To("enriched-left")
	d := streamtest.New(t, build(t, b))
	c := streamtest.Input(d, "customers", str, str)
	o := streamtest.Input(d, "orders", str, i64)
	o.Pipe("c1", 5, ts(1)) // no customer yet
	c.Pipe("c1", "ann", ts(2))
	o.Pipe("c1", 7, ts(3))
	c.Pipe("c1", "anne", ts(4))
	o.Pipe("c1", 9, ts(5))
	c.PipeTombstone("c1", ts(6))
	o.Pipe("c1", 11, ts(7))
	check(t, "inner", streamtest.Output(d, "enriched", str, str).ReadValues(), []string{"ann:7", "anne:9"})
	check(t, "left", streamtest.Output(d, "enriched-left", str, str).ReadValues(), []string{"?:5", "ann:7", "anne:9", "?:11"})
}

func TestStreamGlobalTableJoin(t *testing.T) {
	b := stream.NewBuilder()
	products := stream.GlobalTable(b, "products", str, str)
	clicks := stream.Stream(b, []string{"clicks"}, str, str) // key: user, value: product id
	stream.JoinGlobal(clicks, products, func(_, product string) string { return product },
		func(product, title string) string { return title }).WithSerdes(str, str).To("titles")
	stream.LeftJoinGlobal(clicks, products, func(_, product string) string { return product },
		func(product, title string, found bool) string {
			if !found {
				return "unknown " + product
			}
			return title
		}).WithSerdes(str, str).To("titles-left")
	d := streamtest.New(t, build(t, b))
	p := streamtest.Input(d, "products", str, str)
	c := streamtest.Input(d, "clicks", str, str)
	p.Pipe("p1", "Kettle", ts(1))
	c.Pipe("u1", "p1", ts(2))
	c.Pipe("u2", "p2", ts(3))
	check(t, "inner", streamtest.Output(d, "titles", str, str).ReadKeyValues(), []streamtest.KeyValue[string, string]{kv("u1", "Kettle")})
	check(t, "left", streamtest.Output(d, "titles-left", str, str).ReadValues(), []string{"Kettle", "unknown p2"})
}

func TestTableTableJoins(t *testing.T) {
	for _, tc := range []struct {
		kind stream.JoinKind
		want []string
	}{
		{stream.InnerJoin, []string{"k=a+x", "k=b+x", "k=<deleted>"}},
		{stream.LeftOuterJoin, []string{"k=a+-", "k=a+x", "k=b+x", "k=b+-"}},
		{stream.FullOuterJoin, []string{"k=a+-", "k=a+x", "k=b+x", "k=b+-", "j=-+y"}},
	} {
		t.Run(fmt.Sprint(tc.kind), func(t *testing.T) {
			b := stream.NewBuilder()
			left := stream.Table(b, "left", str, str, stream.Materialized("left"))
			right := stream.Table(b, "right", str, str, stream.Materialized("right"))
			stream.TableJoin(left, right, tc.kind, func(l string, okL bool, r string, okR bool) string {
				if !okL {
					l = "-"
				}
				if !okR {
					r = "-"
				}
				return l + "+" + r
			}).WithSerdes(str, str).ToStream().To("joined")
			d := streamtest.New(t, build(t, b))
			l := streamtest.Input(d, "left", str, str)
			r := streamtest.Input(d, "right", str, str)
			l.Pipe("k", "a", ts(1))
			r.Pipe("k", "x", ts(2))
			l.Pipe("k", "b", ts(3))
			r.PipeTombstone("k", ts(4))
			r.Pipe("j", "y", ts(5))
			var got []string
			for _, rec := range streamtest.Output(d, "joined", str, str).ReadRecords() {
				if rec.Tombstone {
					got = append(got, rec.Key+"=<deleted>")
				} else {
					got = append(got, rec.Key+"="+rec.Value)
				}
			}
			check(t, "joined", got, tc.want)
		})
	}
}
