package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           [][2]string // Kafka topic configs, e.g. {"retention.ms", "3600000"}
}

// CreateTopic creates spec.Name. A refusal is a *TopicError.
func CreateTopic(ctx context.Context, adm *kadm.Client, spec TopicSpec) error {
	var configs map[string]*string
	if len(spec.Configs) > 0 {
		configs = make(map[string]*string, len(spec.Configs))
		for _, kv := range spec.Configs {
			configs[kv[0]] = kadm.StringPtr(kv[1])
		}
	}
	resp, err := adm.CreateTopic(ctx, spec.Partitions, spec.ReplicationFactor, configs, spec.Name)
	if err != nil && resp.Topic == "" {
		return fmt.Errorf("create topic %q: %w", spec.Name, err)
	}
	return topicErr("create", spec.Name, resp.Err, resp.ErrMessage)
}

// DeleteTopic deletes name. A refusal is a *TopicError.
func DeleteTopic(ctx context.Context, adm *kadm.Client, name string) error {
	resp, err := adm.DeleteTopic(ctx, name)
	if err != nil && resp.Topic == "" {
		return fmt.Errorf("delete topic %q: %w", name, err)
	}
	return topicErr("delete", name, resp.Err, resp.ErrMessage)
}

// AlterTopicConfig sets and deletes (reverts to the default) configs of
// topic name with IncrementalAlterConfigs. A refusal is a *TopicError.
// With nothing to change it sends an empty request, which checks the topic.
func AlterTopicConfig(ctx context.Context, adm *kadm.Client, name string, set [][2]string, del []string) error {
	var alters []kadm.AlterConfig
	for _, kv := range set {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv[0], Value: kadm.StringPtr(kv[1])})
	}
	for _, k := range del {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	resps, err := adm.AlterTopicConfigs(ctx, alters, name)
	if err != nil {
		return fmt.Errorf("alter configs of topic %q: %w", name, err)
	}
	for _, r := range resps {
		if r.Err != nil {
			return topicErr("alter configs of", name, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// TopicSummary is one line of `topics list`.
type TopicSummary struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Internal   bool   `json:"internal"`
}

// ListTopics returns every topic, internal ones included, sorted by name.
func ListTopics(ctx context.Context, adm *kadm.Client) ([]TopicSummary, error) {
	details, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	out := make([]TopicSummary, 0, len(details))
	for _, d := range details {
		if d.Err != nil {
			continue // a topic being deleted or not yet ready
		}
		out = append(out, TopicSummary{Name: d.Topic, Partitions: len(d.Partitions), Internal: d.IsInternal})
	}
	slices.SortFunc(out, func(a, b TopicSummary) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// WriteTopicList prints topics as a NAME PARTITIONS table (internal topics
// marked) or as a JSON array.
func WriteTopicList(w io.Writer, out Output, topics []TopicSummary) error {
	if out == JSON {
		return writeJSON(w, topics)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPARTITIONS")
	for _, t := range topics {
		if t.Internal {
			fmt.Fprintf(tw, "%s\t%d\t(internal)\n", t.Name, t.Partitions)
		} else {
			fmt.Fprintf(tw, "%s\t%d\n", t.Name, t.Partitions)
		}
	}
	return tw.Flush()
}

// PartitionInfo describes one partition in TopicDescription.
type PartitionInfo struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	StartOffset int64   `json:"log_start_offset"` // -1 if unknown
	EndOffset   int64   `json:"log_end_offset"`   // -1 if unknown
	Error       string  `json:"error,omitempty"`
}

// ConfigEntry is one topic config as the broker reports it.
type ConfigEntry struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"` // topic, static-broker, dynamic-broker, default, ...
	Sensitive bool   `json:"sensitive,omitempty"`
}

// TopicDescription is what `topics describe` shows.
type TopicDescription struct {
	Name       string          `json:"name"`
	Internal   bool            `json:"internal"`
	Partitions []PartitionInfo `json:"partitions"`
	Configs    []ConfigEntry   `json:"configs"`
	// ConfigsError says why Configs is empty when the broker did not
	// answer DescribeConfigs.
	ConfigsError string `json:"configs_error,omitempty"`
}

// DescribeTopic gathers the partitions, leaders, log start and end offsets
// and configs of name. A missing topic is a *TopicError. If only the configs
// cannot be read, the description says so in ConfigsError.
func DescribeTopic(ctx context.Context, adm *kadm.Client, name string) (TopicDescription, error) {
	details, err := adm.ListTopicsWithInternal(ctx, name)
	if err != nil {
		return TopicDescription{}, fmt.Errorf("describe topic %q: %w", name, err)
	}
	d, ok := details[name]
	if !ok {
		return TopicDescription{}, fmt.Errorf("describe topic %q: the broker did not return it", name)
	}
	if d.Err != nil {
		return TopicDescription{}, topicErr("describe", name, d.Err, "")
	}
	desc := TopicDescription{Name: name, Internal: d.IsInternal}

	starts, serr := adm.ListStartOffsets(ctx, name)
	ends, eerr := adm.ListEndOffsets(ctx, name)
	for _, p := range d.Partitions.Sorted() {
		pi := PartitionInfo{
			Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR,
			StartOffset: -1, EndOffset: -1,
		}
		if p.Err != nil {
			pi.Error = describe(p.Err)
		}
		pi.StartOffset = offsetOf(starts, serr, name, p.Partition, &pi)
		pi.EndOffset = offsetOf(ends, eerr, name, p.Partition, &pi)
		desc.Partitions = append(desc.Partitions, pi)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err == nil {
		var rc kadm.ResourceConfig
		rc, err = rcs.On(name, nil)
		if err == nil && rc.Err != nil {
			err = rc.Err
		}
		for _, c := range rc.Configs {
			desc.Configs = append(desc.Configs, ConfigEntry{
				Name: c.Key, Value: c.MaybeValue(), Source: configSource(c.Source), Sensitive: c.Sensitive,
			})
		}
	}
	if err != nil {
		desc.ConfigsError = describe(err)
		desc.Configs = nil
	}
	slices.SortFunc(desc.Configs, func(a, b ConfigEntry) int { return cmp.Compare(a.Name, b.Name) })
	return desc, nil
}

// offsetOf looks up one partition's listed offset, noting a failure in pi.
func offsetOf(offs kadm.ListedOffsets, err error, topic string, p int32, pi *PartitionInfo) int64 {
	if err == nil {
		o, ok := offs.Lookup(topic, p)
		if !ok {
			return -1
		}
		if o.Err == nil {
			return o.Offset
		}
		err = o.Err
	}
	if pi.Error == "" {
		pi.Error = "list offsets: " + describe(err)
	}
	return -1
}

// configSource shortens Kafka's DYNAMIC_TOPIC_CONFIG-style names, keeping
// apart the places a value can be set: the topic itself (topic), the broker's
// startup configuration (static-broker: `sluice broker --topic-default`), a
// broker config changed at runtime (dynamic-broker, dynamic-default-broker)
// and Kafka's built-in default (default).
func configSource(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "static-broker"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "dynamic-broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "dynamic-default-broker"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	}
	return strings.ToLower(strings.ReplaceAll(s.String(), "_", "-"))
}

// WriteTopicDescription prints d as text tables or as JSON.
func WriteTopicDescription(w io.Writer, out Output, d TopicDescription) error {
	if out == JSON {
		return writeJSON(w, d)
	}
	internal := ""
	if d.Internal {
		internal = " (internal)"
	}
	fmt.Fprintf(w, "Topic: %s%s  Partitions: %d\n\n", d.Name, internal, len(d.Partitions))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tREPLICAS\tISR\tLOG-START\tLOG-END")
	for _, p := range d.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s", p.Partition, p.Leader,
			joinInt32(p.Replicas), joinInt32(p.ISR), offsetText(p.StartOffset), offsetText(p.EndOffset))
		if p.Error != "" {
			fmt.Fprintf(tw, "\t%s", p.Error)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if d.ConfigsError != "" {
		_, err := fmt.Fprintf(w, "Configs: could not be read from the broker (%s)\n", d.ConfigsError)
		return err
	}
	if len(d.Configs) == 0 {
		_, err := fmt.Fprintln(w, "Configs: none reported")
		return err
	}
	fmt.Fprintln(w, "Configs:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVALUE\tSOURCE")
	for _, c := range d.Configs {
		v := c.Value
		if c.Sensitive {
			v = "(sensitive)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, v, c.Source)
	}
	return tw.Flush()
}

func offsetText(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

func joinInt32(xs []int32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatInt(int64(x), 10)
	}
	return strings.Join(s, ",")
}
