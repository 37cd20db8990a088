package window

import (
	"reflect"
	"testing"
	"time"

	"github.com/sluicehq/sluice/serde"
)

func TestWindowsFor(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		ts   int64
		want []Window
	}{
		{"tumbling start", Tumbling(10 * time.Millisecond), 0, []Window{{0, 10}}},
		{"tumbling end is exclusive", Tumbling(10 * time.Millisecond), 10, []Window{{10, 20}}},
		{"tumbling middle", Tumbling(10 * time.Millisecond), 17, []Window{{10, 20}}},
		{"hopping", Hopping(10*time.Millisecond, 5*time.Millisecond), 12, []Window{{5, 15}, {10, 20}}},
		{"hopping early", Hopping(10*time.Millisecond, 5*time.Millisecond), 3, []Window{{0, 10}}},
		{"hopping 3 windows", Hopping(9*time.Millisecond, 3*time.Millisecond), 10, []Window{{3, 12}, {6, 15}, {9, 18}}},
		{"negative", Tumbling(10 * time.Millisecond), -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.WindowsFor(tt.ts); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, s := range []Spec{Tumbling(0), Hopping(10*time.Millisecond, 20*time.Millisecond), Tumbling(time.Second).Grace(-time.Second), Tumbling(time.Second).Retention(time.Millisecond)} {
		if s.Validate() == nil {
			t.Errorf("%+v validated", s)
		}
	}
	if err := Hopping(time.Minute, time.Second).Grace(time.Second).Validate(); err != nil {
		t.Fatal(err)
	}
}

// Kafka Streams' TimeWindowedSerializer writes key bytes then the start;
// SessionWindowedSerializer writes key bytes, end, start.
func TestKafkaStreamsKeyFormats(t *testing.T) {
	ks := KeySerde(serde.String(), time.Minute)
	b, err := ks.AppendEncode(nil, Windowed[string]{Key: "page", Window: Window{Start: 60000, End: 120000}})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("page"), 0, 0, 0, 0, 0, 0, 0xea, 0x60)
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("time-windowed key %x, want %x", b, want)
	}
	w, err := ks.Decode(b)
	if err != nil || w.Key != "page" || w.Window != (Window{60000, 120000}) {
		t.Fatalf("decode: %+v %v", w, err)
	}
	ss := SessionKeySerde(serde.String())
	b, _ = ss.AppendEncode(nil, Windowed[string]{Key: "u", Window: Window{Start: 1, End: 2}})
	if want := []byte{'u', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}; !reflect.DeepEqual(b, want) {
		t.Fatalf("session key %x, want %x", b, want)
	}
	if _, err := ss.Decode([]byte("short")); err == nil {
		t.Fatal("short session key decoded")
	}
}
