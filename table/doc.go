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
