package pgsink

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/internal/pgserver"
	"github.com/sluicehq/sluice/internal/pgserver/pgtest"
)

// pg is one database on a server shared by the subtests of a test.
type pg struct {
	s  *pgserver.Server
	db string
}

func newDB(t testing.TB, s *pgserver.Server) pg { return pg{s, pgtest.Database(t, s)} }

// task starts a sink task on the database with cfg plus connection.url
// and topics.
func (p pg) task(t testing.TB, cfg map[string]string) *task {
	t.Helper()
	cfg = maps.Clone(cfg)
	cfg["connection.url"] = p.s.DSN(p.db)
	cfg["topics"] = "unused"
	tk := Plugin().Sink().NewTask().(*task)
	if err := tk.Start(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tk.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return tk
}

// query returns the rows of sql, each as its columns joined by "|".
func (p pg) query(t testing.TB, sql string) []string {
	t.Helper()
	c, err := p.s.Connect(t.Context(), p.db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vs, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		s := make([]string, len(vs))
		for i, v := range vs {
			if v == nil {
				s[i] = "NULL"
			} else {
				s[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(s, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func (p pg) want(t testing.TB, sql string, want ...string) {
	t.Helper()
	if got := p.query(t, sql); !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", sql, got, want)
	}
}

var offset int64

// rec is a sink record of topic "orders" (unless topic is set later).
func rec(key, value any) connect.SinkRecord {
	offset++
	return connect.SinkRecord{Record: connect.Record{Topic: "orders", Partition: 0, Offset: offset, Key: key, Value: value}}
}

func row(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// write puts recs and flushes them, failing the test on error.
func write(t testing.TB, tk *task, recs ...connect.SinkRecord) {
	t.Helper()
	if err := writeErr(t, tk, recs...); err != nil {
		t.Fatal(err)
	}
}

func writeErr(t testing.TB, tk *task, recs ...connect.SinkRecord) error {
	t.Helper()
	if err := tk.Put(t.Context(), recs); err != nil {
		return err
	}
	return tk.Flush(t.Context(), nil)
}

const ordersTable = `CREATE TABLE orders (id bigint PRIMARY KEY, item text, qty integer, price numeric(10,2), at timestamptz, tags jsonb)`

func TestSink(t *testing.T) {
	s := pgtest.Start(t)

	t.Run("upsert insert then update", func(t *testing.T) {
		p := newDB(t, s)
		pgtest.Exec(t, s, p.db, ordersTable)
		tk := p.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id"})
		write(t, tk, rec(nil, row("id", int64(1), "item", "apple", "qty", int64(3), "price", 1.25, "at", "2026-11-22T03:00:00Z", "tags", []any{"red"})),
			rec(nil, row("id", int64(2), "item", "pear", "qty", int64(1), "price", int64(2))))
		p.want(t, "SELECT id, item, qty, price::text, at = '2026-11-22T03:00:00Z', tags::text FROM orders ORDER BY id",
			`1|apple|3|1.25|true|["red"]`, "2|pear|1|2.00|NULL|NULL")
		write(t, tk, rec(nil, row("id", int64(1), "item", "apple", "qty", int64(5))))
		// Columns the record lacks keep their values.
		p.want(t, "SELECT id, item, qty, price::text FROM orders ORDER BY id", "1|apple|5|1.25", "2|pear|1|2.00")
	})

	t.Run("insert mode", func(t *testing.T) {
		p := newDB(t, s)
		pgtest.Exec(t, s, p.db, `CREATE TABLE orders (item text, qty bigint)`)
		tk := p.task(t, map[string]string{})
		write(t, tk, rec(nil, row("item", "a", "qty", int64(1))), rec(nil, row("item", "a", "qty", int64(1))))
		write(t, tk, rec(nil, row("item", "b")))
		p.want(t, "SELECT item, qty FROM orders ORDER BY item, qty", "a|1", "a|1", "b|NULL")

		// With a key, a second insert of it fails, as it would row by row.
		p2 := newDB(t, s)
		pgtest.Exec(t, s, p2.db, ordersTable)
		tk = p2.task(t, map[string]string{"pk.mode": "record_value", "pk.fields": "id"})
		write(t, tk, rec(nil, row("id", int64(1), "item", "a")))
		if err := writeErr(t, tk, rec(nil, row("id", int64(1), "item", "b"))); err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Fatalf("insert of an existing key: %v, want a duplicate key error", err)
		}
		if err := writeErr(t, tk, rec(nil, row("id", int64(7), "item", "b")), rec(nil, row("id", int64(7), "item", "c"))); !errors.Is(err, ErrBadRecord) ||
			!strings.Contains(err.Error(), "already inserted in this batch") {
			t.Fatalf("key inserted twice in a batch: %v", err)
		}
	})

	t.Run("record_key primitive", func(t *testing.T) {
		p := newDB(t, s)
		tk := p.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "auto.create": "true"})
		write(t, tk, rec(int64(10), row("item", "a")), rec(int64(11), row("item", "b", "id", int64(99))))
		// The key fills column "id" by default and wins over a value field.
		p.want(t, "SELECT id, item FROM orders ORDER BY id", "10|a", "11|b")

		p2 := newDB(t, s)
		tk = p2.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "sku", "auto.create": "true"})
		write(t, tk, rec("X-1", row("item", "a")), rec("X-1", row("item", "b")))
		p2.want(t, "SELECT sku, item FROM orders", "X-1|b")
	})

	t.Run("record_key struct", func(t *testing.T) {
		p := newDB(t, s)
		pgtest.Exec(t, s, p.db, `CREATE TABLE orders (region text, id bigint, item text, PRIMARY KEY (region, id))`)
		tk := p.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key"})
		write(t, tk, rec(row("region", "eu", "id", int64(1)), row("item", "a")), rec(row("region", "us", "id", int64(1)), row("item", "b")))
		write(t, tk, rec(row("region", "eu", "id", int64(1)), row("item", "c")))
		p.want(t, "SELECT region, id, item FROM orders ORDER BY region", "eu|1|c", "us|1|b")

		// pk.fields picks key fields.
		p2 := newDB(t, s)
		tk = p2.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "id", "auto.create": "true"})
		write(t, tk, rec(row("id", int64(1), "ignored", "x"), row("item", "a")))
		p2.want(t, "SELECT * FROM orders", "1|a")
		if err := writeErr(t, tk, rec(row("other", int64(1)), row("item", "a"))); !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), `"id" is missing`) {
			t.Fatalf("key without the pk field: %v", err)
		}
	})

	t.Run("record_value", func(t *testing.T) {
		p := newDB(t, s)
		tk := p.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "a, b", "auto.create": "true"})
		write(t, tk, rec("ignored", row("a", int64(1), "b", "x", "v", 1.5)), rec(nil, row("a", int64(1), "b", "y", "v", 2.5)),
			rec(nil, row("a", int64(1), "b", "x", "v", 3.5)))
		p.want(t, "SELECT a, b, v FROM orders ORDER BY b", "1|x|3.5", "1|y|2.5")
		p.want(t, `SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey, a.attnum)) FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'orders'::regclass AND i.indisprimary`, "a,b")
		if err := writeErr(t, tk, rec(nil, row("a", int64(1), "b", nil))); !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), `"b" is missing or null`) {
			t.Fatalf("null pk field: %v", err)
		}
	})

	t.Run("delete enabled", func(t *testing.T) {
		p := newDB(t, s)
		pgtest.Exec(t, s, p.db, ordersTable)
		tk := p.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true"})
		write(t, tk, rec(int64(1), row("item", "a")), rec(int64(2), row("item", "b")), rec(int64(3), row("item", "c")))
		write(t, tk, rec(int64(2), nil), rec(int64(4), nil)) // deleting a missing row is fine
		p.want(t, "SELECT id, item FROM orders ORDER BY id", "1|a", "3|c")
		// Within one batch the order of writes and deletes of a key holds.
		write(t, tk, rec(int64(1), nil), rec(int64(1), row("item", "a2")), rec(int64(3), row("item", "c2")), rec(int64(3), nil),
			rec(int64(5), row("item", "e")), rec(int64(5), nil), rec(int64(5), row("item", "e2")))
		p.want(t, "SELECT id, item FROM orders ORDER BY id", "1|a2", "5|e2")
		// A write after a delete starts from an empty row: "qty" is not kept.
		write(t, tk, rec(int64(6), row("item", "f", "qty", int64(1))))
		write(t, tk, rec(int64(6), nil), rec(int64(6), row("item", "f2")))
		p.want(t, "SELECT id, item, qty FROM orders WHERE id = 6", "6|f2|NULL")

		// Without delete.enabled, tombstones are skipped, and their table
		// need not exist.
		tk = p.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key"})
		ghost := rec(int64(1), nil)
		ghost.Topic = "ghost"
		write(t, tk, rec(int64(1), nil), ghost, rec(int64(7), row("item", "g")))
		p.want(t, "SELECT id, item FROM orders ORDER BY id", "1|a2", "5|e2", "6|f2", "7|g")
	})

	t.Run("auto create", func(t *testing.T) {
		p := newDB(t, s)
		tk := p.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "auto.create": "true", "table.name.format": "public.sink_${topic}"})
		r := rec(row("id", int64(1)), row("b", true, "i", int64(2), "f", 1.5, "s", "x", "raw", []byte{0, 1}, "obj", row("k", "v"), "arr", []any{int64(1)}, "nothing", nil))
		r.Topic = "db.inventory.orders"
		write(t, tk, r)
		p.want(t, `SELECT column_name, data_type, is_nullable FROM information_schema.columns
			WHERE table_name = 'sink_db_inventory_orders' ORDER BY ordinal_position`,
			"id|bigint|NO", "arr|jsonb|YES", "b|boolean|YES", "f|double precision|YES", "i|bigint|YES",
			"nothing|text|YES", "obj|jsonb|YES", "raw|bytea|YES", "s|text|YES")
		p.want(t, `SELECT id, arr::text, b, f, i, nothing, obj::text, encode(raw, 'hex'), s FROM sink_db_inventory_orders`,
			`1|[1]|true|1.5|2|NULL|{"k": "v"}|0001|x`)
	})

	t.Run("auto evolve", func(t *testing.T) {
		p := newDB(t, s)
		pgtest.Exec(t, s, p.db, `CREATE TABLE orders (id bigint PRIMARY KEY, item text)`)
		cfg := map[string]string{"insert.mode": "upsert", "pk.mode": "record_key"}
		tk := p.task(t, cfg)
		err := writeErr(t, tk, rec(int64(1), row("item", "a", "qty", int64(2), "note", "n")))
		if err == nil || !strings.Contains(err.Error(), `has no column note, qty; add it or set auto.evolve=true`) {
			t.Fatalf("new fields without auto.evolve: %v", err)
		}
		p.want(t, "SELECT count(*) FROM orders", "0") // the transaction rolled back
		cfg["auto.evolve"] = "true"
		tk = p.task(t, cfg)
		write(t, tk, rec(int64(1), row("item", "a")))
		write(t, tk, rec(int64(2), row("item", "b", "qty", int64(2), "note", "n")), rec(int64(3), row("item", "c", "price", 9.5)))
		p.want(t, "SELECT id, item, qty, note, price FROM orders ORDER BY id", "1|a|NULL|NULL|NULL", "2|b|2|n|NULL", "3|c|NULL|NULL|9.5")
		p.want(t, `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position`,
			"id|bigint|NO", "item|text|YES", "note|text|YES", "price|double precision|YES", "qty|bigint|YES") // added in one ALTER, by name
	})

	t.Run("replay is idempotent", func(t *testing.T) {
		p := newDB(t, s)
		tk := p.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true", "auto.create": "true"})
		batch := []connect.SinkRecord{rec(int64(1), row("v", "a")), rec(int64(2), row("v", "b")), rec(int64(1), row("v", "a2")),
			rec(int64(3), row("v", "c")), rec(int64(2), nil)}
		write(t, tk, batch...)
		first := p.query(t, "SELECT id, v FROM orders ORDER BY id")
		write(t, tk, batch...)
		p.want(t, "SELECT id, v FROM orders ORDER BY id", first...)
		if !slices.Equal(first, []string{"1|a2", "3|c"}) {
			t.Fatalf("rows %q", first)
		}
	})

	t.Run("many updates to one key", func(t *testing.T) {
		p := newDB(t, s)
		tk := p.task(t, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "auto.create": "true", "batch.size": "7"})
		var recs []connect.SinkRecord
		for i := range 1000 {
			recs = append(recs, rec(int64(i%3), row("n", int64(i))))
		}
		write(t, tk, recs...)
		p.want(t, "SELECT id, n FROM orders ORDER BY id", "0|999", "1|997", "2|998")
	})

	t.Run("bad records", func(t *testing.T) {
		p := newDB(t, s)
		pgtest.Exec(t, s, p.db, ordersTable)
		cfg := map[string]string{"insert.mode": "upsert", "pk.mode": "record_key"}
		tk := p.task(t, cfg)
		bad := rec(int64(1), "just a string")
		bad.Offset = 42
		err := writeErr(t, tk, bad)
		var re *RecordError
		if !errors.As(err, &re) || re.Offset != 42 || !errors.Is(err, ErrBadRecord) {
			t.Fatalf("non-object value: %v", err)
		}
		if pe, ok := errors.AsType[*connect.PutError](err); !ok || len(pe.Rejected) != 1 || pe.Rejected[0].Record.Offset != 42 {
			t.Fatalf("non-object value: %v, want a connect.PutError naming the record", err)
		}
		for _, want := range []string{"orders-0@42", "value is a string, want an object", "ExtractNewRecordState"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
		}
		if err := writeErr(t, tk, rec(nil, row("item", "a"))); !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), "the key is null") {
			t.Fatalf("null key: %v", err)
		}
		if err := writeErr(t, tk, rec(int64(1), row("f", struct{}{}))); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("unsupported field type: %v", err)
		}

		// Put takes the good records of a call and returns the rejected
		// ones; the worker decides (errors.tolerance) whether to go on.
		tk = p.task(t, cfg)
		err = tk.Put(t.Context(), []connect.SinkRecord{rec(int64(1), []any{"x"}), rec(int64(2), row("item", "b")), rec(nil, row("item", "c"))})
		if pe, ok := errors.AsType[*connect.PutError](err); !ok || len(pe.Rejected) != 2 {
			t.Fatalf("Put: %v, want 2 rejected records", err)
		}
		if err := tk.Flush(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		p.want(t, "SELECT id, item FROM orders", "2|b")
	})

	t.Run("retry after lost connection", func(t *testing.T) {
		p := newDB(t, s)
		pgtest.Exec(t, s, p.db, ordersTable)
		cfg := map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "retry.backoff.ms": "10"}
		tk := p.task(t, cfg)
		write(t, tk, rec(int64(1), row("item", "a")))
		kill := `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '` + p.db + `' AND pid <> pg_backend_pid()`
		p.want(t, kill, "1")
		write(t, tk, rec(int64(2), row("item", "b")))
		p.want(t, "SELECT id, item FROM orders ORDER BY id", "1|a", "2|b")

		cfg["max.retries"] = "0"
		tk = p.task(t, cfg)
		p.want(t, kill, "2") // both tasks' connections
		if err := writeErr(t, tk, rec(int64(3), row("item", "c"))); err == nil {
			t.Fatal("flush on a killed connection with max.retries=0 succeeded")
		}
	})

	t.Run("missing table", func(t *testing.T) {
		p := newDB(t, s)
		tk := p.task(t, map[string]string{})
		if err := writeErr(t, tk, rec(nil, row("a", int64(1)))); err == nil || !strings.Contains(err.Error(), `table "orders" does not exist; create it or set auto.create=true`) {
			t.Fatalf("missing table: %v", err)
		}
	})
}

func TestTableName(t *testing.T) {
	for _, tc := range []struct{ format, topic, want string }{
		{"${topic}", "orders", `"orders"`},
		{"${topic}", "dbserver1.inventory.customers", `"dbserver1_inventory_customers"`},
		{"kafka_${topic}", "a.b", `"kafka_a_b"`},
		{"staging.${topic}", "a.b", `"staging"."a_b"`},
		{"Fixed", "x", `"Fixed"`},
	} {
		t.Run(tc.format+"/"+tc.topic, func(t *testing.T) {
			if got := tableName(tc.format, tc.topic); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := map[string]string{"connection.url": "postgres://u:secret@localhost:5432/db", "topics": "t"}
	for _, tc := range []struct {
		name string
		set  map[string]string
		want []string // "key: message part"
	}{
		{"valid", nil, nil},
		{"valid upsert", map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true"}, nil},
		{"jdbc url", map[string]string{"connection.url": "jdbc:postgresql://localhost/db?user=u"}, nil},
		{"dsn", map[string]string{"connection.url": "host=/tmp dbname=x", "connection.user": "u", "connection.password": "p"}, nil},
		{"no url", map[string]string{"connection.url": ""}, []string{"connection.url: Missing required"}},
		{"bad url", map[string]string{"connection.url": "postgres://u:secret@[::1"}, []string{"connection.url: Invalid connection string"}},
		{"upsert without pk", map[string]string{"insert.mode": "upsert"}, []string{"pk.mode: Invalid value \"none\" for configuration pk.mode: insert.mode=upsert needs a primary key"}},
		{"bad modes", map[string]string{"insert.mode": "update", "pk.mode": "kafka"}, []string{"insert.mode: Invalid value", "pk.mode: Invalid value"}},
		{"delete without record_key", map[string]string{"pk.mode": "record_value", "pk.fields": "id", "delete.enabled": "true"}, []string{"delete.enabled: Invalid value \"true\" for configuration delete.enabled: deletes need the key"}},
		{"record_value without fields", map[string]string{"pk.mode": "record_value"}, []string{"pk.fields: Invalid value \"\" for configuration pk.fields: pk.mode=record_value needs"}},
		{"fields without pk", map[string]string{"pk.fields": "id"}, []string{"pk.fields: Invalid value"}},
		{"booleans and numbers", map[string]string{"auto.create": "yes", "batch.size": "0", "max.retries": "-1", "retry.backoff.ms": "x"},
			[]string{"auto.create: Invalid value", "batch.size: Invalid value", "max.retries: Invalid value", "retry.backoff.ms: Invalid value"}},
		{"table format", map[string]string{"table.name.format": "a.b.${topic}"}, []string{"table.name.format: Invalid value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := maps.Clone(base)
			maps.Copy(cfg, tc.set)
			errs := Plugin().Sink().Validate(cfg)
			var got []string
			for _, e := range errs {
				got = append(got, e.Key+": "+e.Message)
				if strings.Contains(e.Message, "secret") {
					t.Errorf("message shows the password: %s", e.Message)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("errors %q, want %d like %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %q, want it to start with %q", got[i], w)
				}
			}
		})
	}
}
