package table

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Layout of a Pebble store directory:
//
//	<dir>/checkpoint   the local checkpoint (see AppendCheckpoint)
//	<dir>/db/          the pebble database
const (
	checkpointFile = "checkpoint"
	dbDir          = "db"
)

// Defaults of the Pebble options.
const (
	// DefaultMemTableSize is the pebble memtable size of a store.
	DefaultMemTableSize = 4 << 20
	// DefaultBlockCacheSize is the pebble block cache size of a store.
	DefaultBlockCacheSize = 32 << 20
	// restoreBatchBytes is how large a WriteBatch batch grows before it is
	// committed. Measured (BenchmarkRestore, 1M records, 4 MiB memtable):
	// 256 KiB restores 0.9-1.1M rec/s allocating 10 MB; 1 MiB batches take
	// pebble's large-batch path and restore 0.33-0.42M rec/s allocating
	// 460 MB.
	restoreBatchBytes = 256 << 10
)

// PebbleOpt configures OpenPebble.
type PebbleOpt func(*pebbleCfg)

type pebbleCfg struct {
	memTableSize   uint64
	blockCacheSize int64
	logger         *slog.Logger
	exactlyOnce    bool
}

// MemTableSize sets the size of the store's memtable (default 4 MiB; pebble
// may queue up to 4 of them while flushing). Smaller saves memory per store;
// larger makes restores and write bursts faster. RocksDB's equivalent is
// write_buffer_size, which Kafka Streams sets to 16 MiB.
func MemTableSize(n uint64) PebbleOpt { return func(c *pebbleCfg) { c.memTableSize = n } }

// BlockCacheSize sets the most memory the store's block cache holds
// (default 32 MiB, filled only as blocks are read; Kafka Streams gives each
// RocksDB store 50 MiB). Window and session stores, read by key and time
// range at every record, need their working set in it.
func BlockCacheSize(n int64) PebbleOpt { return func(c *pebbleCfg) { c.blockCacheSize = n } }

// Logger sets where pebble's own messages go (at debug level; its errors
// at error level). The default discards them.
func Logger(l *slog.Logger) PebbleOpt { return func(c *pebbleCfg) { c.logger = l } }

// ExactlyOnce makes OpenPebble remove the checkpoint as soon as it has read
// it, as Kafka Streams does under exactly-once: until the next Checkpoint
// there is none, so a crash in between wipes the store at the next open
// instead of trusting a disk that may hold writes of aborted transactions.
// Under at-least-once (the default) the checkpoint stays, and a crash costs
// only a tail restore.
func ExactlyOnce(on bool) PebbleOpt { return func(c *pebbleCfg) { c.exactlyOnce = on } }

// Persistent is an optional capability of a Store that survives restarts
// and keeps a local checkpoint (Pebble). Stores without it are restored
// from the start of their changelog.
type Persistent interface {
	Store

	// RestoreFrom returns the changelog offset to restore from, as found
	// when the store was opened: the checkpoint's offset, or 0 if there
	// was no valid checkpoint (and the local state was wiped).
	RestoreFrom() int64

	// Checkpoint durably records that the store holds every changelog
	// record below offset. Call it only after Flush, once the changelog
	// records up to offset are acknowledged (see the package doc).
	Checkpoint(offset int64) error
}

// Pebble is a Store in a pebble database: one database per store
// directory, tuned small, without a write-ahead log and without syncing
// writes. The changelog is the source of truth: what a crash loses since
// the last Flush is restored from it, from the offset in the local
// checkpoint (see Persistent).
//
// The owning task writes and reads through the Store methods; other
// goroutines read through Query, whose scans each read a consistent
// point-in-time view (a pebble iterator). Close waits for in-flight query
// reads to finish, and reads after it return ErrClosed.
type Pebble struct {
	db          *pebble.DB
	dir         string
	restoreFrom int64
	getBuf      []byte // Get's result buffer, task-owned
	batch       *pebble.Batch

	refs struct {
		sync.Mutex
		n      int
		closed bool
		zero   chan struct{} // closed when n drops to 0 after closed
	}
}

var (
	_ Persistent   = (*Pebble)(nil)
	_ BatchWriter  = (*Pebble)(nil)
	_ Queryable    = (*Pebble)(nil)
	_ RangeDeleter = (*Pebble)(nil)
)

// OpenPebble opens (creating it if needed) the store in dir. It first reads
// dir/checkpoint: if the file is missing or corrupt, any existing database
// is deleted and RestoreFrom is 0; otherwise RestoreFrom is the checkpoint's
// offset and the database is kept.
func OpenPebble(dir string, opts ...PebbleOpt) (*Pebble, error) {
	cfg := pebbleCfg{
		memTableSize:   DefaultMemTableSize,
		blockCacheSize: DefaultBlockCacheSize,
		logger:         slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("table: open %s: %w", dir, err)
	}
	cpPath := filepath.Join(dir, checkpointFile)
	dbPath := filepath.Join(dir, dbDir)
	off, ok, err := ReadCheckpoint(cpPath)
	if err != nil && !errors.Is(err, ErrCorruption) {
		return nil, err
	}
	if !ok {
		if err != nil {
			cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "table: invalid checkpoint, wiping local state",
				slog.String("dir", dir), slog.Any("error", err))
		}
		// No trustworthy checkpoint: whatever is on disk may be ahead of,
		// behind or beside the changelog. Start empty.
		if err := os.RemoveAll(dbPath); err != nil {
			return nil, fmt.Errorf("table: wipe %s: %w", dbPath, err)
		}
		if err := RemoveCheckpoint(cpPath); err != nil {
			return nil, err
		}
		off = 0
	} else if cfg.exactlyOnce {
		if err := RemoveCheckpoint(cpPath); err != nil {
			return nil, err
		}
	}
	cache := pebble.NewCache(cfg.blockCacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:                       cache,
		DisableWAL:                  true,
		MemTableSize:                cfg.memTableSize,
		MemTableStopWritesThreshold: 4,
		MaxOpenFiles:                64,
		Logger:                      pebbleLogger{cfg.logger},
	}
	// No block compression, as Kafka Streams configures RocksDB: a state
	// store is a local cache of its changelog, and its point and range
	// reads otherwise spend much of their time decompressing blocks.
	popts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	db, err := pebble.Open(dbPath, popts)
	if err != nil {
		return nil, fmt.Errorf("table: open pebble %s: %w", dbPath, err)
	}
	return &Pebble{db: db, dir: dir, restoreFrom: off}, nil
}

// Dir returns the store directory.
func (p *Pebble) Dir() string { return p.dir }

// RestoreFrom implements Persistent.
func (p *Pebble) RestoreFrom() int64 { return p.restoreFrom }

// Checkpoint implements Persistent: it writes dir/checkpoint atomically.
func (p *Pebble) Checkpoint(offset int64) error {
	if err := p.acquire(); err != nil {
		return err
	}
	defer p.release()
	return WriteCheckpoint(filepath.Join(p.dir, checkpointFile), offset)
}

func (p *Pebble) acquire() error {
	p.refs.Lock()
	defer p.refs.Unlock()
	if p.refs.closed {
		return ErrClosed
	}
	p.refs.n++
	return nil
}

func (p *Pebble) release() {
	p.refs.Lock()
	defer p.refs.Unlock()
	p.refs.n--
	if p.refs.n == 0 && p.refs.zero != nil {
		close(p.refs.zero)
		p.refs.zero = nil
	}
}

// Get implements ReadOnly. The result is valid until the next Get or
// write; the Query view's Get returns a fresh copy instead.
func (p *Pebble) Get(key []byte) ([]byte, error) {
	v, err := p.get(p.getBuf[:0], key)
	if err == nil {
		p.getBuf = v
	}
	return v, err
}

func (p *Pebble) get(dst, key []byte) ([]byte, error) {
	if err := p.acquire(); err != nil {
		return nil, err
	}
	defer p.release()
	v, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("table: pebble get: %w", err)
	}
	dst = append(dst, v...)
	if dst == nil {
		dst = []byte{}
	}
	return dst, closer.Close()
}

// Put implements Store.
func (p *Pebble) Put(key, value []byte) error {
	if err := p.acquire(); err != nil {
		return err
	}
	defer p.release()
	if err := p.db.Set(key, value, pebble.NoSync); err != nil {
		return fmt.Errorf("table: pebble put: %w", err)
	}
	return nil
}

// Delete implements Store.
func (p *Pebble) Delete(key []byte) error {
	if err := p.acquire(); err != nil {
		return err
	}
	defer p.release()
	if err := p.db.Delete(key, pebble.NoSync); err != nil {
		return fmt.Errorf("table: pebble delete: %w", err)
	}
	return nil
}

// DeleteRange implements RangeDeleter with one pebble range tombstone.
func (p *Pebble) DeleteRange(from, to []byte) error {
	if bytes.Compare(from, to) >= 0 {
		return nil
	}
	if err := p.acquire(); err != nil {
		return err
	}
	defer p.release()
	if err := p.db.DeleteRange(from, to, pebble.NoSync); err != nil {
		return fmt.Errorf("table: pebble delete range: %w", err)
	}
	return nil
}

// WriteBatch implements BatchWriter with pebble batches of about 256 KiB,
// committed without sync.
func (p *Pebble) WriteBatch(records iter.Seq2[[]byte, []byte]) (int, error) {
	if err := p.acquire(); err != nil {
		return 0, err
	}
	defer p.release()
	if p.batch == nil {
		p.batch = p.db.NewBatch()
	}
	b := p.batch
	defer b.Reset()
	n := 0
	var err error
	records(func(k, v []byte) bool {
		if v == nil {
			err = b.Delete(k, nil)
		} else {
			err = b.Set(k, v, nil)
		}
		if err == nil && b.Len() >= restoreBatchBytes {
			err = b.Commit(pebble.NoSync)
			b.Reset()
		}
		if err != nil {
			return false
		}
		n++
		return true
	})
	if err == nil && !b.Empty() {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		return n, fmt.Errorf("table: pebble write batch: %w", err)
	}
	return n, nil
}

// Flush implements Store: it writes the memtable to an sstable (pebble
// syncs sstables and its manifest), so that a Checkpoint may follow.
func (p *Pebble) Flush() error {
	if err := p.acquire(); err != nil {
		return err
	}
	defer p.release()
	if err := p.db.Flush(); err != nil {
		return fmt.Errorf("table: pebble flush: %w", err)
	}
	return nil
}

// Close implements Store. It waits for in-flight reads, does not flush
// and does not write a checkpoint.
func (p *Pebble) Close() error {
	p.refs.Lock()
	if p.refs.closed {
		p.refs.Unlock()
		return nil
	}
	p.refs.closed = true
	var wait chan struct{}
	if p.refs.n > 0 {
		wait = make(chan struct{})
		p.refs.zero = wait
	}
	p.refs.Unlock()
	if wait != nil {
		<-wait
	}
	if p.batch != nil {
		_ = p.batch.Close()
	}
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("table: pebble close: %w", err)
	}
	return nil
}

// Range implements ReadOnly.
func (p *Pebble) Range(from, to []byte) *Iter[[]byte, []byte] {
	from, to = cloneBound(from), cloneBound(to)
	if to != nil && bytes.Compare(from, to) >= 0 {
		return NewIter(func(func(k, v []byte) bool) error { return nil })
	}
	return NewIter(func(yield func(k, v []byte) bool) error {
		return p.scan(from, to, yield)
	})
}

// Prefix implements ReadOnly.
func (p *Pebble) Prefix(pre []byte) *Iter[[]byte, []byte] {
	return p.Range(bytes.Clone(pre), PrefixEnd(pre))
}

// All implements ReadOnly.
func (p *Pebble) All() *Iter[[]byte, []byte] { return p.Range(nil, nil) }

func (p *Pebble) scan(from, to []byte, yield func(k, v []byte) bool) error {
	return p.Ranges([]KeyRange{{From: from, To: to}}, yield)
}

// Ranges implements MultiRanger.
func (p *Pebble) Ranges(rs []KeyRange, yield func(k, v []byte) bool) (err error) {
	if len(rs) == 0 {
		return nil
	}
	if err := p.acquire(); err != nil {
		return err
	}
	defer p.release()
	lo, hi := rs[0].From, rs[len(rs)-1].To
	if len(lo) == 0 {
		lo = nil
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("table: pebble scan: %w", err)
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("table: pebble scan: %w", cerr)
		}
	}()
	for _, r := range rs {
		var valid bool
		if len(r.From) == 0 {
			valid = it.First() // pebble's invariants builds (-race) index key[0] of a seek key
		} else {
			valid = it.SeekGE(r.From)
		}
		for ; valid && (r.To == nil || bytes.Compare(it.Key(), r.To) < 0); valid = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				return fmt.Errorf("table: pebble scan: %w", err)
			}
			if v == nil {
				v = []byte{}
			}
			if !yield(it.Key(), v) {
				return nil
			}
		}
		if err := it.Error(); err != nil {
			return fmt.Errorf("table: pebble scan: %w", err)
		}
	}
	return nil
}

// Query implements Queryable.
func (p *Pebble) Query() ReadOnly { return pebbleView{p} }

// pebbleView is the concurrent read-only view of a Pebble store: the same
// reads, except that Get copies into a fresh slice.
type pebbleView struct{ p *Pebble }

func (v pebbleView) Get(key []byte) ([]byte, error)              { return v.p.get(nil, key) }
func (v pebbleView) Range(from, to []byte) *Iter[[]byte, []byte] { return v.p.Range(from, to) }
func (v pebbleView) Prefix(pre []byte) *Iter[[]byte, []byte]     { return v.p.Prefix(pre) }
func (v pebbleView) All() *Iter[[]byte, []byte]                  { return v.p.All() }
func (v pebbleView) Ranges(rs []KeyRange, yield func(k, v []byte) bool) error {
	return v.p.Ranges(rs, yield)
}

// pebbleLogger sends pebble's messages to slog.
type pebbleLogger struct{ l *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is called by pebble for unrecoverable states; it must not return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	l.l.Error(msg)
	panic(msg)
}
