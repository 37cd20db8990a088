package handler

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
	"github.com/sluicehq/sluice/broker/internal/configs"
)

func (h *Handler) incrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		err := h.alterConfigsOf(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string, name func(string) (string, error)) error {
			for _, rc := range rr.Configs {
				c := rc
				n, err := name(c.Name)
				if err != nil {
					return err
				}
				c.Name = n
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if c.Value == nil {
						return fmt.Errorf("%w: %s: SET needs a value", configs.ErrInvalid, c.Name)
					}
					cur[c.Name] = *c.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(cur, c.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					d, _ := configs.Lookup(c.Name)
					if d.Type != configs.TypeList {
						return fmt.Errorf("%w: %s is not a list: APPEND and SUBTRACT need a list config", configs.ErrInvalid, c.Name)
					}
					if c.Value == nil {
						return fmt.Errorf("%w: %s: %s needs a value", configs.ErrInvalid, c.Name, c.Op)
					}
					v, _ := h.cluster.Resolver().Value(cur, c.Name)
					items := strings.Split(v, ",")
					for it := range strings.SplitSeq(*c.Value, ",") {
						it = strings.TrimSpace(it)
						if c.Op == kmsg.IncrementalAlterConfigOpAppend {
							if !slices.Contains(items, it) {
								items = append(items, it)
							}
						} else {
							items = slices.DeleteFunc(items, func(s string) bool { return s == it })
						}
					}
					cur[c.Name] = strings.Join(items, ",")
				default:
					return fmt.Errorf("%w: %s: unknown operation %d", configs.ErrInvalid, c.Name, c.Op)
				}
			}
			return nil
		})
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMsg(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func (h *Handler) alterConfigs(req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		err := h.alterConfigsOf(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string, name func(string) (string, error)) error {
			clear(cur) // AlterConfigs replaces the whole set
			for _, c := range rr.Configs {
				n, err := name(c.Name)
				if err != nil {
					return err
				}
				if c.Value != nil {
					cur[n] = *c.Value
				}
			}
			return nil
		})
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMsg(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// alterConfigsOf applies edit to the current dynamic configs of a topic or
// of the broker (its own, or the cluster-wide defaults for the name ""),
// validates the result and stores it. Broker configs use Kafka's broker
// names (log.retention.ms), translated to the topic configs they default.
func (h *Handler) alterConfigsOf(typ kmsg.ConfigResourceType, name string, validateOnly bool, edit func(cur map[string]string, configName func(string) (string, error)) error) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		t, ok := h.cluster.Topic(name)
		if !ok {
			return fmt.Errorf("%w: topic %q", cluster.ErrUnknownTopic, name)
		}
		cur := maps.Clone(t.Configs)
		if err := edit(cur, topicConfigName); err != nil {
			return err
		}
		valid, err := configs.ValidateAll(cur)
		if err != nil || validateOnly {
			return err
		}
		return h.cluster.SetConfigs(name, valid)
	case kmsg.ConfigResourceTypeBroker:
		node := name != ""
		if node && name != strconv.Itoa(int(h.cfg.NodeID)) {
			return fmt.Errorf("%w: unknown broker %q: this broker is node %d", kerr.InvalidRequest, name, h.cfg.NodeID)
		}
		r := h.cluster.Resolver()
		cur := maps.Clone(r.DynamicDefault)
		if node {
			cur = maps.Clone(r.DynamicBroker)
		}
		if cur == nil {
			cur = map[string]string{}
		}
		if err := edit(cur, brokerConfigName); err != nil {
			return err
		}
		valid, err := configs.ValidateAll(cur)
		if err != nil || validateOnly {
			return err
		}
		return h.cluster.SetDynamicBrokerConfigs(node, valid)
	}
	return fmt.Errorf("%w: resource type %d has no configs here (topics and brokers do)", kerr.InvalidRequest, typ)
}

func topicConfigName(n string) (string, error) {
	if _, ok := configs.Lookup(n); !ok {
		return "", fmt.Errorf("%w: unknown topic config %q", configs.ErrInvalid, n)
	}
	return n, nil
}

// brokerConfigName maps a dynamic broker config to the topic config it
// defaults; other broker configs are read-only here.
func brokerConfigName(n string) (string, error) {
	if t, ok := configs.TopicName(n); ok {
		return t, nil
	}
	return "", fmt.Errorf("%w: broker config %q cannot be changed while the broker runs (dynamic broker configs are the log.* topic defaults, e.g. log.retention.ms)", configs.ErrInvalid, n)
}
