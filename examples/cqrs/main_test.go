package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the no-flag mode in-process: embedded broker, sample orders,
// the app, and its HTTP read model queried over 127.0.0.1.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"alice       46.00",
		"bob         15.00",
		"carol      130.00",
		"dave        42.00",
		`?key=alice -> 200 {"key":"alice","value":4600}`,
		"?key=mallory -> 404",
		"done",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestFlags(t *testing.T) {
	if err := run(t.Context(), []string{"--no-such-flag"}, &strings.Builder{}); err == nil {
		t.Fatal("an unknown flag was accepted")
	}
}
