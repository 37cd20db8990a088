package pgsink

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// closeTimeout bounds closing the connection in Stop.
const closeTimeout = 5 * time.Second

// splitTable splits a table name format into schema (may be empty) and
// table at its first dot.
func splitTable(format string) (schema, table string, err error) {
	s := strings.ReplaceAll(format, "${topic}", "t")
	parts := strings.Split(s, ".")
	if len(parts) > 2 || slices.Contains(parts, "") {
		return "", "", errors.New("want table or schema.table, where ${topic} stands for the topic name")
	}
	schema, table, ok := strings.Cut(format, ".")
	if !ok {
		return "", format, nil
	}
	return schema, table, nil
}

// tableName is the quoted name of the table for topic: ${topic} in format
// replaced by the topic with dots as underscores.
func tableName(format, topic string) string {
	schema, table, _ := splitTable(format)
	topic = strings.ReplaceAll(topic, ".", "_")
	table = strings.ReplaceAll(table, "${topic}", topic)
	if schema == "" {
		return pgx.Identifier{table}.Sanitize()
	}
	return pgx.Identifier{strings.ReplaceAll(schema, "${topic}", topic), table}.Sanitize()
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// columns returns the columns of table and their types, or nil when the
// table does not exist.
func (t *task) columns(ctx context.Context, tx pgx.Tx, table string) (map[string]string, error) {
	if cols, ok := t.meta[table]; ok {
		return cols, nil
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return nil, fmt.Errorf("pgsink: look up table %s: %w", table, err)
	}
	var cols map[string]string
	if exists {
		// The type without its modifier: "character varying", not
		// "character varying(20)", so that casting a value to it does not
		// truncate; the assignment to the column still checks the modifier.
		rows, _ := tx.Query(ctx, `SELECT attname, format_type(atttypid, NULL) FROM pg_attribute
			WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`, table)
		cols = map[string]string{}
		var name, typ string
		_, err := pgx.ForEachRow(rows, []any{&name, &typ}, func() error {
			cols[name] = typ
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("pgsink: columns of table %s: %w", table, err)
		}
	}
	if t.meta == nil {
		t.meta = map[string]map[string]string{}
	}
	t.meta[table] = cols
	return cols, nil
}

// writeTable writes the ops of tb: the table is created or evolved as
// configured, then deletes run, then rows are written, grouped by their
// column sets.
func (t *task) writeTable(ctx context.Context, tx pgx.Tx, tb *tableBuf) error {
	kinds := map[string]kind{}
	for _, o := range tb.ops {
		for c, v := range o.row {
			if k, ok := kinds[c]; !ok || k == kindNull {
				kinds[c] = v.k
			}
		}
	}
	cols, err := t.columns(ctx, tx, tb.name)
	if err != nil {
		return err
	}
	if cols == nil {
		if !t.c.autoCreate {
			return fmt.Errorf("pgsink: table %s does not exist; create it or set auto.create=true", tb.name)
		}
		if err := t.create(ctx, tx, tb, kinds); err != nil {
			return err
		}
		if cols, err = t.columns(ctx, tx, tb.name); err != nil {
			return err
		}
	}
	var add []string
	for c := range kinds {
		if _, ok := cols[c]; !ok {
			add = append(add, c)
		}
	}
	if len(add) > 0 {
		slices.Sort(add)
		if !t.c.autoEvolve {
			return fmt.Errorf("pgsink: table %s has no column %s; add it or set auto.evolve=true", tb.name, strings.Join(add, ", "))
		}
		var b strings.Builder
		fmt.Fprintf(&b, "ALTER TABLE %s", tb.name)
		for i, c := range add {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, " ADD COLUMN IF NOT EXISTS %s %s", quote(c), kinds[c].pgType())
		}
		if _, err := tx.Exec(ctx, b.String()); err != nil {
			return fmt.Errorf("pgsink: evolve table %s: %w", tb.name, err)
		}
		delete(t.meta, tb.name)
		if cols, err = t.columns(ctx, tx, tb.name); err != nil {
			return err
		}
	}

	if err := t.deletes(ctx, tx, tb, cols); err != nil {
		return err
	}
	groups := map[string][]map[string]cell{}
	var order []string
	for _, o := range tb.ops {
		if o.row == nil {
			continue
		}
		sig := strings.Join(slices.Sorted(maps.Keys(o.row)), "\x00")
		if _, ok := groups[sig]; !ok {
			order = append(order, sig)
		}
		groups[sig] = append(groups[sig], o.row)
	}
	for _, sig := range order {
		names := strings.Split(sig, "\x00")
		types := make([]string, len(names))
		for i, c := range names {
			types[i] = cols[c]
		}
		rows := groups[sig]
		for len(rows) > 0 {
			n := min(len(rows), t.c.batchSize)
			if err := t.writeRows(ctx, tx, tb, names, types, rows[:n]); err != nil {
				return fmt.Errorf("pgsink: write to %s: %w", tb.name, err)
			}
			rows = rows[n:]
		}
	}
	return nil
}

// create creates the table of tb from the kinds of its columns, with the
// primary key columns first.
func (t *task) create(ctx context.Context, tx pgx.Tx, tb *tableBuf, kinds map[string]kind) error {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (", tb.name)
	names := slices.Clone(tb.pk)
	for _, c := range slices.Sorted(maps.Keys(kinds)) {
		if !slices.Contains(tb.pk, c) {
			names = append(names, c)
		}
	}
	for i, c := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		k := kinds[c]
		if k == kindNull && i < len(tb.pk) {
			k = tb.ops[0].pkv[i].k // a key column of a table that only sees deletes
		}
		fmt.Fprintf(&b, "%s %s", quote(c), k.pgType())
		if i < len(tb.pk) {
			b.WriteString(" NOT NULL")
		}
	}
	if len(tb.pk) > 0 {
		b.WriteString(", PRIMARY KEY (")
		for i, c := range tb.pk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(c))
		}
		b.WriteByte(')')
	}
	b.WriteByte(')')
	if _, err := tx.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("pgsink: create table %s: %w", tb.name, err)
	}
	delete(t.meta, tb.name)
	return nil
}

// deletes deletes the rows of the ops of tb that delete, in statements of
// at most batch.size keys.
func (t *task) deletes(ctx context.Context, tx pgx.Tx, tb *tableBuf, cols map[string]string) error {
	var keys [][]cell
	for _, o := range tb.ops {
		if o.del {
			keys = append(keys, o.pkv)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "DELETE FROM %s AS t USING unnest(", tb.name)
	for i := range tb.pk {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::text[]", i+1)
	}
	b.WriteString(") AS d(")
	for i := range tb.pk {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "c%d", i+1)
	}
	b.WriteString(") WHERE ")
	for i, c := range tb.pk {
		if i > 0 {
			b.WriteString(" AND ")
		}
		fmt.Fprintf(&b, "t.%s = d.c%d::%s", quote(c), i+1, cols[c])
	}
	sql := b.String()
	for len(keys) > 0 {
		n := min(len(keys), t.c.batchSize)
		args := make([]any, len(tb.pk))
		for i := range tb.pk {
			a := make([]pgtype.Text, n)
			for j, k := range keys[:n] {
				a[j] = k[i].v
			}
			args[i] = a
		}
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("pgsink: delete from %s: %w", tb.name, err)
		}
		keys = keys[n:]
	}
	return nil
}

// conflict returns the ON CONFLICT clause for a write of cols to tb: none
// in insert mode, else an update of the columns outside the primary key.
func (t *task) conflict(tb *tableBuf, cols []string) string {
	if !t.c.upsert {
		return ""
	}
	var b strings.Builder
	b.WriteString(" ON CONFLICT (")
	for i, c := range tb.pk {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(c))
	}
	b.WriteString(") DO ")
	n := 0
	for _, c := range cols {
		if slices.Contains(tb.pk, c) {
			continue
		}
		if n == 0 {
			b.WriteString("UPDATE SET ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = EXCLUDED.%s", quote(c), quote(c))
		n++
	}
	if n == 0 {
		b.WriteString("NOTHING")
	}
	return b.String()
}

func columnList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quote(c)
	}
	return strings.Join(q, ", ")
}

// writeRowsUnnest writes rows in one statement: each column travels as one
// text[] parameter, and
//
//	INSERT INTO t (a, b) SELECT c1::bigint, c2::text FROM unnest($1::text[], $2::text[]) AS s(c1, c2) [ON CONFLICT ...]
//
// casts the values to the column types. The statement text depends only on
// the table and the column set, so pgx prepares it once per connection.
func (t *task) writeRowsUnnest(ctx context.Context, tx pgx.Tx, tb *tableBuf, cols, types []string, rows []map[string]cell) error {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) SELECT ", tb.name, columnList(cols))
	for i := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "c%d::%s", i+1, types[i])
	}
	b.WriteString(" FROM unnest(")
	for i := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::text[]", i+1)
	}
	b.WriteString(") AS s(")
	for i := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("c" + strconv.Itoa(i+1))
	}
	b.WriteByte(')')
	b.WriteString(t.conflict(tb, cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		a := make([]pgtype.Text, len(rows))
		for j, r := range rows {
			a[j] = r[c].v
		}
		args[i] = a
	}
	_, err := tx.Exec(ctx, b.String(), args...)
	return err
}

// writeRowsBatch writes rows as one statement per row, sent together in a
// pgx.Batch (one round trip). It is the alternative to writeRowsUnnest
// that BenchmarkSink compares.
func (t *task) writeRowsBatch(ctx context.Context, tx pgx.Tx, tb *tableBuf, cols, types []string, rows []map[string]cell) error {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES (", tb.name, columnList(cols))
	for i := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::text::%s", i+1, types[i])
	}
	b.WriteByte(')')
	b.WriteString(t.conflict(tb, cols))
	sql := b.String()
	var batch pgx.Batch
	for _, r := range rows {
		args := make([]any, len(cols))
		for i, c := range cols {
			args[i] = r[c].v
		}
		batch.Queue(sql, args...)
	}
	return tx.SendBatch(ctx, &batch).Close()
}

// writeRowsCopy writes rows through a temporary staging table of text
// columns: COPY into it, then one INSERT ... SELECT ... ON CONFLICT from it
// into the table, then TRUNCATE. It is the other alternative to
// writeRowsUnnest that BenchmarkSink compares.
func (t *task) writeRowsCopy(ctx context.Context, tx pgx.Tx, tb *tableBuf, cols, types []string, rows []map[string]cell) error {
	stage := "pgsink_stage_" + strconv.Itoa(len(cols))
	names := make([]string, len(cols))
	for i := range cols {
		names[i] = "c" + strconv.Itoa(i+1)
	}
	if !t.staged[len(cols)] {
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+stage+" ("+strings.Join(names, " text, ")+" text) ON COMMIT DELETE ROWS"); err != nil {
			return err
		}
		if t.staged == nil {
			t.staged = map[int]bool{}
		}
		t.staged[len(cols)] = true
	}
	vals := make([][]any, len(rows))
	for j, r := range rows {
		v := make([]any, len(cols))
		for i, c := range cols {
			v[i] = r[c].v
		}
		vals[j] = v
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, names, pgx.CopyFromRows(vals)); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) SELECT ", tb.name, columnList(cols))
	for i := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "c%d::%s", i+1, types[i])
	}
	b.WriteString(" FROM " + stage)
	b.WriteString(t.conflict(tb, cols))
	if _, err := tx.Exec(ctx, b.String()); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "TRUNCATE "+stage)
	return err
}
