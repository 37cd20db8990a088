package streamtest_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/stream/streamtest"
	"github.com/sluicehq/sluice/window"
)

// Only the final count of each window comes out, once stream time passes
// window end + grace; late records within grace are part of it.
func TestSuppressUntilWindowCloses(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"views"}, str, str)
	stream.WindowedCount(stream.WindowedBy(stream.GroupByKey(s), window.Tumbling(10*time.Millisecond).Grace(5*time.Millisecond))).
		Suppress(stream.UntilWindowCloses()).ToStream().To("final")
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "views", str, str)
	in.Pipe("p", "", ts(1))
	in.Pipe("p", "", ts(4))
	in.Pipe("q", "", ts(9))
	in.Pipe("p", "", ts(12)) // stream time 12: [0,10) still open (grace until 15)
	check(t, "nothing final yet", readWindowed(t, d, "final", 10*time.Millisecond), []wkv(nil))
	in.Pipe("p", "", ts(8))  // late, within grace
	in.Pipe("p", "", ts(15)) // stream time 15: [0,10) closes
	check(t, "first windows", readWindowed(t, d, "final", 10*time.Millisecond), []wkv{{"p", 0, 10, 3}, {"q", 0, 10, 1}})
	in.Pipe("p", "", ts(30)) // [10,20) closes
	check(t, "second window", readWindowed(t, d, "final", 10*time.Millisecond), []wkv{{"p", 10, 20, 2}})
	in.Pipe("p", "", ts(2)) // too late for anything
	check(t, "nothing more", readWindowed(t, d, "final", 10*time.Millisecond), []wkv(nil))
}

func TestSuppressUntilTimeLimit(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"in"}, str, str)
	stream.WindowedCount(stream.WindowedBy(stream.GroupByKey(s), window.Tumbling(time.Hour))).
		Suppress(stream.UntilTimeLimit(10*time.Millisecond, 0)).ToStream().To("out")
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "in", str, str)
	in.Pipe("a", "", ts(0))
	in.Pipe("a", "", ts(5))
	in.Pipe("b", "", ts(8))
	check(t, "held", readWindowed(t, d, "out", time.Hour), []wkv(nil))
	in.Pipe("c", "", ts(12)) // a's first update was at 0: due at 10
	check(t, "a emitted", readWindowed(t, d, "out", time.Hour), []wkv{{"a", 0, 3600000, 2}})
	in.Pipe("c", "", ts(30))
	// c's first update (at 12) set its deadline to 22; the update at 30
	// arrives before the check, so c comes out with its latest count.
	check(t, "b and c emitted", readWindowed(t, d, "out", time.Hour), []wkv{{"b", 0, 3600000, 1}, {"c", 0, 3600000, 2}})
}
