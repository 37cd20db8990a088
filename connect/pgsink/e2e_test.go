package pgsink_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/connect/pgsink"
	"github.com/sluicehq/sluice/internal/pgserver/pgtest"
)

// TestWorkerEndToEnd runs the sink in a connect Worker: Debezium change
// events produced as JSON to the broker are unwrapped by
// ExtractNewRecordState and become rows that appear, change and disappear.
func TestWorkerEndToEnd(t *testing.T) {
	s := pgtest.Start(t)
	db := pgtest.Database(t, s)
	b := brokertest.Start(t)
	const topic = "dbserver1.inventory.customers"

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 2, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produce := func(kvs ...string) {
		t.Helper()
		var recs []*kgo.Record
		for i := 0; i < len(kvs); i += 2 {
			r := &kgo.Record{Topic: topic, Key: []byte(kvs[i])}
			if kvs[i+1] != "" {
				r.Value = []byte(kvs[i+1])
			}
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	event := func(op string, before, after string) string {
		return fmt.Sprintf(`{"before":%s,"after":%s,"source":{"db":"inventory","table":"customers"},"op":%q,"ts_ms":1700000000000}`, before, after, op)
	}

	w := startWorker(t, b.Addr())

	produce(`{"id":1}`, event("r", "null", `{"id":1,"name":"Ann","email":"ann@example.com"}`),
		`{"id":2}`, event("c", "null", `{"id":2,"name":"Bob","email":"bob@example.com"}`))
	cfg := map[string]string{
		"connector.class":              "io.confluent.connect.jdbc.JdbcSinkConnector",
		"topics":                       topic,
		"connection.url":               s.DSN(db),
		"insert.mode":                  "upsert",
		"pk.mode":                      "record_key",
		"delete.enabled":               "true",
		"auto.create":                  "true",
		"auto.evolve":                  "true",
		"transforms":                   "unwrap",
		"transforms.unwrap.type":       "io.debezium.transforms.ExtractNewRecordState",
		"transforms.unwrap.add.fields": "op",
	}
	if _, err := w.Create(t.Context(), "pg", cfg); err != nil {
		t.Fatal(err)
	}
	rows := func() []string {
		c, err := s.Connect(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		r, err := c.Query(t.Context(), `SELECT id || '|' || name || '|' || email || '|' || __op FROM dbserver1_inventory_customers ORDER BY id`)
		if err != nil {
			return []string{err.Error()} // the table may not exist yet
		}
		var out []string
		for r.Next() {
			var s string
			if err := r.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	waitRows := func(want ...string) {
		t.Helper()
		var got []string
		eventually(t, func() bool { got = rows(); return slices.Equal(got, want) }, func() string {
			st, _ := w.Status(t.Context(), "pg")
			return fmt.Sprintf("rows %q, want %q (status %+v)", got, want, st)
		})
	}
	waitRows("1|Ann|ann@example.com|r", "2|Bob|bob@example.com|c")

	// An update, and a delete as Debezium writes it: a "d" event (dropped
	// by the transform) and a tombstone (which deletes the row).
	produce(`{"id":1}`, event("u", `{"id":1,"name":"Ann","email":"ann@example.com"}`, `{"id":1,"name":"Ann","email":"ann@new.example.com"}`),
		`{"id":2}`, event("d", `{"id":2,"name":"Bob","email":"bob@example.com"}`, "null"),
		`{"id":2}`, "",
		`{"id":3}`, event("c", "null", `{"id":3,"name":"Cy","email":"cy@example.com"}`))
	waitRows("1|Ann|ann@new.example.com|u", "3|Cy|cy@example.com|c")

	// A record the sink cannot write fails the task with a clear trace.
	produce(`{"id":4}`, `"not an object"`)
	var st connect.Status
	eventually(t, func() bool {
		st, err = w.Status(t.Context(), "pg")
		return err == nil && len(st.Tasks) == 1 && st.Tasks[0].State == "FAILED"
	}, func() string { return fmt.Sprintf("task did not fail: %+v, %v", st, err) })
	if tr := st.Tasks[0].Trace; !strings.Contains(tr, topic+"-") || !strings.Contains(tr, "value is a string, want an object") {
		t.Fatalf("trace %q", tr)
	}

	// With errors.tolerance=all the worker sends it to the dead letter
	// queue and the sink goes on.
	cfg["errors.tolerance"] = "all"
	cfg["errors.deadletterqueue.topic.name"] = "dlq"
	cfg["errors.deadletterqueue.context.headers.enable"] = "true"
	if _, _, err := w.PutConfig(t.Context(), "pg", cfg); err != nil {
		t.Fatal(err)
	}
	produce(`{"id":5}`, event("c", "null", `{"id":5,"name":"Di","email":"di@example.com"}`))
	waitRows("1|Ann|ann@new.example.com|u", "3|Cy|cy@example.com|c", "5|Di|di@example.com|c")
	dc, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	pctx, pcancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer pcancel()
	fs := dc.PollFetches(pctx)
	if err := fs.Err0(); err != nil || len(fs.Records()) != 1 {
		t.Fatalf("dead letters: %v, %d records", err, len(fs.Records()))
	}
	dead := fs.Records()[0]
	h := map[string]string{}
	for _, kh := range dead.Headers {
		h[kh.Key] = string(kh.Value)
	}
	if string(dead.Value) != `"not an object"` || h["__connect.errors.stage"] != "TASK_PUT" ||
		!strings.Contains(h["__connect.errors.exception.message"], "want an object") {
		t.Fatalf("dead letter %q, headers %v", dead.Value, h)
	}
}

// startWorker runs a connect worker with the sink until the test ends.
func startWorker(t *testing.T, addr string) *connect.Worker {
	t.Helper()
	w, err := connect.NewWorker(connect.Brokers(kgo.SeedBrokers(addr)), connect.Plugins(pgsink.Plugin()), connect.WorkerID("pg"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		w.Close()
	})
	return w
}

// eventually polls cond until it holds, or fails the test with msg()
// after 30 seconds.
func eventually(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		<-tick.C
	}
}
