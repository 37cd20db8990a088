package stream

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/table"
)

// ForeignKeyJoin joins each row of left with the row of right whose key fk
// extracts from the left value (Kafka Streams' KTable.join with a foreign
// key extractor, KIP-213). The result is a table keyed by the left key,
// materialized in a store (Materialized or Named names it; WithoutChangelog
// and WithoutCache apply to it, InMemory to it and to the subscription
// store) whose values are encoded with the serde given by ValueSerde[R],
// which is required.
//
// Both tables must be materialized (a source table, an aggregation, or
// ToTable; materialize a Filter or TableMapValues result with
// ToStream().ToTable) and need not be co-partitioned: a left row
// subscribes to its foreign key through the internal topic
// <app-id>-<name>-subscription-registration-topic (partitioned like the
// right table, whose key serde must encode keys as they are in its topic),
// the right side keeps the subscriptions in the store
// <name>-subscription-store (changelogged) and answers through
// <app-id>-<name>-subscription-response-topic (partitioned like the left
// table). <name> is Named's name or a generated KTABLE-FK-JOIN-... one.
//
// Semantics, as in Kafka Streams:
//   - a left row joins once its right row exists; an update of the right
//     row updates every left row that refers to it, and its deletion
//     deletes them;
//   - a left row whose foreign key changes leaves its old right row (its
//     result is replaced by the join with the new one, or deleted if that
//     does not exist); a deleted left row deletes its result;
//   - a null foreign key (one that the right table's key serde encodes to
//     nil, such as serde.Optional's nil or serde.String's "") joins
//     nothing: the left row's result is deleted;
//   - answers for a left value that has changed since it subscribed are
//     recognized by a 128-bit hash of the value and dropped, so the result
//     always reflects the current left value.
func ForeignKeyJoin[K, V, KO, VO, R any](left KTable[K, V], right KTable[KO, VO], fk func(V) KO, joiner func(V, VO) R, opts ...Opt) KTable[K, R] {
	return foreignKeyJoin(left, right, fk, false, func(v V, vo VO, _ bool) R { return joiner(v, vo) }, collect(opts))
}

// ForeignKeyLeftJoin is ForeignKeyJoin that keeps every left row: a row
// without a right row (none with its foreign key, a null foreign key, or
// the right row deleted) joins with found set to false and the zero value.
func ForeignKeyLeftJoin[K, V, KO, VO, R any](left KTable[K, V], right KTable[KO, VO], fk func(V) KO, joiner func(v V, row VO, found bool) R, opts ...Opt) KTable[K, R] {
	return foreignKeyJoin(left, right, fk, true, joiner, collect(opts))
}

// fkMsg is a record for a foreign-key join's internal topics, already
// encoded: its key is the rec's key.
type fkMsg struct {
	value     []byte
	partition int32 // -1: by key
}

// fkNames names the pieces of one foreign-key join.
type fkNames struct {
	base      string // <name>
	named     bool   // the user named the join: name the nodes after it
	subTopic  string // logical: <name>-subscription-registration-topic
	respTopic string // logical: <name>-subscription-response-topic
	subStore  string // <name>-subscription-store
}

// node returns the name of one of the join's nodes: derived from the
// join's name when the user named it, else generated from prefix.
func (n fkNames) node(suffix string) string {
	if !n.named {
		return ""
	}
	return n.base + "-" + suffix
}

func foreignKeyJoin[K, V, KO, VO, R any](left KTable[K, V], right KTable[KO, VO], fk func(V) KO, leftJoin bool, joiner func(V, VO, bool) R, o opOpts) KTable[K, R] {
	b := left.b
	op := "KTABLE-FK-JOIN"
	if o.name != "" {
		op = o.name
	}
	if right.b != b {
		b.fail(buildErr(op, "the tables of a foreign-key join belong to different builders"))
	}
	if left.store == "" || right.store == "" {
		b.fail(buildErr(op, "both tables of a foreign-key join must be materialized (a source table, an aggregation, or ToTable)"))
	}
	rs, ok := o.valueSerde.(serde.Serde[R])
	if o.valueSerde != nil && !ok {
		b.fail(buildErr(op, "ValueSerde's type %T does not encode the join's result type", o.valueSerde))
	}
	nm := fkNames{base: o.name, named: o.name != ""}
	if !nm.named {
		nm.base = fmt.Sprintf("KTABLE-FK-JOIN-%010d", b.seq)
	}
	nm.subTopic = nm.base + "-subscription-registration-topic"
	nm.respTopic = nm.base + "-subscription-response-topic"
	nm.subStore = nm.base + "-subscription-store"

	// Left sub-topology: each change of a left row (re)subscribes.
	reg := b.newNode(kindProcessor, "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION", nm.node("subscription-registration"), left.n)
	reg.stores = []string{left.store}
	for _, need := range []struct {
		missing bool
		what    string
	}{{left.kSerde == nil, "left key"}, {left.vSerde == nil, "left value"}, {right.kSerde == nil, "right key"}, {right.vSerde == nil, "right value"}} {
		if need.missing {
			reg.missing = append(reg.missing, need.what)
		}
	}
	regSink := fkSink(b, reg, nm.subTopic, nm.node("subscription-registration-sink"))
	b.repartitions = append(b.repartitions, &repartitionDef{name: nm.subTopic, sink: regSink, like: right.n})

	// Right sub-topology: subscriptions arrive, right rows change; both
	// answer the subscribers.
	subSrc := fkSource(b, nm.subTopic, nm.node("subscription-registration-source"))
	subProc := b.newNode(kindProcessor, "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR", nm.node("subscription-processor"), subSrc)
	subProc.stores = []string{nm.subStore, right.store}
	b.addStore(&storeDef{name: nm.subStore, owner: subProc, persistent: !o.inMemory, changelog: true})
	fgn := b.newNode(kindProcessor, "KTABLE-FK-JOIN-FOREIGN-TABLE-PROCESSOR", nm.node("foreign-table-processor"), right.n)
	fgn.stores = []string{nm.subStore}
	respSink := fkSink(b, subProc, nm.respTopic, nm.node("subscription-response-sink"))
	respSink.parents = append(respSink.parents, fgn)
	fgn.children = append(fgn.children, respSink)
	b.repartitions = append(b.repartitions, &repartitionDef{name: nm.respTopic, sink: respSink, like: left.n})

	// Left sub-topology again: answers meet the current left row.
	respSrc := fkSource(b, nm.respTopic, nm.node("subscription-response-source"))
	resolver := b.newNode(kindProcessor, "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR", nm.node("subscription-response-resolver"), respSrc)
	resolver.stores = []string{left.store}
	outN, out, store, mkOut := materialize[K, R](b, resolver, "FK-JOIN-OUTPUT", o, left.kSerde, rs)
	if rs == nil && o.valueSerde == nil {
		// Say where the serde comes from (materialize's generic message
		// does not know).
		outN.missing = slices.DeleteFunc(outN.missing, func(m string) bool { return m == "value" })
		b.fail(fmt.Errorf("%w: %w: %s: no serde for the join's results: pass one with stream.ValueSerde", ErrInvalidTopology, ErrMissingSerde, outN.name))
	}
	// Rows left without a foreign key are resolved at once, by the
	// registration processor.
	outN.parents = append(outN.parents, reg)
	reg.children = append(reg.children, outN)

	regFn := func(tk *task) procFn[K, Change[V]] {
		return memoize(tk, reg, func() procFn[K, Change[V]] {
			return fkRegistration(tk, reg.name, left, right, fk, leftJoin, joiner, fkSinkFn(tk, regSink, nm.subTopic), mkOut(tk))
		})
	}
	left.out.list = append(left.out.list, regFn)

	respFn := func(tk *task) procFn[[]byte, fkMsg] { return fkSinkFn(tk, respSink, nm.respTopic) }
	subSrc.entry = func(tk *task) func(*inRecord) {
		next := memoize(tk, subProc, func() procFn[[]byte, []byte] {
			return fkSubscriptionProcessor(tk, subProc.name, nm.subStore, right.store, respFn(tk))
		})
		return fkEntry(tk, subSrc.name, next)
	}
	right.out.list = append(right.out.list, func(tk *task) procFn[KO, Change[VO]] {
		return memoize(tk, fgn, func() procFn[KO, Change[VO]] {
			return fkForeignTableProcessor(tk, fgn.name, nm.subStore, right.kSerde, right.vSerde, respFn(tk))
		})
	})
	respSrc.entry = func(tk *task) func(*inRecord) {
		next := memoize(tk, resolver, func() procFn[[]byte, []byte] {
			return fkResolver(tk, resolver.name, left, right.vSerde, leftJoin, joiner, mkOut(tk))
		})
		return fkEntry(tk, respSrc.name, next)
	}
	return KTable[K, R]{b: b, n: outN, out: out, kSerde: left.kSerde, vSerde: rs, store: store}
}

// fkSink adds the sink node writing a join's internal topic.
func fkSink(b *Builder, parent *node, topic, name string) *node {
	n := b.newNode(kindSink, "KTABLE-SINK", name, parent)
	n.partOf = topic
	return n
}

// fkSinkFn is the per-task function of a sink made by fkSink: it writes
// encoded records, to the partition they name or else by key.
func fkSinkFn(tk *task, n *node, topic string) procFn[[]byte, fkMsg] {
	return memoize(tk, n, func() procFn[[]byte, fkMsg] {
		phys := tk.physical(topic, true)
		return func(r rec[[]byte, fkMsg]) {
			tk.out.send(outRecord{topic: phys, partition: r.value.partition, key: r.key, value: r.value.value, ts: r.ts, headers: r.headers})
		}
	})
}

// fkSource adds the source node reading a join's internal topic.
func fkSource(b *Builder, topic, name string) *node {
	n := b.newNode(kindSource, "KTABLE-SOURCE", name)
	n.topics = []string{topic}
	n.partOf = topic
	return n
}

// fkEntry passes the records of an internal topic to next, undecoded.
func fkEntry(tk *task, name string, next procFn[[]byte, []byte]) func(*inRecord) {
	return func(in *inRecord) {
		tk.procName = name
		next(rec[[]byte, []byte]{key: in.key, value: in.value, ts: in.ts, headers: in.headers})
	}
}

// encodeFK encodes a foreign key with the right table's key serde into a
// new slice; null reports a null key (encoded to nil, as Kafka's null).
func encodeFK[KO any](ks serde.Serde[KO], k KO) (b []byte, null bool, err error) {
	b, err = ks.AppendEncode(nil, k)
	return b, err == nil && b == nil, err
}

// fkRegistration is the left side's processor of a foreign-key join: for
// each change of a left row it unsubscribes from the old foreign key when
// that changed, and subscribes to the new one, asking for an answer when
// the result may have to change even without a right row (Kafka Streams'
// SubscriptionSendProcessorSupplier). A row without a foreign key (deleted,
// or a null key) needs no answer: its result is emitted here.
func fkRegistration[K, V, KO, VO, R any](tk *task, name string, left KTable[K, V], right KTable[KO, VO], fk func(V) KO, leftJoin bool,
	joiner func(V, VO, bool) R, send procFn[[]byte, fkMsg], result procFn[K, Change[R]]) procFn[K, Change[V]] {
	leftSt := tk.stores[left.store]
	extract := func(v V) ([]byte, bool) {
		b, null, err := encodeFK(right.kSerde, fk(v))
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: serialize foreign key: %w", err))
			return nil, false
		}
		if null {
			return nil, true
		}
		return b, true
	}
	return func(r rec[K, Change[V]]) {
		tk.procName = name
		c := r.value
		if !c.HasNew && !c.HasOld {
			return
		}
		// A cached left table calls this at commit, outside the record
		// processing that recovers panics of user code: fk and joiner
		// panics go to the processing-error handler from here.
		defer func() {
			if p := recover(); p != nil {
				tk.fail(fmt.Errorf("foreign-key join: panic: %v", p))
			}
		}()
		pk, err := left.kSerde.AppendEncode(nil, r.key)
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: serialize key: %w", err))
			return
		}
		var oldFK, newFK []byte // nil: no row, or a null foreign key
		ok := true
		if c.HasOld {
			oldFK, ok = extract(c.Old)
		}
		if ok && c.HasNew {
			newFK, ok = extract(c.New)
		}
		if !ok {
			return
		}
		part := tk.id.partition
		changed := oldFK != nil && !bytes.Equal(oldFK, newFK)
		if changed {
			// The new subscription may go to another partition: the old
			// one must be removed explicitly. Its answer is not needed,
			// the new subscription's (or the result below) replaces it.
			sub := appendSubscription(nil, subscription{instr: fkUnsubscribe, partition: part, leftKey: pk})
			send(rec[[]byte, fkMsg]{key: oldFK, value: fkMsg{value: sub, partition: -1}, ts: r.ts, headers: r.headers})
		}
		if newFK != nil {
			// An insert (or an update keeping the foreign key) of an inner
			// join changes the result only if the right row exists; a left
			// join, or an inner join whose row left another right row,
			// needs the answer either way.
			instr := fkSubscribeIfFound
			if leftJoin || changed {
				instr = fkSubscribeAnswered
			}
			h, ok := leftHash(tk, leftSt, left.vSerde, pk, c.New)
			if !ok {
				return
			}
			sub := appendSubscription(nil, subscription{instr: instr, partition: part, hash: h, leftKey: pk})
			send(rec[[]byte, fkMsg]{key: newFK, value: fkMsg{value: sub, partition: -1}, ts: r.ts, headers: r.headers})
			return
		}
		// No foreign key: the row joins nothing. Answers still in flight
		// for an earlier value will not match the current one and be
		// dropped by the resolver.
		var rc Change[R]
		if leftJoin && c.HasNew {
			var zero VO
			rc.New, rc.HasNew = joiner(c.New, zero, false), true
		}
		result(rec[K, Change[R]]{key: r.key, value: rc, ts: r.ts, headers: r.headers})
	}
}

// leftHash hashes the left row's value as its store holds it, which is what
// the resolver hashes when the answer comes back (hashing bytes re-encoded
// from a decoded value could differ for serdes that do not round-trip).
func leftHash[V any](tk *task, st *taskStore, vs serde.Serde[V], pk []byte, v V) (fkHash, bool) {
	b, found, err := st.get(pk)
	if err != nil {
		tk.fail(fmt.Errorf("foreign-key join: store %s: %w", st.def.name, err))
		return fkHash{}, false
	}
	if !found {
		if b, err = vs.AppendEncode(nil, v); err != nil {
			tk.fail(fmt.Errorf("foreign-key join: serialize value: %w", err))
			return fkHash{}, false
		}
	}
	return hashValue(b), true
}

// fkSubscriptionProcessor is the right side's processor of subscriptions
// (Kafka Streams' SubscriptionReceiveProcessorSupplier and
// SubscriptionJoinProcessorSupplier): it records or removes the
// subscription and answers it with the right row as it is now.
func fkSubscriptionProcessor(tk *task, name, subStore, rightStore string, send procFn[[]byte, fkMsg]) procFn[[]byte, []byte] {
	subSt, rightSt := tk.stores[subStore], tk.stores[rightStore]
	return func(r rec[[]byte, []byte]) {
		tk.procName = name
		if r.key == nil {
			tk.fail(fmt.Errorf("foreign-key join: subscription without a foreign key: %w", errFKMalformed))
			return
		}
		sub, err := decodeSubscription(r.value)
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: subscription: %w", err))
			return
		}
		ck := append(appendFKPrefix(nil, r.key), sub.leftKey...)
		if sub.instr == fkUnsubscribe {
			if err := subSt.delete(ck); err != nil {
				tk.fail(fmt.Errorf("foreign-key join: store %s: %w", subStore, err))
			}
			return
		}
		if err := subSt.put(ck, appendStoredSub(nil, storedSub{partition: sub.partition, hash: sub.hash, ts: r.ts})); err != nil {
			tk.fail(fmt.Errorf("foreign-key join: store %s: %w", subStore, err))
			return
		}
		rv, found, err := rightSt.get(r.key)
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: store %s: %w", rightStore, err))
			return
		}
		if !found && sub.instr == fkSubscribeIfFound {
			return
		}
		resp := appendResponse(nil, response{hash: sub.hash, found: found, right: rv})
		send(rec[[]byte, fkMsg]{key: bytes.Clone(sub.leftKey), value: fkMsg{value: resp, partition: sub.partition}, ts: r.ts, headers: r.headers})
	}
}

// fkForeignTableProcessor answers, for each change of a right row, every
// left row subscribed to it (Kafka Streams' ForeignTableJoinProcessorSupplier):
// a prefix scan of the subscription store by the right key.
func fkForeignTableProcessor[KO, VO any](tk *task, name, subStore string, ks serde.Serde[KO], vs serde.Serde[VO], send procFn[[]byte, fkMsg]) procFn[KO, Change[VO]] {
	subSt := tk.stores[subStore]
	type answer struct {
		leftKey []byte
		sub     storedSub
	}
	var subs []answer
	return func(r rec[KO, Change[VO]]) {
		tk.procName = name
		if !r.value.HasNew && !r.value.HasOld {
			return
		}
		kb, err := ks.AppendEncode(nil, r.key)
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: serialize key: %w", err))
			return
		}
		var rv []byte
		if r.value.HasNew {
			if rv, err = vs.AppendEncode(nil, r.value.New); err != nil {
				tk.fail(fmt.Errorf("foreign-key join: serialize value: %w", err))
				return
			}
		}
		prefix := appendFKPrefix(nil, kb)
		subs = subs[:0]
		var bad error
		err = subSt.scan(subSt.kv, prefix, table.PrefixEnd(prefix), func(k, v []byte) bool {
			pk, err := splitCombinedKey(k, len(prefix))
			if err == nil {
				var s storedSub
				if s, err = decodeStoredSub(v); err == nil {
					subs = append(subs, answer{leftKey: bytes.Clone(pk), sub: s})
					return true
				}
			}
			bad = err
			return false
		})
		if err == nil {
			err = bad
		}
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: store %s: %w", subStore, err))
			return
		}
		for _, a := range subs {
			resp := appendResponse(nil, response{hash: a.sub.hash, found: r.value.HasNew, right: rv})
			send(rec[[]byte, fkMsg]{key: a.leftKey, value: fkMsg{value: resp, partition: a.sub.partition}, ts: max(r.ts, a.sub.ts), headers: r.headers})
		}
	}
}

// fkResolver is the left side's processor of answers (Kafka Streams'
// ResponseJoinProcessorSupplier): an answer for the left row's current
// value (same hash) becomes the join result; an answer for an older value
// is dropped, a newer subscription's answer is on its way.
func fkResolver[K, V, VO, R any](tk *task, name string, left KTable[K, V], rvs serde.Serde[VO], leftJoin bool, joiner func(V, VO, bool) R,
	result procFn[K, Change[R]]) procFn[[]byte, []byte] {
	leftSt := tk.stores[left.store]
	return func(r rec[[]byte, []byte]) {
		tk.procName = name
		resp, err := decodeResponse(r.value)
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: response: %w", err))
			return
		}
		cur, found, err := leftSt.get(r.key)
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: store %s: %w", left.store, err))
			return
		}
		if !found || hashValue(cur) != resp.hash {
			return // stale: the row changed (or went) since it subscribed
		}
		lv, err := left.vSerde.Decode(cur)
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: store %s: decode: %w", left.store, err))
			return
		}
		k, err := left.kSerde.Decode(r.key)
		if err != nil {
			tk.fail(fmt.Errorf("foreign-key join: decode key: %w", err))
			return
		}
		var rc Change[R]
		switch {
		case resp.found:
			rv, err := rvs.Decode(resp.right)
			if err != nil {
				tk.fail(fmt.Errorf("foreign-key join: decode right value: %w", err))
				return
			}
			rc.New, rc.HasNew = joiner(lv, rv, true), true
		case leftJoin:
			var zero VO
			rc.New, rc.HasNew = joiner(lv, zero, false), true
		}
		result(rec[K, Change[R]]{key: k, value: rc, ts: r.ts, headers: r.headers})
	}
}
