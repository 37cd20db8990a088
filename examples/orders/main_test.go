package main

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream/streamtest"
)

func TestTopology(t *testing.T) {
	topo, err := topology()
	if err != nil {
		t.Fatal(err)
	}
	d := streamtest.New(t, topo)
	base := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	streamtest.Input(d, "customers", serde.String(), serde.String()).Pipe("c1", "Ada", base)
	orders := streamtest.Input(d, "orders", serde.String(), serde.JSON[Order]())
	payments := streamtest.Input(d, "payments", serde.String(), serde.JSON[Payment]())
	orders.Pipe("o1", Order{"c1", 1250}, base.Add(time.Minute))
	payments.Pipe("o1", Payment{1250}, base.Add(4*time.Minute))
	orders.Pipe("o3", Order{"c3", 500}, base.Add(5*time.Minute))
	payments.Pipe("o3", Payment{500}, base.Add(6*time.Minute))
	payments.Pipe("o2", Payment{990}, base.Add(30*time.Minute))
	got := streamtest.Output(d, "paid-orders", serde.String(), serde.JSON[Paid]()).ReadValues()
	want := []Paid{
		{OrderID: "o1", Customer: "c1", Name: "Ada", AmountCents: 1250, PaidCents: 1250},
		{OrderID: "o3", Customer: "c3", Name: "(unknown customer)", AmountCents: 500, PaidCents: 500},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
