package stream_test

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, when this test binary is re-executed as the
// child of a chaos test, the app (SLUICE_CHAOS_CHILD) or the broker
// (SLUICE_BROKER_CHILD) that test kills.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_CHAOS_CHILD") != "" {
		os.Exit(chaosChild())
	}
	if os.Getenv("SLUICE_BROKER_CHILD") != "" {
		os.Exit(brokerChild())
	}
	os.Exit(m.Run())
}
