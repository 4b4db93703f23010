#!/usr/bin/env bash
# RUSTC_WRAPPER for fuzz builds: coverage instrumentation only for the crates
# whose code reads network input (ours and the media library's protocol
# crates). libFuzzer scans every coverage counter after each execution, so
# leaving tokio, axum, rustls and the rest uninstrumented makes each
# execution several times cheaper without hiding any parser from it.
rustc=$1; shift
crate=""
prev=""
for a in "$@"; do
  if [[ $prev == --crate-name ]]; then crate=$a; fi
  prev=$a
done
case "$crate" in
  sfu|signaling|loadtest|fuzz|datagram|rtp_rtcp|client_sdp|client_message|server_message|sdp|shard_datagram|rtc|rtc_sdp|rtc_stun|rtc_rtp|rtc_rtcp|rtc_ice|rtc_dtls|rtc_srtp|rtc_interceptor|rtc_shared|serde_json)
    exec "$rustc" "$@" $FUZZ_COVERAGE_FLAGS ;;
  *)
    exec "$rustc" "$@" ;;
esac
