package streamtest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/stream/streamtest"
)

// Orders joined with payments of the same key within 10 ms, modelled on
// Kafka Streams' documented join semantics: results at the later
// timestamp; late records (window closed) dropped; left and outer joins
// emit an unmatched record once stream time is past its window end plus
// grace (strictly, as Kafka Streams does: o9 at 20 closes at 30 and comes
// out when stream time moves past 30).
func TestStreamStreamJoins(t *testing.T) {
	w := stream.JoinTimeDifference(10 * time.Millisecond).Grace(0)
	cases := []struct {
		name string
		add  func(b *stream.Builder, o stream.KStream[string, string], p stream.KStream[string, string])
		want []string
	}{
		{"inner", func(b *stream.Builder, o, p stream.KStream[string, string]) {
			stream.StreamJoin(o, p, w, func(a, b string) string { return a + "+" + b }).WithSerdes(str, str).To("out")
		}, []string{"k1=o1+p1@5", "k1=o2+p1@12", "k3=o3+p3@30"}},
		{"left", func(b *stream.Builder, o, p stream.KStream[string, string]) {
			stream.StreamLeftJoin(o, p, w, func(a, b string, ok bool) string {
				if !ok {
					b = "-"
				}
				return a + "+" + b
			}).WithSerdes(str, str).To("out")
		}, []string{"k1=o1+p1@5", "k1=o2+p1@12", "k3=o3+p3@30", "k2=o9+-@20"}},
		{"outer", func(b *stream.Builder, o, p stream.KStream[string, string]) {
			stream.StreamOuterJoin(o, p, w, func(a string, okA bool, b string, okB bool) string {
				if !okA {
					a = "-"
				}
				if !okB {
					b = "-"
				}
				return a + "+" + b
			}).WithSerdes(str, str).To("out")
		}, []string{"k1=o1+p1@5", "k1=o2+p1@12", "k3=o3+p3@30", "k2=o9+-@20", "k4=-+p4@22"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := stream.NewBuilder()
			o := stream.Stream(b, []string{"orders"}, str, str)
			p := stream.Stream(b, []string{"payments"}, str, str)
			tc.add(b, o, p)
			d := streamtest.New(t, build(t, b))
			orders := streamtest.Input(d, "orders", str, str)
			payments := streamtest.Input(d, "payments", str, str)
			orders.Pipe("k1", "o1", ts(2))
			payments.Pipe("k1", "p1", ts(5))   // joins o1 (3 ms apart)
			orders.Pipe("k1", "o2", ts(12))    // joins p1 (7 ms apart)
			orders.Pipe("k2", "o9", ts(20))    // never matched
			payments.Pipe("k4", "p4", ts(22))  // never matched
			payments.Pipe("k1", "late", ts(0)) // its window closed at 10 < stream time 22: dropped
			orders.Pipe("k3", "o3", ts(30))
			payments.Pipe("k3", "p3", ts(30))
			orders.Pipe("k9", "tick", ts(60)) // moves stream time so windows close
			var got []string
			for _, r := range streamtest.Output(d, "out", str, str).ReadRecords() {
				got = append(got, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.Timestamp.UnixMilli()))
			}
			check(t, "joined", got, tc.want)
		})
	}
}
