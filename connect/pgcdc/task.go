package pgcdc

import (
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicehq/sluice/connect"
)

// item is what the capture goroutine hands to Poll: a record, or (ack != 0)
// the end LSN of a transaction all of whose records came before it.
type item struct {
	rec connect.SourceRecord
	ack pglogrepl.LSN
}

// task is the source task. Start, Poll, Commit and Stop run on the worker's
// goroutine; the capture goroutine (capture.run) owns both database
// connections after Start and talks to Poll only through items, done/err
// and confirmed.
type task struct {
	cfg    config
	items  chan []item // chunks, in order
	rest   []item      // what the last Poll left of a chunk
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{} // closed when the capture goroutine exits
	err    error         // why it exited; read after done is closed

	// confirmed is the end LSN of the last transaction whose records the
	// worker has stored (so PostgreSQL may forget it); written by Poll and
	// Commit, read by the capture goroutine for its status updates.
	confirmed atomic.Uint64
	// pending is the end LSN of the last transaction whose records were all
	// returned by Poll; outstanding is set while records returned by Poll
	// await Commit.
	pending     pglogrepl.LSN
	outstanding bool

	meta *pgx.Conn      // regular connection: checks, snapshot, catalog
	repl *pgconn.PgConn // replication connection

	offsets connect.OffsetReader
	// lost is why the connections were lost (set while none is open): the
	// next Poll reconnects.
	lost error
}

// resume is where a restarted task continues, from its stored offset.
type resume struct {
	stored      bool // an offset was stored
	midSnapshot bool // it belongs to a snapshot that did not finish
	commit      pglogrepl.LSN
	event       int64
}

func parseResume(off map[string]any) resume {
	if off == nil {
		return resume{}
	}
	r := resume{stored: true}
	if snap, _ := off["snapshot"].(bool); snap {
		last, _ := off["last_snapshot_record"].(bool)
		r.midSnapshot = !last
		return r
	}
	c, _ := off["lsn_commit"].(int64)
	e, _ := off["event"].(int64)
	r.commit, r.event = pglogrepl.LSN(c), e
	return r
}

// dsn is a keyword/value connection string for c.
func (c *config) dsn() string {
	q := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	s := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=%s", q(c.host), c.port, q(c.user), q(c.dbname), c.sslmode)
	if c.password != "" {
		s += " password=" + q(c.password)
	}
	return s
}

// sessionParams fix the text forms that convert parses.
var sessionParams = map[string]string{
	"DateStyle": "ISO, YMD", "TimeZone": "UTC", "IntervalStyle": "postgres",
	"bytea_output": "hex", "extra_float_digits": "3", "application_name": "sluice-pgcdc",
}

func (t *task) Start(ctx context.Context, cfg map[string]string, offsets connect.OffsetReader) error {
	c, errs := parseConfig(cfg)
	if len(errs) > 0 {
		var all []error
		for _, e := range errs {
			all = append(all, e)
		}
		return errors.Join(all...)
	}
	t.cfg = c
	t.offsets = offsets
	err := t.open(ctx)
	if err != nil && ctx.Err() == nil && connLost(err) {
		// PostgreSQL is down or restarting: Poll retries (as Debezium
		// retries its start), so that the task need not be restarted.
		t.closeConns()
		t.lost = err
		return nil
	}
	return err
}

// connectTimeout bounds each connection attempt.
const connectTimeout = 10 * time.Second

// open connects, checks the server and the tables, makes sure of the
// publication and the slot, and starts the capture goroutine, resuming
// from the stored offset. Start runs it, and Poll again after the
// connections were lost.
func (t *task) open(ctx context.Context) error {
	c := t.cfg
	off, err := t.offsets.Offset(c.partition())
	if err != nil {
		return fmt.Errorf("pgcdc: read offsets: %w", err)
	}
	res := parseResume(off)

	mc, err := pgx.ParseConfig(c.dsn())
	if err != nil {
		return fmt.Errorf("pgcdc: %w", err)
	}
	for k, v := range sessionParams {
		mc.RuntimeParams[k] = v
	}
	if mc.ConnectTimeout == 0 {
		mc.ConnectTimeout = connectTimeout
	}
	if t.meta, err = pgx.ConnectConfig(ctx, mc); err != nil {
		return fmt.Errorf("pgcdc: connect to %s:%d/%s: %w", c.host, c.port, c.dbname, err)
	}
	streaming := c.snapshotMode != snapshotInitialOnly
	if streaming {
		var level string
		if err := t.meta.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
			return fmt.Errorf("pgcdc: SHOW wal_level: %w", err)
		}
		if level != "logical" {
			return fmt.Errorf("%w: the server runs with wal_level = %s, and logical decoding needs wal_level = logical: set it in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL", ErrNotLogical, level)
		}
	}
	tables, err := loadTables(ctx, t.meta, &c, 0)
	if err != nil {
		return err
	}
	for _, tb := range tables {
		if len(tb.key) == 0 && tb.ident != 'f' {
			return fmt.Errorf("%w: table %s.%s (REPLICA IDENTITY %s) cannot have its updates and deletes captured: add a primary key, or run ALTER TABLE %s REPLICA IDENTITY FULL, or leave it out with table.include.list or table.exclude.list",
				ErrNoReplicaIdentity, tb.schema, tb.name, identName(tb.ident), pgx.Identifier{tb.schema, tb.name}.Sanitize())
		}
	}

	snapshot := c.snapshotMode != snapshotNoData && (!res.stored || res.midSnapshot)
	cp := &capture{t: t, cfg: &t.cfg, tables: tables, resume: res, snapshot: snapshot}
	if !streaming && !snapshot {
		// initial_only after its snapshot: nothing more to do.
		cp.idle = true
	}
	if streaming {
		if err := t.ensurePublication(ctx, tables); err != nil {
			return err
		}
		if err := t.ensureSlot(ctx, cp, snapshot, res); err != nil {
			return err
		}
	}
	if snapshot && cp.snapshotName == "" {
		// initial_only: a plain REPEATABLE READ snapshot, no slot.
		if _, err := t.meta.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
			return fmt.Errorf("pgcdc: begin snapshot: %w", err)
		}
		var lsn pglogrepl.LSN
		if err := t.meta.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
			return fmt.Errorf("pgcdc: snapshot position: %w", err)
		}
		cp.startLSN = lsn
	}
	if snapshot {
		if err := t.meta.QueryRow(ctx, "SELECT txid_snapshot_xmin(txid_current_snapshot())").Scan(&cp.snapshotXid); err != nil {
			return fmt.Errorf("pgcdc: snapshot transaction: %w", err)
		}
	}

	t.items = make(chan []item, max(1, c.queue/chunkSize))
	t.rest = nil
	t.err = nil
	t.done = make(chan struct{})
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.cancel = cancel
	stopOnCancel := context.AfterFunc(ctx, cancel)
	t.wg.Go(func() {
		defer stopOnCancel()
		defer close(t.done)
		pprof.Do(rctx, pprof.Labels("connector", "postgres-cdc", "slot", c.slot), func(ctx context.Context) {
			t.err = cp.run(ctx)
		})
	})
	return nil
}

// slotWaits times slotWait is how long Start waits for an active slot to
// be released.
const (
	slotWaits = 50
	slotWait  = 200 * time.Millisecond
)

// ensureSlot makes sure the replication slot exists, creating it with an
// exported snapshot (imported by t.meta) when a snapshot is needed.
func (t *task) ensureSlot(ctx context.Context, cp *capture, snapshot bool, res resume) error {
	c := &t.cfg
	var (
		db, plugin string
		active     bool
		exists     = true
	)
	// A previous incarnation of the task may have just closed its
	// connection: its walsender releases the slot a moment later.
	for wait := 0; ; wait++ {
		err := t.meta.QueryRow(ctx, "SELECT coalesce(database, ''), coalesce(plugin, ''), active FROM pg_replication_slots WHERE slot_name = $1", c.slot).Scan(&db, &plugin, &active)
		if errors.Is(err, pgx.ErrNoRows) {
			exists = false
		} else if err != nil {
			return fmt.Errorf("pgcdc: look up replication slot %s: %w", c.slot, err)
		}
		if !exists || !active || wait == slotWaits {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(slotWait):
		}
	}
	if exists && (db != c.dbname || plugin != "pgoutput") {
		return fmt.Errorf("pgcdc: replication slot %s belongs to database %q with plugin %q, not to %q with pgoutput: choose another slot.name", c.slot, db, plugin, c.dbname)
	}
	if exists && active {
		return slotActiveError{c.slot}
	}
	if exists && snapshot {
		// No offsets, or a snapshot that did not finish: nothing was
		// streamed from this slot, and its snapshot is gone, so a new slot
		// with a new snapshot replaces it (the snapshot is redone).
		if _, err := t.meta.Exec(ctx, "SELECT pg_drop_replication_slot($1)", c.slot); err != nil {
			return fmt.Errorf("pgcdc: drop replication slot %s to redo the snapshot: %w", c.slot, err)
		}
		exists = false
	}
	if !exists && res.stored && !res.midSnapshot {
		return fmt.Errorf("%w: replication slot %s does not exist, but the stored offsets show that the connector streamed from it before, so changes made since are lost; delete the connector's offsets (or the connector) to start over with a new snapshot", ErrSlotLost, c.slot)
	}

	rc, err := pgconn.ParseConfig(c.dsn() + " replication=database")
	if err != nil {
		return fmt.Errorf("pgcdc: %w", err)
	}
	for k, v := range sessionParams {
		rc.RuntimeParams[k] = v
	}
	if rc.ConnectTimeout == 0 {
		rc.ConnectTimeout = connectTimeout
	}
	if t.repl, err = pgconn.ConnectConfig(ctx, rc); err != nil {
		return fmt.Errorf("pgcdc: replication connection: %w", err)
	}
	if exists {
		return nil // stream from where the slot is
	}
	action := "NOEXPORT_SNAPSHOT"
	if snapshot {
		action = "EXPORT_SNAPSHOT"
	}
	r, err := pglogrepl.CreateReplicationSlot(ctx, t.repl, c.slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{SnapshotAction: action, Mode: pglogrepl.LogicalReplication})
	if err != nil {
		return fmt.Errorf("pgcdc: create replication slot %s: %w", c.slot, err)
	}
	if cp.startLSN, err = pglogrepl.ParseLSN(r.ConsistentPoint); err != nil {
		return fmt.Errorf("pgcdc: create replication slot %s: consistent point: %w", c.slot, err)
	}
	if !snapshot {
		return nil
	}
	// The exported snapshot lives while the replication connection stays
	// idle, so import it now; the snapshot is read later, in the capture
	// goroutine, before START_REPLICATION.
	cp.snapshotName = r.SnapshotName
	if _, err := t.meta.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("pgcdc: begin snapshot: %w", err)
	}
	if _, err := t.meta.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+r.SnapshotName+"'"); err != nil {
		return fmt.Errorf("pgcdc: set transaction snapshot: %w", err)
	}
	return nil
}

// ensurePublication creates the publication, or resets its tables in
// filtered mode.
func (t *task) ensurePublication(ctx context.Context, tables []*table) error {
	c := &t.cfg
	pub := pgx.Identifier{c.publication}.Sanitize()
	var all bool
	err := t.meta.QueryRow(ctx, "SELECT puballtables FROM pg_publication WHERE pubname = $1", c.publication).Scan(&all)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgcdc: look up publication %s: %w", c.publication, err)
	}
	var names []string
	for _, tb := range tables {
		names = append(names, pgx.Identifier{tb.schema, tb.name}.Sanitize())
	}
	var q string
	switch {
	case c.pubMode == "disabled" && !exists:
		return fmt.Errorf("pgcdc: publication %s does not exist and publication.autocreate.mode is disabled: create it (CREATE PUBLICATION %s FOR TABLE ...)", c.publication, pub)
	case c.pubMode == "all_tables" && !exists:
		q = "CREATE PUBLICATION " + pub + " FOR ALL TABLES"
	case c.pubMode == "filtered" && !exists && len(names) == 0:
		q = "CREATE PUBLICATION " + pub
	case c.pubMode == "filtered" && !exists:
		q = "CREATE PUBLICATION " + pub + " FOR TABLE " + strings.Join(names, ", ")
	case c.pubMode == "filtered" && !all && len(names) > 0:
		q = "ALTER PUBLICATION " + pub + " SET TABLE " + strings.Join(names, ", ")
	}
	if q == "" {
		return nil
	}
	if _, err := t.meta.Exec(ctx, q); err != nil {
		return fmt.Errorf("pgcdc: %s: %w", q, err)
	}
	return nil
}

// Poll returns the records queued by the capture goroutine: it waits up to
// poll.interval.ms for the first, then takes what is queued, up to
// max.batch.size.
func (t *task) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	var out []connect.SourceRecord
	take := func(chunk []item) {
		for i, it := range chunk {
			if len(out) >= t.cfg.batch {
				t.rest = chunk[i:]
				return
			}
			if it.ack != 0 {
				t.pending = it.ack
			} else {
				out = append(out, it.rec)
			}
		}
	}
	if t.lost != nil {
		if err := t.reopen(ctx); err != nil {
			return nil, err
		}
	}
	if rest := t.rest; rest != nil {
		t.rest = nil
		take(rest)
	}
	timer := time.NewTimer(t.cfg.pollWait)
	defer timer.Stop()
	done := t.done
wait:
	for len(out) == 0 {
		select {
		case chunk := <-t.items:
			take(chunk)
		case <-done:
			select {
			case chunk := <-t.items:
				take(chunk)
				continue
			default:
			}
			if t.err != nil {
				if connLost(t.err) {
					return nil, t.lose(t.err)
				}
				return nil, t.err
			}
			done = nil // initial_only finished: idle until stopped
		case <-ctx.Done():
			break wait
		case <-timer.C:
			break wait
		}
	}
drain:
	for len(out) < t.cfg.batch && t.rest == nil {
		select {
		case chunk := <-t.items:
			take(chunk)
		default:
			break drain
		}
	}
	if len(out) > 0 {
		t.outstanding = true
	} else if !t.outstanding {
		// Only transactions without captured changes: nothing awaits the
		// worker, so PostgreSQL may forget them.
		t.confirm(t.pending)
	}
	return out, nil
}

// lose ends the capture goroutine and closes both connections after err,
// a connection-level failure: the next Poll reconnects. What the goroutine
// queued and Poll did not return is dropped: PostgreSQL sends it again.
func (t *task) lose(err error) error {
	t.cancel()
	t.wg.Wait()
	t.closeConns()
	t.items, t.rest, t.done = nil, nil, nil
	t.lost = err
	return connect.Retriable(fmt.Errorf("pgcdc: lost the connection to PostgreSQL; the task reconnects and resumes from replication slot %s: %w", t.cfg.slot, err))
}

// reopen reconnects after the connections were lost. A connection-level
// failure is retriable again; anything else (wal_level, a lost slot, a
// table without replica identity) fails the task as at Start.
func (t *task) reopen(ctx context.Context) error {
	err := t.open(ctx)
	if err == nil {
		t.lost = nil
		return nil
	}
	t.closeConns()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if connLost(err) {
		t.lost = err
		return connect.Retriable(fmt.Errorf("pgcdc: cannot reconnect to PostgreSQL yet (will retry): %w", err))
	}
	if _, ok := errors.AsType[slotActiveError](err); ok {
		// Most likely the walsender of the lost connection, which the
		// server has not noticed is gone yet (it ends it after
		// wal_sender_timeout).
		t.lost = err
		return connect.Retriable(fmt.Errorf("pgcdc: cannot resume streaming yet (will retry; the server keeps the slot of a lost connection until wal_sender_timeout): %w", err))
	}
	return err
}

// slotActiveError: the replication slot is held by another connection.
type slotActiveError struct{ slot string }

func (e slotActiveError) Error() string {
	return fmt.Sprintf("pgcdc: replication slot %s is in use by another connection (another connector with the same slot.name?)", e.slot)
}

// closeConns closes the connections, ignoring errors (they failed).
func (t *task) closeConns() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if t.repl != nil {
		_ = t.repl.Close(ctx)
		t.repl = nil
	}
	if t.meta != nil {
		_ = t.meta.Close(ctx)
		t.meta = nil
	}
}

// Commit implements connect.Committer: the worker stored every record
// returned by Poll so far, so PostgreSQL may forget the transactions they
// came from. The capture goroutine reports the position within
// about 100ms; while the connection is lost, the position is kept and
// reported after reconnecting.
func (t *task) Commit(context.Context) error {
	t.confirm(t.pending)
	t.outstanding = false
	return nil
}

func (t *task) confirm(lsn pglogrepl.LSN) {
	if uint64(lsn) > t.confirmed.Load() {
		t.confirmed.Store(uint64(lsn))
	}
}

// Stop stops the capture goroutine (which reports the confirmed position
// one last time) and closes the connections.
func (t *task) Stop() error {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if t.repl != nil {
		errs = append(errs, t.repl.Close(ctx))
		t.repl = nil
	}
	if t.meta != nil {
		errs = append(errs, t.meta.Close(ctx))
		t.meta = nil
	}
	return errors.Join(errs...)
}

// table is a table found in the catalog.
type table struct {
	oid          uint32
	schema, name string
	ident        byte     // relreplident: d, n, f or i
	key          []string // primary key columns, else replica identity index columns
}

func identName(b byte) string {
	switch b {
	case 'd':
		return "DEFAULT"
	case 'n':
		return "NOTHING"
	case 'f':
		return "FULL"
	case 'i':
		return "USING INDEX"
	}
	return string(b)
}

// loadTables returns the captured tables (or, with oid != 0, that table if
// captured), sorted by name.
func loadTables(ctx context.Context, conn *pgx.Conn, c *config, oid uint32) ([]*table, error) {
	const q = `SELECT c.oid, n.nspname::text, c.relname::text, c.relreplident::text,
  coalesce((SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
    WHERE i.indexrelid = (SELECT i2.indexrelid FROM pg_index i2 WHERE i2.indrelid = c.oid
      AND (i2.indisprimary OR (c.relreplident = 'i' AND i2.indisreplident)) ORDER BY i2.indisprimary DESC LIMIT 1)),
    '{}')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
  AND ($1::oid = 0 OR c.oid = $1::oid)`
	rows, err := conn.Query(ctx, q, oid)
	if err != nil {
		return nil, fmt.Errorf("pgcdc: read the catalog: %w", err)
	}
	var out []*table
	for rows.Next() {
		var tb table
		var ident string
		if err := rows.Scan(&tb.oid, &tb.schema, &tb.name, &ident, &tb.key); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgcdc: read the catalog: %w", err)
		}
		tb.ident = ident[0]
		if c.captured(tb.schema, tb.name) {
			out = append(out, &tb)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgcdc: read the catalog: %w", err)
	}
	slices.SortFunc(out, func(a, b *table) int { return strings.Compare(a.schema+"."+a.name, b.schema+"."+b.name) })
	return out, nil
}
