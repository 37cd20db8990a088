package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumeOptions says what Consume reads and when it stops.
type ConsumeOptions struct {
	Topic string
	// Partition, if >= 0, reads only that partition (not with Group).
	Partition int32
	// Start is where to begin: "earliest", "latest" or an offset. With a
	// group it applies only to partitions without a committed offset.
	Start string
	// Group, if set, consumes as a member of this consumer group and
	// commits the offsets of the records printed.
	Group string
	// Max, if > 0, stops after that many records.
	Max int
	// Idle, if > 0, stops after no record arrived for that long.
	Idle time.Duration
	// Format renders records in Text output; nil means DefaultFormat.
	Format *Formatter
	// Output JSON prints one JSON object per record and line instead.
	Output Output
}

// ParseStart parses --offset: earliest, latest or a non-negative offset.
func ParseStart(s string) (kgo.Offset, error) {
	switch strings.ToLower(s) {
	case "earliest", "beginning", "start":
		return kgo.NewOffset().AtStart(), nil
	case "latest", "end", "":
		return kgo.NewOffset().AtEnd(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return kgo.Offset{}, fmt.Errorf("invalid --offset %q: want earliest, latest or an offset >= 0", s)
	}
	return kgo.NewOffset().At(n), nil
}

// ConsumerOpts returns the client options to consume as o says.
func ConsumerOpts(o ConsumeOptions) ([]kgo.Opt, error) {
	start, err := ParseStart(o.Start)
	if err != nil {
		return nil, err
	}
	if o.Group != "" && o.Partition >= 0 {
		return nil, errors.New("--partition and --group cannot be used together: a group assigns partitions itself")
	}
	if o.Partition >= 0 {
		return []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: {o.Partition: start}})}, nil
	}
	opts := []kgo.Opt{kgo.ConsumeTopics(o.Topic), kgo.ConsumeResetOffset(start)}
	if o.Group != "" {
		// Commit only what was printed: with --max the last poll may hold
		// records that are never shown.
		opts = append(opts, kgo.ConsumerGroup(o.Group), kgo.AutoCommitMarks())
	}
	return opts, nil
}

// jsonRecord is a record in --output json.
type jsonRecord struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp int64             `json:"timestamp"` // Unix ms
	Key       *string           `json:"key"`       // null when the record has no key
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// Consume prints records of o.Topic to w until ctx is done, o.Max records
// were printed or o.Idle passed without a record; all three end it without
// error. It returns the number of records printed. A topic that does not
// exist is a *TopicError. cl must have been made with ConsumerOpts(o).
func Consume(ctx context.Context, cl *kgo.Client, w io.Writer, o ConsumeOptions) (n int, err error) {
	if err := checkTopic(ctx, cl, o.Topic); err != nil {
		return 0, err
	}
	f := o.Format
	if f == nil {
		f, _ = NewFormatter(DefaultFormat)
	}
	var buf []byte
	defer func() {
		if o.Group != "" {
			// Commit what was printed before leaving the group; ctx may
			// already be cancelled by an interrupt, so use a fresh bound.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = cl.CommitMarkedOffsets(cctx) // best effort; nothing more to do on failure
		}
	}()
	// Buffer output (one write per poll, not per record). Whatever ends
	// Consume, this flush runs before the commit above (defers run in
	// reverse), so offsets are committed only after their records left.
	bw := bufio.NewWriterSize(w, 64<<10)
	defer func() { err = errors.Join(err, bw.Flush()) }()
	enc := json.NewEncoder(bw)
	for {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if o.Idle > 0 {
			pctx, cancel = context.WithTimeout(ctx, o.Idle)
		}
		limit := 10000
		if o.Max > 0 {
			limit = min(limit, o.Max-n)
		}
		fs := cl.PollRecords(pctx, limit)
		cancel()
		if ctx.Err() != nil || fs.IsClientClosed() {
			return n, nil
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && fetchErr == nil {
				fetchErr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return n, fetchErr
		}
		if fs.NumRecords() == 0 && pctx.Err() != nil {
			return n, nil // idle timeout
		}
		for r := range fs.RecordsAll() {
			if o.Output == JSON {
				if err := enc.Encode(toJSONRecord(r)); err != nil {
					return n, err
				}
			} else {
				buf = f.Append(buf[:0], r)
				if _, err := bw.Write(buf); err != nil {
					return n, err
				}
			}
			if o.Group != "" {
				cl.MarkCommitRecords(r)
			}
			n++
			if o.Max > 0 && n >= o.Max {
				return n, nil
			}
		}
		if err := bw.Flush(); err != nil {
			return n, err
		}
	}
}

// checkTopic reports a missing topic instead of waiting for it forever.
func checkTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	details, err := kadm.NewClient(cl).ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return fmt.Errorf("look up topic %q: %w", topic, err)
	}
	if d, ok := details[topic]; ok && d.Err != nil {
		return topicErr("consume from", topic, d.Err, "")
	}
	return nil
}

func toJSONRecord(r *kgo.Record) jsonRecord {
	jr := jsonRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UnixMilli(), Value: string(r.Value),
	}
	if r.Key != nil {
		k := string(r.Key)
		jr.Key = &k
	}
	if len(r.Headers) > 0 {
		jr.Headers = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			jr.Headers[h.Key] = string(h.Value)
		}
	}
	return jr
}
