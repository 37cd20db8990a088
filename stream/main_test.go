package stream_test

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, when this test binary is re-executed as the
// child of a chaos test (SLUICE_CHAOS_CHILD set), the app that test kills.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_CHAOS_CHILD") != "" {
		os.Exit(chaosChild())
	}
	os.Exit(m.Run())
}
