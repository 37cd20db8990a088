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
// table whose key they are partitioned by. In a sub-topology with a
// co-partitioned join, a repartition topic without Partitions takes the
// count of the sub-topology's user topics instead (or, with none, the
// largest of its repartition topics), as Kafka Streams' co-partitioning
// enforcer does: equal keys must meet in the same task. sourcePartitions
// gives user topics' counts.
func (t *Topology) partitionCounts(appID string, sourcePartitions func(topic string) int32) partitionPlan {
	plan := partitionPlan{sub: map[int]int32{}, topic: map[string]int32{}}
	repart := map[string]*repartitionDef{}
	for _, r := range t.repartitions {
		repart[r.name] = r
	}
	for range len(t.subs) + 1 { // the sub-topologies form a DAG: this many rounds settle it
		for _, st := range t.subs {
			counts := make([]int32, len(st.topics))
			var userMax, repartMax int32
			for i, tp := range st.topics {
				if slices.Contains(st.repart, tp) {
					r := repart[tp]
					counts[i] = r.partitions
					if counts[i] <= 0 {
						counts[i] = plan.sub[r.sizeFrom().sub]
					}
					repartMax = max(repartMax, counts[i])
				} else {
					counts[i] = sourcePartitions(tp)
					userMax = max(userMax, counts[i])
				}
			}
			if st.copartitioned() {
				target := userMax
				if target == 0 {
					target = repartMax
				}
				for i, tp := range st.topics {
					if r := repart[tp]; r != nil && slices.Contains(st.repart, tp) && r.partitions <= 0 && r.like == nil && target > 0 {
						counts[i] = target
					}
				}
			}
			var n int32
			for i, tp := range st.topics {
				if slices.Contains(st.repart, tp) {
					if counts[i] > 0 {
						plan.topic[appID+"-"+tp] = counts[i]
					}
				} else {
					plan.topic[tp] = counts[i]
				}
				n = max(n, counts[i])
			}
			plan.sub[st.id] = max(n, 1)
		}
	}
	return plan
}

// copartitioned reports whether the sub-topology holds a join whose inputs
// must be co-partitioned.
func (st *subTopology) copartitioned() bool {
	return slices.ContainsFunc(st.nodes, func(n *node) bool { return n.copartition })
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

// checkCopartitioning verifies that the topics read by a sub-topology with
// a join (user topics, and repartition topics as plan sizes them) have the
// same partition count, so that equal keys meet in the same task.
func (t *Topology) checkCopartitioning(appID string, plan partitionPlan) error {
	for _, st := range t.subs {
		if !st.copartitioned() {
			continue
		}
		var join *node
		for _, n := range st.nodes {
			if n.copartition {
				join = n
			}
		}
		counts := map[string]int32{}
		var first int32
		mismatch := false
		for _, tp := range st.topics {
			phys := tp
			if slices.Contains(st.repart, tp) {
				phys = appID + "-" + tp
			}
			c := plan.topic[phys]
			counts[phys] = c
			if first == 0 {
				first = c
			}
			mismatch = mismatch || c != first
		}
		if mismatch {
			return fmt.Errorf("%w: %s: topics %v are not co-partitioned (partition counts %v): a join needs equal counts; repartition one side (Repartition with Partitions)", ErrInvalidTopology, join.name, st.topics, counts)
		}
	}
	return nil
}

// checkExplicitCopartitioning is what Build can check of co-partitioning
// before the topics' partition counts are known: the repartition topics
// of a join's sub-topology given counts with Partitions must agree.
func (t *Topology) checkExplicitCopartitioning() error {
	repart := map[string]*repartitionDef{}
	for _, r := range t.repartitions {
		repart[r.name] = r
	}
	for _, st := range t.subs {
		if !st.copartitioned() {
			continue
		}
		counts := map[string]int32{}
		var first int32
		mismatch := false
		for _, tp := range st.repart {
			if r := repart[tp]; r != nil && r.partitions > 0 {
				counts[tp] = r.partitions
				if first == 0 {
					first = r.partitions
				}
				mismatch = mismatch || r.partitions != first
			}
		}
		if mismatch {
			for _, n := range st.nodes {
				if n.copartition {
					return buildErr(n.name, "joins repartition topics with different partition counts %v: a join needs equal counts", counts)
				}
			}
		}
	}
	return nil
}
