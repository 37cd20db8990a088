package streamtest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/stream/streamtest"
	"github.com/sluicehq/sluice/window"
)

// Sessions with a 10 ms gap: records within the gap join a session, a
// record bridging two sessions merges them (the merged-away sessions are
// deleted downstream), out-of-order records within grace are accepted.
func TestSessionWindowCount(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"clicks"}, str, str)
	stream.SessionCount(stream.SessionWindowedBy(stream.GroupByKey(s), window.Session(10*time.Millisecond).Grace(20*time.Millisecond))).
		ToStream().To("sessions")
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "clicks", str, str)
	in.Pipe("u", "", ts(0))
	in.Pipe("u", "", ts(5))  // same session [0,5]
	in.Pipe("u", "", ts(30)) // new session [30,30]
	in.Pipe("u", "", ts(18)) // bridges [0,5] (gap 13 > 10? no) -> joins [30,30]? 30-18 = 12 > 10: its own [18,18]
	in.Pipe("u", "", ts(12)) // within 10 of 5 and of 18: merges [0,5], [18,18] into [0,18]
	var got []string
	for _, r := range streamtest.Output(d, "sessions", window.SessionKeySerde(str), i64).ReadRecords() {
		v := fmt.Sprint(r.Value)
		if r.Tombstone {
			v = "deleted"
		}
		got = append(got, fmt.Sprintf("%s[%d,%d]=%s", r.Key.Key, r.Key.Window.Start, r.Key.Window.End, v))
	}
	check(t, "sessions", got, []string{
		"u[0,0]=1", "u[0,0]=deleted", "u[0,5]=2", "u[30,30]=1", "u[18,18]=1",
		"u[0,5]=deleted", "u[18,18]=deleted", "u[0,18]=4",
	})
}
