// Package log is one partition's durable, segmented log of Kafka record
// batches.
//
// # On-disk format
//
// A partition directory (the broker names it <data>/<topic>-<partition>)
// holds segments named by the offset of their first batch, zero-padded to 20
// digits, and one checkpoint file:
//
//	00000000000000000000.log        record batches, back to back, exactly as
//	00000000000000000000.index      the protocol carries them (base offsets
//	00000000000000000000.timeindex  assigned by the log)
//	00000000000000004096.log
//	00000000000000004096.index
//	00000000000000004096.timeindex
//	log-start-offset                "1 <offset>\n", replaced atomically
//	cleaner-offset-checkpoint       "1 <first dirty offset>\n", likewise
//	                                (compacted topics only)
//
//	.log       +------------------+------------------+-----+
//	           | batch (61 B hdr  | batch            | ... |   every batch whole,
//	           |  + records)      |                  |     |   offsets increasing
//	           +------------------+------------------+-----+
//	           ^pos 0              ^pos p1
//
//	.index     +----------------+----------------+-----+        sparse: one entry
//	           | rel uint32     | pos uint32     | ... |        per IndexIntervalBytes
//	           +----------------+----------------+-----+        of batches; rel is the
//	           8 bytes, big endian                               batch base offset minus
//	                                                             the segment's base
//
//	.timeindex +----------------+----------------+-----+        (maxTimestampSoFar,
//	           | ts int64       | rel uint32     | ... |        rel offset of the batch
//	           +----------------+----------------+-----+        that reached it); ts
//	           12 bytes, big endian                              strictly increasing
//
// The batch format is described in package records. Index entries point at
// batch starts: every record before the batch at rel has a timestamp lower
// than ts. Index files are written whole when a segment is rolled and when
// the log is closed; they are not fsynced and never trusted blindly: on open
// each one is checked against its segment (sizes, monotonicity, the last
// entry pointing at the batch it names, the batches after it chaining to the
// end of the file) and rebuilt from the segment when it does not check out.
// The last segment is always scanned batch by batch with CRCs verified, and
// the log is cut at the first torn or corrupt batch; what was cut is logged
// at Warn. Files ending in .tmp, .deleted or .cleaned are leftovers and are
// removed on open; a <base>.log.swap is a cleaner swap past its commit point
// and is completed on open (see clean.go).
//
// The log start offset is max(first segment's base offset, the checkpoint).
// The checkpoint is written (temp file, fsync, rename, fsync directory)
// whenever DeleteRecords or retention moves the start offset.
//
// # Concurrency contract
//
// All methods are safe for concurrent use. Appends are serialised; Read,
// OffsetForTime, MaxTimestamp, ScanBatches and the offset accessors run
// concurrently with Append and with each other, reading files with ReadAt and
// seeing only batches whose Append has returned. Sync callers coalesce: one
// fsync covers every waiter (group commit), and no lock that Append or Read
// needs is held across an fsync. Segments removed by retention stay readable
// by reads already under way; their files close when the last reader is done.
// See LOCKING.md for the lock order.
//
// # Compaction
//
// For cleanup.policy=compact (Config.Compact), Clean rewrites the closed
// segments keeping the latest record of each key at its original offset,
// and swaps the cleaned segments in crash-safely; clean.go documents the
// sections, the batch rules, tombstones, the seam for transactions and the
// swap protocol. A compacted batch may have gaps in its offset deltas, and
// may be empty (record count 0) to keep a producer's last sequence, as in
// Kafka.
package log
