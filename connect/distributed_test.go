package connect_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/connect"
)

// TestDistributedTakeover runs two workers in one group: connectors created
// through one are visible through the other, tasks are spread over both,
// and when one stops the other takes its tasks over, continuing from the
// offsets the first stored (nothing lost, nothing repeated after a clean
// stop).
func TestDistributedTakeover(t *testing.T) {
	b := brokertest.Start(t)
	fast := connect.Brokers(kgo.HeartbeatInterval(100 * time.Millisecond))
	w1, stop1 := startWorker(t, b.Addr(), connect.GroupID("cluster"), connect.WorkerID("w1"), fast)
	w2, _ := startWorker(t, b.Addr(), connect.GroupID("cluster"), connect.WorkerID("w2"), fast)
	eventually(t, "both workers in the group", func() bool {
		return slices.Equal(w1.Workers(), []string{"w1", "w2"}) && slices.Equal(w2.Workers(), []string{"w1", "w2"})
	})

	dir := t.TempDir()
	const n = 4
	for i := range n {
		in := filepath.Join(dir, fmt.Sprintf("in%d.txt", i))
		appendLines(t, in, lines(0, 10)...)
		createTopic(t, b.Addr(), fmt.Sprintf("t%d", i), 1)
		if _, err := w1.Create(t.Context(), fmt.Sprintf("c%d", i), map[string]string{
			"connector.class": "file-source", "file": in, "topic": fmt.Sprintf("t%d", i), "value.converter": "string"}); err != nil {
			t.Fatal(err)
		}
	}
	owners := map[string]bool{}
	eventually(t, "all tasks running, seen from w2", func() bool {
		names, _ := w2.Connectors(t.Context())
		if len(names) != n {
			return false
		}
		clear(owners)
		for _, name := range names {
			s := status(t, w2, name)
			if len(s.Tasks) != 1 || s.Tasks[0].State != connect.StateRunning {
				return false
			}
			owners[s.Tasks[0].WorkerID] = true
		}
		return true
	})
	if !owners["w1"] || !owners["w2"] {
		t.Fatalf("tasks ran on %v, want both workers", owners)
	}
	for i := range n {
		consumeN(t, b.Addr(), fmt.Sprintf("t%d", i), 10)
	}

	stop1()
	for i := range n {
		appendLines(t, filepath.Join(dir, fmt.Sprintf("in%d.txt", i)), lines(10, 20)...)
	}
	eventually(t, "w2 runs every task", func() bool {
		for i := range n {
			s := status(t, w2, fmt.Sprintf("c%d", i))
			if len(s.Tasks) != 1 || s.Tasks[0].State != connect.StateRunning || s.Tasks[0].WorkerID != "w2" {
				return false
			}
		}
		return slices.Equal(w2.Workers(), []string{"w2"})
	})
	for i := range n {
		topic := fmt.Sprintf("t%d", i)
		var got []string
		for _, r := range consumeN(t, b.Addr(), topic, 20) {
			got = append(got, string(r.Value))
		}
		if !slices.Equal(got, lines(0, 20)) {
			t.Fatalf("%s: %v", topic, got)
		}
		if end := endOffset(t, b.Addr(), topic); end != 20 {
			t.Fatalf("%s: %d records, want 20", topic, end)
		}
	}
	// Restart requests travel through connect-configs.
	if err := w2.Restart(t.Context(), "c2", true, false); err != nil {
		t.Fatal(err)
	}
	if err := w2.RestartTask(t.Context(), "c3", 0); err != nil {
		t.Fatal(err)
	}
	if err := w2.RestartTask(t.Context(), "c3", 5); err == nil {
		t.Fatal("restarting an unknown task: no error")
	}
	for _, name := range []string{"c2", "c3"} {
		eventually(t, name+" running after restart", func() bool {
			return taskStates(status(t, w2, name)) == "RUNNING/RUNNING"
		})
	}
	// Operations through the remaining worker still work.
	if err := w2.Pause(t.Context(), "c0"); err != nil {
		t.Fatal(err)
	}
	if s := taskStates(status(t, w2, "c0")); s != "PAUSED/PAUSED" {
		t.Fatalf("paused: %s", s)
	}
	if err := w2.Delete(t.Context(), "c1"); err != nil {
		t.Fatal(err)
	}
	if names, _ := w2.Connectors(t.Context()); slices.Contains(names, "c1") {
		t.Fatalf("c1 still listed: %v", names)
	}
}

// TestDistributedREST: a connector created through one worker's REST API
// is served, with its status, by the other's.
func TestDistributedREST(t *testing.T) {
	b := brokertest.Start(t)
	fast := connect.Brokers(kgo.HeartbeatInterval(100 * time.Millisecond))
	w1, _ := startWorker(t, b.Addr(), connect.GroupID("g"), connect.WorkerID("a"), fast)
	w2, _ := startWorker(t, b.Addr(), connect.GroupID("g"), connect.WorkerID("b"), fast)
	s1, s2 := httptest.NewServer(connect.Handler(w1)), httptest.NewServer(connect.Handler(w2))
	t.Cleanup(s1.Close)
	t.Cleanup(s2.Close)
	in := filepath.Join(t.TempDir(), "in.txt")
	body := `{"name":"src","config":{"connector.class":"file-source","file":"` + in + `","topic":"x"}}`
	resp, err := http.Post(s1.URL+"/connectors", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST through a: %d", resp.StatusCode)
	}
	eventually(t, "status RUNNING through b", func() bool {
		resp, err := http.Get(s2.URL + "/connectors/src/status")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && strings.Contains(string(b), `"tasks":[{"id":0,"state":"RUNNING"`)
	})
	resp, err = http.Post(s2.URL+"/connectors", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("POST of an existing connector through b: %d, want 409", resp.StatusCode)
	}
}
