//! `GET /metrics`: the server's counters in the Prometheus text format.
//!
//! Everything here is read on demand when the endpoint is scraped: signaling
//! counts from the hub, the media plane's counters from
//! [`MediaStats`](signaling::media::MediaStats), and the process's CPU time
//! and resident memory from `/proc/self`. Nothing is counted per packet here;
//! the media plane keeps its own counters and this module only formats them.
//!
//! The load-test tool (`loadtest`) reads `sfu_process_cpu_seconds_total`,
//! `sfu_process_resident_memory_bytes` and `sfu_packets_out_total` at the
//! start and end of its measured window to report server CPU per forwarded
//! packet and memory per participant.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use signaling::cluster::ClusterStats;
use signaling::hub::HubStats;
use signaling::media::MediaStats;
use signaling::server::Signaling;

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Routes: `GET /metrics`.
pub fn router(sig: Signaling) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(sig)
}

async fn metrics(State(sig): State<Signaling>, headers: HeaderMap) -> Response {
    if !signaling::http::stats_allowed(sig.access().stats_token.as_deref(), &headers) {
        return signaling::http::stats_denied();
    }
    let hub = sig.stats().await;
    let media = sig.media_stats();
    let process = ProcessStats::read();
    let mut body = render(&hub, media.as_ref(), process.as_ref());
    if let Some(cluster) = sig.cluster() {
        render_cluster(&mut body, &cluster.stats());
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// CPU time and memory of this process, all threads included.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// Threads of the process.
    pub threads: u64,
}

impl ProcessStats {
    /// Reads `/proc/self/stat` and `/proc/self/status`; `None` where there is
    /// no procfs (the metrics then leave the process figures out).
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let (cpu_seconds, threads) = parse_stat(&stat)?;
        let resident_bytes = parse_status_rss(&status)?;
        Some(ProcessStats {
            cpu_seconds,
            resident_bytes,
            threads,
        })
    }
}

/// Clock ticks per second of the times in `/proc/<pid>/stat`. Linux fixes
/// USER_HZ at 100 for everything it shows user space.
const USER_HZ: f64 = 100.0;

/// `(utime + stime in seconds, num_threads)` from a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(f64, u64)> {
    // The command name (field 2) is in parentheses and may hold spaces, so
    // fields are counted from the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is fields[N - 3].
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    let threads: u64 = fields.get(20 - 3)?.parse().ok()?;
    Some(((utime + stime) as f64 / USER_HZ, threads))
}

/// `VmRSS` from `/proc/<pid>/status`, in bytes.
fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Writes one metric family: its help, its type and its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Writes one histogram family: cumulative `_bucket` samples with `le`,
/// then `_sum` and `_count`.
fn histogram(out: &mut String, name: &str, help: &str, h: &signaling::media::Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut running = 0u64;
    for (i, n) in h.counts.iter().enumerate() {
        running += n;
        let le =
            h.le.get(i)
                .map_or_else(|| "+Inf".to_owned(), f64::to_string);
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {running}");
    }
    if h.counts.is_empty() {
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} 0");
    }
    let _ = writeln!(out, "{name}_sum {}", h.sum);
    let _ = writeln!(out, "{name}_count {running}");
}

/// Escapes a label value for the text format.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The families of a node of a cluster (left out on a server that runs
/// alone, where there is no Redis to be connected to).
pub fn render_cluster(out: &mut String, c: &ClusterStats) {
    family(
        out,
        "sfu_cluster_redis_connected",
        "gauge",
        "1 while the node's pub/sub connection to the cluster's Redis is up.",
        &[("", if c.redis_connected { 1.0 } else { 0.0 })],
    );
    family(
        out,
        "sfu_cluster_redis_reconnects_total",
        "counter",
        "Times the node's pub/sub connection to Redis came back after it was lost.",
        &[("", c.redis_reconnects as f64)],
    );
}

/// The whole exposition. Media counters are zero when there is no media
/// plane, so dashboards and the load-test tool see every family always.
pub fn render(
    hub: &HubStats,
    media: Option<&MediaStats>,
    process: Option<&ProcessStats>,
) -> String {
    let mut out = String::with_capacity(4096);
    let m = media.cloned().unwrap_or_default();
    family(
        &mut out,
        "sfu_rooms",
        "gauge",
        "Open rooms, by mode.",
        &[
            ("mode=\"sfu\"", hub.sfu_rooms as f64),
            ("mode=\"p2p\"", hub.p2p_rooms as f64),
        ],
    );
    family(
        &mut out,
        "sfu_participants",
        "gauge",
        "Participants in rooms.",
        &[("", hub.participants as f64)],
    );
    family(
        &mut out,
        "sfu_signaling_connections",
        "gauge",
        "Open WebSocket connections.",
        &[("", hub.connections as f64)],
    );
    family(
        &mut out,
        "sfu_media_available",
        "gauge",
        "1 when the SFU media plane runs, 0 when only P2P rooms can be served.",
        &[("", if media.is_some() { 1.0 } else { 0.0 })],
    );
    family(
        &mut out,
        "sfu_peer_connections",
        "gauge",
        "Peer connections the media plane holds.",
        &[("", m.connections as f64)],
    );
    family(
        &mut out,
        "sfu_tracks",
        "gauge",
        "Tracks being published.",
        &[("", m.tracks as f64)],
    );
    family(
        &mut out,
        "sfu_packets_in_total",
        "counter",
        "RTP packets received from publishers.",
        &[("", m.packets_in as f64)],
    );
    family(
        &mut out,
        "sfu_packets_out_total",
        "counter",
        "RTP packets forwarded to subscribers.",
        &[("", m.packets_out as f64)],
    );
    family(
        &mut out,
        "sfu_bytes_in_total",
        "counter",
        "RTP bytes received from publishers.",
        &[("", m.bytes_in as f64)],
    );
    family(
        &mut out,
        "sfu_bytes_out_total",
        "counter",
        "RTP bytes forwarded to subscribers.",
        &[("", m.bytes_out as f64)],
    );
    family(
        &mut out,
        "sfu_nacks_answered_total",
        "counter",
        "NACKed packets re-sent from the server's cache.",
        &[("", m.nacks_answered as f64)],
    );
    family(
        &mut out,
        "sfu_keyframe_requests_sent_total",
        "counter",
        "PLI/FIR sent to publishers.",
        &[("", m.keyframe_requests_sent as f64)],
    );
    family(
        &mut out,
        "sfu_connections_lost_total",
        "counter",
        "Media connections that lost ICE consent (disconnected or failed) after being connected.",
        &[("", m.disconnects as f64)],
    );
    family(
        &mut out,
        "sfu_packets_skipped_total",
        "counter",
        "Packets a subscriber deliberately did not get (another simulcast stream, a higher layer, a paused or hidden track).",
        &[("", m.packets_skipped as f64)],
    );
    family(
        &mut out,
        "sfu_layer_switches_total",
        "counter",
        "Times a subscriber moved to another simulcast stream.",
        &[("", m.layer_switches as f64)],
    );
    histogram(
        &mut out,
        "sfu_input_lag_seconds",
        "How long datagrams waited in the kernel's receive queue before a shard read them (a server past its capacity falls behind here).",
        &m.input_lag_seconds,
    );
    histogram(
        &mut out,
        "sfu_layer_switch_interval_seconds",
        "Time between one subscriber's consecutive layer switches of the same track (short intervals are flapping).",
        &m.layer_switch_interval_seconds,
    );
    family(
        &mut out,
        "sfu_ice_restarts_total",
        "counter",
        "ICE restarts accepted (a client re-offered new ICE credentials after a network change).",
        &[("", m.ice_restarts as f64)],
    );
    family(
        &mut out,
        "sfu_shards_behind",
        "gauge",
        "Media shards reading their datagrams late for seconds on end: while any is, new SFU participants are refused (server_busy).",
        &[("", m.shards_behind as f64)],
    );
    family(
        &mut out,
        "sfu_connected_sockets",
        "gauge",
        "Client addresses whose datagrams arrive on a connected socket of the shard that owns them.",
        &[("", m.connected_sockets as f64)],
    );
    family(
        &mut out,
        "sfu_datagrams_handed_off_total",
        "counter",
        "Datagrams the receiving shard read for another shard and handed over.",
        &[("", m.datagrams_handed_off as f64)],
    );
    family(
        &mut out,
        "sfu_packets_own_srtp_total",
        "counter",
        "RTP packets sent to participants encrypted by the server's own SRTP path, past the media library's write path.",
        &[("", m.packets_own_srtp as f64)],
    );
    family(
        &mut out,
        "sfu_packets_own_srtp_in_total",
        "counter",
        "RTP packets received from publishers and decrypted by the server's own SRTP path, past the media library's receive pipeline.",
        &[("", m.packets_own_srtp_in as f64)],
    );
    family(
        &mut out,
        "sfu_packets_own_srtcp_in_total",
        "counter",
        "RTCP packets received from participants and decrypted by the server's own SRTCP path, past the media library's receive pipeline.",
        &[("", m.packets_own_srtcp_in as f64)],
    );
    family(
        &mut out,
        "sfu_shard_wakeups_total",
        "counter",
        "Times the media shards' threads slept and were woken (voluntary context switches); each costs the thread a sleep and a wake-up in the kernel.",
        &[("", m.shard_wakeups as f64)],
    );
    family(
        &mut out,
        "sfu_relays",
        "gauge",
        "Node-to-node relay connections (rooms that span nodes of a cluster).",
        &[("", m.relays as f64)],
    );
    family(
        &mut out,
        "sfu_relay_packets_out_total",
        "counter",
        "RTP packets sent to other nodes over relays (also in sfu_packets_out_total).",
        &[("", m.relay_packets_out as f64)],
    );
    family(
        &mut out,
        "sfu_relay_bytes_out_total",
        "counter",
        "RTP bytes sent to other nodes over relays (also in sfu_bytes_out_total).",
        &[("", m.relay_bytes_out as f64)],
    );
    family(
        &mut out,
        "sfu_relay_packets_in_total",
        "counter",
        "RTP packets received from other nodes over relays.",
        &[("", m.relay_packets_in as f64)],
    );
    let est: Vec<&signaling::media::SubscriberStats> =
        m.subscribers.iter().filter(|s| s.estimation).collect();
    let sum = |f: fn(&signaling::media::SubscriberStats) -> u64| {
        m.subscribers.iter().map(f).sum::<u64>() as f64
    };
    family(
        &mut out,
        "sfu_bwe_subscribers",
        "gauge",
        "Subscriber connections whose bandwidth estimate drives allocation, and of those the congested.",
        &[
            ("state=\"estimating\"", est.len() as f64),
            (
                "state=\"congested\"",
                est.iter().filter(|s| s.congested).count() as f64,
            ),
        ],
    );
    histogram(
        &mut out,
        "sfu_bwe_estimate_bitrate_bps",
        "Subscribers' bandwidth estimates, observed at every allocation round (every 250 ms per estimating subscriber, and when track settings change).",
        &m.bwe_estimate_bps,
    );
    family(
        &mut out,
        "sfu_bwe_estimate_bps",
        "gauge",
        "Bandwidth estimates of subscriber connections: lowest, highest and sum.",
        &[
            (
                "stat=\"min\"",
                est.iter().filter_map(|s| s.estimate_bps).min().unwrap_or(0) as f64,
            ),
            (
                "stat=\"max\"",
                est.iter().filter_map(|s| s.estimate_bps).max().unwrap_or(0) as f64,
            ),
            (
                "stat=\"sum\"",
                est.iter().filter_map(|s| s.estimate_bps).sum::<u64>() as f64,
            ),
        ],
    );
    family(
        &mut out,
        "sfu_bwe_probes_total",
        "counter",
        "Probe clusters towards subscribers, by result (of connections still open).",
        &[
            ("result=\"started\"", sum(|s| s.probes_started)),
            ("result=\"succeeded\"", sum(|s| s.probes_succeeded)),
            ("result=\"failed\"", sum(|s| s.probes_failed)),
        ],
    );
    let paced: Vec<&signaling::media::PacerFigures> = m
        .subscribers
        .iter()
        .filter_map(|s| s.pacer.as_ref())
        .collect();
    family(
        &mut out,
        "sfu_pacer_queued_packets",
        "gauge",
        "Packets waiting in subscriber connections' pacers: all of them, and the longest queue.",
        &[
            (
                "stat=\"sum\"",
                paced.iter().map(|p| p.queued_packets).sum::<u64>() as f64,
            ),
            (
                "stat=\"max\"",
                paced.iter().map(|p| p.queued_packets).max().unwrap_or(0) as f64,
            ),
        ],
    );
    family(
        &mut out,
        "sfu_pacer_queue_seconds",
        "gauge",
        "How long the oldest packet in the longest-waiting subscriber pacer has waited.",
        &[(
            "",
            paced.iter().map(|p| p.queue_ms).max().unwrap_or(0) as f64 / 1000.0,
        )],
    );
    family(
        &mut out,
        "sfu_bwe_retransmissions_total",
        "counter",
        "Retransmissions to subscribers: sent, and held back by the budget (of connections still open).",
        &[
            ("result=\"sent\"", sum(|s| s.retransmissions_sent)),
            ("result=\"dropped\"", sum(|s| s.retransmissions_dropped)),
        ],
    );
    let dropped: Vec<(String, f64)> = m
        .dropped
        .iter()
        .map(|(reason, n)| (format!("reason=\"{}\"", escape_label(reason)), *n as f64))
        .collect();
    let dropped: Vec<(&str, f64)> = dropped.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    family(
        &mut out,
        "sfu_packets_dropped_total",
        "counter",
        "Packets dropped by the media plane, by reason.",
        &dropped,
    );
    if let Some(p) = process {
        family(
            &mut out,
            "sfu_process_cpu_seconds_total",
            "counter",
            "User and system CPU time of the server process, all threads.",
            &[("", p.cpu_seconds)],
        );
        family(
            &mut out,
            "sfu_process_resident_memory_bytes",
            "gauge",
            "Resident memory of the server process.",
            &[("", p.resident_bytes as f64)],
        );
        family(
            &mut out,
            "sfu_process_threads",
            "gauge",
            "Threads of the server process.",
            &[("", p.threads as f64)],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of an unlabelled sample, or of one with exactly these labels.
    fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == name_and_labels).then(|| v.parse().ok())?
        })
    }

    #[test]
    fn parses_proc_stat_with_spaces_in_the_name() {
        // Fields after `)`: state ppid pgrp session tty tpgid flags minflt
        // cminflt majflt cmajflt utime stime cutime cstime prio nice threads ...
        let stat = "4242 (sfu (x) y) S 1 2 3 0 -1 4194560 10 0 0 0 250 150 0 0 20 0 7 0 100 0 0";
        let (cpu, threads) = parse_stat(stat).unwrap();
        assert!((cpu - 4.0).abs() < 1e-9, "{cpu}");
        assert_eq!(threads, 7);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn parses_rss_from_status() {
        let status = "Name:\tsfu\nVmPeak:\t  999 kB\nVmRSS:\t   2048 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss(status), Some(2048 * 1024));
        assert_eq!(parse_status_rss("Name: x\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let p = ProcessStats::read().expect("procfs on Linux");
        assert!(p.resident_bytes > 0);
        assert!(p.threads >= 1);
    }

    #[test]
    fn exposition_carries_every_counter() {
        let hub = HubStats {
            connections: 5,
            participants: 4,
            rooms: 2,
            p2p_rooms: 1,
            sfu_rooms: 1,
        };
        let media = MediaStats {
            connections: 3,
            tracks: 6,
            packets_in: 100,
            packets_out: 300,
            bytes_in: 1000,
            bytes_out: 3000,
            nacks_answered: 7,
            keyframe_requests_sent: 2,
            disconnects: 4,
            packets_skipped: 11,
            layer_switches: 3,
            relays: 2,
            relay_packets_out: 50,
            relay_bytes_out: 500,
            relay_packets_in: 40,
            ice_restarts: 5,
            connected_sockets: 6,
            datagrams_handed_off: 12,
            packets_own_srtp: 14,
            packets_own_srtp_in: 15,
            packets_own_srtcp_in: 16,
            shard_wakeups: 17,
            shards_behind: 1,
            dropped: vec![("no_route".into(), 9), ("bad \"rtp\"".into(), 1)],
            bwe_estimate_bps: signaling::media::Histogram {
                le: vec![500_000.0, 1_000_000.0],
                counts: vec![2, 3, 1],
                sum: 4_200_000.0,
            },
            layer_switch_interval_seconds: signaling::media::Histogram {
                le: vec![0.5, 2.0],
                counts: vec![1, 0, 4],
                sum: 30.5,
            },
            input_lag_seconds: signaling::media::Histogram {
                le: vec![0.001, 0.3],
                counts: vec![90, 8, 2],
                sum: 2.5,
            },
            subscribers: vec![signaling::media::SubscriberStats {
                estimation: true,
                estimate_bps: Some(600_000),
                probes_started: 2,
                retransmissions_dropped: 5,
                pacer: Some(signaling::media::PacerFigures {
                    queued_packets: 7,
                    queue_ms: 250,
                    ..Default::default()
                }),
                ..Default::default()
            }],
        };
        let process = ProcessStats {
            cpu_seconds: 1.5,
            resident_bytes: 1 << 20,
            threads: 4,
        };
        let text = render(&hub, Some(&media), Some(&process));
        assert_eq!(sample(&text, "sfu_rooms{mode=\"sfu\"}"), Some(1.0));
        assert_eq!(sample(&text, "sfu_relays"), Some(2.0));
        assert_eq!(sample(&text, "sfu_relay_packets_out_total"), Some(50.0));
        assert_eq!(sample(&text, "sfu_relay_packets_in_total"), Some(40.0));
        assert_eq!(sample(&text, "sfu_rooms{mode=\"p2p\"}"), Some(1.0));
        assert_eq!(sample(&text, "sfu_participants"), Some(4.0));
        assert_eq!(sample(&text, "sfu_media_available"), Some(1.0));
        assert_eq!(sample(&text, "sfu_tracks"), Some(6.0));
        assert_eq!(sample(&text, "sfu_packets_in_total"), Some(100.0));
        assert_eq!(sample(&text, "sfu_packets_out_total"), Some(300.0));
        assert_eq!(sample(&text, "sfu_bytes_out_total"), Some(3000.0));
        assert_eq!(sample(&text, "sfu_nacks_answered_total"), Some(7.0));
        assert_eq!(sample(&text, "sfu_keyframe_requests_sent_total"), Some(2.0));
        assert_eq!(sample(&text, "sfu_connections_lost_total"), Some(4.0));
        assert_eq!(sample(&text, "sfu_packets_skipped_total"), Some(11.0));
        assert_eq!(sample(&text, "sfu_layer_switches_total"), Some(3.0));
        assert_eq!(sample(&text, "sfu_ice_restarts_total"), Some(5.0));
        assert_eq!(sample(&text, "sfu_connected_sockets"), Some(6.0));
        assert_eq!(sample(&text, "sfu_shards_behind"), Some(1.0));
        assert_eq!(sample(&text, "sfu_packets_own_srtp_total"), Some(14.0));
        assert_eq!(sample(&text, "sfu_packets_own_srtp_in_total"), Some(15.0));
        assert_eq!(sample(&text, "sfu_packets_own_srtcp_in_total"), Some(16.0));
        assert_eq!(sample(&text, "sfu_shard_wakeups_total"), Some(17.0));
        assert_eq!(sample(&text, "sfu_datagrams_handed_off_total"), Some(12.0));
        assert_eq!(
            sample(&text, "sfu_bwe_estimate_bps{stat=\"max\"}"),
            Some(600_000.0)
        );
        assert_eq!(
            sample(&text, "sfu_bwe_probes_total{result=\"started\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "sfu_pacer_queued_packets{stat=\"max\"}"),
            Some(7.0)
        );
        assert_eq!(sample(&text, "sfu_pacer_queue_seconds"), Some(0.25));
        // Histograms: cumulative buckets, then sum and count.
        for (series, want) in [
            ("sfu_bwe_estimate_bitrate_bps_bucket{le=\"500000\"}", 2.0),
            ("sfu_bwe_estimate_bitrate_bps_bucket{le=\"1000000\"}", 5.0),
            ("sfu_bwe_estimate_bitrate_bps_bucket{le=\"+Inf\"}", 6.0),
            ("sfu_bwe_estimate_bitrate_bps_sum", 4_200_000.0),
            ("sfu_bwe_estimate_bitrate_bps_count", 6.0),
            ("sfu_layer_switch_interval_seconds_bucket{le=\"0.5\"}", 1.0),
            ("sfu_layer_switch_interval_seconds_bucket{le=\"2\"}", 1.0),
            ("sfu_layer_switch_interval_seconds_bucket{le=\"+Inf\"}", 5.0),
            ("sfu_layer_switch_interval_seconds_sum", 30.5),
            ("sfu_layer_switch_interval_seconds_count", 5.0),
            ("sfu_input_lag_seconds_bucket{le=\"0.001\"}", 90.0),
            ("sfu_input_lag_seconds_bucket{le=\"0.3\"}", 98.0),
            ("sfu_input_lag_seconds_bucket{le=\"+Inf\"}", 100.0),
            ("sfu_input_lag_seconds_count", 100.0),
        ] {
            assert_eq!(sample(&text, series), Some(want), "{series}");
        }
        assert_eq!(
            sample(&text, "sfu_bwe_retransmissions_total{result=\"dropped\"}"),
            Some(5.0)
        );
        assert_eq!(
            sample(&text, "sfu_packets_dropped_total{reason=\"no_route\"}"),
            Some(9.0)
        );
        assert_eq!(
            sample(
                &text,
                "sfu_packets_dropped_total{reason=\"bad \\\"rtp\\\"\"}"
            ),
            Some(1.0)
        );
        assert_eq!(sample(&text, "sfu_process_cpu_seconds_total"), Some(1.5));
        assert_eq!(
            sample(&text, "sfu_process_resident_memory_bytes"),
            Some(1048576.0)
        );
        // Every sample line belongs to a declared family (a histogram's
        // by its `_bucket`, `_sum` and `_count` series).
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let histogram = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .any(|base| text.contains(&format!("# TYPE {base} histogram")));
            assert!(
                histogram || text.contains(&format!("# TYPE {name} ")),
                "{line}"
            );
        }
    }

    #[test]
    fn a_cluster_node_shows_its_link_with_redis() {
        let mut text = render(&HubStats::default(), None, None);
        assert_eq!(sample(&text, "sfu_cluster_redis_connected"), None);
        render_cluster(
            &mut text,
            &ClusterStats {
                redis_connected: false,
                redis_reconnects: 3,
            },
        );
        assert_eq!(sample(&text, "sfu_cluster_redis_connected"), Some(0.0));
        assert_eq!(
            sample(&text, "sfu_cluster_redis_reconnects_total"),
            Some(3.0)
        );
    }

    #[test]
    fn without_a_media_plane_the_counters_read_zero() {
        let text = render(&HubStats::default(), None, None);
        assert_eq!(sample(&text, "sfu_media_available"), Some(0.0));
        assert_eq!(sample(&text, "sfu_packets_out_total"), Some(0.0));
        assert_eq!(sample(&text, "sfu_process_cpu_seconds_total"), None);
    }
}
