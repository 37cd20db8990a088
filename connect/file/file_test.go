package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/connect"
)

type offsets map[string]any

func (o offsets) Offset(map[string]any) (map[string]any, error) { return o, nil }

func pollAll(t *testing.T, task connect.SourceTask) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // Poll returns at once when there is nothing to read
	var out []string
	for {
		recs, err := task.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			out = append(out, r.Value.(string)+"@"+formatPos(r.SourceOffset))
		}
	}
}

func formatPos(o map[string]any) string { return fmt.Sprint(o["position"]) }

func TestSourceTask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.txt")
	task := source{}.NewTask()
	if err := task.Start(t.Context(), map[string]string{"file": path, "topic": "t", "batch.size": "2"}, offsets(nil)); err != nil {
		t.Fatal(err)
	}
	defer task.Stop()
	if got := pollAll(t, task); len(got) != 0 {
		t.Fatalf("missing file gave %v", got)
	}
	if err := os.WriteFile(path, []byte("a\r\nbb\nccc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pollAll(t, task), " "); got != "a@3 bb@6" {
		t.Fatalf("got %q, want the complete lines only, CR dropped", got)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("c\nd\n")
	f.Close()
	if got := strings.Join(pollAll(t, task), " "); got != "cccc@11 d@13" {
		t.Fatalf("got %q, want the partial line completed", got)
	}

	// A new task resumes from the stored position.
	again := source{}.NewTask()
	if err := again.Start(t.Context(), map[string]string{"file": path, "topic": "t"}, offsets{"position": int64(6)}); err != nil {
		t.Fatal(err)
	}
	defer again.Stop()
	if got := strings.Join(pollAll(t, again), " "); got != "cccc@11 d@13" {
		t.Fatalf("resumed: got %q", got)
	}
}

func TestSinkTask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.txt")
	task := sink{}.NewTask()
	if err := task.Start(t.Context(), map[string]string{"file": path}); err != nil {
		t.Fatal(err)
	}
	recs := []connect.SinkRecord{
		{Record: connect.Record{Value: "s"}}, {Record: connect.Record{Value: []byte("b")}},
		{Record: connect.Record{Value: map[string]any{"k": int64(1)}}}, {Record: connect.Record{Value: nil}},
	}
	if err := task.Put(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if err := task.(connect.Flusher).Flush(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "s\nb\n{\"k\":1}\nnull\n" {
		t.Fatalf("file %q", b)
	}
	if err := task.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	if errs := (source{}).Validate(map[string]string{"batch.size": "x"}); len(errs) != 3 {
		t.Fatalf("source errors %v, want file, topic and batch.size", errs)
	}
	if errs := (sink{}).Validate(map[string]string{}); len(errs) != 1 {
		t.Fatalf("sink errors %v", errs)
	}
}
