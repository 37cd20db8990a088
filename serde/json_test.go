package serde_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sluicehq/sluice/serde"
)

func TestJSON(t *testing.T) {
	s := serde.JSON[userV1T]()
	email := "a@b.c"
	u := userV1T{Name: "ann <&>", Age: 42, Email: &email, Tags: []string{"x"}}
	b, err := s.AppendEncode([]byte("k="), u)
	if err != nil {
		t.Fatal(err)
	}
	want := `k={"name":"ann \u003c\u0026\u003e","age":42,"email":"a@b.c","tags":["x"]}`
	if string(b) != want {
		t.Errorf("got %s, want %s (json.Marshal's output, no newline)", b, want)
	}
	got, err := s.Decode(b[2:])
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Errorf("round trip: got %+v, %v", got, err)
	}
}

func TestJSONDecode(t *testing.T) {
	lax := serde.JSON[userV1T]()
	strict := serde.JSON[userV1T](serde.DisallowUnknownFields())
	for _, tc := range []struct {
		name     string
		in       string
		laxOK    bool
		strictOK bool
		wantName string
	}{
		{"plain", `{"name":"a"}`, true, true, "a"},
		{"whitespace", " \n{\"name\":\"a\"}\n ", true, true, "a"},
		{"unknown field", `{"name":"a","zip":1}`, true, false, "a"},
		{"trailing value", `{"name":"a"} {}`, false, false, ""},
		{"trailing garbage", `{"name":"a"}]`, false, false, ""},
		{"truncated", `{"name":"a"`, false, false, ""},
		{"empty", ``, false, false, ""},
		{"wrong type", `{"name":1}`, false, false, ""},
		{"null", `null`, true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []struct {
				name string
				s    serde.Serde[userV1T]
				ok   bool
			}{{"lax", lax, tc.laxOK}, {"strict", strict, tc.strictOK}} {
				got, err := m.s.Decode([]byte(tc.in))
				if m.ok {
					if err != nil || got.Name != tc.wantName {
						t.Errorf("%s: got %+v, %v", m.name, got, err)
					}
					continue
				}
				if !errors.Is(err, serde.ErrMalformed) {
					t.Errorf("%s: got %v, want ErrMalformed", m.name, err)
				}
			}
		})
	}
}

func TestJSONEncodeError(t *testing.T) {
	s := serde.JSON[any]()
	if _, err := s.AppendEncode(nil, make(chan int)); err == nil || errors.Is(err, serde.ErrMalformed) {
		t.Errorf("encoding a channel: got %v", err)
	}
}
