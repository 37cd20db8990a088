package pgsink

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluicehq/sluice/connect"
)

// ErrBadRecord is what a *RecordError unwraps to: a record that cannot
// become a row (a value that is not an object, a missing or null key
// field, a value that cannot be encoded). The task's Put returns such
// records in a *connect.PutError; see connect.PutError for what the worker
// does with them.
var ErrBadRecord = errors.New("pgsink: bad record")

// RecordError names the record that Put rejected and why. It matches
// ErrBadRecord with errors.Is.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Reason    string
}

// Error implements error.
func (e *RecordError) Error() string {
	return "pgsink: bad record: " + e.Reason // the worker's messages name the record
}

// Unwrap returns ErrBadRecord.
func (e *RecordError) Unwrap() error { return ErrBadRecord }

// kind is the type of a value as the data model has it, for auto.create.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindInt
	kindFloat
	kindString
	kindBytes
	kindJSON
)

// pgType is the column type auto.create and auto.evolve give a kind.
func (k kind) pgType() string {
	switch k {
	case kindBool:
		return "boolean"
	case kindInt:
		return "bigint"
	case kindFloat:
		return "double precision"
	case kindBytes:
		return "bytea"
	case kindJSON:
		return "jsonb"
	}
	return "text"
}

// cell is one column value in PostgreSQL's text form: every value is sent
// as text and cast to the column's type by the server, so a string can fill
// a timestamptz, numeric or uuid column.
type cell struct {
	v pgtype.Text
	k kind
}

func toCell(v any) (cell, error) {
	switch t := v.(type) {
	case nil:
		return cell{}, nil
	case bool:
		return cell{pgtype.Text{String: strconv.FormatBool(t), Valid: true}, kindBool}, nil
	case int64:
		return cell{pgtype.Text{String: strconv.FormatInt(t, 10), Valid: true}, kindInt}, nil
	case int:
		return cell{pgtype.Text{String: strconv.Itoa(t), Valid: true}, kindInt}, nil
	case int32:
		return cell{pgtype.Text{String: strconv.FormatInt(int64(t), 10), Valid: true}, kindInt}, nil
	case float64:
		return cell{pgtype.Text{String: strconv.FormatFloat(t, 'g', -1, 64), Valid: true}, kindFloat}, nil
	case string:
		return cell{pgtype.Text{String: t, Valid: true}, kindString}, nil
	case []byte:
		return cell{pgtype.Text{String: `\x` + hex.EncodeToString(t), Valid: true}, kindBytes}, nil
	case map[string]any, []any:
		b, err := json.Marshal(t)
		if err != nil {
			return cell{}, err
		}
		return cell{pgtype.Text{String: string(b), Valid: true}, kindJSON}, nil
	}
	return cell{}, fmt.Errorf("unsupported value type %T", v)
}

// op is what a batch does to one key: delete its row (del), then write row
// (nil: nothing). Later records of the key are merged into the op, so the
// batch writes each key once.
type op struct {
	pkv []cell // primary key values, in the order of tableBuf.pk
	del bool
	row map[string]cell
}

// tableBuf holds the buffered ops of one table.
type tableBuf struct {
	name  string // quoted, possibly schema-qualified
	pk    []string
	ops   []*op
	byKey map[string]*op
}

type task struct {
	c    *config
	conn *pgx.Conn

	tables  map[string]*tableBuf // by table name
	byTopic map[string]*tableBuf // cache of tableFor, reset with tables
	pending int
	meta    map[string]map[string]string // column name -> type, by table; nil entry: missing
	staged  map[int]bool                 // staging tables of writeRowsCopy, by column count

	writeRows func(ctx context.Context, tx pgx.Tx, tb *tableBuf, cols []string, types []string, rows []map[string]cell) error
}

func (t *task) Start(ctx context.Context, cfg map[string]string) error {
	c, errs := parseConfig(cfg)
	if len(errs) > 0 {
		return errors.Join(sliceErrs(errs)...)
	}
	conn, err := pgx.ConnectConfig(ctx, c.conn)
	if err != nil {
		return fmt.Errorf("pgsink: connect: %w", err)
	}
	t.c, t.conn = c, conn
	if t.writeRows == nil {
		t.writeRows = t.writeRowsUnnest
	}
	t.reset()
	return nil
}

func sliceErrs(ces []connect.ConfigError) []error {
	out := make([]error, len(ces))
	for i, e := range ces {
		out[i] = e
	}
	return out
}

func (t *task) reset() {
	t.tables, t.byTopic, t.pending = map[string]*tableBuf{}, map[string]*tableBuf{}, 0
}

// Put buffers recs; Flush writes them. Records that cannot become rows are
// returned in a *connect.PutError (each with a *RecordError) after the
// others are buffered: the worker skips them, or sends them to the dead
// letter queue, under errors.tolerance=all, and fails the task otherwise.
func (t *task) Put(_ context.Context, recs []connect.SinkRecord) error {
	var rejected []connect.RejectedRecord
	for i := range recs {
		if err := t.add(&recs[i].Record); err != nil {
			rejected = append(rejected, connect.RejectedRecord{Record: recs[i], Err: err})
		}
	}
	if len(rejected) > 0 {
		return &connect.PutError{Rejected: rejected}
	}
	return nil
}

func (t *task) tableFor(topic string) *tableBuf {
	if tb := t.byTopic[topic]; tb != nil {
		return tb
	}
	name := tableName(t.c.tableFormat, topic)
	tb := t.tables[name]
	if tb == nil {
		tb = &tableBuf{name: name, byKey: map[string]*op{}}
		t.tables[name] = tb
	}
	t.byTopic[topic] = tb
	return tb
}

// add buffers one record; errors about the record are *RecordError.
func (t *task) add(r *connect.Record) error {
	bad := func(format string, args ...any) error {
		return &RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Reason: fmt.Sprintf(format, args...)}
	}
	tb := t.tableFor(r.Topic)
	if r.Value == nil {
		if !t.c.deletes {
			return nil // tombstones mean nothing without delete.enabled
		}
		pk, pkv, reason := t.keyCells(r.Key)
		if reason != "" {
			return bad("tombstone: %s", reason)
		}
		return t.buffer(tb, pk, pkv, nil, bad)
	}
	m, ok := r.Value.(map[string]any)
	if !ok {
		return bad("value is %s, want an object (map[string]any) whose fields become columns; "+
			"for Debezium change events add transforms=unwrap, transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState", describe(r.Value))
	}
	row := make(map[string]cell, len(m)+1)
	for k, v := range m {
		c, err := toCell(v)
		if err != nil {
			return bad("field %q: %v", k, err)
		}
		row[k] = c
	}
	var pk []string
	var pkv []cell
	switch t.c.pkMode {
	case "record_key":
		var reason string
		if pk, pkv, reason = t.keyCells(r.Key); reason != "" {
			return bad("%s", reason)
		}
		for i, f := range pk {
			row[f] = pkv[i] // the key wins over a value field of the same name
		}
	case "record_value":
		pk = t.c.pkFields
		pkv = make([]cell, len(pk))
		for i, f := range pk {
			c, ok := row[f]
			if !ok || !c.v.Valid {
				return bad("primary key field %q is missing or null in the value", f)
			}
			pkv[i] = c
		}
	}
	return t.buffer(tb, pk, pkv, row, bad)
}

// keyCells returns the primary key columns and values of a record key, or
// why there are none.
func (t *task) keyCells(key any) ([]string, []cell, string) {
	switch k := key.(type) {
	case nil:
		return nil, nil, "the key is null, but pk.mode=record_key takes the primary key from it"
	case map[string]any:
		pk := t.c.pkFields
		if len(pk) == 0 {
			pk = slices.Sorted(maps.Keys(k))
			if len(pk) == 0 {
				return nil, nil, "the key is an empty object"
			}
		}
		pkv := make([]cell, len(pk))
		for i, f := range pk {
			v, ok := k[f]
			if !ok || v == nil {
				return nil, nil, fmt.Sprintf("primary key field %q is missing or null in the key", f)
			}
			c, err := toCell(v)
			if err != nil {
				return nil, nil, fmt.Sprintf("key field %q: %v", f, err)
			}
			pkv[i] = c
		}
		return pk, pkv, ""
	case []any:
		return nil, nil, "the key is an array; want a primitive or an object"
	}
	pk := []string{defaultKeyField}
	switch len(t.c.pkFields) {
	case 0:
	case 1:
		pk = t.c.pkFields
	default:
		return nil, nil, fmt.Sprintf("the key is a primitive (%s), which fills one column, but pk.fields names %d", describe(key), len(t.c.pkFields))
	}
	c, err := toCell(key)
	if err != nil {
		return nil, nil, "key: " + err.Error()
	}
	return pk, []cell{c}, ""
}

func describe(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64, int, int32:
		return "an integer"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []byte:
		return "bytes"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// buffer adds a write (row) or a delete (row nil) of key pkv to tb,
// merging it with the op already buffered for the key.
func (t *task) buffer(tb *tableBuf, pk []string, pkv []cell, row map[string]cell, bad func(string, ...any) error) error {
	if t.c.pkMode == "none" {
		tb.ops = append(tb.ops, &op{row: row})
		t.pending++
		return nil
	}
	if tb.pk == nil {
		tb.pk = pk
	} else if !slices.Equal(tb.pk, pk) {
		return bad("primary key columns %v differ from %v of earlier records for table %s", pk, tb.pk, tb.name)
	}
	t.pending++
	var kb strings.Builder
	for _, c := range pkv {
		kb.WriteString(strconv.Itoa(len(c.v.String)))
		kb.WriteByte(':')
		kb.WriteString(c.v.String)
	}
	key := kb.String()
	o := tb.byKey[key]
	if o == nil {
		o = &op{pkv: pkv}
		tb.byKey[key] = o
		tb.ops = append(tb.ops, o)
	}
	switch {
	case row == nil:
		o.del, o.row = true, nil // a delete cancels the writes before it
	case o.row == nil:
		o.row = row
	case !t.c.upsert:
		return bad("key %v was already inserted in this batch (insert.mode=insert; use insert.mode=upsert to update rows)", pkText(pkv))
	default:
		// Sequential upserts update only the columns each record has, so
		// the merged row keeps earlier columns that later records lack.
		maps.Copy(o.row, row)
	}
	return nil
}

func pkText(pkv []cell) []string {
	out := make([]string, len(pkv))
	for i, c := range pkv {
		out[i] = c.v.String
	}
	return out
}

// Flush implements connect.Flusher: it writes the buffered records in one
// transaction. A transaction that fails for a reason that may pass (the
// connection was lost, a serialization failure or deadlock, the server
// shutting down) is retried up to max.retries times, retry.backoff.ms
// apart, on a new connection when the old one is closed.
func (t *task) Flush(ctx context.Context, _ map[connect.TopicPartition]int64) error {
	if t.pending == 0 {
		return nil
	}
	defer t.reset()
	for attempt := 0; ; attempt++ {
		err := t.flushOnce(ctx)
		if err == nil {
			return nil
		}
		if attempt >= t.c.maxRetries || !t.retriable(err) || ctx.Err() != nil {
			return err
		}
		tm := time.NewTimer(t.c.backoff)
		select {
		case <-ctx.Done():
			tm.Stop()
			return err
		case <-tm.C:
		}
		if t.conn.IsClosed() {
			conn, cerr := pgx.ConnectConfig(ctx, t.c.conn)
			if cerr != nil {
				continue // counts as an attempt
			}
			t.conn = conn
		}
	}
}

func (t *task) flushOnce(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, t.conn, func(tx pgx.Tx) error {
		for _, name := range slices.Sorted(maps.Keys(t.tables)) {
			if len(t.tables[name].ops) == 0 {
				continue // only skipped or rejected records: the table need not exist
			}
			if err := t.writeTable(ctx, tx, t.tables[name]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.meta, t.staged = nil, nil // DDL of the transaction was rolled back
		return err
	}
	return nil
}

// retriable reports whether a failed flush may succeed when run again.
func (t *task) retriable(err error) bool {
	if t.conn.IsClosed() || pgconn.SafeToRetry(err) {
		return true
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "40"),                           // transaction rollback: serialization failure, deadlock
			strings.HasPrefix(pe.Code, "53"),                           // insufficient resources
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutdown, cannot connect now
			return true
		}
	}
	return false
}

func (t *task) Stop() error {
	if t.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return t.conn.Close(ctx)
}
