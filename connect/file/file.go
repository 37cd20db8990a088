// Package file has connectors that move lines of a file into a topic and
// records of topics into a file, like Kafka's FileStreamSource and
// FileStreamSink. They exist for the simplest pipelines and to exercise the
// connect runtime end to end.
//
// file-source (alias org.apache.kafka.connect.file.FileStreamSourceConnector)
// reads complete lines of "file" (newline-terminated; a partial last line
// waits for its newline) and produces each as a string value with a null key
// to "topic", at most "batch.size" (default 2000) per poll. Its source
// partition is {"filename": file} and its offset {"position": byte offset
// after the line}, so a restarted worker resumes after the last line whose
// record Kafka acknowledged. It runs one task and follows the file as it
// grows.
//
// file-sink (alias org.apache.kafka.connect.file.FileStreamSinkConnector)
// appends one line per record of "topics" to "file": strings as they are,
// []byte as bytes, other values as JSON, tombstones as "null". Lines are
// buffered in Put and written and fsynced in Flush, before the worker
// commits the consumer group offsets.
package file

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/connect"
)

// Version is the version the plugins report.
const Version = "1.0.0"

// SourcePlugin returns the file-source plugin.
func SourcePlugin() connect.Plugin {
	return connect.Plugin{Class: "file-source", Aliases: []string{"org.apache.kafka.connect.file.FileStreamSourceConnector", "FileStreamSource"},
		Version: Version, Source: func() connect.Source { return source{} }}
}

// SinkPlugin returns the file-sink plugin.
func SinkPlugin() connect.Plugin {
	return connect.Plugin{Class: "file-sink", Aliases: []string{"org.apache.kafka.connect.file.FileStreamSinkConnector", "FileStreamSink"},
		Version: Version, Sink: func() connect.Sink { return sink{} }}
}

type source struct{}

func (source) ConfigDef() []connect.ConfigKey {
	return []connect.ConfigKey{
		{Name: "file", Type: "STRING", Required: true, Importance: "HIGH", Doc: "The file to read lines from."},
		{Name: "topic", Type: "STRING", Required: true, Importance: "HIGH", Doc: "The topic to produce lines to."},
		{Name: "batch.size", Type: "INT", Default: "2000", Importance: "LOW", Doc: "The most lines returned by one poll."},
	}
}

func (source) Validate(cfg map[string]string) []connect.ConfigError {
	var errs []connect.ConfigError
	if cfg["file"] == "" {
		errs = append(errs, connect.ConfigError{Key: "file", Message: "Missing required configuration \"file\" which has no default value."})
	}
	if cfg["topic"] == "" {
		errs = append(errs, connect.ConfigError{Key: "topic", Message: "Missing required configuration \"topic\" which has no default value."})
	}
	if s, ok := cfg["batch.size"]; ok {
		if n, err := strconv.Atoi(s); err != nil || n < 1 {
			errs = append(errs, connect.ConfigError{Key: "batch.size", Message: "Invalid value " + s + ": want an integer >= 1"})
		}
	}
	return errs
}

func (source) TaskConfigs(cfg map[string]string, _ int) ([]map[string]string, error) {
	return []map[string]string{{"file": cfg["file"], "topic": cfg["topic"], "batch.size": cfg["batch.size"]}}, nil
}

func (source) NewTask() connect.SourceTask { return &sourceTask{} }

// pollWait is how long Poll waits for the file to grow before it returns
// nothing.
const pollWait = 100 * time.Millisecond

type sourceTask struct {
	path, topic string
	batch       int
	f           *os.File
	r           *bufio.Reader
	pos         int64 // byte offset of the next line
	partial     []byte
}

func (t *sourceTask) Start(_ context.Context, cfg map[string]string, offsets connect.OffsetReader) error {
	t.path, t.topic = cfg["file"], cfg["topic"]
	t.batch = 2000
	if n, err := strconv.Atoi(cfg["batch.size"]); err == nil && n > 0 {
		t.batch = n
	}
	o, err := offsets.Offset(t.partition())
	if err != nil {
		return err
	}
	if p, ok := o["position"].(int64); ok {
		t.pos = p
	}
	return nil
}

func (t *sourceTask) partition() map[string]any { return map[string]any{"filename": t.path} }

func (t *sourceTask) open() error {
	f, err := os.Open(t.path)
	if err != nil {
		return err
	}
	if _, err := f.Seek(t.pos, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	t.f, t.r = f, bufio.NewReader(f)
	return nil
}

func (t *sourceTask) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	if t.f == nil {
		if err := t.open(); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("file-source: %w", err)
		}
	}
	var out []connect.SourceRecord
	for t.f != nil && len(out) < t.batch {
		line, err := t.r.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("file-source: read %s: %w", t.path, err)
		}
		if len(line) == 0 || line[len(line)-1] != '\n' {
			t.partial = append(t.partial, line...) // wait for the rest of the line
			break
		}
		full := append(t.partial, line...)
		t.partial = nil
		t.pos += int64(len(full))
		text := string(full[:len(full)-1])
		if n := len(text); n > 0 && text[n-1] == '\r' {
			text = text[:n-1]
		}
		out = append(out, connect.SourceRecord{
			Record:          connect.Record{Topic: t.topic, Partition: -1, Offset: -1, Value: text},
			SourcePartition: t.partition(),
			SourceOffset:    map[string]any{"position": t.pos},
		})
	}
	if len(out) > 0 {
		return out, nil
	}
	tm := time.NewTimer(pollWait)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
	return nil, nil
}

func (t *sourceTask) Stop() error {
	if t.f != nil {
		return t.f.Close()
	}
	return nil
}

type sink struct{}

func (sink) ConfigDef() []connect.ConfigKey {
	return []connect.ConfigKey{{Name: "file", Type: "STRING", Required: true, Importance: "HIGH", Doc: "The file to append records to."}}
}

func (sink) Validate(cfg map[string]string) []connect.ConfigError {
	if cfg["file"] == "" {
		return []connect.ConfigError{{Key: "file", Message: "Missing required configuration \"file\" which has no default value."}}
	}
	return nil
}

func (sink) TaskConfigs(cfg map[string]string, _ int) ([]map[string]string, error) {
	return []map[string]string{{"file": cfg["file"]}}, nil
}

func (sink) NewTask() connect.SinkTask { return &sinkTask{} }

type sinkTask struct {
	f *os.File
	w *bufio.Writer
}

func (t *sinkTask) Start(_ context.Context, cfg map[string]string) error {
	f, err := os.OpenFile(cfg["file"], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("file-sink: %w", err)
	}
	t.f, t.w = f, bufio.NewWriter(f)
	return nil
}

func (t *sinkTask) Put(_ context.Context, recs []connect.SinkRecord) error {
	for _, r := range recs {
		switch v := r.Value.(type) {
		case string:
			t.w.WriteString(v)
		case []byte:
			t.w.Write(v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("file-sink: %w", err)
			}
			t.w.Write(b)
		}
		t.w.WriteByte('\n')
	}
	return nil
}

// Flush implements connect.Flusher.
func (t *sinkTask) Flush(context.Context, map[connect.TopicPartition]int64) error {
	if err := t.w.Flush(); err != nil {
		return fmt.Errorf("file-sink: %w", err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("file-sink: %w", err)
	}
	return nil
}

func (t *sinkTask) Stop() error {
	if t.f == nil {
		return nil
	}
	return errors.Join(t.w.Flush(), t.f.Close())
}
