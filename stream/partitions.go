package stream

import (
	"fmt"
	"slices"
)

type partitionPlan struct {
	sub   map[int]int32    // sub-topology -> task count
	topic map[string]int32 // physical topic -> partitions (sources and repartition topics)
}

// partitionCounts decides how many tasks each sub-topology has: the largest
// partition count of its source topics, where a repartition topic has the
// count set with Partitions or else that of the sub-topology writing it
// (Kafka Streams' default), and a foreign-key join's topics that of the
// table whose key they are partitioned by. sourcePartitions gives user
// topics' counts.
func (t *Topology) partitionCounts(appID string, sourcePartitions func(topic string) int32) partitionPlan {
	plan := partitionPlan{sub: map[int]int32{}, topic: map[string]int32{}}
	repart := map[string]*repartitionDef{}
	for _, r := range t.repartitions {
		repart[r.name] = r
	}
	for range len(t.subs) + 1 { // the sub-topologies form a DAG: this many rounds settle it
		for _, st := range t.subs {
			var n int32
			for _, tp := range st.topics {
				var c int32
				if slices.Contains(st.repart, tp) {
					r := repart[tp]
					c = r.partitions
					if c <= 0 {
						c = plan.sub[r.sizeFrom().sub]
					}
					if c > 0 {
						plan.topic[appID+"-"+tp] = c
					}
				} else {
					c = sourcePartitions(tp)
					plan.topic[tp] = c
				}
				n = max(n, c)
			}
			plan.sub[st.id] = max(n, 1)
		}
	}
	return plan
}

// repartitionTopics returns the physical names and partition counts of the
// repartition topics.
func (t *Topology) repartitionTopics(appID string, plan partitionPlan) map[string]int32 {
	out := map[string]int32{}
	for _, r := range t.repartitions {
		n := plan.topic[appID+"-"+r.name]
		if n <= 0 {
			n = plan.sub[r.sizeFrom().sub]
		}
		out[appID+"-"+r.name] = max(n, 1)
	}
	return out
}

// checkCopartitioning verifies that the user topics read by a sub-topology
// with a join have the same partition count, so that equal keys meet in the
// same task.
func (t *Topology) checkCopartitioning(partitions func(topic string) int32) error {
	for _, st := range t.subs {
		var join *node
		for _, n := range st.nodes {
			if n.copartition {
				join = n
			}
		}
		if join == nil {
			continue
		}
		counts := map[string]int32{}
		var first int32
		for _, tp := range st.topics {
			if slices.Contains(st.repart, tp) {
				continue
			}
			c := partitions(tp)
			counts[tp] = c
			if first == 0 {
				first = c
			}
			if c != first {
				return fmt.Errorf("%w: %s: topics %v are not co-partitioned (partition counts %v): a join needs equal counts; repartition one side (Repartition with Partitions)", ErrInvalidTopology, join.name, st.topics, counts)
			}
		}
	}
	return nil
}
