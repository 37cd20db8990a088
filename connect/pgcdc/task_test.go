package pgcdc_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/connect/pgcdc"
	"github.com/sluicehq/sluice/internal/pgserver"
)

// TestSnapshotThenStream: existing rows come as op "r" (the last marked
// "last"), then inserts, updates and deletes (with tombstones) stream;
// under REPLICA IDENTITY DEFAULT updates carry no before-image and deletes
// carry the key only.
func TestSnapshotThenStream(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE TABLE items (id int PRIMARY KEY, name text, qty int)",
		"INSERT INTO items VALUES (1, 'a', 10), (2, 'b', 20)")
	r := mustStartTask(t, p.config("srv", "s_snap"), nil)

	snap := r.next(2)
	for i, rec := range snap {
		e := env(t, rec)
		if rec.Topic != "srv.public.items" || e["op"] != "r" {
			t.Fatalf("snapshot record %d: topic %s op %v", i, rec.Topic, e["op"])
		}
		want := "true"
		if i == 1 {
			want = "last"
		}
		if got := field(e, "source", "snapshot"); got != want {
			t.Fatalf("snapshot record %d: source.snapshot %v, want %s", i, got, want)
		}
	}
	jsonEq(t, "snapshot keys", []any{snap[0].Key, snap[1].Key}, []any{map[string]any{"id": 1}, map[string]any{"id": 2}})
	jsonEq(t, "snapshot row", env(t, snap[1])["after"], map[string]any{"id": 2, "name": "b", "qty": 20})

	p.exec(t, "INSERT INTO items VALUES (3, 'c', 30)",
		"UPDATE items SET qty = 11 WHERE id = 1",
		"DELETE FROM items WHERE id = 2")
	recs := r.next(4)
	var ops []string
	for _, rec := range recs {
		if rec.Value == nil {
			ops = append(ops, "tombstone")
			continue
		}
		ops = append(ops, env(t, rec)["op"].(string))
	}
	if got := strings.Join(ops, ","); got != "c,u,d,tombstone" {
		t.Fatalf("ops %s, want c,u,d,tombstone", got)
	}
	c, u, d := env(t, recs[0]), env(t, recs[1]), env(t, recs[2])
	jsonEq(t, "insert", []any{recs[0].Key, c["before"], c["after"]}, []any{map[string]any{"id": 3}, nil, map[string]any{"id": 3, "name": "c", "qty": 30}})
	jsonEq(t, "update", []any{recs[1].Key, u["before"], u["after"]}, []any{map[string]any{"id": 1}, nil, map[string]any{"id": 1, "name": "a", "qty": 11}})
	jsonEq(t, "delete", []any{recs[2].Key, d["before"], d["after"]}, []any{map[string]any{"id": 2}, map[string]any{"id": 2, "name": nil, "qty": nil}, nil})
	jsonEq(t, "tombstone key", recs[3].Key, map[string]any{"id": 2})
	src := c["source"].(map[string]any)
	for _, k := range []string{"version", "connector", "name", "ts_ms", "snapshot", "db", "schema", "table", "txId", "lsn", "xmin"} {
		if _, ok := src[k]; !ok {
			t.Fatalf("source block %v lacks %s", src, k)
		}
	}
	if src["connector"] != "postgresql" || src["name"] != "srv" || src["db"] != p.db || src["schema"] != "public" || src["table"] != "items" || src["snapshot"] != "false" {
		t.Fatalf("source block %v", src)
	}
	if _, ok := c["ts_ms"].(int64); !ok {
		t.Fatalf("ts_ms %#v", c["ts_ms"])
	}
	r.quiet()
}

// TestUpdateBeforeImages: REPLICA IDENTITY FULL gives full before-images;
// a changed primary key becomes delete, tombstone and create, as Debezium.
func TestUpdateBeforeImages(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE TABLE full_t (id int PRIMARY KEY, v text)", "ALTER TABLE full_t REPLICA IDENTITY FULL",
		"CREATE TABLE def_t (id int PRIMARY KEY, v text)")
	r := mustStartTask(t, p.config("srv", "s_before"), nil)
	r.quiet()
	p.exec(t, "INSERT INTO full_t VALUES (1, 'x')", "UPDATE full_t SET v = 'y' WHERE id = 1",
		"DELETE FROM full_t WHERE id = 1",
		"INSERT INTO def_t VALUES (1, 'x')", "UPDATE def_t SET id = 2 WHERE id = 1")
	recs := r.next(8)
	u := env(t, recs[1])
	jsonEq(t, "full update", []any{u["op"], u["before"], u["after"]}, []any{"u", map[string]any{"id": 1, "v": "x"}, map[string]any{"id": 1, "v": "y"}})
	d := env(t, recs[2])
	jsonEq(t, "full delete", []any{d["op"], d["before"]}, []any{"d", map[string]any{"id": 1, "v": "y"}})
	if recs[3].Value != nil {
		t.Fatalf("record 3 is not a tombstone: %s", describe(recs[3:4]))
	}
	// def_t: insert, then the key change: d(1), tombstone(1), c(2).
	pk := recs[5:]
	jsonEq(t, "key change", []any{pk[0].Key, field(pk[0].Value, "op"), field(pk[0].Value, "before"), pk[1].Key, pk[1].Value, pk[2].Key, field(pk[2].Value, "op"), field(pk[2].Value, "after")},
		[]any{map[string]any{"id": 1}, "d", map[string]any{"id": 1, "v": nil}, map[string]any{"id": 1}, nil, map[string]any{"id": 2}, "c", map[string]any{"id": 2, "v": "x"}})
}

// TestTransactionAcrossTables: the changes of one transaction on two tables
// share its txId and commit position.
func TestTransactionAcrossTables(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE TABLE a (id int PRIMARY KEY)", "CREATE TABLE b (id int PRIMARY KEY)")
	r := mustStartTask(t, p.config("srv", "s_txn"), nil)
	r.quiet()
	p.exec(t, "BEGIN", "INSERT INTO a VALUES (1)", "INSERT INTO b VALUES (1)", "COMMIT", "INSERT INTO a VALUES (2)")
	recs := r.next(3)
	if recs[0].Topic != "srv.public.a" || recs[1].Topic != "srv.public.b" {
		t.Fatalf("topics %s, %s", recs[0].Topic, recs[1].Topic)
	}
	x0, x1, x2 := field(recs[0].Value, "source", "txId"), field(recs[1].Value, "source", "txId"), field(recs[2].Value, "source", "txId")
	if x0 != x1 || x0 == x2 || x0 == nil {
		t.Fatalf("txIds %v %v %v: want the first two equal and the third different", x0, x1, x2)
	}
	if recs[0].SourceOffset["lsn_commit"] != recs[1].SourceOffset["lsn_commit"] {
		t.Fatalf("offsets %v and %v: want one commit LSN", recs[0].SourceOffset, recs[1].SourceOffset)
	}
}

// TestTableIncludeList: only tables matching table.include.list (whole
// names, regular expressions) are snapshotted and streamed, and the
// filtered publication lists exactly them.
func TestTableIncludeList(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE SCHEMA inv", "CREATE TABLE inv.orders (id int PRIMARY KEY)", "CREATE TABLE inv.orders_old (id int PRIMARY KEY)",
		"CREATE TABLE public.orders (id int PRIMARY KEY)", "CREATE TABLE inv.nokey (v int)",
		"INSERT INTO inv.orders VALUES (1)", "INSERT INTO inv.orders_old VALUES (1)", "INSERT INTO public.orders VALUES (1)")
	r := mustStartTask(t, p.config("srv", "s_incl", "table.include.list", `inv\.order.*`, "table.exclude.list", ".*_old",
		"publication.autocreate.mode", "filtered"), nil)
	snap := r.next(1)
	if snap[0].Topic != "srv.inv.orders" {
		t.Fatalf("snapshot %s", describe(snap))
	}
	p.exec(t, "INSERT INTO public.orders VALUES (2)", "INSERT INTO inv.orders_old VALUES (2)", "INSERT INTO inv.orders VALUES (2)")
	recs := r.next(1)
	if recs[0].Topic != "srv.inv.orders" {
		t.Fatalf("streamed %s", describe(recs))
	}
	if got := p.query(t, "SELECT string_agg(schemaname || '.' || tablename, ',') FROM pg_publication_tables WHERE pubname = 's_incl_pub'"); got != "inv.orders" {
		t.Fatalf("publication tables %q, want inv.orders", got)
	}
	r.quiet()
}

// TestWALLevelNotLogical: Start fails with a message that says what to do.
func TestWALLevelNotLogical(t *testing.T) {
	p := startPG(t, pgserver.Options{Settings: []string{"wal_level = replica"}})
	p.exec(t, "CREATE TABLE a (id int PRIMARY KEY)")
	_, err := startTask(t, p.config("srv", "s_wal"), nil)
	if !errors.Is(err, pgcdc.ErrNotLogical) || !strings.Contains(err.Error(), "wal_level = logical") || !strings.Contains(err.Error(), "restart PostgreSQL") {
		t.Fatalf("start: %v, want ErrNotLogical telling to set wal_level = logical and restart", err)
	}
}

// TestTableWithoutPrimaryKey: a captured table without a primary key and
// replica identity fails Start with the table's name and the remedies; with
// REPLICA IDENTITY FULL it is captured with a null key.
func TestTableWithoutPrimaryKey(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE TABLE nokey (v int)", "CREATE TABLE fullkey (v int)", "ALTER TABLE fullkey REPLICA IDENTITY FULL")
	_, err := startTask(t, p.config("srv", "s_nopk", "table.include.list", "public.nokey"), nil)
	if !errors.Is(err, pgcdc.ErrNoReplicaIdentity) || !strings.Contains(err.Error(), "public.nokey") ||
		!strings.Contains(err.Error(), "REPLICA IDENTITY FULL") || !strings.Contains(err.Error(), "primary key") {
		t.Fatalf("start: %v, want ErrNoReplicaIdentity naming public.nokey", err)
	}
	r := mustStartTask(t, p.config("srv", "s_nopk2", "table.include.list", "public.fullkey"), nil)
	r.quiet()
	p.exec(t, "INSERT INTO fullkey VALUES (1)", "UPDATE fullkey SET v = 2")
	recs := r.next(2)
	if recs[0].Key != nil || field(recs[1].Value, "before", "v") != int64(1) {
		t.Fatalf("records %s", describe(recs))
	}
}

// TestTypes: the type mapping of the package doc, identical in snapshot and
// stream.
func TestTypes(t *testing.T) {
	p := startPG(t)
	p.exec(t, `CREATE TABLE ty (id bigint PRIMARY KEY, s smallint, i int, b bool, f4 real, f8 double precision,
		n numeric(10,2), t text, vc varchar(5), c char(3), ts timestamp(6), tstz timestamptz, d date, tm time,
		j json, jb jsonb, ba bytea, u uuid, iv interval, arr int[], nul text, big text)`,
		"ALTER TABLE ty ALTER COLUMN big SET STORAGE EXTERNAL") // out of line, uncompressed: TOASTed
	ins := `INSERT INTO ty VALUES (%d, -3, 42, true, 1.5, 2.25, 12345.67, 'héllo', 'ab', 'x', '2024-02-29 12:34:56.123456',
		'2024-02-29 12:34:56.5+02', '1969-12-31', '01:02:03.5', '{"a": 1}', '{"b": [1, 2]}', '\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
		'1 day 2 hours', '{1,2}', NULL, repeat('z', 10000))`
	p.exec(t, strings.ReplaceAll(ins, "%d", "1"))
	r := mustStartTask(t, p.config("srv", "s_types"), nil)
	want := map[string]any{"s": int64(-3), "i": int64(42), "b": true, "f4": 1.5, "f8": 2.25, "n": "12345.67", "t": "héllo",
		"vc": "ab", "c": "x  ", "ts": int64(1709210096123456), "tstz": "2024-02-29T10:34:56.5Z", "d": int64(-1),
		"tm": int64(3723500000), "j": `{"a": 1}`, "jb": `{"b": [1, 2]}`, "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"iv": "1 day 02:00:00", "arr": "{1,2}", "nul": nil, "big": strings.Repeat("z", 10000)}
	check := func(what string, after map[string]any, want map[string]any) {
		t.Helper()
		for k, w := range want {
			if g := after[k]; g != w {
				t.Fatalf("%s: column %s = %#v, want %#v", what, k, g, w)
			}
		}
		if ba, _ := after["ba"].([]byte); string(ba) != "\x00\xff" {
			t.Fatalf("%s: bytea %#v", what, after["ba"])
		}
	}
	check("snapshot", env(t, r.next(1)[0])["after"].(map[string]any), want)
	p.exec(t, strings.ReplaceAll(ins, "%d", "2"))
	check("stream", env(t, r.next(1)[0])["after"].(map[string]any), want)
	// An update that leaves the TOASTed column alone: Debezium's
	// placeholder, since pgoutput does not send it.
	p.exec(t, "UPDATE ty SET i = 43 WHERE id = 2")
	after := env(t, r.next(1)[0])["after"].(map[string]any)
	if after["big"] != "__debezium_unavailable_value" || after["i"] != int64(43) {
		t.Fatalf("toast update: big=%.40v i=%v", after["big"], after["i"])
	}
	p.exec(t, "DROP TABLE ty") // keep the server's shutdown quick
}

// TestRestartMidSnapshot: a task stopped before its snapshot finished redoes
// it from a new slot on restart (the records already stored come again),
// then streams without losing anything.
func TestRestartMidSnapshot(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE TABLE a (id int PRIMARY KEY)", "INSERT INTO a SELECT generate_series(1, 100)")
	cfg := p.config("srv", "s_midsnap", "max.batch.size", "10")
	off := &memOffsets{}
	r := mustStartTask(t, cfg, off)
	r.next(10)
	if off.off["snapshot"] != true || off.off["last_snapshot_record"] != false {
		t.Fatalf("offset mid-snapshot: %v", off.off)
	}
	r.stop()
	p.exec(t, "INSERT INTO a VALUES (101)") // between the two snapshots: in the second
	r2 := mustStartTask(t, cfg, off)
	recs := r2.next(101)
	if field(recs[100].Value, "source", "snapshot") != "last" {
		t.Fatalf("last record %s", describe(recs[100:]))
	}
	p.exec(t, "INSERT INTO a VALUES (102)")
	if recs := r2.next(1); field(recs[0].Value, "op") != "c" || field(recs[0].Value, "after", "id") != int64(102) {
		t.Fatalf("after the snapshot: %s", describe(recs))
	}
	r2.stop()
	// A snapshot that finished is not redone.
	r3 := mustStartTask(t, cfg, off)
	r3.quiet()
}

// TestValidate: configuration problems are reported by name.
func TestValidate(t *testing.T) {
	src := pgcdc.Plugin().Source()
	errs := src.Validate(map[string]string{"database.port": "x", "snapshot.mode": "always", "slot.name": "Bad-Name",
		"decimal.handling.mode": "precise", "table.include.list": "a(", "publication.autocreate.mode": "some"})
	got := map[string]bool{}
	for _, e := range errs {
		got[e.Key] = true
	}
	for _, k := range []string{"database.hostname", "database.user", "database.dbname", "topic.prefix", "database.port",
		"snapshot.mode", "slot.name", "decimal.handling.mode", "table.include.list", "publication.autocreate.mode"} {
		if !got[k] {
			t.Errorf("no error for %s in %v", k, errs)
		}
	}
	ok := map[string]string{"database.hostname": "h", "database.user": "u", "database.dbname": "d", "topic.prefix": "p", "snapshot.mode": "never"}
	if errs := src.Validate(ok); len(errs) > 0 {
		t.Fatalf("valid config: %v", errs)
	}
	def, isDef := src.(connect.Definer)
	if !isDef || len(def.ConfigDef()) < 15 {
		t.Fatal("the connector does not define its configuration")
	}
}

// TestRestartMidTransaction: a task that crashed after the worker stored
// the offset of a record in the middle of a transaction (and before it
// stored the records polled after it) resumes with the next record of that
// transaction: nothing is lost, and only records after the stored offset
// come again.
func TestRestartMidTransaction(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE TABLE a (id int PRIMARY KEY)")
	cfg := p.config("srv", "s_midtxn", "max.batch.size", "4")
	off := &memOffsets{}
	r := mustStartTask(t, cfg, off)
	r.quiet()
	p.exec(t, "INSERT INTO a SELECT generate_series(1, 10)", "INSERT INTO a SELECT generate_series(11, 15)")
	r.next(4) // stored and committed: ids 1-4
	// Polled but never stored, as when the worker dies before Kafka
	// acknowledges them.
	if recs, err := r.task.Poll(t.Context()); err != nil || len(recs) == 0 {
		t.Fatalf("poll: %d records, %v", len(recs), err)
	}
	r.stop()
	if lsn := p.query(t, "SELECT coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots WHERE slot_name = 's_midtxn'"); lsn == "" {
		t.Fatal("no slot")
	}
	r2 := mustStartTask(t, cfg, off)
	recs := r2.next(11)
	var ids []int64
	for _, rec := range recs {
		ids = append(ids, field(rec.Value, "after", "id").(int64))
	}
	jsonEq(t, "ids after the restart", ids, []int64{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	r2.quiet()
}

// TestIdleAndBlockedTaskKeepsSlot: with a short wal_sender_timeout, a task
// that is not polled for several timeouts, first idle and then with its
// queue full, keeps its replication connection (the capture goroutine
// answers keepalives and sends status updates on its own), and then
// delivers everything.
func TestIdleAndBlockedTaskKeepsSlot(t *testing.T) {
	p := startPG(t, pgserver.Options{Settings: []string{"wal_sender_timeout = '1s'"}})
	p.exec(t, "CREATE TABLE a (id int PRIMARY KEY)")
	r := mustStartTask(t, p.config("srv", "s_idle", "max.queue.size", "256", "status.update.interval.ms", "300"), nil)
	r.quiet()
	time.Sleep(3 * time.Second) // idle, unpolled
	p.exec(t, "INSERT INTO a SELECT generate_series(1, 3000)")
	time.Sleep(3 * time.Second) // queue full, unpolled
	if got := p.query(t, "SELECT active::text FROM pg_replication_slots WHERE slot_name = 's_idle'"); got != "true" {
		t.Fatalf("slot active = %q", got)
	}
	recs := r.next(3000)
	if field(recs[2999].Value, "after", "id") != int64(3000) {
		t.Fatalf("last record %s", describe(recs[2999:]))
	}
}
