#!/usr/bin/env bash
# Soak: the meeting scenario at two-thirds of this machine's capacity for a
# long run, sampling the server's resident memory, open file descriptors,
# threads and participants/connections/tracks every 10 s. Then the bots
# leave, and the script waits (at most 2 minutes) for the counts to return to
# their idle values, and measures how much of the memory still held is
# glibc's free-but-retained heap (RSS before and after `malloc_trim(0)`,
# called in the server through gdb) rather than a leak.
#
#   loadtest/soak.sh [duration, default 5m] [out-dir, default soak-out]
#
# SOAK_ROUNDS (default 1) repeats load and leave in the same server process,
# each round for the duration: memory the server leaks grows from round to
# round, free heap the allocator keeps does not. `loadtest/soak-chart.py`
# draws samples.csv as an SVG chart.
#
# Needs the release binaries (cargo build --release --workspace --bins),
# curl, python3 and, for the malloc_trim figure, gdb. Everything runs on
# loopback. SOAK_ROOMS (default 7: two-thirds of the 10-room meeting that
# this 2-core machine holds) changes the load. The server inherits the
# environment, so glibc's allocator can be tuned for a run, e.g.
# GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072.
set -euo pipefail

DURATION=${1:-5m}
OUT=${2:-soak-out}
ROOMS=${SOAK_ROOMS:-7}
ROUNDS=${SOAK_ROUNDS:-1}
EVERY=10
cd "$(dirname "$0")/.."
BIN=${SOAK_BIN:-target/release}
mkdir -p "$OUT"
SAMPLES="$OUT/samples.csv"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
SFU_SERVER__LISTEN="127.0.0.1:$PORT" SFU_MEDIA__UDP_PORT=0 NO_COLOR=1 "$BIN/sfu" >"$OUT/server.log" 2>&1 &
PID=$!
SAMPLER=
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  kill "$PID" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 600); do
  curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$URL/healthz" >/dev/null

# phase,round,seconds,rss_kib,fds,threads,participants,connections,tracks
sample() {
  local phase=$1 t=$2 rss fds threads stats
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
  fds=$(find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
  threads=$(find "/proc/$PID/task" -mindepth 1 -maxdepth 1 | wc -l)
  stats=$(curl -fsS "$URL/api/stats" | python3 -c 'import json, sys
s = json.load(sys.stdin)
m = s.get("media") or {}
print("%d,%d,%d" % (s["signaling"]["participants"], m.get("connections", 0), m.get("tracks", 0)))')
  echo "$phase,$ROUND,$t,$rss,$fds,$threads,$stats" >>"$SAMPLES"
}

echo "phase,round,seconds,rss_kib,fds,threads,participants,connections,tracks" >"$SAMPLES"
ROUND=0
sample idle-before 0
START=$(date +%s)
for ROUND in $(seq "$ROUNDS"); do
  (
    while sleep "$EVERY"; do sample load $(($(date +%s) - START)); done
  ) &
  SAMPLER=$!
  "$BIN/loadtest" run --url "$URL" --quiet --room "soak$ROUND" --rooms "$ROOMS" --publishers 4 --subscribers 6 \
    --video-bitrate 500 --join-rate 20 --warmup 10s --duration "$DURATION" --json "$OUT/report-$ROUND.json" \
    >"$OUT/loadtest-$ROUND.txt" 2>&1 || echo "round $ROUND: loadtest exited with $? (see $OUT/loadtest-$ROUND.txt)"
  kill "$SAMPLER" 2>/dev/null || true
  wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=

  # The bots are gone: wait for the server to let go of them.
  for i in $(seq 24); do
    sample after $(($(date +%s) - START))
    tail -1 "$SAMPLES" | grep -q ',0,0,0$' && break
    sleep 5
  done
  sample idle-after $(($(date +%s) - START))
done
TRIMMED=""
if command -v gdb >/dev/null; then
  if gdb -p "$PID" -batch -ex 'call (int) malloc_trim(0)' >"$OUT/gdb.txt" 2>&1; then
    sample trimmed $(($(date +%s) - START))
    TRIMMED=1
  else
    echo "gdb could not call malloc_trim in the server (see $OUT/gdb.txt)"
  fi
fi

python3 - "$SAMPLES" "$EVERY" "$TRIMMED" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    for k in r:
        if k != "phase":
            r[k] = int(r[k])
idle0 = rows[0]
idle1 = [r for r in rows if r["phase"] == "idle-after"][-1]
mib = lambda kib: kib / 1024
for rnd in sorted({r["round"] for r in rows if r["round"] > 0}):
    load = [r for r in rows if r["phase"] == "load" and r["round"] == rnd and r["participants"] > 0]
    left = [r for r in rows if r["phase"] == "idle-after" and r["round"] == rnd][-1]
    print(f"round {rnd}: samples under load: {len(load)} (every {sys.argv[2]} s)")
    if load:
        start = load[0]["seconds"]
        warm = [r for r in load if r["seconds"] >= start + 60] or load
        base, last, peak = warm[0], warm[-1], max(warm, key=lambda r: r["rss_kib"])
        growth = 100 * (last["rss_kib"] - base["rss_kib"]) / base["rss_kib"]
        print(f"  participants under load: {max(r['participants'] for r in load)}")
        print(f"  RSS after warm-up (t={base['seconds']} s): {mib(base['rss_kib']):.1f} MiB; "
              f"at the end (t={last['seconds']} s): {mib(last['rss_kib']):.1f} MiB; "
              f"peak {mib(peak['rss_kib']):.1f} MiB; growth after warm-up {growth:+.1f}%")
        print(f"  fds under load: {min(r['fds'] for r in warm)}..{max(r['fds'] for r in warm)}; "
              f"threads: {min(r['threads'] for r in warm)}..{max(r['threads'] for r in warm)}")
    print(f"  RSS after the bots left: {mib(left['rss_kib']):.1f} MiB (t={left['seconds']} s)")
for name in ("fds", "threads", "participants", "connections", "tracks"):
    same = "back to idle" if idle1[name] == idle0[name] else "NOT back to idle"
    print(f"{name}: idle before {idle0[name]}, after the bots left {idle1[name]} ({same})")
print(f"RSS: idle before {mib(idle0['rss_kib']):.1f} MiB, after the bots left {mib(idle1['rss_kib']):.1f} MiB")
if sys.argv[3]:
    t = [r for r in rows if r["phase"] == "trimmed"][-1]
    print(f"RSS after malloc_trim(0): {mib(t['rss_kib']):.1f} MiB "
          f"(glibc retained {mib(idle1['rss_kib'] - t['rss_kib']):.1f} MiB of free heap)")
EOF
echo "samples: $SAMPLES; load-test reports: $OUT/loadtest-<round>.txt"
