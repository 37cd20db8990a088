package pgcdc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluicehq/sluice/connect"
)

// statusEvery is how soon after a Commit the capture goroutine reports the
// new confirmed position (it checks between messages and at least this
// often while idle or blocked on a full queue).
const statusEvery = 100 * time.Millisecond

// capture reads the snapshot and then the replication stream, converting
// both into records for Poll. It runs on its own goroutine and owns t.meta
// and t.repl until it returns.
type capture struct {
	t      *task
	cfg    *config
	tables []*table
	resume resume
	idle   bool // initial_only after its snapshot

	snapshot     bool
	streaming    bool          // START_REPLICATION succeeded: status updates may be sent
	snapshotName string        // set when the slot exported the snapshot
	snapshotXid  int64         // xmin of the snapshot
	startLSN     pglogrepl.LSN // the slot's consistent point when created here

	part map[string]any
	rels map[uint32]*relation
	txn  struct {
		xid          int64
		commit       pglogrepl.LSN // Begin's final LSN: the commit record's LSN
		tsMs, tsUs   int64
		event        int64 // records of the transaction so far, emitted or skipped
		lsn          pglogrepl.LSN
		open, replay bool
	}
	buf        []item        // the chunk being filled
	bufSince   time.Time     // when its first item came
	now        time.Time     // the clock, read once per message
	lastEnd    pglogrepl.LSN // end LSN of the last transaction queued
	idleAck    pglogrepl.LSN // a keepalive's WAL end, when everything before it was confirmed
	reported   pglogrepl.LSN
	lastStatus time.Time
}

// relation is a captured table as the stream describes it.
type relation struct {
	captured            bool
	schema, name, topic string
	cols                []column
	keyIdx              []int
}

func (c *capture) run(ctx context.Context) error {
	c.part = c.cfg.partition()
	if c.idle {
		return nil
	}
	if c.snapshot {
		if err := c.readSnapshot(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	if c.cfg.snapshotMode == snapshotInitialOnly {
		return nil
	}
	err := c.stream(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// chunkSize is how many items the capture goroutine hands over at once:
// one channel operation per chunk keeps goroutine hand-offs off the hot
// path.
const chunkSize = 256

// flushAfter bounds how long a partial chunk waits for more changes.
const flushAfter = 2 * time.Millisecond

// emit adds it to the current chunk, handing the chunk to Poll when full.
func (c *capture) emit(ctx context.Context, it item) error {
	if c.buf == nil {
		c.buf = make([]item, 0, chunkSize)
		c.bufSince = c.now
	}
	c.buf = append(c.buf, it)
	if len(c.buf) < chunkSize {
		return nil
	}
	return c.flush(ctx)
}

// flush hands the current chunk to Poll, reporting the confirmed position
// while the queue is full.
func (c *capture) flush(ctx context.Context) error {
	if len(c.buf) == 0 {
		return nil
	}
	chunk := c.buf
	c.buf = nil
	select {
	case c.t.items <- chunk:
		return nil
	default:
	}
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	for {
		select {
		case c.t.items <- chunk:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			if c.streaming {
				if err := c.status(now, false); err != nil {
					return err
				}
			}
		}
	}
}

// readSnapshot reads every captured table in the snapshot transaction open
// on t.meta and queues op "r" records; the last is marked "last".
func (c *capture) readSnapshot(ctx context.Context) error {
	now := time.Now()
	c.now = now
	var held *connect.SourceRecord
	for _, tb := range c.tables {
		keyIdx := map[string]bool{}
		for _, k := range tb.key {
			keyIdx[k] = true
		}
		rr := c.t.meta.PgConn().ExecParams(ctx, "SELECT * FROM ONLY "+pgx.Identifier{tb.schema, tb.name}.Sanitize(), nil, nil, nil, nil)
		fds := rr.FieldDescriptions()
		for rr.NextRow() {
			vals := rr.Values()
			after := make(map[string]any, len(fds))
			var key map[string]any
			for i, fd := range fds {
				var v any
				if vals[i] != nil {
					v = convert(fd.DataTypeOID, vals[i], c.cfg.decimalString)
				}
				after[fd.Name] = v
				if keyIdx[fd.Name] {
					if key == nil {
						key = make(map[string]any, len(tb.key))
					}
					key[fd.Name] = v
				}
			}
			src := c.source(tb.schema, tb.name, now.UnixMilli(), "true", c.snapshotXid, c.startLSN)
			rec := connect.SourceRecord{
				Record:          connect.Record{Topic: c.cfg.prefix + "." + tb.schema + "." + tb.name, Partition: -1, Offset: -1, Key: anyMap(key), Value: c.envelope("r", nil, after, src)},
				SourcePartition: c.part,
				SourceOffset: map[string]any{"snapshot": true, "last_snapshot_record": false, "lsn": int64(c.startLSN),
					"txId": c.snapshotXid, "ts_usec": now.UnixMicro()},
			}
			if held != nil {
				if err := c.emit(ctx, item{rec: *held}); err != nil {
					rr.Close()
					return err
				}
			}
			held = &rec
		}
		if _, err := rr.Close(); err != nil {
			return fmt.Errorf("pgcdc: snapshot of %s.%s: %w", tb.schema, tb.name, err)
		}
	}
	if _, err := c.t.meta.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("pgcdc: end snapshot: %w", err)
	}
	if held != nil {
		held.Value.(map[string]any)["source"].(map[string]any)["snapshot"] = "last"
		held.SourceOffset["last_snapshot_record"] = true
		if err := c.emit(ctx, item{rec: *held}); err != nil {
			return err
		}
	}
	c.snapshot = false
	return c.flush(ctx)
}

func (c *capture) source(schema, table string, tsMs int64, snapshot string, xid int64, lsn pglogrepl.LSN) map[string]any {
	return map[string]any{"version": Version, "connector": "postgresql", "name": c.cfg.prefix, "ts_ms": tsMs,
		"snapshot": snapshot, "db": c.cfg.dbname, "schema": schema, "table": table, "txId": xid,
		"lsn": int64(lsn), "xmin": nil, "sequence": sequence(c.txn.commit, lsn)}
}

// sequence is Debezium's source.sequence: a JSON array, as a string, of the
// transaction's commit LSN and the event's LSN.
func sequence(commit, lsn pglogrepl.LSN) string {
	b := make([]byte, 0, 48)
	b = append(b, `["`...)
	b = strconv.AppendUint(b, uint64(commit), 10)
	b = append(b, `","`...)
	b = strconv.AppendUint(b, uint64(lsn), 10)
	b = append(b, `"]`...)
	return string(b)
}

func (c *capture) envelope(op string, before, after, src map[string]any) map[string]any {
	return map[string]any{"before": anyMap(before), "after": anyMap(after), "source": src, "op": op, "ts_ms": c.now.UnixMilli()}
}

// anyMap keeps a nil map an untyped nil, as the data model wants.
func anyMap(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

// stream runs the replication stream until ctx is done.
func (c *capture) stream(ctx context.Context) error {
	conn := c.t.repl
	c.rels = map[uint32]*relation{}
	pubs := `"` + strings.ReplaceAll(strings.ReplaceAll(c.cfg.publication, `"`, `""`), `'`, `''`) + `"`
	err := pglogrepl.StartReplication(ctx, conn, c.cfg.slot, c.startLSN, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + pubs + "'"},
	})
	if err != nil {
		return fmt.Errorf("pgcdc: start replication from slot %s: %w", c.cfg.slot, err)
	}
	c.streaming = true
	defer func() {
		// Report the final confirmed position; best effort.
		_ = conn.Conn().SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.status(time.Now(), true)
	}()
	nc := conn.Conn()
	var deadline time.Time
	for ctx.Err() == nil {
		now := time.Now()
		c.now = now
		if err := c.status(now, false); err != nil {
			return err
		}
		// A read deadline, not a context, bounds each receive: it keeps the
		// connection usable after a timeout and costs no goroutine per
		// message. A partial chunk shortens it, so that Poll gets the chunk
		// at most flushAfter after its first change when the stream pauses.
		want := deadline
		if deadline.Sub(now) < 50*time.Millisecond {
			want = now.Add(4 * statusEvery)
		}
		if len(c.buf) > 0 && want.After(c.bufSince.Add(flushAfter)) {
			want = c.bufSince.Add(flushAfter)
		}
		if !want.Equal(deadline) {
			deadline = want
			if err := nc.SetReadDeadline(deadline); err != nil {
				return fmt.Errorf("pgcdc: %w", err)
			}
		}
		msg, err := conn.ReceiveMessage(context.Background())
		if err != nil {
			var ne net.Error
			if pgconn.Timeout(err) || (errors.As(err, &ne) && ne.Timeout()) {
				deadline = time.Time{}
				if err := c.flush(ctx); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("pgcdc: replication stream: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if err := c.handle(ctx, msg.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("pgcdc: replication stream: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyDone:
			return errStreamEnded
		}
	}
	return nil
}

// status sends a standby status update when forced, when the confirmed
// position moved (at most every statusEvery), or every
// status.update.interval.ms.
func (c *capture) status(now time.Time, force bool) error {
	pos := max(pglogrepl.LSN(c.t.confirmed.Load()), c.idleAck, c.reported)
	since := now.Sub(c.lastStatus)
	if !force && !(pos > c.reported && since >= statusEvery) && since < c.cfg.statusInterval {
		return nil
	}
	// Write, flush and apply are all the confirmed position: PostgreSQL
	// keeps the WAL after it for us.
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), c.t.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos, ClientTime: now})
	if err != nil {
		return fmt.Errorf("pgcdc: send standby status: %w", err)
	}
	c.reported, c.lastStatus = pos, now
	return nil
}

// handle processes one CopyData message of the replication stream.
func (c *capture) handle(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("pgcdc: %w", err)
		}
		// The server sent every transaction that commits before its WAL
		// end; when all of those are confirmed, so is that position (this
		// lets the slot advance past WAL of other tables and databases).
		if !c.txn.open && pglogrepl.LSN(c.t.confirmed.Load()) >= c.lastEnd && pkm.ServerWALEnd > c.idleAck {
			c.idleAck = pkm.ServerWALEnd
		}
		if pkm.ReplyRequested {
			return c.status(time.Now(), true)
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("pgcdc: %w", err)
		}
		c.txn.lsn = xld.WALStart
		if len(xld.WALData) > 0 {
			switch xld.WALData[0] {
			case 'I', 'U', 'D':
				return c.dml(ctx, xld.WALData)
			}
		}
		m, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			return fmt.Errorf("pgcdc: decode pgoutput message at %s: %w", xld.WALStart, err)
		}
		c.txn.lsn = xld.WALStart
		return c.message(ctx, m)
	}
	return nil
}

func (c *capture) message(ctx context.Context, m pglogrepl.Message) error {
	switch m := m.(type) {
	case *pglogrepl.BeginMessage:
		c.txn.open = true
		c.txn.xid, c.txn.commit, c.txn.event = int64(m.Xid), m.FinalLSN, 0
		c.txn.tsMs, c.txn.tsUs = m.CommitTime.UnixMilli(), m.CommitTime.UnixMicro()
		// A transaction at or before the stored offset was (partly) stored
		// before a restart: its stored records are skipped.
		c.txn.replay = c.resume.commit != 0 && m.FinalLSN <= c.resume.commit
	case *pglogrepl.CommitMessage:
		c.txn.open = false
		c.lastEnd = m.TransactionEndLSN
		return c.emit(ctx, item{ack: m.TransactionEndLSN})
	case *pglogrepl.RelationMessage:
		return c.relation(ctx, m)
	}
	// Truncate (Debezium's default skipped.operations=t), Type, Origin and
	// logical decoding messages are ignored.
	return nil
}

// relation records the columns of a table; pgoutput sends this before the
// table's first change in the stream and after each change of its shape.
func (c *capture) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	rel := &relation{schema: m.Namespace, name: m.RelationName, captured: c.cfg.captured(m.Namespace, m.RelationName)}
	c.rels[m.RelationID] = rel
	if !rel.captured {
		return nil
	}
	rel.topic = c.cfg.prefix + "." + m.Namespace + "." + m.RelationName
	for _, col := range m.Columns {
		rel.cols = append(rel.cols, column{name: col.Name, oid: col.DataType})
	}
	var key []string
	var tb *table
	for _, t := range c.tables {
		if t.oid == m.RelationID {
			tb = t
		}
	}
	if tb == nil {
		// A table created (or matched) after the start.
		ts, err := loadTables(ctx, c.t.meta, c.cfg, m.RelationID)
		if err != nil {
			return err
		}
		if len(ts) == 1 {
			tb = ts[0]
			c.tables = append(c.tables, tb)
		}
	}
	if tb != nil {
		key = tb.key
	}
	for i, col := range m.Columns {
		if tb != nil {
			for _, k := range key {
				if k == col.Name {
					rel.keyIdx = append(rel.keyIdx, i)
				}
			}
		} else if col.Flags&1 != 0 && m.ReplicaIdentity != 'f' {
			rel.keyIdx = append(rel.keyIdx, i)
		}
	}
	return nil
}

func (c *capture) key(rel *relation, row map[string]any) map[string]any {
	if len(rel.keyIdx) == 0 || row == nil {
		return nil
	}
	k := make(map[string]any, len(rel.keyIdx))
	for _, i := range rel.keyIdx {
		n := rel.cols[i].name
		k[n] = row[n]
	}
	return k
}

func sameKey(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			return false
		}
		if vb, ok := v.([]byte); ok {
			wb, ok := w.([]byte)
			if !ok || !bytes.Equal(vb, wb) {
				return false
			}
		} else if v != w {
			return false
		}
	}
	return true
}

// change queues one record of the current transaction (op "" is a
// tombstone), unless a restart already stored it.
func (c *capture) change(ctx context.Context, rel *relation, op string, key, before, after map[string]any) error {
	c.txn.event++
	if c.txn.replay && (c.txn.commit < c.resume.commit || c.txn.event <= c.resume.event) {
		return nil
	}
	var value any
	if op != "" {
		value = c.envelope(op, before, after, c.source(rel.schema, rel.name, c.txn.tsMs, "false", c.txn.xid, c.txn.lsn))
	}
	return c.emit(ctx, item{rec: connect.SourceRecord{
		Record:          connect.Record{Topic: rel.topic, Partition: -1, Offset: -1, Key: anyMap(key), Value: value},
		SourcePartition: c.part,
		SourceOffset: map[string]any{"lsn": int64(c.txn.lsn), "lsn_commit": int64(c.txn.commit), "txId": c.txn.xid,
			"ts_usec": c.txn.tsUs, "event": c.txn.event},
	}})
}
