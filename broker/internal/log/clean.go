package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/sluicehq/sluice/broker/internal/records"
)

// The cleaner compacts a partition like Kafka's LogCleaner.
//
// # Sections
//
// The closed segments (never the active one) split at the cleaner
// checkpoint, the first dirty offset, kept in the file
// cleaner-offset-checkpoint ("1 <offset>\n", replaced atomically):
//
//	log start        first dirty         clean end        active segment
//	|---- clean ------|------ dirty --------|-- too new ---|-------------->
//
// The dirty section ends at the first batch whose max timestamp is less
// than min.compaction.lag.ms old (or where the offset map is full), else
// at the active segment. A pass builds a map key -> latest offset over the
// dirty section, then rewrites every segment from the log start to the end
// of the dirty section, keeping a record only if no later offset of its key
// is in the map; batches past the clean end are copied verbatim. The first
// dirty offset then becomes the clean end.
//
// # Batches
//
// Records keep their offsets. A batch that loses records is rebuilt as
// Kafka rebuilds it: its base offset and last offset delta stay (so that
// base sequence + last offset delta is still the producer's last sequence,
// and offset deltas keep their meaning), the remaining records are
// re-encoded and recompressed with the batch's codec, the record count,
// max timestamp, length and CRC are recomputed. A batch that loses nothing
// is copied byte for byte. A batch that loses every record is dropped,
// except that an empty batch (record count 0, uncompressed, same base
// offset and last offset delta) is kept when
//   - it is the last batch of its producer id in its segment: the producer
//     state rebuilt at startup (ScanBatches) must still see the producer's
//     last sequence and epoch, as Kafka keeps it; or
//   - it is the last batch of the last segment of a group: the cleaned
//     segment must end at the same offset as what it replaces, so that an
//     interrupted swap can be completed by offset range (see below).
//
// Records with a null key (written before the topic became compacted) are
// removed, as Kafka's cleaner does. Records below the log start offset are
// removed too.
//
// # Tombstones
//
// A record with a null value is a tombstone: it is kept while it is the
// latest of its key, for at least delete.retention.ms after the pass that
// first cleaned its batch. That pass stamps the batch with a delete horizon
// as Kafka does since KIP-534: attribute bit 6 set and FirstTimestamp =
// now + delete.retention.ms, every record's timestamp delta rewritten so
// that FirstTimestamp + delta is unchanged. A later pass that finds
// now >= the horizon removes the batch's tombstones.
//
// # Transactions
//
// Each pass first scans the log's batch headers to learn which
// transactional batches belong to aborted transactions and where the
// earliest open transaction starts; see batchDecision for the rules.
//
// Transaction markers (COMMIT/ABORT control batches) go as in Kafka, in
// two passes (see filterMarker). While rewriting in offset order, the pass
// tracks per producer whether it keeps any batch of the producer's current
// transaction (a record, or an empty batch kept for producer state). A
// marker whose transaction kept nothing, and which is not the last batch
// of its producer in its segment, is stamped with a delete horizon like a
// tombstone's batch; a pass that finds now >= the horizon, and the
// transaction still empty, removes it. A marker is never removed while a
// batch of its transaction remains before it: the startup rebuild of the
// transaction state (which opens a transaction at any transactional batch
// and closes it at the producer's next marker) would otherwise see an
// open transaction and hold the last stable offset back for good. Markers
// past the dirty section, hence of every transaction still open and after
// the first unstable offset, are not touched. The earliest horizon kept
// (of tombstones and markers) schedules the next pass (CleanableRatio).
// A pass lists the ABORT markers whose transaction has no batch left
// (CleanStats.EmptyAborts) for the owner of the aborted-transaction index
// to forget before the next pass.
//
// # Groups and the swap
//
// Consecutive segments to rewrite are grouped while their sizes add up to
// at most segment.bytes and their offsets fit the 32-bit relative index;
// each group becomes one segment named after the group's first base
// offset. Each group is swapped in on its own, with Kafka's protocol:
//
//  1. write <base>.log.cleaned and fsync it (indexes are built in memory);
//  2. rename it to <base>.log.swap and fsync the directory: the commit
//     point;
//  3. remove the group's old .log/.index/.timeindex files and fsync the
//     directory;
//  4. rename <base>.log.swap to <base>.log, write its indexes, and swap
//     the in-memory segment list.
//
// Open removes *.cleaned (rolling back a swap before its commit point) and
// completes every *.log.swap: it scans the swap file for its end offset E,
// removes every segment with a base offset in [base, E), and renames the
// swap file. So after a crash a group's offsets are served either wholly by
// the old segments or wholly by the cleaned one. Reads holding an old
// segment keep its open file until they release it.
const (
	cleanerCheckpointName = "cleaner-offset-checkpoint"
	cleanedSuffix         = ".cleaned"
	swapSuffix            = ".swap"

	// cleanerMapBytes bounds the memory of one pass's offset map (Kafka's
	// log.cleaner.dedupe.buffer.size). A pass whose dirty section has
	// more keys stops its dirty section where the map filled.
	cleanerMapBytes = 128 << 20
	// mapEntryOverhead approximates a map entry's memory beyond its key.
	mapEntryOverhead = 64
	cleanerIOSize    = 1 << 20
)

// CleanStats describes one Clean pass.
type CleanStats struct {
	// FirstDirty and CleanEnd delimit the dirty section the pass
	// compacted against: [FirstDirty, CleanEnd). CleanEnd is the next
	// pass's FirstDirty. Both are 0 when the pass did nothing.
	FirstDirty, CleanEnd int64
	// Keys is how many distinct keys the dirty section held.
	Keys int
	// SegmentsRead and SegmentsWritten count the segments replaced and
	// the cleaned segments replacing them.
	SegmentsRead, SegmentsWritten int
	// BytesRead and BytesWritten are the sizes of the replaced and the
	// replacing segments.
	BytesRead, BytesWritten int64
	// RecordsRead counts the records of the rewritten segments;
	// RecordsRemoved those removed, TombstonesRemoved among them the
	// tombstones whose delete horizon had passed.
	RecordsRead, RecordsRemoved, TombstonesRemoved int64
	// MarkersRemoved counts the transaction markers (control batches)
	// removed: those of empty transactions whose delete horizon had
	// passed.
	MarkersRemoved int64
	// EmptyAborts lists the offsets of the ABORT markers, in the groups
	// the pass swapped in or left as they were, whose transaction has no
	// batch left: stamped, waiting for their delete horizon, or removed.
	// An aborted-transaction index must forget them before the next pass
	// (as Kafka's cleaner rewrites the transaction index): a
	// read_committed consumer given an aborted transaction skips its
	// producer's transactional batches until it meets the ABORT marker,
	// and the cleaner removes such markers from the next pass on (never
	// in the pass that removed the transaction's data). The startup
	// rebuild of the transaction state finds no batch to open such a
	// transaction, so records none.
	EmptyAborts []int64
	// Duration is the wall-clock time the pass took.
	Duration time.Duration
}

// errCleanAborted is returned internally when the log changed under a
// pass (closed, or segments deleted by retention) before its swap.
var errCleanAborted = errors.New("broker/log: clean aborted: the log changed")

// CleanableRatio returns the dirty share of the log's cleanable bytes, as
// Kafka's cleaner ranks logs: dirty / (clean + dirty), where clean counts
// the closed segments wholly before the first dirty offset and dirty the
// closed segments after it whose newest batch is at least
// min.compaction.lag.ms old (a segment-granular estimate; Clean itself
// works batch by batch). mustClean reports that a dirty segment's first
// batch is older than max.compaction.lag.ms, or that tombstones or
// transaction markers kept by an earlier pass (in this process) have
// reached their delete horizon. Both are zero for a topic that is not
// compacted.
func (l *Log) CleanableRatio() (ratio float64, mustClean bool) {
	cfg := l.cfg.Load()
	if !cfg.Compact {
		return 0, false
	}
	nowMs := l.now().UnixMilli()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return 0, false
	}
	firstDirty := max(l.mu.firstDirty, l.mu.start)
	horizonDue := nowMs >= l.mu.tombstoneHorizon
	var clean, dirty int64
	for _, s := range l.mu.segs[:len(l.mu.segs)-1] {
		switch {
		case s.next <= l.mu.start:
		case s.next <= firstDirty:
			clean += s.size
		case cfg.MinCompactionLagMs > 0 && s.maxTs > nowMs-cfg.MinCompactionLagMs:
			// Too new; so, roughly, are those after it.
			return ratioOf(clean, dirty), mustClean && dirty > 0 || horizonDue
		default:
			dirty += s.size
			if s.firstTs >= 0 && nowMs-s.firstTs > cfg.MaxCompactionLagMs {
				mustClean = true
			}
		}
	}
	return ratioOf(clean, dirty), mustClean && dirty > 0 || horizonDue
}

func ratioOf(clean, dirty int64) float64 {
	if dirty == 0 {
		return 0
	}
	return float64(dirty) / float64(clean+dirty)
}

// MaybeClean runs Clean when the log is due: its topic is compacted and
// CleanableRatio reports mustClean or a ratio of at least
// min.cleanable.dirty.ratio (with something dirty). cleaned reports
// whether a pass ran.
func (l *Log) MaybeClean() (stats CleanStats, cleaned bool, err error) {
	ratio, must := l.CleanableRatio()
	if !must && (ratio == 0 || ratio < l.cfg.Load().MinCleanableDirtyRatio) {
		return CleanStats{}, false, nil
	}
	stats, err = l.Clean()
	return stats, true, err
}

// FirstDirtyOffset returns the cleaner checkpoint: the offset where the
// part of the log not yet compacted against starts.
func (l *Log) FirstDirtyOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return max(l.mu.firstDirty, l.mu.start)
}

// Clean runs one compaction pass over the closed segments (see the comment
// at the top of clean.go) and returns what it did. It does nothing for a
// topic that is not compacted. Passes are serialised; Append, Read, Sync,
// DeleteRecords and EnforceRetention run alongside a pass, except during
// each group's short swap, which holds the admin lock. A pass that finds
// the log closed or its segments deleted by retention under it stops and
// returns the stats so far with a nil error. An I/O error leaves the log
// consistent; an error during a swap after its commit point may leave a
// .swap file that the next Open completes.
func (l *Log) Clean() (CleanStats, error) {
	t0 := time.Now()
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	cfg := l.cfg.Load()
	if !cfg.Compact {
		return CleanStats{}, nil
	}
	nowMs := l.now().UnixMilli()

	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return CleanStats{}, ErrClosed
	}
	start := l.mu.start
	firstDirty := max(l.mu.firstDirty, start)
	closed := l.mu.segs[:len(l.mu.segs)-1]
	closed = slices.Clone(closed[sortSearchNext(closed, start):])
	for _, s := range closed {
		s.acquire()
	}
	l.mu.RUnlock()
	defer releaseAll(closed)
	if len(closed) == 0 {
		return CleanStats{}, nil
	}

	c := &cleaner{l: l, cfg: cfg, nowMs: nowMs, start: start, keys: map[string]int32{}, minHorizon: math.MaxInt64,
		txnKept: map[int64]bool{}}
	if err := c.scanTxns(); err != nil {
		return CleanStats{}, err
	}
	cleanEnd, err := c.buildMap(closed, firstDirty)
	if err != nil {
		return CleanStats{}, err
	}
	// With nothing dirty (cleanEnd == firstDirty) the pass still rewrites
	// the clean section if tombstones there have expired; groups where
	// nothing changes are left alone.
	cleanEnd = max(cleanEnd, firstDirty)
	stats := CleanStats{FirstDirty: firstDirty, CleanEnd: cleanEnd, Keys: len(c.keys)}
	c.stats = &stats
	n := 0
	for n < len(closed) && closed[n].base < cleanEnd {
		n++
	}
	for _, g := range groupSegments(closed[:n], cfg.SegmentBytes) {
		if err := c.cleanGroup(g); err != nil {
			stats.Duration = time.Since(t0)
			if errors.Is(err, errCleanAborted) {
				return stats, nil
			}
			return stats, err
		}
	}
	err = l.writeOffsetFile(cleanerCheckpointName, cleanEnd)
	l.mu.Lock()
	l.mu.firstDirty = max(l.mu.firstDirty, cleanEnd)
	l.mu.tombstoneHorizon = c.minHorizon
	l.mu.Unlock()
	stats.Duration = time.Since(t0)
	return stats, err
}

// sortSearchNext returns the index of the first segment of segs whose next
// offset is past offset.
func sortSearchNext(segs []*segment, offset int64) int {
	i := 0
	for i < len(segs) && segs[i].next <= offset {
		i++
	}
	return i
}

// groupSegments splits segs into runs that fit one segment: sizes adding
// up to at most maxBytes and offsets within the 32-bit relative index, as
// Kafka groups them.
func groupSegments(segs []*segment, maxBytes int64) [][]*segment {
	var groups [][]*segment
	for len(segs) > 0 {
		n, size := 1, segs[0].size
		for n < len(segs) && size+segs[n].size <= maxBytes &&
			segs[n].next-1-segs[0].base <= maxRelOffset {
			size += segs[n].size
			n++
		}
		groups = append(groups, segs[:n])
		segs = segs[n:]
	}
	return groups
}

// batchAction is what a pass does with one batch.
type batchAction uint8

const (
	// filterRecords keeps the records that are the latest of their key.
	filterRecords batchAction = iota
	// keepBatch copies the batch verbatim.
	keepBatch
	// dropBatch removes the whole batch (subject to the empty-batch rule).
	dropBatch
	// cleanMarker applies the marker rules (see filterMarker).
	cleanMarker
)

// batchDecision applies Kafka's transaction rules, with what scanTxns
// learnt from the log itself (its batch headers and markers):
//   - a transactional data batch of an aborted transaction is dropped
//     whole (dropBatch), wherever it is in the cleaned range, so that it
//     can neither be served nor shadow an older committed value of its key
//     in the offset map;
//   - a transactional data batch of a committed transaction is filtered
//     like any other (filterRecords);
//   - a batch of a transaction still open is never cleaned: the dirty
//     section ends at the first offset of the earliest open transaction
//     (the last stable offset), see buildMap;
//   - a control batch (COMMIT/ABORT marker) is left to filterMarker
//     (cleanMarker): as in Kafka, a marker is removed once no batch of its
//     transaction remains before it and a delete horizon
//     (delete.retention.ms) has passed, in two passes.
func (c *cleaner) batchDecision(h *records.BatchHeader) batchAction {
	switch {
	case h.IsControl():
		return cleanMarker
	case h.IsTransactional() && c.txns.aborted[h.BaseOffset]:
		return dropBatch
	}
	return filterRecords
}

// txnState is what a pass knows of the transactions in the log.
type txnState struct {
	// aborted holds the base offsets of the data batches of aborted
	// transactions.
	aborted map[int64]bool
	// firstUnstable is the first offset of the earliest transaction with
	// no marker yet (math.MaxInt64: none).
	firstUnstable int64
}

// scanTxns reads every batch header of the log (and the record of each
// control batch, for its type) and pairs each producer's transactional
// batches with the producer's next marker: before an ABORT they are
// aborted; those with no marker yet are of an open transaction.
func (c *cleaner) scanTxns() error {
	st := txnState{firstUnstable: math.MaxInt64}
	pending := map[int64][]int64{} // producer id -> batch base offsets since its last marker
	var buf []byte
	var readErr error
	err := c.l.ScanBatches(c.start, func(h records.BatchHeader) bool {
		switch {
		case h.ProducerID < 0 || !h.IsTransactional():
		case h.IsControl():
			buf, readErr = c.l.Read(buf[:0], h.BaseOffset, h.TotalSize(), h.LastOffset()+1, true)
			if readErr != nil {
				return false
			}
			if typ, ok := records.ControlType(buf); ok && typ == records.ControlAbort {
				for _, off := range pending[h.ProducerID] {
					if st.aborted == nil {
						st.aborted = map[int64]bool{}
					}
					st.aborted[off] = true
				}
			}
			delete(pending, h.ProducerID)
		default:
			pending[h.ProducerID] = append(pending[h.ProducerID], h.BaseOffset)
		}
		return true
	})
	if err == nil {
		err = readErr
	}
	if err != nil {
		return err
	}
	for _, offs := range pending {
		st.firstUnstable = min(st.firstUnstable, offs[0])
	}
	c.txns = st
	return nil
}

// cleaner is the state of one pass.
type cleaner struct {
	l     *Log
	cfg   *Config
	nowMs int64
	start int64
	stats *CleanStats

	// keys maps a key to its index in latest, the latest offset of the
	// key in the dirty section; mapBytes estimates the memory.
	keys     map[string]int32
	latest   []int64
	mapBytes int

	txns txnState
	// txnKept holds the producer ids whose current transaction (since
	// their last marker, in the offset order of the rewrite) has a batch
	// that the pass keeps, even an empty one: their next marker must stay.
	txnKept map[int64]bool
	// groupAborts collects the EmptyAborts of the group being cleaned.
	groupAborts []int64

	rd   batchReader
	dec  records.Decompressor
	comp records.Compressor

	// minHorizon is the earliest delete horizon of the tombstones and
	// markers the pass kept (math.MaxInt64: none), so the log knows when a
	// pass is due to remove them even with nothing dirty.
	minHorizon int64
	raw        []byte // re-encoded records of the batch being rebuilt
	out        []byte // output not yet written
	// changed is set when the group being cleaned loses or rewrites a
	// batch.
	changed bool
}

// buildMap maps every key of the dirty section, from firstDirty through
// the closed segments, to its latest offset, and returns where the dirty
// section ends.
func (c *cleaner) buildMap(segs []*segment, firstDirty int64) (int64, error) {
	minLag := c.cfg.MinCompactionLagMs
	bound := c.cfg.decompressBound()
	for _, s := range segs {
		if s.next <= firstDirty {
			continue
		}
		if c.l.closing.Load() {
			return 0, nil
		}
		c.l.mu.RLock()
		pos := s.lookup(firstDirty)
		c.l.mu.RUnlock()
		c.rd.reset(s, pos, s.size)
		for {
			b, h, err := c.rd.next()
			if err != nil {
				return 0, err
			}
			if b == nil {
				break
			}
			if h.LastOffset() < firstDirty {
				continue
			}
			if minLag > 0 && h.MaxTimestamp > c.nowMs-minLag {
				return max(h.BaseOffset, firstDirty), nil
			}
			if h.LastOffset() >= c.txns.firstUnstable {
				// An open transaction: nothing from here is cleanable.
				return max(min(h.BaseOffset, c.txns.firstUnstable), firstDirty), nil
			}
			if c.batchDecision(&h) != filterRecords {
				continue
			}
			err = records.Records(b, &c.dec, bound, func(r records.Record) bool {
				off := h.BaseOffset + int64(r.OffsetDelta)
				if off < firstDirty || r.KeyNull {
					return true
				}
				if i, ok := c.keys[string(r.Key)]; ok {
					c.latest[i] = off
					return true
				}
				c.keys[string(r.Key)] = int32(len(c.latest))
				c.latest = append(c.latest, off)
				c.mapBytes += len(r.Key) + mapEntryOverhead
				return true
			})
			if err != nil {
				return 0, fmt.Errorf("broker/log: cleaning %s: %w", s.path, err)
			}
			if c.mapBytes >= cleanerMapBytes {
				return h.LastOffset() + 1, nil
			}
		}
	}
	return segs[len(segs)-1].next, nil
}

// cleanGroup rewrites the segments of g into one cleaned segment and swaps
// it in.
func (c *cleaner) cleanGroup(g []*segment) error {
	l := c.l
	base := g[0].base
	cleanedName := segmentName(l.dir, base, logSuffix+cleanedSuffix)
	f, err := l.fs.OpenFile(cleanedName, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("broker/log: cleaning: %w", err)
	}
	ns := newSegment(l.fs, l.dir, base, f, c.nowMs)
	ok := false
	defer func() {
		if !ok {
			ns.release()
			l.fs.Remove(cleanedName)
		}
	}()
	interval := c.cfg.IndexIntervalBytes
	var written int64
	flush := func() error {
		if len(c.out) == 0 {
			return nil
		}
		if written+int64(len(c.out)) > maxSegmentBytes {
			return fmt.Errorf("broker/log: cleaned segment %s would exceed 2 GiB", ns.path)
		}
		if _, err := f.WriteAt(c.out, written); err != nil {
			return fmt.Errorf("broker/log: writing %s: %w", cleanedName, err)
		}
		written += int64(len(c.out))
		c.out = c.out[:0]
		return nil
	}
	var read int64
	c.changed = false
	c.groupAborts = c.groupAborts[:0]
	for gi, s := range g {
		if l.closing.Load() {
			return errCleanAborted
		}
		lastOf, err := c.producerLastBatches(s)
		if err != nil {
			return err
		}
		read += s.size
		c.rd.reset(s, 0, s.size)
		for {
			b, h, err := c.rd.next()
			if err != nil {
				return err
			}
			if b == nil {
				break
			}
			keepEmpty := (gi == len(g)-1 && c.rd.pos == s.size) ||
				(h.ProducerID >= 0 && lastOf[h.ProducerID] == h.BaseOffset)
			at := len(c.out)
			if c.out, err = c.filterBatch(c.out, b, &h, keepEmpty); err != nil {
				return fmt.Errorf("broker/log: cleaning %s: %w", s.path, err)
			}
			if len(c.out) > at {
				nh, _ := records.ParseHeader(c.out[at:])
				ns.track(&nh, written+int64(at), len(c.out)-at, interval)
				if h.ProducerID >= 0 && h.IsTransactional() && !h.IsControl() {
					c.txnKept[h.ProducerID] = true
				}
			}
			if len(c.out) >= cleanerIOSize {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if !c.changed {
		c.stats.EmptyAborts = append(c.stats.EmptyAborts, c.groupAborts...)
		return nil // the deferred cleanup removes the cleaned file
	}
	if err := flush(); err != nil {
		return err
	}
	ns.maybeAppendTimeEntry()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("broker/log: fsync %s: %w", cleanedName, err)
	}
	ns.synced.Store(ns.size)
	if err := l.swapIn(g, ns); err != nil {
		return err
	}
	ok = true
	c.stats.EmptyAborts = append(c.stats.EmptyAborts, c.groupAborts...)
	c.stats.SegmentsRead += len(g)
	c.stats.SegmentsWritten++
	c.stats.BytesRead += read
	c.stats.BytesWritten += ns.size
	return nil
}

// producerLastBatches returns, for each producer id with batches in s, the
// base offset of its last batch there; nil when there are none.
func (c *cleaner) producerLastBatches(s *segment) (map[int64]int64, error) {
	var m map[int64]int64
	var hs headerScanner
	for pos := int64(0); pos < s.size; {
		h, err := hs.header(s, pos, s.size)
		if err != nil {
			return nil, err
		}
		pos += int64(h.TotalSize())
		if h.ProducerID >= 0 {
			if m == nil {
				m = map[int64]int64{}
			}
			m[h.ProducerID] = h.BaseOffset
		}
	}
	return m, nil
}

// filterBatch appends to dst what the pass keeps of batch b (header h):
// nothing, b itself, a rebuilt batch or an empty batch (when keepEmpty).
func (c *cleaner) filterBatch(dst, b []byte, h *records.BatchHeader, keepEmpty bool) ([]byte, error) {
	st := c.stats
	action := c.batchDecision(h)
	if action == cleanMarker {
		return c.filterMarker(dst, b, h, keepEmpty)
	}
	if h.LastOffset() < c.start {
		action = dropBatch
	}
	if action == filterRecords && h.BaseOffset >= c.stats.CleanEnd {
		// Past the dirty section: not cleanable yet.
		action = keepBatch
	}
	st.RecordsRead += int64(h.NumRecords)
	switch action {
	case keepBatch:
		return append(dst, b...), nil
	case dropBatch:
		c.changed = true
		st.RecordsRemoved += int64(h.NumRecords)
		if keepEmpty {
			return appendEmptyBatch(dst, h), nil
		}
		return dst, nil
	}

	if h.NumRecords == 0 {
		// An empty batch an earlier pass kept: still needed or not.
		if keepEmpty {
			return append(dst, b...), nil
		}
		c.changed = true
		return dst, nil
	}
	tombstonesExpire := h.HasDeleteHorizon() && c.nowMs >= h.FirstTimestamp
	// keep decides one record: removed when below the log start offset,
	// keyless, superseded by a later offset of its key, or a tombstone
	// whose horizon has passed.
	keep := func(r *records.Record) (ok, expiredTombstone bool) {
		off := h.BaseOffset + int64(r.OffsetDelta)
		if off < c.start || r.KeyNull {
			return false, false
		}
		if i, ok := c.keys[string(r.Key)]; ok && c.latest[i] > off {
			return false, false
		}
		if r.ValueNull && tombstonesExpire {
			return false, true
		}
		return true, false
	}
	kept, removed, tombs := 0, 0, 0
	var keptTombstone bool
	maxTs := int64(math.MinInt64)
	bound := c.cfg.decompressBound()
	c.raw = c.raw[:0]
	err := records.Records(b, &c.dec, bound, func(r records.Record) bool {
		ok, expired := keep(&r)
		if !ok {
			removed++
			if expired {
				tombs++
			}
			return true
		}
		kept++
		keptTombstone = keptTombstone || r.ValueNull
		maxTs = max(maxTs, h.FirstTimestamp+r.TimestampDelta)
		c.raw = records.AppendRecord(c.raw, &r, r.TimestampDelta)
		return true
	})
	if err != nil {
		return dst, err
	}
	st.RecordsRemoved += int64(removed)
	st.TombstonesRemoved += int64(tombs)
	setHorizon := keptTombstone && !h.HasDeleteHorizon()
	if keptTombstone {
		hz := h.FirstTimestamp
		if setHorizon {
			hz = c.nowMs + c.cfg.DeleteRetentionMs
			if hz < c.nowMs {
				hz = math.MaxInt64
			}
		}
		c.minHorizon = min(c.minHorizon, hz)
	}
	switch {
	case kept == 0 && keepEmpty:
		c.changed = true
		return appendEmptyBatch(dst, h), nil
	case kept == 0:
		c.changed = true
		return dst, nil
	case removed == 0 && !setHorizon:
		return append(dst, b...), nil
	}
	c.changed = true

	nh := *h
	nh.NumRecords = int32(kept)
	if !h.LogAppendTime() {
		nh.MaxTimestamp = maxTs
	}
	if setHorizon {
		// First clean of a batch keeping a tombstone: stamp the delete
		// horizon and rebase the kept records' timestamp deltas on it
		// (a second decode; this happens once per such batch).
		horizon := c.nowMs + c.cfg.DeleteRetentionMs
		if horizon < c.nowMs {
			horizon = math.MaxInt64
		}
		nh.Attributes |= records.AttrDeleteHorizon
		nh.FirstTimestamp = horizon
		c.raw = c.raw[:0]
		err := records.Records(b, &c.dec, bound, func(r records.Record) bool {
			if ok, _ := keep(&r); ok {
				c.raw = records.AppendRecord(c.raw, &r, h.FirstTimestamp+r.TimestampDelta-horizon)
			}
			return true
		})
		if err != nil {
			return dst, err
		}
	}
	return c.appendRebuilt(dst, &nh)
}

// appendRebuilt appends to dst a batch with header nh (whose NumRecords
// must be set) and the records encoded in c.raw, compressed with nh's
// codec; the length and CRC are computed.
func (c *cleaner) appendRebuilt(dst []byte, nh *records.BatchHeader) ([]byte, error) {
	at := len(dst)
	dst = records.AppendHeader(dst, nh)
	dst, err := c.comp.Compress(dst, nh.Compression(), c.raw)
	if err != nil {
		return dst[:at], err
	}
	nh.Length = int32(len(dst) - at - 12)
	records.AppendHeader(dst[:at], nh)
	records.UpdateCRC(dst[at:])
	return dst, nil
}

// deleteHorizon returns the delete horizon a pass stamps on a batch:
// now + delete.retention.ms, saturated.
func (c *cleaner) deleteHorizon() int64 {
	hz := c.nowMs + c.cfg.DeleteRetentionMs
	if hz < c.nowMs {
		return math.MaxInt64
	}
	return hz
}

// filterMarker appends to dst what the pass keeps of control batch b
// (header h), with Kafka's rules (LogCleaner's CleanedTransactionMetadata
// and checkBatchRetention). A COMMIT or ABORT marker closes its producer's
// current transaction; the transaction is empty when the pass keeps no
// batch of it (c.txnKept: its data was superseded, its aborted data
// dropped, and no empty batch of it is kept for producer state). The
// marker is:
//   - kept verbatim when its transaction is not empty: the producer state
//     rebuilt at startup opens a transaction at any transactional batch,
//     and only the marker closes it (without it the last stable offset
//     would stay at that batch);
//   - kept verbatim when it is the last batch of its producer in its
//     segment (keepEmpty), for the producer's epoch, as Kafka retains it;
//     and when it is past the dirty section (then so is all that follows:
//     the dirty section ends before the earliest open transaction);
//   - otherwise, when it has no delete horizon yet, stamped with one as a
//     tombstone's batch is (attribute bit 6, FirstTimestamp = now +
//     delete.retention.ms, the record's timestamp delta rebased), and kept;
//   - otherwise kept until now >= its horizon, and then removed.
//
// Control batches of other types are kept verbatim; an empty control batch
// (which only an older cleaner wrote, for a marker below the log start
// offset) with nothing of its transaction kept is removed.
func (c *cleaner) filterMarker(dst, b []byte, h *records.BatchHeader, keepEmpty bool) ([]byte, error) {
	st := c.stats
	st.RecordsRead += int64(h.NumRecords)
	if h.ProducerID < 0 {
		return append(dst, b...), nil
	}
	empty := !c.txnKept[h.ProducerID]
	if h.NumRecords > 0 {
		typ, ok := records.ControlType(b)
		if !ok || (typ != records.ControlAbort && typ != records.ControlCommit) {
			return append(dst, b...), nil
		}
		if typ == records.ControlAbort && empty && h.BaseOffset < st.CleanEnd {
			c.groupAborts = append(c.groupAborts, h.BaseOffset)
		}
	}
	delete(c.txnKept, h.ProducerID)
	remove := func() ([]byte, error) {
		c.changed = true
		st.RecordsRemoved += int64(h.NumRecords)
		st.MarkersRemoved++
		return dst, nil
	}
	switch {
	case keepEmpty:
		// Even below the log start offset: never an empty control batch,
		// which the startup rebuild would take for an ABORT.
		return append(dst, b...), nil
	case h.LastOffset() < c.start:
		return remove()
	case h.BaseOffset >= st.CleanEnd || !empty:
		return append(dst, b...), nil
	case h.NumRecords == 0:
		return remove()
	case h.HasDeleteHorizon() && c.nowMs >= h.FirstTimestamp:
		return remove()
	case h.HasDeleteHorizon():
		c.minHorizon = min(c.minHorizon, h.FirstTimestamp)
		return append(dst, b...), nil
	}
	// An empty transaction's marker, first seen empty: stamp its horizon.
	horizon := c.deleteHorizon()
	c.minHorizon = min(c.minHorizon, horizon)
	c.raw = c.raw[:0]
	err := records.Records(b, &c.dec, c.cfg.decompressBound(), func(r records.Record) bool {
		c.raw = records.AppendRecord(c.raw, &r, h.FirstTimestamp+r.TimestampDelta-horizon)
		return true
	})
	if err != nil {
		return dst, err
	}
	c.changed = true
	nh := *h
	nh.Attributes |= records.AttrDeleteHorizon
	nh.FirstTimestamp = horizon
	return c.appendRebuilt(dst, &nh)
}

// appendEmptyBatch appends a batch with h's offsets, producer fields and
// max timestamp and no records, uncompressed, as Kafka writes the empty
// batches it keeps for producer state.
func appendEmptyBatch(dst []byte, h *records.BatchHeader) []byte {
	eh := *h
	eh.Attributes &^= int16(0x07 | records.AttrDeleteHorizon)
	eh.FirstTimestamp = h.MaxTimestamp
	eh.NumRecords = 0
	eh.Length = records.HeaderSize - 12
	at := len(dst)
	dst = records.AppendHeader(dst, &eh)
	records.UpdateCRC(dst[at:])
	return dst
}

// swapIn replaces the segments of g, which must still be in the log, by
// the cleaned segment ns, written and fsynced as <base>.log.cleaned.
func (l *Log) swapIn(g []*segment, ns *segment) error {
	l.adminMu.Lock()
	defer l.adminMu.Unlock()
	l.mu.RLock()
	i := slices.Index(l.mu.segs, g[0])
	still := !l.mu.closed && i >= 0 && i+len(g) < len(l.mu.segs) &&
		slices.Equal(l.mu.segs[i:i+len(g)], g)
	l.mu.RUnlock()
	if !still {
		return errCleanAborted
	}
	base := ns.base
	swapName := segmentName(l.dir, base, logSuffix+swapSuffix)
	if err := l.fs.Rename(segmentName(l.dir, base, logSuffix+cleanedSuffix), swapName); err != nil {
		return fmt.Errorf("broker/log: swapping in %s: %w", ns.path, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		// Committed or not, Open sorts it out; do not go on without
		// knowing the swap file is durable.
		return fmt.Errorf("broker/log: swapping in %s: %w", ns.path, err)
	}
	// Committed: from here a failure leaves the swap file for Open to
	// complete, while the old segments keep serving from their open files.
	for _, s := range g {
		if err := l.removeSegmentFiles(s.base); err != nil {
			return fmt.Errorf("broker/log: swapping in %s: %w", ns.path, err)
		}
	}
	// The removals must be durable before the cleaned segment takes the
	// name: otherwise a crash could leave it beside an old segment.
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("broker/log: swapping in %s: %w", ns.path, err)
	}
	if err := l.fs.Rename(swapName, ns.path); err != nil {
		return fmt.Errorf("broker/log: swapping in %s: %w", ns.path, err)
	}
	l.dirDirty.Store(true)

	l.appendMu.Lock()
	l.mu.Lock()
	i = slices.Index(l.mu.segs, g[0])
	l.mu.segs = slices.Replace(l.mu.segs, i, i+len(g), ns)
	for _, s := range g {
		l.mu.size -= s.size
	}
	l.mu.size += ns.size
	l.mu.Unlock()
	l.appendMu.Unlock()
	for _, s := range g {
		s.release()
	}
	if err := ns.writeIndexes(l.dir); err != nil {
		l.logger.Warn("broker/log: writing segment indexes", "segment", ns.path, "err", err)
	}
	return nil
}

// completeSwaps finishes the cleaner swaps a crash interrupted: for each
// <base>.log.swap it removes the segments it replaces (base offsets in
// [base, end of the swap file)) and renames it to <base>.log.
func (l *Log) completeSwaps(names []string, interval int) error {
	var buf []byte
	for _, name := range names {
		base, ok := parseSegmentName(name[:len(name)-len(swapSuffix)], logSuffix)
		if !ok {
			continue
		}
		f, err := l.fs.OpenFile(l.path(name), os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("broker/log: %w", err)
		}
		s := newSegment(l.fs, l.dir, base, f, 0)
		st, err := f.Stat()
		if err != nil {
			s.release()
			return fmt.Errorf("broker/log: %w", err)
		}
		if buf == nil {
			buf = make([]byte, cleanerIOSize)
		}
		res, nbuf, err := s.recover(st.Size(), interval, buf)
		buf = nbuf
		end := s.next
		s.release()
		if err != nil {
			return fmt.Errorf("broker/log: recovering %s: %w", name, err)
		}
		if res.valid < st.Size() {
			// It was fsynced before it was renamed: this is damage
			// after the fact. The normal tail check deals with it
			// once it is a segment.
			l.logger.Warn("broker/log: damaged swap file", "dir", l.dir, "file", name, "reason", res.reason)
		}
		entries, err := l.fs.ReadDir(l.dir)
		if err != nil {
			return fmt.Errorf("broker/log: %w", err)
		}
		for _, e := range entries {
			if b, ok := parseSegmentName(e.Name(), logSuffix); ok && b >= base && b < end {
				if err := l.removeSegmentFiles(b); err != nil {
					return fmt.Errorf("broker/log: completing swap %s: %w", name, err)
				}
			}
		}
		// Also when the swap holds nothing at all (end == base): its own
		// base segment is the one it replaces.
		if err := l.removeSegmentFiles(base); err != nil {
			return fmt.Errorf("broker/log: completing swap %s: %w", name, err)
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("broker/log: %w", err)
		}
		if err := l.fs.Rename(l.path(name), segmentName(l.dir, base, logSuffix)); err != nil {
			return fmt.Errorf("broker/log: completing swap %s: %w", name, err)
		}
		l.logger.Warn("broker/log: completed an interrupted cleaner swap", "dir", l.dir, "segment", name, "end_offset", end)
	}
	return nil
}

// batchReader reads the whole batches of one segment in order, through a
// reusable buffer.
type batchReader struct {
	s        *segment
	buf      []byte
	chunk    []byte // buf[:n] holding file bytes from chunkPos
	chunkPos int64
	pos      int64 // next batch
	limit    int64
}

func (r *batchReader) reset(s *segment, pos, limit int64) {
	r.s, r.pos, r.limit, r.chunk, r.chunkPos = s, pos, limit, nil, pos
	if r.buf == nil {
		r.buf = make([]byte, cleanerIOSize)
	}
}

// next returns the next batch, which aliases the reader's buffer until the
// next call, or nil at the end.
func (r *batchReader) next() ([]byte, records.BatchHeader, error) {
	if r.pos >= r.limit {
		return nil, records.BatchHeader{}, nil
	}
	if err := r.fill(records.HeaderSize); err != nil {
		return nil, records.BatchHeader{}, err
	}
	h, err := records.ParseHeader(r.chunk[r.pos-r.chunkPos:])
	if err != nil || int64(h.TotalSize()) > r.limit-r.pos {
		return nil, h, &CorruptionError{Segment: r.s.path, Pos: r.pos, Reason: "bad batch header"}
	}
	if err := r.fill(h.TotalSize()); err != nil {
		return nil, h, err
	}
	b := r.chunk[r.pos-r.chunkPos:][:h.TotalSize()]
	r.pos += int64(h.TotalSize())
	return b, h, nil
}

// fill makes sure the chunk holds n bytes from r.pos.
func (r *batchReader) fill(n int) error {
	if r.pos >= r.chunkPos && r.pos+int64(n) <= r.chunkPos+int64(len(r.chunk)) {
		return nil
	}
	if n > len(r.buf) {
		r.buf = make([]byte, n)
	}
	want := min(int64(len(r.buf)), r.limit-r.pos)
	if want < int64(n) {
		return &CorruptionError{Segment: r.s.path, Pos: r.pos, Reason: "torn batch"}
	}
	m, err := r.s.f.ReadAt(r.buf[:want], r.pos)
	if int64(m) < want {
		if err == nil || err == io.EOF {
			return &CorruptionError{Segment: r.s.path, Pos: r.pos, Reason: "short read"}
		}
		return fmt.Errorf("broker/log: reading %s: %w", r.s.path, err)
	}
	r.chunk, r.chunkPos = r.buf[:want], r.pos
	return nil
}
