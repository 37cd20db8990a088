package handler

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/configs"
)

func (h *Handler) describeConfigs(req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		want := func(name string) bool { return rr.ConfigNames == nil || slices.Contains(rr.ConfigNames, name) }
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := h.cluster.Topic(rr.ResourceName)
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				sr.ErrorMessage = errMsg(fmt.Errorf("topic %q does not exist", rr.ResourceName))
				break
			}
			r := h.cluster.Resolver()
			for _, d := range configs.Defs() {
				if !want(d.Name) {
					continue
				}
				v, src := r.Value(t.Configs, d.Name)
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				c.Name = d.Name
				c.Value = &v
				c.Source = kmsg.ConfigSource(src)
				c.IsDefault = src == configs.SourceDefault
				c.ConfigType = kmsg.ConfigType(d.Type)
				if req.IncludeDocumentation && d.Doc != "" {
					doc := d.Doc
					c.Documentation = &doc
				}
				if req.IncludeSynonyms {
					c.ConfigSynonyms = h.synonyms(t.Configs, d)
				}
				sr.Configs = append(sr.Configs, c)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(h.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = errMsg(fmt.Errorf("unknown broker %q: this broker is node %d", rr.ResourceName, h.cfg.NodeID))
				break
			}
			for _, c := range h.brokerConfigs() {
				if want(c.Name) {
					sr.Configs = append(sr.Configs, c)
				}
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = errMsg(fmt.Errorf("resource type %d has no configs here (topics and brokers do)", rr.ResourceType))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func (h *Handler) synonyms(overrides map[string]string, d configs.Def) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	add := func(name, v string, src configs.Source) {
		s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		s.Name, s.Value, s.Source = name, &v, kmsg.ConfigSource(src)
		out = append(out, s)
	}
	if v, ok := overrides[d.Name]; ok {
		add(d.Name, v, configs.SourceDynamicTopic)
	}
	bn := configs.BrokerName(d.Name)
	if bn == "" {
		return out
	}
	r := h.cluster.Resolver()
	if v, ok := r.DynamicBroker[d.Name]; ok {
		add(bn, v, configs.SourceDynamicBroker)
	}
	if v, ok := r.DynamicDefault[d.Name]; ok {
		add(bn, v, configs.SourceDynamicDefaultBroker)
	}
	if v, ok := r.BrokerDefaults[d.Name]; ok {
		add(bn, v, configs.SourceStaticBroker)
	}
	add(bn, d.Default, configs.SourceDefault)
	return out
}

func (h *Handler) brokerConfigs() []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	add := func(name, v string, src configs.Source, typ configs.Type) {
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.Source, c.ReadOnly = name, &v, kmsg.ConfigSource(src), true
		c.IsDefault = src == configs.SourceDefault
		c.ConfigType = kmsg.ConfigType(typ)
		out = append(out, c)
	}
	add("node.id", strconv.Itoa(int(h.cfg.NodeID)), configs.SourceStaticBroker, configs.TypeInt)
	add("num.partitions", strconv.Itoa(int(h.cfg.DefaultPartitions)), configs.SourceStaticBroker, configs.TypeInt)
	add("auto.create.topics.enable", strconv.FormatBool(h.cfg.AutoCreateTopics), configs.SourceStaticBroker, configs.TypeBoolean)
	add("socket.request.max.bytes", strconv.Itoa(int(h.cfg.MaxRequestBytes)), configs.SourceStaticBroker, configs.TypeInt)
	r := h.cluster.Resolver()
	for _, d := range configs.Defs() {
		bn := configs.BrokerName(d.Name)
		if bn == "" {
			continue
		}
		v, src := r.BrokerValue(d.Name)
		add(bn, v, src, d.Type)
		out[len(out)-1].ReadOnly = false
	}
	slices.SortFunc(out, func(a, b kmsg.DescribeConfigsResponseResourceConfig) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}
