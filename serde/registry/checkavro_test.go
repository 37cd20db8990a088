package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckAvro(t *testing.T) {
	msgs, err := CheckAvro(userV3, userV2)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], "READER_FIELD_MISSING_DEFAULT_VALUE") {
		t.Fatalf("messages %q", msgs)
	}
	if msgs, err := CheckAvro(userV2, userV1); err != nil || len(msgs) != 0 {
		t.Fatalf("v2 reading v1: %q, %v", msgs, err)
	}
	if _, err := CheckAvro(`{`, userV1); !errors.Is(err, ErrInvalidSchema) {
		t.Fatalf("invalid: %v", err)
	}
}
