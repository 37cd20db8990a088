package connect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// finishTimeout bounds how long a stopping task may take to produce and
// commit what it has already polled, so that a clean stop leaves no
// duplicates behind.
const finishTimeout = 30 * time.Second

// offsetKey is a connect-offsets key: ["<connector>",{<source partition>}].
func offsetKey(name string, partition map[string]any) string {
	b, _ := json.Marshal([]any{name, partition})
	return string(b)
}

// decodeOffset decodes a connect-offsets value, with integers as int64.
func decodeOffset(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return fromJSON(m).(map[string]any), nil
}

type offsetReader struct {
	w    *Worker
	name string
}

func (o offsetReader) Offset(partition map[string]any) (map[string]any, error) {
	o.w.mu.Lock()
	defer o.w.mu.Unlock()
	return o.w.mu.offsets[offsetKey(o.name, partition)], nil
}

// runSource runs a source task until ctx is done or it fails.
func (w *Worker) runSource(ctx context.Context, name string, id int, t SourceTask, config, tc map[string]string) (err error) {
	kc, err := converter(config, "key.converter")
	if err != nil {
		return err
	}
	vc, err := converter(config, "value.converter")
	if err != nil {
		return err
	}
	ch, err := newChain(config)
	if err != nil {
		return err
	}
	tolerateAll := config["errors.tolerance"] == "all"
	var txn *kgo.Client
	if w.cfg.exactlyOnce {
		txn, err = kgo.NewClient(append([]kgo.Opt{
			kgo.TransactionalID(fmt.Sprintf("connect-%s-%d", name, id)),
			kgo.AllowAutoTopicCreation(),
		}, w.cfg.brokers...)...)
		if err != nil {
			return fmt.Errorf("transactional client: %w", err)
		}
		defer txn.Close()
	}
	defer func() {
		if serr := t.Stop(); serr != nil && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("stop: %w", serr)
		}
	}()
	if err := t.Start(ctx, tc, offsetReader{w, name}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	retry := newBackoff(config)
	for ctx.Err() == nil {
		recs, err := t.Poll(ctx)
		if err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrRetriable) {
				w.log.Warn("connect: poll failed; retrying", "connector", name, "task", id, "in", retry.next(), "err", err)
				retry.wait(ctx)
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		retry.reset()
		if len(recs) == 0 {
			continue
		}
		// What was polled is produced and committed even when the task is
		// being stopped, so that a clean stop causes no duplicates.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		err = w.sendSource(fctx, txn, name, id, t, recs, ch, kc, vc, tolerateAll)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// sendSource produces what one Poll returned and stores the source offsets;
// with txn (exactly-once), both in one transaction.
func (w *Worker) sendSource(ctx context.Context, txn *kgo.Client, name string, id int, t SourceTask, recs []SourceRecord, ch chain, kc, vc Converter, tolerateAll bool) error {
	krs := make([]*kgo.Record, 0, len(recs))
	latest := map[string]map[string]any{}
	var order []string
	for _, sr := range recs {
		// Offsets advance past records that are filtered out or skipped.
		if sr.SourcePartition != nil && sr.SourceOffset != nil {
			k := offsetKey(name, sr.SourcePartition)
			if _, seen := latest[k]; !seen {
				order = append(order, k)
			}
			latest[k] = sr.SourceOffset
		}
		r, keep, err := ch.apply(sr.Record)
		var kr *kgo.Record
		if err == nil && keep {
			kr, err = toKafka(r, kc, vc)
		}
		if err != nil {
			if !tolerateAll {
				return err
			}
			w.log.Warn("connect: skipping source record", "connector", name, "task", id, "err", err)
			continue
		}
		if keep {
			krs = append(krs, kr)
		}
	}
	if txn == nil && len(krs) > 0 {
		if err := w.data.ProduceSync(ctx, krs...).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	if txn == nil && len(order) == 0 {
		return nil
	}
	kvs := make([][2][]byte, 0, len(order))
	decoded := make(map[string]map[string]any, len(order))
	for _, k := range order {
		v, err := json.Marshal(latest[k])
		if err != nil {
			return fmt.Errorf("source offset of %s: %w", k, err)
		}
		if decoded[k], err = decodeOffset(v); err != nil {
			return fmt.Errorf("source offset of %s: %w", k, err)
		}
		kvs = append(kvs, [2][]byte{[]byte(k), v})
	}
	if txn != nil {
		for _, kv := range kvs {
			krs = append(krs, &kgo.Record{Topic: w.cfg.offsets, Key: kv[0], Value: kv[1]})
		}
		if len(krs) == 0 {
			return nil
		}
		if err := produceTxn(ctx, txn, krs); err != nil {
			return err
		}
	} else if _, err := w.st.write(ctx, w.cfg.offsets, kvs...); err != nil {
		return err
	}
	w.mu.Lock()
	for k, o := range decoded {
		w.mu.offsets[k] = o
	}
	w.mu.Unlock()
	if c, ok := t.(Committer); ok {
		if err := c.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	return nil
}

// produceTxn produces recs in one transaction, aborting it on failure.
func produceTxn(ctx context.Context, txn *kgo.Client, recs []*kgo.Record) error {
	if err := txn.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	perr := txn.ProduceSync(ctx, recs...).FirstErr()
	commit := kgo.TransactionEndTry(perr == nil)
	if err := txn.EndTransaction(ctx, commit); err != nil {
		return fmt.Errorf("end transaction: %w", errors.Join(perr, err))
	}
	if perr != nil {
		return fmt.Errorf("produce (transaction aborted): %w", perr)
	}
	return nil
}

func toKafka(r Record, kc, vc Converter) (*kgo.Record, error) {
	k, err := kc.FromConnect(r.Topic, r.Key)
	if err != nil {
		return nil, fmt.Errorf("key converter: %w", err)
	}
	v, err := vc.FromConnect(r.Topic, r.Value)
	if err != nil {
		return nil, fmt.Errorf("value converter: %w", err)
	}
	if r.Topic == "" {
		return nil, errors.New("source record has no topic")
	}
	kr := &kgo.Record{Topic: r.Topic, Key: k, Value: v, Timestamp: r.Timestamp}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return kr, nil
}

// runSink runs a sink task until ctx is done or it fails.
func (w *Worker) runSink(ctx context.Context, name string, id int, t SinkTask, config, tc map[string]string) (err error) {
	kc, err := converter(config, "key.converter")
	if err != nil {
		return err
	}
	vc, err := converter(config, "value.converter")
	if err != nil {
		return err
	}
	ch, err := newChain(config)
	if err != nil {
		return err
	}
	tolerateAll := config["errors.tolerance"] == "all"
	dlq := config["errors.deadletterqueue.topic.name"]
	dlqHeaders, _ := strconv.ParseBool(config["errors.deadletterqueue.context.headers.enable"])
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup("connect-" + name),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // Kafka Connect's consumer.auto.offset.reset=earliest
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, w.cfg.brokers...)
	if re := config["topics.regex"]; re != "" {
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("topics.regex: %w", err)
		}
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(re))
	} else {
		opts = append(opts, kgo.ConsumeTopics(splitList(config["topics"])...))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	defer cl.AllowRebalance()
	defer func() {
		if serr := t.Stop(); serr != nil && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("stop: %w", serr)
		}
	}()
	if err := t.Start(ctx, tc); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	for ctx.Err() == nil {
		fs := cl.PollRecords(ctx, 1000)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				w.log.Warn("connect: fetch", "connector", name, "task", id, "topic", topic, "partition", p, "err", err)
			}
		})
		recs := fs.Records()
		if len(recs) == 0 {
			cl.AllowRebalance()
			continue
		}
		err := w.deliverSink(ctx, cl, name, id, t, recs, ch, kc, vc, tolerateAll, dlq, dlqHeaders, newBackoff(config))
		if err != nil {
			return err
		}
		cl.AllowRebalance()
	}
	return nil
}

// deliverSink converts and transforms a polled batch, hands it to the task
// and commits its offsets. What was polled is delivered even when the task
// is being stopped (ctx done), within finishTimeout, so that a clean stop
// causes no duplicates; retriable errors are retried until ctx is done.
func (w *Worker) deliverSink(ctx context.Context, cl *kgo.Client, name string, id int, t SinkTask, recs []*kgo.Record, ch chain, kc, vc Converter, tolerateAll bool, dlq string, dlqHeaders bool, retry *backoff) error {
	stop := ctx
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer func() { cancel() }()
	out := make([]SinkRecord, 0, len(recs))
	var dead []*kgo.Record
	for _, kr := range recs {
		r := Record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp}
		for _, h := range kr.Headers {
			r.Headers = append(r.Headers, Header{h.Key, h.Value})
		}
		stage, class := "KEY_CONVERTER", fmt.Sprintf("%T", kc)
		var err error
		var keep bool
		if r.Key, err = kc.ToConnect(kr.Topic, kr.Key); err == nil {
			stage, class = "VALUE_CONVERTER", fmt.Sprintf("%T", vc)
			if r.Value, err = vc.ToConnect(kr.Topic, kr.Value); err == nil {
				stage = "TRANSFORMATION"
				r, keep, err = ch.apply(r)
				var te *transformError
				if errors.As(err, &te) {
					class = te.class
				}
			}
		}
		if err != nil {
			if !tolerateAll {
				return fmt.Errorf("%s failed on %s-%d@%d: %w", stage, kr.Topic, kr.Partition, kr.Offset, err)
			}
			w.log.Warn("connect: skipping sink record", "connector", name, "task", id, "topic", kr.Topic, "partition", kr.Partition, "offset", kr.Offset, "err", err)
			if dlq != "" {
				dead = append(dead, deadLetter(kr, dlq, dlqHeaders, name, id, stage, class, err))
			}
			continue
		}
		if keep {
			out = append(out, SinkRecord{r})
		}
	}
	if len(dead) > 0 {
		if err := w.data.ProduceSync(ctx, dead...).FirstErr(); err != nil {
			return fmt.Errorf("dead letter queue %s: %w", dlq, err)
		}
	}
	put := func(ctx context.Context) error {
		if len(out) > 0 {
			if err := t.Put(ctx, out); err != nil {
				pe, ok := errors.AsType[*PutError](err)
				if !ok || !tolerateAll {
					return fmt.Errorf("put: %w", err)
				}
				if err := w.rejected(ctx, name, id, t, recs, pe, dlq, dlqHeaders); err != nil {
					return err
				}
			}
		}
		if f, ok := t.(Flusher); ok {
			offsets := map[TopicPartition]int64{}
			for _, kr := range recs {
				offsets[TopicPartition{kr.Topic, kr.Partition}] = kr.Offset + 1
			}
			if err := f.Flush(ctx, offsets); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
		}
		return nil
	}
	for {
		err := put(ctx)
		if err == nil {
			retry.reset()
			break
		}
		if !errors.Is(err, ErrRetriable) || stop.Err() != nil {
			return err
		}
		w.log.Warn("connect: sink task failed; retrying the batch", "connector", name, "task", id, "in", retry.next(), "err", err)
		retry.wait(stop)
		if stop.Err() != nil {
			return err // stopping: the batch is delivered again after a restart
		}
		// A fresh finishing budget for the next attempt.
		cancel()
		var next context.CancelFunc
		ctx, next = context.WithTimeout(context.WithoutCancel(stop), finishTimeout)
		cancel = next
	}
	if err := cl.CommitRecords(ctx, recs...); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	return nil
}

// rejected handles the records a sink task's Put rejected under
// errors.tolerance=all: logged, and sent to the dead letter queue if set.
func (w *Worker) rejected(ctx context.Context, name string, id int, t SinkTask, recs []*kgo.Record, pe *PutError, dlq string, dlqHeaders bool) error {
	type at struct {
		tp  TopicPartition
		off int64
	}
	byOffset := make(map[at]*kgo.Record, len(recs))
	for _, kr := range recs {
		byOffset[at{TopicPartition{kr.Topic, kr.Partition}, kr.Offset}] = kr
	}
	var dead []*kgo.Record
	for _, r := range pe.Rejected {
		w.log.Warn("connect: sink task rejected record", "connector", name, "task", id, "topic", r.Record.Topic,
			"partition", r.Record.Partition, "offset", r.Record.Offset, "err", r.Err)
		kr := byOffset[at{TopicPartition{r.Record.Topic, r.Record.Partition}, r.Record.Offset}]
		if dlq != "" && kr != nil {
			dead = append(dead, deadLetter(kr, dlq, dlqHeaders, name, id, "TASK_PUT", fmt.Sprintf("%T", t), r.Err))
		}
	}
	if len(dead) > 0 {
		if err := w.data.ProduceSync(ctx, dead...).FirstErr(); err != nil {
			return fmt.Errorf("dead letter queue %s: %w", dlq, err)
		}
	}
	return nil
}

// deadLetter is the record sent to the dead letter queue for kr, with
// Kafka Connect's __connect.errors.* headers when withHeaders.
func deadLetter(kr *kgo.Record, topic string, withHeaders bool, name string, id int, stage, class string, err error) *kgo.Record {
	d := &kgo.Record{Topic: topic, Key: kr.Key, Value: kr.Value, Timestamp: kr.Timestamp, Headers: append([]kgo.RecordHeader(nil), kr.Headers...)}
	if !withHeaders {
		return d
	}
	h := func(k, v string) {
		d.Headers = append(d.Headers, kgo.RecordHeader{Key: "__connect.errors." + k, Value: []byte(v)})
	}
	h("topic", kr.Topic)
	h("partition", strconv.Itoa(int(kr.Partition)))
	h("offset", strconv.FormatInt(kr.Offset, 10))
	h("connector.name", name)
	h("task.id", strconv.Itoa(id))
	h("stage", stage)
	h("class.name", class)
	h("exception.class.name", fmt.Sprintf("%T", errors.Unwrap(err)))
	h("exception.message", err.Error())
	h("exception.stacktrace", err.Error())
	return d
}

// backoff spaces the retries of a task's retriable errors: 100ms, doubling
// up to errors.retry.max.delay.ms (Kafka Connect's name; default 60s).
type backoff struct {
	cur, max time.Duration
}

func newBackoff(config map[string]string) *backoff {
	b := &backoff{max: time.Minute}
	if ms, err := strconv.ParseInt(config["errors.retry.max.delay.ms"], 10, 64); err == nil && ms > 0 {
		b.max = time.Duration(ms) * time.Millisecond
	}
	return b
}

// next returns the delay the next wait will take.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		return min(100*time.Millisecond, b.max)
	}
	return b.cur
}

// wait sleeps for the next delay or until ctx is done, and doubles it.
func (b *backoff) wait(ctx context.Context) {
	d := b.next()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	b.cur = min(2*d, b.max)
}

func (b *backoff) reset() { b.cur = 0 }
