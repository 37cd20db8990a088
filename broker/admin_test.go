package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
)

func TestCreateTopicsValidation(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("1000")}, "ok"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		topic   string
		parts   int32
		rf      int16
		configs map[string]*string
		want    error
	}{
		{"exists", "ok", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad name", "no/slash", 1, 1, nil, kerr.InvalidTopicException},
		{"dot", ".", 1, 1, nil, kerr.InvalidTopicException},
		{"collides", "o_k", 1, 1, nil, nil},
		{"collision with o_k", "o.k", 1, 1, nil, kerr.InvalidTopicException},
		{"zero partitions", "z", 0, 1, nil, kerr.InvalidPartitions},
		{"replication factor 3", "rf", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"unknown config", "c1", 1, 1, map[string]*string{"retention.msx": kadm.StringPtr("1")}, kerr.InvalidConfig},
		{"bad config value", "c2", 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, kerr.InvalidConfig},
		{"bad cleanup policy", "c3", 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("shred")}, kerr.InvalidConfig},
		{"default partitions", "dflt", -1, -1, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := adm.CreateTopic(ctx, c.parts, c.rf, c.configs, c.topic)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if err != nil && resp.ErrMessage == "" {
				t.Errorf("error %v without a message", err)
			}
		})
	}
	// Validate-only creates nothing.
	if _, err := adm.ValidateCreateTopics(ctx, 1, 1, nil, "dry"); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td.Has("dry") {
		t.Fatal("validate-only CreateTopics created the topic")
	}
	if d := td["dflt"]; len(d.Partitions) != 1 {
		t.Fatalf("default partitions: %d, want 1", len(d.Partitions))
	}
}

func TestTopicLifecycleAndConfigs(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "life"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.UpdatePartitions(ctx, 4, "life"); err != nil {
		t.Fatal(err)
	}
	resp, err := adm.UpdatePartitions(ctx, 2, "life")
	if err == nil {
		err = resp.Error()
	}
	if !errors.Is(err, kerr.InvalidPartitions) {
		t.Fatalf("shrinking partitions: %v, want INVALID_PARTITIONS", err)
	}
	alter := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("60000")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
	}
	if r, err := adm.AlterTopicConfigs(ctx, alter, "life"); err != nil || r[0].Err != nil {
		t.Fatalf("alter: %v %v", err, r)
	}
	bad := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: kadm.StringPtr("-5")}}
	if r, _ := adm.AlterTopicConfigs(ctx, bad, "life"); !errors.Is(r[0].Err, kerr.InvalidConfig) {
		t.Fatalf("bad alter: %v, want INVALID_CONFIG", r[0].Err)
	}
	check := func(adm *kadm.Client) {
		t.Helper()
		rc, err := adm.DescribeTopicConfigs(ctx, "life")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]kadm.Config{}
		for _, c := range rc[0].Configs {
			got[c.Key] = c
		}
		if c := got["retention.ms"]; c.MaybeValue() != "60000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("retention.ms = %q from %v", c.MaybeValue(), c.Source)
		}
		if c := got["cleanup.policy"]; c.MaybeValue() != "delete,compact" {
			t.Fatalf("cleanup.policy = %q", c.MaybeValue())
		}
		if c := got["segment.bytes"]; c.MaybeValue() != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("segment.bytes = %q from %v", c.MaybeValue(), c.Source)
		}
	}
	check(adm)

	// Everything survives a restart.
	dir := b.Config.DataDir
	b.Stop(t)
	b2 := brokertest.Start(t, brokertest.DataDir(dir))
	adm2 := kadm.NewClient(newClient(t, b2.Addr()))
	check(adm2)
	td, err := adm2.ListTopics(ctx, "life")
	if err != nil || len(td["life"].Partitions) != 4 {
		t.Fatalf("after restart: %v, %+v", err, td)
	}
	if _, err := adm2.DeleteTopic(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if r, err := adm2.DeleteTopic(ctx, "life"); err == nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v", r.Err)
	}
	// A topic of the same name starts empty.
	if _, err := adm2.CreateTopic(ctx, 1, 1, nil, "life"); err != nil {
		t.Fatal(err)
	}
	offs, err := adm2.ListEndOffsets(ctx, "life")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("life", 0); o.Offset != 0 {
		t.Fatalf("recreated topic ends at %d", o.Offset)
	}
}

func TestAutoCreateTopics(t *testing.T) {
	ctx := testCtx(t)
	t.Run("enabled", func(t *testing.T) {
		b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.DefaultPartitions = 3 }))
		cl := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation())
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		td, err := kadm.NewClient(cl).ListTopics(ctx, "auto")
		if err != nil || len(td["auto"].Partitions) != 3 {
			t.Fatalf("%v %+v", err, td)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.DisableAutoCreateTopics = true }))
		r := dialRaw(t, b.Addr())
		req := kmsg.NewPtrMetadataRequest()
		name := "auto"
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
		req.AllowAutoTopicCreation = true
		r.send(req, 9)
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(9)
		r.recv(resp)
		if code := resp.Topics[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("error %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
		}
	})
}

func TestMetadataAdvertisesListener(t *testing.T) {
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Advertise = "kafka.example:19092"
		c.NodeID = 7
	}))
	r := dialRaw(t, b.Addr())
	r.send(kmsg.NewPtrMetadataRequest(), 9)
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(9)
	r.recv(resp)
	if len(resp.Brokers) != 1 || resp.Brokers[0].Host != "kafka.example" || resp.Brokers[0].Port != 19092 || resp.Brokers[0].NodeID != 7 {
		t.Fatalf("brokers %+v", resp.Brokers)
	}
	if resp.ControllerID != 7 || resp.ClusterID == nil || *resp.ClusterID == "" {
		t.Fatalf("controller %d cluster %v", resp.ControllerID, resp.ClusterID)
	}
}

func TestFetchLongPoll(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr())
	createTopicRaw(t, r, "poll", 1)
	fetch := func(offset int64, wait int32) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = wait
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		p := kmsg.NewFetchRequestTopicPartition()
		p.FetchOffset = offset
		p.PartitionMaxBytes = 1 << 20
		req.Topics = []kmsg.FetchRequestTopic{{Topic: "poll", Partitions: []kmsg.FetchRequestTopicPartition{p}}}
		r.send(req, 11)
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(11)
		r.recv(resp)
		return resp
	}
	// Nothing to read: the broker answers empty once MaxWait passes.
	start := time.Now()
	resp := fetch(0, 100)
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Fatalf("empty fetch answered after %v, before MaxWait", el)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
		t.Fatalf("empty fetch: %+v", p)
	}
	// Regression: empty records must be sent as size 0, not null (-1), which
	// librdkafka rejects ("invalid MessageSetSize -1").
	if resp.Topics[0].Partitions[0].RecordBatches == nil {
		t.Fatal("empty fetch answered with null records")
	}
	// A produce on another connection wakes a waiting fetch long before its
	// 20 s MaxWait.
	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- fetch(0, 20000) }()
	w := dialRaw(t, b.Addr())
	w.send(produceReq("poll", 0, 1, makeBatch(-1, -1, -1, 4, 1000)), 7)
	pr := kmsg.NewPtrProduceResponse()
	pr.SetVersion(7)
	w.recv(pr)
	select {
	case resp := <-done:
		if p := resp.Topics[0].Partitions[0]; len(p.RecordBatches) == 0 || p.HighWatermark != 4 {
			t.Fatalf("woken fetch: hw %d, %d bytes", p.HighWatermark, len(p.RecordBatches))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fetch not woken by a produce within 10s")
	}
	// Beyond the end: OFFSET_OUT_OF_RANGE right away.
	if p := fetch(99, 20000).Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

func TestListOffsetsAndDeleteRecords(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("lo"))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "lo"); err != nil {
		t.Fatal(err)
	}
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 10 {
		r := &kgo.Record{Value: []byte("v"), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	end, err := adm.ListEndOffsets(ctx, "lo")
	if o, _ := end.Lookup("lo", 0); err != nil || o.Offset != 10 {
		t.Fatalf("end offset %v %v", o, err)
	}
	byTime, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4500*time.Millisecond).UnixMilli(), "lo")
	if o, _ := byTime.Lookup("lo", 0); err != nil || o.Offset != 5 {
		t.Fatalf("offset for time: %+v %v, want 5", o, err)
	}
	del, err := adm.DeleteRecords(ctx, kadm.Offsets{"lo": {0: {At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := del.Lookup("lo", 0); d.Err != nil || d.LowWatermark != 4 {
		t.Fatalf("delete records: %+v", d)
	}
	start, err := adm.ListStartOffsets(ctx, "lo")
	if o, _ := start.Lookup("lo", 0); err != nil || o.Offset != 4 {
		t.Fatalf("start offset after DeleteRecords: %+v %v", o, err)
	}
	del, _ = adm.DeleteRecords(ctx, kadm.Offsets{"lo": {0: {At: 11}}})
	if d, _ := del.Lookup("lo", 0); !errors.Is(d.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past the end: %v", d.Err)
	}
	// Consuming from the start now begins at 4.
	c := newClient(t, b.Addr(), kgo.ConsumeTopics("lo"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := c.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	if first := fs.Records()[0]; first.Offset != 4 {
		t.Fatalf("first offset consumed %d, want 4", first.Offset)
	}
}

func TestDynamicBrokerDefaults(t *testing.T) {
	static := brokertest.WithConfig(func(c *broker.Config) {
		c.TopicDefaults = map[string]string{"segment.bytes": "2097152"}
	})
	b := brokertest.Start(t, static)
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("5000")}, "dyn"); err != nil {
		t.Fatal(err)
	}
	set := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "log.retention.bytes", Value: kadm.StringPtr("123456")},
		{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("99999")},
	}
	if r, err := adm.AlterBrokerConfigs(ctx, set); err != nil || r[0].Err != nil {
		t.Fatalf("alter cluster-wide broker defaults: %v %v", err, r)
	}
	bad := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "num.partitions", Value: kadm.StringPtr("3")}}
	if r, _ := adm.AlterBrokerConfigs(ctx, bad); len(r) == 0 || !errors.Is(r[0].Err, kerr.InvalidConfig) {
		t.Fatalf("altering a read-only broker config: %v, want INVALID_CONFIG", r)
	}
	check := func(adm *kadm.Client) {
		t.Helper()
		rc, err := adm.DescribeTopicConfigs(ctx, "dyn")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]struct {
			v   string
			src kmsg.ConfigSource
		}{
			"retention.ms":    {"5000", kmsg.ConfigSourceDynamicTopicConfig},
			"retention.bytes": {"123456", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
			"segment.bytes":   {"2097152", kmsg.ConfigSourceStaticBrokerConfig},
			"segment.ms":      {"604800000", kmsg.ConfigSourceDefaultConfig},
		}
		for _, c := range rc[0].Configs {
			if w, ok := want[c.Key]; ok && (c.MaybeValue() != w.v || c.Source != w.src) {
				t.Errorf("%s = %q from %v, want %q from %v", c.Key, c.MaybeValue(), c.Source, w.v, w.src)
			}
		}
	}
	check(adm)
	dir := b.Config.DataDir
	b.Stop(t)
	b2 := brokertest.Start(t, static, brokertest.DataDir(dir))
	check(kadm.NewClient(newClient(t, b2.Addr())))
}
