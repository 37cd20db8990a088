#!/usr/bin/env bash
# Measures the Sluice broker as the broker-core issue asks: franz-go producer
# and consumer on the same machine, 100-byte records, 1 partition, acks=all,
# idempotent, no compression; then sequential acks=all produce latency; and
# the broker's CPU seconds and peak RSS (VmHWM) for the whole run.
#
#   scripts/bench-broker.sh [interval|always|never] [records]
#
# Run it on an otherwise idle machine; quote medians of several runs.
set -euo pipefail
cd "$(dirname "$0")/.."
fsync=${1:-interval}
records=${2:-1000000}
bin=$(mktemp -d)/sluice
go build -o "$bin" ./cmd/sluice
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
addr=127.0.0.1:$port
"$bin" broker --data-dir "$data" --listen "$addr" --fsync "$fsync" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$(dirname "$bin")"' EXIT
for _ in $(seq 50); do "$bin" topics list --brokers "$addr" >/dev/null 2>&1 && break; sleep 0.1; done
cpu() { awk '{printf "%.2f", ($14+$15)/100}' /proc/$pid/stat; }
echo "fsync=$fsync records=$records broker pid $pid on $addr"
"$bin" bench produce --brokers "$addr" --topic bench --records "$records" --record-size 100 -q
c1=$(cpu)
"$bin" bench consume --brokers "$addr" --topic bench --records "$records" -q
c2=$(cpu)
"$bin" bench produce --brokers "$addr" --topic bench-seq --records 20000 --record-size 100 --sequential -q
echo "broker CPU seconds: produce $c1, consume $(awk "BEGIN{print $c2-$c1}") (per ${records} records)"
grep VmHWM /proc/$pid/status
