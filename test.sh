#!/usr/bin/env bash
# Installs what the tests need, then runs every test: Rust, JS and real-browser.
set -euo pipefail
cd "$(dirname "$0")"

# System packages: headless Chromium for the browser tests, coturn for the
# TURN tests (openssl makes the certificate of the TURN-over-TLS test),
# redis-server for the cluster tests, iproute2 and nftables for the browser
# tests that change a participant's network.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v turnserver >/dev/null 2>&1 || missing+=(coturn)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== npm ci (web/)"
(cd web && npm ci --no-audit --no-fund --loglevel=error)

echo "== the media plane builds without the signaling service (no axum, no JWT)"
if cargo tree -p sfu --no-default-features -e normal --prefix none | grep -E '^(axum|jsonwebtoken) '; then
  echo "the sfu library without its server feature depends on the crates above" >&2
  exit 1
fi

echo "== cargo build --release"
cargo build --release --workspace --bins

echo "== cargo test"
cargo test --release --workspace

echo "== fuzz targets, ${FUZZ_SMOKE_SECONDS:-15} s each (docs/testing.md)"
fuzz/run.sh smoke "${FUZZ_SMOKE_SECONDS:-15}"

echo "== JS unit tests"
node --test web/tests/unit/

echo "== browser tests"
# The tests run target/release/sfu (built above).
# Then the join stress test, two rounds (JOIN_STRESS_ROUNDS, README: 20 for the full run).
browser_tests='ip link set lo up && node --test --test-concurrency=1 web/tests/browser/ && JOIN_STRESS_ROUNDS=${JOIN_STRESS_ROUNDS:-2} node --test web/tests/stress/'
if unshare -n true 2>/dev/null; then
  unshare -n bash -c "$browser_tests"
else
  echo "unshare -n is not permitted here: running browser tests on the host network (they bind and dial loopback only)"
  node --test --test-concurrency=1 web/tests/browser/
  JOIN_STRESS_ROUNDS=${JOIN_STRESS_ROUNDS:-2} node --test web/tests/stress/
fi
