package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ParseAcks parses --acks: "all" (or "-1"), "1" or "0". Idempotent writes
// need acks=all, so the caller disables them for the other two.
func ParseAcks(s string) (kgo.Acks, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("invalid --acks %q: want all, 1 or 0", s)
}

// ParseCompression parses --compression: none, gzip, snappy, lz4 or zstd.
func ParseCompression(s string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("invalid --compression %q: want none, gzip, snappy, lz4 or zstd", s)
}

// ProducerOpts returns the client options for producing with acks and
// compression (flag spellings). With partition >= 0 records go to that
// partition. Topics are auto-created if the broker allows it.
func ProducerOpts(acks, compression string, partition int32) ([]kgo.Opt, error) {
	a, err := ParseAcks(acks)
	if err != nil {
		return nil, err
	}
	c, err := ParseCompression(compression)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.RequiredAcks(a), kgo.ProducerBatchCompression(c), kgo.AllowAutoTopicCreation()}
	if a != kgo.AllISRAcks() {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	return opts, nil
}

// ProduceOptions says how Produce turns lines into records.
type ProduceOptions struct {
	Topic string
	// KeySeparator, if not empty, splits each line at its first occurrence:
	// the text before is the key, the text after the value. Lines without
	// it have no key.
	KeySeparator string
	// Partition is the partition to write to; -1 lets the partitioner
	// choose (the client must then not use ManualPartitioner).
	Partition int32
	// Headers are added to every record.
	Headers [][2]string
}

// Produce sends one record per line of r (without its "\n" or "\r\n"; an
// empty line is a record with an empty value) and waits for all of them to
// be acknowledged. It stops at the first failed record and returns how many
// were acknowledged, with the error.
func Produce(ctx context.Context, cl *kgo.Client, r io.Reader, o ProduceOptions) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var headers []kgo.RecordHeader
	for _, kv := range o.Headers {
		headers = append(headers, kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])})
	}

	var (
		mu    sync.Mutex
		acked int64
		first error
	)
	promise := func(_ *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			acked++
			return
		}
		if first == nil {
			first = err
			cancel(err)
		}
	}

	br := bufio.NewReaderSize(r, 64<<10)
	var readErr error
	for ctx.Err() == nil {
		line, err := br.ReadBytes('\n')
		if err != nil && (err != io.EOF || len(line) == 0) {
			if err != io.EOF {
				readErr = fmt.Errorf("read stdin: %w", err)
			}
			break
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		rec := &kgo.Record{Topic: o.Topic, Value: line, Headers: headers}
		if o.KeySeparator != "" {
			if k, v, ok := bytes.Cut(line, []byte(o.KeySeparator)); ok {
				rec.Key, rec.Value = k, v
			}
		}
		if o.Partition >= 0 {
			rec.Partition = o.Partition
		}
		cl.Produce(ctx, rec, promise)
	}
	ferr := cl.Flush(ctx)

	mu.Lock()
	defer mu.Unlock()
	switch {
	case first != nil:
		return acked, produceErr(o.Topic, first)
	case readErr != nil:
		return acked, readErr
	case ferr != nil:
		return acked, ferr
	}
	return acked, nil
}

// produceErr words the usual produce failures.
func produceErr(topic string, err error) error {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("topic %q (or the partition) does not exist and the broker did not create it "+
			"(create it with `sluice topics create %s`): %w", topic, topic, err)
	}
	return topicErr("produce to", topic, err, "")
}
