#!/usr/bin/env bash
# Runs the standard benchmark suite (docs/benchmarks.md) against servers the
# tool spawns itself, one fresh server per scenario, and writes one JSON
# report per scenario into the output directory (default: bench-results/).
#
#   cargo build --release --workspace --bins
#   loadtest/standard-suite.sh [out-dir] [extra loadtest flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results}
shift || true
mkdir -p "$out"
lt=target/release/loadtest
common=(run --spawn-server --duration 30s --warmup 5s --join-rate 20 "$@")
status=0
# A scenario with failed bots still writes its report; the suite goes on.
run() { "$lt" "${common[@]}" "$@" || status=1; }

echo "== meeting: 10 rooms x (4 publishers + 6 subscribers), 500 kbps video + audio"
run --room meeting --rooms 10 --publishers 4 --subscribers 6 --video-bitrate 500 --json "$out/meeting.json"
echo "== simulcast meeting: the meeting with three simulcast layers per camera; subscribers show each video at 320x180, 320x180, 640x360, 1280x720 in turn"
run --room simulcast --rooms 10 --publishers 4 --subscribers 6 --simulcast --subscriber-size 320x180,320x180,640x360,1280x720 --publisher-view-size 320x180 --json "$out/simulcast-meeting.json"
echo "== big room: 1 room x (10 publishers + 40 subscribers), 500 kbps video + audio"
run --room bigroom --rooms 1 --publishers 10 --subscribers 40 --video-bitrate 500 --json "$out/big-room.json"
echo "== webinar: 1 publisher + 150 subscribers, 500 kbps video + audio"
run --room webinar --rooms 1 --publishers 1 --subscribers 150 --video-bitrate 500 --json "$out/webinar.json"
echo "== audio only: 5 rooms x 20 publishers"
run --room audio --rooms 5 --publishers 20 --subscribers 0 --audio-only --json "$out/audio-only.json"
exit $status
