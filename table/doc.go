// Package table holds the state stores of stream tasks: ordered key-value
// stores of bytes (in memory, or in pebble), a wrapper that records their
// writes to a changelog, restoration from that changelog with a local
// checkpoint, a record cache that absorbs repeated updates between commits,
// a typed layer over serde.Serde, and read-only views for interactive
// queries.
//
// Below the serde edge everything is []byte; scans return an *Iter whose
// All is an iter.Seq2 and whose Err reports what ended a scan early.
//
// # Stacking
//
// The runtime builds one stack per store of a task, from the top:
//
//	KV[K,V]          typed, encodes into reused buffers
//	  Cached         record cache (Cache shared by the task's stores)
//	    Logged       every write that reaches it goes to the Changelog
//	      Pebble     or Memory: the data
//
// Entries leave the cache (at eviction or Flush) into Logged, so the
// changelog and downstream processors (the FlushFunc) see the latest value
// per key, as with Kafka Streams' caching. QueryView(top) finds the
// concurrent view of the bottom store.
//
// Window and session stores put a Segmented store between Logged and the
// data store (Cached, Logged, Segmented, Pebble or Memory): the cache and
// the changelog keep Kafka Streams' key formats, and only the data store
// sees the segmented layout below.
//
// # Segmented layout
//
// A Segmented store is given external keys in one of two layouts:
//
//	WindowLayout   key bytes | start (8)
//	SessionLayout  len (4) | key bytes | end (8) | start (8)
//
// (big-endian; the window key is Kafka Streams' TimeWindowedSerde). It
// writes each record to the store below under
//
//	+-------------+---------+-----------+-----------------------------------+
//	| segment (8) | len (4) | key bytes | start (8)  or  end (8) | start (8) |
//	+-------------+---------+-----------+-----------------------------------+
//
// where segment = floor(t / interval) of the record's time t (window
// start, session end), and segment ids and times are big-endian with the
// sign bit flipped so that they sort numerically. The length prefix keeps
// the records of key "a" apart from those of "ab". One more key, ten 0xff
// bytes then "observed", holds the observed time (written at Flush).
//
// The interval defaults to max(retention/2, 60 s), as in Kafka Streams.
// The observed time is the greatest record time put, or stream time passed
// to Expire; records older than observed - retention are expired. Reads
// skip them; puts of them are dropped (so a restore from a changelog that
// still holds them does not bring them back); and a segment whose every
// time is expired is dropped with one DeleteRange (a pebble range
// tombstone; Memory unlinks the range) when the observed time moves, so a
// store keeps about retention/interval + 1 live segments and expiry costs
// O(segments), not O(records). Expired records in the oldest live segment
// stay on disk, hidden, until their whole segment goes; no tombstones
// reach the changelog (the runtime gives windowed changelogs
// cleanup.policy=compact,delete, as Kafka Streams does).
//
// Fetch(key, from, to) reads, in each live segment covering [from, to],
// the range segment|len|key|from up to segment|len|key|to, in time order.
// FetchAll reads whole segments. Range, Prefix and All keep the Store
// contract (ascending external keys) by reading every live segment and
// sorting: they are for verification and small stores. Restore writes to
// the Segmented store (it is not a Wrapper), so restored records are laid
// out, and expired, like written ones.
//
// # Scan bounds
//
// Range(from, to) is half-open, from inclusive and to exclusive, with nil
// meaning unbounded; Prefix(p) is Range(p, PrefixEnd(p)). (Kafka Streams'
// range is inclusive at both ends; half-open bounds compose with prefixes
// and pebble's iterator bounds.)
//
// # Commit and restore protocol
//
// A Pebble store's directory holds the database and a checkpoint file: the
// changelog offset up to which (exclusive) the database holds every record.
// The runtime, per task:
//
// On commit (every commit interval, and on clean shutdown):
//  1. Cached.Flush on each store, in topological order: dirty entries go
//     to Logged (hence to the Changelog) and downstream; then the store
//     below is flushed (Store.Flush; pebble writes its memtable to an
//     sstable).
//  2. Flush the producer; with exactly-once, commit the transaction that
//     carries the input offsets; otherwise commit the input offsets.
//  3. Persistent.Checkpoint(next changelog offset of the task's partition).
//     Under exactly-once the stream runtime does this only at a clean
//     shutdown (after the last transaction committed): between commits the
//     disk may hold writes of the open transaction, which an abort must
//     discard.
//
// On start (task assigned):
//  1. OpenPebble reads the checkpoint. If it is missing or corrupt (an
//     unclean shutdown, or a first start), the database is wiped and
//     RestoreFrom is 0; otherwise RestoreFrom is the checkpoint's offset.
//     Memory stores have no checkpoint: they restore from 0.
//  2. Read the changelog partition from RestoreFrom to its end offset (as
//     of the start of restoration) and pass each fetched batch to Restore,
//     which applies it to the bottom store in pebble batches, bypassing
//     cache and changelogging.
//  3. Optionally Flush and Checkpoint(end offset), then start processing.
//
// Under ExactlyOnce the checkpoint is removed as soon as OpenPebble has
// read it, so a crash (or an abort, which closes and reopens the store)
// before the next checkpoint wipes the store: the disk may hold writes of
// transactions that were aborted. Under at-least-once the
// checkpoint stays, and a crash costs a restore of the tail only; writes
// after the checkpoint that reached the disk but not the changelog may
// survive, which at-least-once reprocessing allows (as in Kafka Streams).
//
// The pebble database runs without a write-ahead log and without syncing
// writes: the changelog is the source of truth, and the checkpoint is
// written only after a Flush has made the state it describes durable.
// WriteCheckpoint replaces the file atomically (temporary file, fsync,
// rename, directory fsync).
//
// # Concurrency
//
// A store stack belongs to its task: one goroutine at a time calls its
// methods, and a Cache belongs to the goroutine of the tasks sharing it.
// Interactive queries use QueryView (or View over it), which is safe from
// any goroutine while the task writes, and reads the bottom store:
//   - it sees a write once it has left the record cache (eviction, or the
//     next commit's flush at the latest), not before, and before the
//     changelog is acknowledged (read-uncommitted with respect to Kafka);
//   - a Pebble scan is a consistent point-in-time view; a Memory scan
//     yields each key at most once, in order, with a value it had at some
//     moment during the scan (it holds the lock 128 entries at a time);
//   - Close waits for in-flight Pebble reads; later reads get ErrClosed.
package table
