package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStorageReplay registers, deletes and configures on one server, then
// checks that a new server on the same cluster replays the same state, and
// that the topic holds Confluent's record format.
func TestStorageReplay(t *testing.T) {
	backends(t, func(t *testing.T, seed string) {
		s1 := startServer(t, seed)
		u := s1.URL()
		expectJSON(t, do(t, u, "POST", "/subjects/a/versions", reg(userV1)), `{"id":1}`)
		expectJSON(t, do(t, u, "POST", "/subjects/a/versions", reg(userV2)), `{"id":2}`)
		expectJSON(t, do(t, u, "POST", "/subjects/b/versions", reg(`"string"`)), `{"id":3}`)
		expectJSON(t, do(t, u, "DELETE", "/subjects/a/versions/1", nil), `1`)
		expectJSON(t, do(t, u, "PUT", "/config/a", map[string]string{"compatibility": "FULL"}), `{"compatibility":"FULL"}`)
		expectJSON(t, do(t, u, "DELETE", "/subjects/b", nil), `[1]`)
		expectJSON(t, do(t, u, "PUT", "/mode/b", map[string]string{"mode": "READONLY"}), `{"mode":"READONLY"}`)
		s1.Close()

		s2 := startServer(t, seed)
		u = s2.URL()
		expectJSON(t, do(t, u, "GET", "/subjects/a/versions", nil), `[2]`)
		expectJSON(t, do(t, u, "GET", "/subjects/a/versions?deleted=true", nil), `[1,2]`)
		expectJSON(t, do(t, u, "GET", "/subjects", nil), `["a"]`)
		expectJSON(t, do(t, u, "GET", "/subjects?deleted=true", nil), `["a","b"]`)
		expectJSON(t, do(t, u, "GET", "/config/a", nil), `{"compatibilityLevel":"FULL","compatibility":"FULL"}`)
		expectJSON(t, do(t, u, "GET", "/mode/b", nil), `{"mode":"READONLY"}`)
		expectJSON(t, do(t, u, "GET", "/schemas/ids/3", nil), `{"schema":"\"string\""}`)
		// Ids continue.
		expectJSON(t, do(t, u, "POST", "/subjects/c/versions", reg(`"int"`)), `{"id":4}`)

		// The records, as Confluent writes them.
		cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumeTopics("_schemas"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		cfgs, err := adm.DescribeTopicConfigs(t.Context(), "_schemas")
		if err != nil {
			t.Fatal(err)
		}
		if v, err := cfgs.On("_schemas", nil); err != nil {
			t.Fatal(err)
		} else {
			found := false
			for _, c := range v.Configs {
				if c.Key == "cleanup.policy" && c.MaybeValue() == "compact" {
					found = true
				}
			}
			if !found {
				t.Errorf("_schemas is not compacted: %v", v.Configs)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var keys []string
		first := map[string]string{}
		for len(keys) < 9 {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("after %d records: %v", len(keys), err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				keys = append(keys, string(r.Key))
				if _, ok := first[string(r.Key)]; !ok {
					first[string(r.Key)] = string(r.Value)
				}
			})
		}
		want := `{"keytype":"SCHEMA","subject":"a","version":1,"magic":1}`
		if keys[0] != want {
			t.Fatalf("first key %s, want %s", keys[0], want)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(first[want]), &v); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(v) != fmt.Sprint(map[string]any{"subject": "a", "version": 1.0, "id": 1.0, "schema": userV1, "deleted": false}) {
			t.Fatalf("value %s", first[want])
		}
		if _, ok := first[`{"keytype":"CONFIG","subject":"a","magic":0}`]; !ok {
			t.Fatalf("no CONFIG key among %q", keys)
		}
		if _, ok := first[`{"keytype":"DELETE_SUBJECT","subject":"b","magic":0}`]; !ok {
			t.Fatalf("no DELETE_SUBJECT key among %q", keys)
		}
	})
}

// TestSeveralInstances runs three servers on one cluster: exactly one is
// the writer, writes through any of them succeed, and every instance reads
// its writes at once.
func TestSeveralInstances(t *testing.T) {
	backends(t, func(t *testing.T, seed string) {
		var ss []*Server
		for range 3 {
			ss = append(ss, startServer(t, seed))
		}
		// Wait for the election to settle: all agree on one writer.
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for {
			leaders := map[string]bool{}
			writers := 0
			for _, s := range ss {
				l, err := s.elect.leader(ctx)
				if err != nil {
					t.Fatal(err)
				}
				leaders[l] = true
				if s.IsWriter() {
					writers++
				}
			}
			if len(leaders) == 1 && writers == 1 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no agreement: leaders %v, writers %d", leaders, writers)
			case <-time.After(50 * time.Millisecond):
			}
		}
		for i := range 9 {
			s := ss[i%3]
			schema := fmt.Sprintf(`{"type":"record","name":"R","fields":[{"name":"f%d","type":"int","default":0}]}`, i)
			expectJSON(t, do(t, s.URL(), "POST", "/subjects/s/versions", reg(schema)), fmt.Sprintf(`{"id":%d}`, i+1))
			// Read-your-writes on the instance that answered.
			expectJSON(t, do(t, s.URL(), "GET", "/subjects/s/versions/latest/schema", nil), schema)
		}
		expectJSON(t, do(t, ss[1].URL(), "PUT", "/config", map[string]string{"compatibility": "NONE"}), `{"compatibility":"NONE"}`)
		expectJSON(t, do(t, ss[1].URL(), "GET", "/config", nil), `{"compatibilityLevel":"NONE","compatibility":"NONE"}`)

		// Close the writer: another instance takes over.
		var rest []*Server
		for _, s := range ss {
			if s.IsWriter() {
				s.Close()
			} else {
				rest = append(rest, s)
			}
		}
		expectJSON(t, do(t, rest[0].URL(), "POST", "/subjects/s/versions", reg(`"string"`)), `{"id":10}`)
		// Read-your-writes holds on the instance that answered; the other
		// one sees the write once it has read it from _schemas.
		expectJSON(t, do(t, rest[0].URL(), "GET", "/subjects/s/versions/latest/schema", nil), `"string"`)
		deadline := time.Now().Add(20 * time.Second)
		for {
			r := do(t, rest[1].URL(), "GET", "/subjects/s/versions/latest/schema", nil)
			if r.status == 200 && strings.TrimSpace(string(r.body)) == `"string"` {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the other instance still answers %d %s after 20s", r.status, r.body)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	})
}

func TestSchemasTopicWithPartitions(t *testing.T) {
	seed := brokerAddr(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 3, 1, nil, "_schemas"); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Config{Brokers: []kgo.Opt{kgo.SeedBrokers(seed)}, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "exactly 1") {
		t.Fatalf("Run: %v", err)
	}
}
