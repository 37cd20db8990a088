package registrytest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/broker/brokertest"
)

func TestStart(t *testing.T) {
	s := Start(t, brokertest.Start(t).Addr())
	cl, err := sr.NewClient(sr.URLs(s.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := cl.CreateSchema(t.Context(), "s", sr.Schema{Schema: `"string"`})
	if err != nil || ss.ID != 1 {
		t.Fatalf("%+v, %v", ss, err)
	}
}
