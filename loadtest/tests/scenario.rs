//! Runs the `loadtest` binary against a server it spawns itself and checks
//! that a small room delivers everything with sane figures.
//!
//! Needs the release server binary: `cargo build --release -p sfu` (test.sh
//! builds it before running the tests). `SFU_BIN` overrides its path.

use serde_json::Value;

mod common;
use common::run_allowing_failures;

fn run(args: &[&str]) -> Value {
    let (v, all_in) = run_allowing_failures(args);
    assert!(all_in, "loadtest failed: {v}");
    v
}

fn f(v: &Value, path: &[&str]) -> f64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{} missing in {v}", path.join(".")))
}

/// Checks what the bots measured in a room of 2 publishers and 2 subscribers.
fn assert_full_delivery(r: &Value) {
    // Every receiver gets every other publisher's audio and video.
    assert_eq!(f(r, &["bots"]), 4.0);
    assert_eq!(f(r, &["failed_bots"]), 0.0, "{r}");
    assert_eq!(f(r, &["tracks_expected"]), 2.0 * 2.0 + 2.0 * 2.0 * 2.0);
    assert_eq!(
        f(r, &["tracks_received"]),
        f(r, &["tracks_expected"]),
        "{r}"
    );
    // Loopback with retransmission: (nearly) nothing is lost.
    assert!(f(r, &["delivery_ratio"]) >= 0.99, "{r}");
    assert!(f(r, &["packets_received"]) > 500.0, "{r}");
    // The clip is 500 kbps; the receivers see about that.
    let kbps = f(r, &["video_kbps_per_track"]);
    assert!((250.0..1000.0).contains(&kbps), "video {kbps} kbps");
    // The clip is 30 frames a second, and frames become decodable.
    let fps = f(r, &["video_fps_per_track"]);
    assert!(fps > 10.0 && fps < 40.0, "{fps} decodable frames/s");
    // Latency is measured from abs-capture-time and is sane on one machine.
    let p50 = f(r, &["latency_ms", "p50"]);
    assert!(p50 > 0.0 && p50 < 1000.0, "latency p50 {p50}");
    assert!(f(r, &["latency_ms", "p99"]) >= p50);
    // The same packets at their arrival on the bots' sockets (the
    // kernel's stamp): never later than when the bots read them.
    let at_socket = f(r, &["socket_latency_ms", "p50"]);
    assert!(
        at_socket > 0.0 && at_socket <= p50,
        "at socket {at_socket}, read {p50}"
    );
    let join = f(r, &["join_ms", "p95"]);
    assert!(join > 0.0 && join < 15_000.0, "join p95 {join}");
    assert!(f(r, &["server_rss_bytes"]) > 1e6, "{r}");
    assert_eq!(f(r, &["server_participants"]), 4.0, "{r}");
}

#[test]
fn p2p_mesh_delivers_every_track() {
    let r = run(&[
        "--mode",
        "p2p",
        "--publishers",
        "2",
        "--subscribers",
        "2",
        "--duration",
        "6s",
        "--warmup",
        "3s",
        "--room",
        "itp2p",
    ]);
    assert_full_delivery(&r);
    // The server relays signaling only.
    assert_eq!(f(&r, &["forwarded_packets_per_s"]), 0.0, "{r}");
}

#[test]
fn sfu_room_delivers_every_track_with_sane_figures() {
    let r = run(&[
        "--mode",
        "sfu",
        "--publishers",
        "2",
        "--subscribers",
        "2",
        "--duration",
        "6s",
        "--warmup",
        "3s",
        "--room",
        "it",
    ]);
    assert_full_delivery(&r);
    // The server's own figures were read from /metrics.
    assert!(f(&r, &["forwarded_packets_per_s"]) > 100.0, "{r}");
    assert!(f(&r, &["server_cpu_us_per_forwarded_packet"]) > 0.0, "{r}");
    assert!(f(&r, &["server_rss_bytes_per_participant"]) >= 0.0, "{r}");
}

/// Counting receivers (`--receive count`) count RTP from its clear header
/// instead of decrypting and decoding it, and still answer with
/// transport-wide feedback: every packet counted, no frames measured, and
/// the server's estimate of their downlinks made from their feedback.
#[test]
fn counting_receivers_count_every_packet_and_send_feedback() {
    let r = run(&[
        "--publishers",
        "2",
        "--subscribers",
        "2",
        "--receive",
        "count",
        "--duration",
        "8s",
        "--warmup",
        "3s",
        "--room",
        "itcount",
    ]);
    assert_eq!(f(&r, &["failed_bots"]), 0.0, "{r}");
    assert_eq!(
        f(&r, &["tracks_received"]),
        f(&r, &["tracks_expected"]),
        "{r}"
    );
    assert!(f(&r, &["delivery_ratio"]) >= 0.99, "{r}");
    let received = f(&r, &["packets_received"]);
    assert!(received > 500.0, "{r}");
    // All but each stream's first packets, which the library reads to
    // name their track, and what arrived before the window.
    assert!(f(&r, &["packets_counted"]) >= 0.95 * received, "{r}");
    // Sizes come from the datagram less its header and tag: about the clip's rate.
    let kbps = f(&r, &["video_kbps_per_track"]);
    assert!((250.0..1000.0).contains(&kbps), "video {kbps} kbps");
    // Nothing is decoded.
    assert!(r["video_fps_per_track"].is_null(), "{r}");
    assert!(f(&r, &["latency_ms", "p50"]) > 0.0, "{r}");
    // Without feedback the server's estimate for a leg halves every two
    // seconds from 300 kbit/s; with it, it covers the two tracks (about
    // 1 Mbit/s) each bot receives.
    for b in r["per_bot"].as_array().expect("per_bot") {
        let est = f(b, &["server", "estimate_bps"]);
        assert!(est > 400_000.0, "estimate {est} for {b}");
    }
}

#[test]
fn capped_subscribers_receive_no_more_than_their_cap() {
    // One of the two subscribers has a 400 kbit/s downlink; the publisher
    // sends about 530 kbit/s of video and audio.
    let r = run(&[
        "--publishers",
        "1",
        "--subscribers",
        "2",
        "--downlink-kbps",
        "400",
        "--capped-share",
        "0.5",
        "--duration",
        "6s",
        "--warmup",
        "3s",
        "--room",
        "itcap",
    ]);
    assert_eq!(f(&r, &["failed_bots"]), 0.0, "{r}");
    assert_eq!(f(&r, &["downlink_kbps"]), 400.0);
    assert_eq!(f(&r, &["capped", "bots"]), 1.0, "{r}");
    assert_eq!(f(&r, &["uncapped", "bots"]), 1.0, "{r}");
    // What crosses the cap, counted at the RTP level (less than what the
    // link carries: SRTP, UDP and IP add to every packet), stays under it.
    let got = f(&r, &["capped", "received_kbps_max"]);
    assert!(
        got > 50.0 && got <= 400.0,
        "capped bot received {got} kbit/s"
    );
    // The cap saw every RTP packet the server sent that bot.
    let arrived = f(&r, &["capped", "cap_rtp_arrived"]);
    assert!(arrived >= f(&r, &["capped", "packets_received"]), "{r}");
    assert!(f(&r, &["capped", "cap_rtp_dropped"]) <= arrived);
    // The uncapped subscriber gets it all.
    assert!(f(&r, &["uncapped", "delivery_ratio"]) >= 0.99, "{r}");
    assert!(f(&r, &["uncapped", "received_kbps_max"]) > 400.0, "{r}");
    assert!(f(&r, &["uncapped", "video_fps_min"]) > 10.0, "{r}");
}

/// A server stopped for 1.5 s (a paused virtual machine, a saturated
/// host) finds its receive queues full of media that is no longer live.
/// It drops what waited longer than `[media] max_input_lag` (300 ms by
/// default) unread instead of forwarding it late, counts it, and goes on;
/// the report shows how long datagrams waited before the server read them.
#[test]
fn a_stalled_server_sheds_stale_media_counts_it_and_goes_on() {
    let r = run(&[
        "--publishers",
        "1",
        "--subscribers",
        "1",
        "--duration",
        "8s",
        "--warmup",
        "2s",
        "--stall-server",
        "5s:1500ms",
        "--room",
        "itstall",
    ]);
    assert_eq!(f(&r, &["failed_bots"]), 0.0, "{r}");
    let stale = r["server_packets_dropped_by_reason"]["stale_input"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(stale > 0.0, "no stale media shed: {r}");
    // What the server measured saw the stall: the datagrams that arrived
    // during it waited up to its length.
    assert!(f(&r, &["server_input_lag_p99_ms"]) >= 500.0, "{r}");
    // Media flowed on after it: every track delivered in the window.
    assert_eq!(
        f(&r, &["tracks_received"]),
        f(&r, &["tracks_expected"]),
        "{r}"
    );
}

/// A server that keeps reading its media late (stopped for 600 ms of
/// every second, as on a host that cannot give it the CPU it needs)
/// refuses the participants that come meanwhile with `server_busy`,
/// rather than add their load to everyone's; those already in keep their
/// media. With `[media] refuse_joins_when_behind` off, everybody gets in.
#[test]
fn a_server_that_keeps_reading_late_refuses_new_participants() {
    let args = |room: &'static str| {
        vec![
            "--publishers",
            "1",
            "--subscribers",
            "8",
            "--join-rate",
            "1",
            "--duration",
            "4s",
            "--warmup",
            "1s",
            "--stall-server",
            "3s:600msx8/1s",
            "--room",
            room,
        ]
    };
    let (r, all_in) = run_allowing_failures(&args("itbusy"));
    assert!(!all_in, "{r}");
    let failed = f(&r, &["failed_bots"]);
    assert!((1.0..9.0).contains(&failed), "{r}");
    let errors = r["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.contains("server_busy"))),
        "{r}"
    );
    // The publisher and the first subscribers joined before it fell
    // behind, and got media.
    assert!(f(&r, &["tracks_received"]) >= 2.0, "{r}");

    let mut off = args("itbusyoff");
    off.extend(["--server-env", "SFU_MEDIA__REFUSE_JOINS_WHEN_BEHIND=false"]);
    let (r, all_in) = run_allowing_failures(&off);
    assert!(all_in, "{r}");
    assert_eq!(f(&r, &["failed_bots"]), 0.0, "{r}");
}
