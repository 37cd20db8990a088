package pgsink_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/internal/pgserver/pgtest"
	"github.com/sluicehq/sluice/serde/registry"
	"github.com/sluicehq/sluice/serde/registry/registrytest"
)

type product struct {
	Name  string  `avro:"name"`
	Price float64 `avro:"price"`
	Note  *string `avro:"note"`
}

const productSchema = `{"type":"record","name":"Product","namespace":"shop","fields":[
	{"name":"name","type":"string"},{"name":"price","type":"double"},{"name":"note","type":["null","string"],"default":null}]}`

// TestWorkerAvro: records written by the registry's Avro serde are read
// with value.converter=avro and upserted by the sink.
func TestWorkerAvro(t *testing.T) {
	s := pgtest.Start(t)
	db := pgtest.Database(t, s)
	b := brokertest.Start(t)
	reg := registrytest.Start(t, b.Addr())
	rc, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ser, err := registry.NewAvro[product](rc, productSchema, registry.Subject("products-value"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, -1, nil, "products"); err != nil {
		t.Fatal(err)
	}
	produce := func(key string, p product) {
		t.Helper()
		v, err := ser.AppendEncode(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "products", Key: []byte(key), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	note := "new"
	produce("p1", product{Name: "pen", Price: 1.5, Note: &note})
	produce("p2", product{Name: "ink", Price: 7})
	produce("p1", product{Name: "pen", Price: 1.25})

	w := startWorker(t, b.Addr())
	if _, err := w.Create(t.Context(), "pg", map[string]string{
		"connector.class": "postgres-sink", "topics": "products", "connection.url": s.DSN(db),
		"key.converter":   "org.apache.kafka.connect.storage.StringConverter",
		"value.converter": "io.confluent.connect.avro.AvroConverter", "value.converter.schema.registry.url": reg.URL(),
		"insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "sku", "auto.create": "true",
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"p1|pen|1.25|", "p2|ink|7|"}
	var got []string
	eventually(t, func() bool {
		got = nil
		c, err := s.Connect(t.Context(), db)
		if err != nil {
			return false
		}
		defer c.Close(context.Background())
		rows, err := c.Query(t.Context(), `SELECT sku || '|' || name || '|' || price || '|' || coalesce(note, '') FROM products ORDER BY sku`)
		if err != nil {
			return false // the table may not exist yet
		}
		defer rows.Close()
		for rows.Next() {
			var r string
			if rows.Scan(&r) == nil {
				got = append(got, r)
			}
		}
		return slices.Equal(got, want)
	}, func() string {
		st, _ := w.Status(t.Context(), "pg")
		return fmt.Sprintf("rows %q, want %q (status %+v)", got, want, st)
	})
}
