#!/usr/bin/env bash
# One room of load-test bots on a cluster of N nodes (a real redis-server,
# N release servers on loopback), to compare with N=1. Each node takes
# ceil(bots / N) participants before the next goes elsewhere, so the
# publishers (who join first) sit on n1 and the room spans the nodes.
# Prints each node's CPU time over the run and its relay counters; the
# bots' report goes to <out>.txt and <out>.json.
#
# With SPREAD=1 the nodes take any number and the bots choose instead:
# publishers join n1, subscribers are spread over all nodes round robin
# (loadtest --node), and the report has a line per node and the cluster's.
#
#   cargo build --release --workspace --bins
#   unshare -n bash -c 'ip link set lo up && loadtest/cluster-pair.sh 2 2 8 /tmp/cluster2.json'
#   unshare -n bash -c 'ip link set lo up && SPREAD=1 loadtest/cluster-pair.sh 3 2 9 /tmp/cluster3.json'
#
# EXTRA holds more loadtest flags, e.g. EXTRA=--simulcast.
#
# Usage: cluster-pair.sh <nodes> <publishers> <subscribers> <out.json>
set -u
cd "$(dirname "$0")/.."
N=$1 P=$2 S=$3 OUT=$4
TOTAL=$((P + S))
KEY=bench-api-secret-0123456789abcdef0123456789
RPORT=7990
dir=$(mktemp -d)
redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 &
RPID=$!
sleep 0.5
pids=()
for i in $(seq 1 "$N"); do
  if [ "$N" = 1 ] || [ "${SPREAD:-0}" = 1 ]; then MAX=0; else MAX=$(((TOTAL + N - 1) / N)); fi
  SFU_SERVER__LISTEN=127.0.0.1:790$i SFU_MEDIA__UDP_PORT=791$i NO_COLOR=1 \
    SFU_CLUSTER__REDIS=redis://127.0.0.1:$RPORT/ SFU_CLUSTER__NODE_ID=n$i \
    SFU_CLUSTER__MAX_PARTICIPANTS=$MAX SFU_CLUSTER__SECRET=bench-cluster-secret-0123456789 \
    SFU_CLUSTER__HEARTBEAT=250ms SFU_CLUSTER__NODE_TTL=2s SFU_AUTH__KEYS__bench=$KEY \
    target/release/sfu >"$dir/node$i.log" 2>&1 &
  pids+=($!)
done
sleep 2
cpu() { curl -s "http://127.0.0.1:790$1/metrics" | awk '/^sfu_process_cpu_seconds_total/ {print $2}'; }
declare -A c0
for i in $(seq 1 "$N"); do c0[$i]=$(cpu "$i"); done
if [ "${SPREAD:-0}" = 1 ]; then
  placement=()
  for i in $(seq 2 "$N"); do placement+=(--node "http://127.0.0.1:790$i"); done
else
  placement=(--redirect)
fi
target/release/loadtest run --url http://127.0.0.1:7901 "${placement[@]}" --api-key "bench:$KEY" \
  --publishers "$P" --subscribers "$S" --duration 30s --join-rate 5 --quiet --json "$OUT" ${EXTRA:-} >"${OUT%.json}.txt" 2>&1
for i in $(seq 1 "$N"); do
  echo "node n$i cpu_s=$(echo "$(cpu "$i") - ${c0[$i]}" | bc)"
  curl -s "http://127.0.0.1:790$i/api/stats" | python3 -c 'import json,sys; m=json.load(sys.stdin)["media"]; print({k:m[k] for k in ("packets_in","packets_out","relay_packets_out","relay_bytes_out","relay_packets_in")})'
done
kill "${pids[@]}" "$RPID"
wait 2>/dev/null
rm -rf "$dir"
