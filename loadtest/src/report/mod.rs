//! The figures of a run: gathered from the bots and the server's
//! `/metrics`, printed as a table and written as JSON with stable names.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::outcome::BotReport;
use crate::plan::Scenario;
use crate::stats::{percentiles_of, Histogram, Percentiles};

mod adaptive;
mod nodes;
pub use adaptive::Adaptive;
pub use nodes::NodeFigures;

/// One reading of the server's `/metrics`.
#[derive(Debug, Clone)]
pub struct ServerSample {
    pub at: Instant,
    pub cpu_seconds: Option<f64>,
    pub rss_bytes: Option<f64>,
    pub packets_out: f64,
    pub packets_in: f64,
    pub participants: f64,
    pub nacks: f64,
    pub keyframe_requests: f64,
    pub dropped: f64,
    pub dropped_by_reason: Vec<(String, f64)>,
    /// `sfu_input_lag_seconds` buckets: (upper bound, cumulative count).
    pub input_lag_buckets: Vec<(String, f64)>,
    /// RTP sent to and received from other nodes over relays (0 alone).
    pub relay_packets_out: f64,
    pub relay_bytes_out: f64,
    pub relay_packets_in: f64,
    /// `sfu_shard_wakeups_total` (`None` from an older server).
    pub wakeups: Option<f64>,
}

/// The report. Field names are stable: scripts and the sweep read them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub mode: String,
    pub bots: usize,
    pub rooms: usize,
    pub publishers_per_room: usize,
    pub subscribers_per_room: usize,
    pub audio_only: bool,
    pub video_bitrate_kbps: u32,
    /// Length of the measured window.
    pub duration_s: f64,
    /// Bots that failed (could not join, lost their connection, ...).
    pub failed_bots: usize,
    /// Sum over bots of the tracks each should receive.
    pub tracks_expected: u64,
    /// Sum over bots of the distinct tracks that delivered media in the window.
    pub tracks_received: u64,
    /// Packets expected on received tracks (from their sequence numbers).
    pub packets_expected: u64,
    pub packets_received: u64,
    /// Packets never received, after retransmission.
    pub packets_lost: u64,
    /// Of the packets received, those counting receivers counted from
    /// their clear headers (`--receive count`; 0 otherwise).
    #[serde(default)]
    pub packets_counted: u64,
    /// Copies of packets already received.
    pub packets_duplicate: u64,
    /// packets_received / packets_expected x tracks_received / tracks_expected.
    pub delivery_ratio: f64,
    /// Mean received bitrate per video track, kbps.
    pub video_kbps_per_track: Option<f64>,
    /// Mean decodable frames per second per video track (`None` without
    /// decoded video: counting receivers do not decode).
    #[serde(default)]
    pub video_fps_per_track: Option<f64>,
    /// Mean received bitrate per audio track, kbps.
    pub audio_kbps_per_track: Option<f64>,
    /// RFC 3550 interarrival jitter over tracks, ms.
    pub jitter_ms: Percentiles,
    /// End-to-end latency, capture (abs-capture-time) to receipt, ms.
    pub latency_ms: Percentiles,
    /// Capture to arrival at the bot's socket (the kernel's stamp), ms:
    /// the latency without the bots' own delay in reading, which grows
    /// when bots share a full machine with the server.
    #[serde(default)]
    pub socket_latency_ms: Percentiles,
    /// WebSocket open to the peer connection connected, ms.
    pub join_ms: Percentiles,
    /// WebSocket open to the first media packet, ms.
    pub first_media_ms: Percentiles,
    /// Video stalls of more than 500 ms without a new frame, all tracks.
    pub freezes: u64,
    /// Total time frozen, seconds.
    pub frozen_s: f64,
    /// Server: RTP packets forwarded per second (sfu_packets_out_total).
    pub forwarded_packets_per_s: f64,
    /// Server: RTP packets received per second from publishers.
    pub received_packets_per_s: f64,
    /// Server: user+system CPU over the window, percent of one core.
    pub server_cpu_percent: Option<f64>,
    /// Server CPU time (all threads) per forwarded packet, microseconds.
    pub server_cpu_us_per_forwarded_packet: Option<f64>,
    /// Server resident memory at the end of the window.
    pub server_rss_bytes: Option<f64>,
    /// (RSS at the end - RSS before any bot joined) / bots.
    pub server_rss_bytes_per_participant: Option<f64>,
    pub server_nacks_answered: f64,
    pub server_keyframe_requests: f64,
    pub server_packets_dropped: f64,
    /// Server drops in the window by reason (only reasons that occurred).
    pub server_packets_dropped_by_reason: BTreeMap<String, f64>,
    /// How long the window's datagrams waited in the server's kernel
    /// receive queues before it read them, ms: the upper bound of the
    /// `sfu_input_lag_seconds` bucket holding the median and the 99th
    /// percentile (`None` for an older server, or one that read nothing).
    #[serde(default)]
    pub server_input_lag_p50_ms: Option<f64>,
    #[serde(default)]
    pub server_input_lag_p99_ms: Option<f64>,
    /// Times a second the server's media threads slept and were woken, all
    /// shards together (`None` for an older server).
    #[serde(default)]
    pub server_wakeups_per_s: Option<f64>,
    /// Participants the server counted at the end of the window.
    pub server_participants: Option<f64>,
    /// CPU of the load-test process itself over the window, percent of one
    /// core: when it nears the cores it may use, the bots are the bottleneck.
    pub loadtest_cpu_percent: Option<f64>,
    /// Machine load average (1 min) at the end: other work competing for the CPU.
    pub load_average: Option<f64>,
    /// First few bot errors, for diagnosis.
    pub errors: Vec<String>,
    /// Simulcast layers, dynacast, downlink caps and the server's
    /// per-subscriber figures (docs/loadtest.md lists the fields).
    #[serde(flatten)]
    pub adaptive: Adaptive,
    /// Each node's figures when the run spans several nodes of a cluster
    /// (`--node`); empty for one server, whose figures are the `server_*` ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeFigures>,
}

/// The median's and the 99th percentile's bucket bounds (ms) of the lag
/// histogram's growth from `start` to `end` (cumulative counts per upper
/// bound in seconds, `+Inf` last); `None` when nothing was observed.
fn input_lag_quantiles(start: &[(String, f64)], end: &[(String, f64)]) -> Option<(f64, f64)> {
    let mut window: Vec<(f64, f64)> = end
        .iter()
        .map(|(le, n)| {
            let before = start.iter().find(|(l, _)| l == le).map_or(0.0, |(_, v)| *v);
            let bound = le.parse::<f64>().unwrap_or(f64::INFINITY);
            (bound, n - before)
        })
        .collect();
    window.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = window.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let at = |q: f64| {
        window
            .iter()
            .find(|(_, n)| *n >= q * total)
            .map_or(f64::INFINITY, |(le, _)| le * 1000.0)
    };
    Some((at(0.5), at(0.99)))
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1000.0)
}

impl Report {
    pub fn build(
        scn: &Scenario,
        bots: &[BotReport],
        window: Duration,
        idle: Option<ServerSample>,
        start: Option<ServerSample>,
        end: Option<ServerSample>,
    ) -> Report {
        let secs = window.as_secs_f64().max(1e-9);
        let mut tracks_received = 0u64;
        let (mut expected, mut received, mut lost, mut dup) = (0u64, 0u64, 0u64, 0u64);
        let (mut vbytes, mut vtracks, mut abytes, mut atracks) = (0u64, 0u64, 0u64, 0u64);
        let mut jitters = Vec::new();
        let mut latency = Histogram::default();
        let mut socket_latency = Histogram::default();
        let (mut freezes, mut frozen, mut frames) = (0u64, Duration::ZERO, 0u64);
        let (mut decoded_vtracks, mut counted) = (0u64, 0u64);
        let mut joins = Vec::new();
        let mut firsts = Vec::new();
        let mut errors = Vec::new();
        let mut failed = 0;
        for b in bots {
            if let Some(e) = &b.error {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(format!("{} in {}: {e}", b.name, b.room));
                }
            }
            let mut seen = HashSet::new();
            let mut connected: Option<Duration> = None;
            let mut first: Option<Duration> = None;
            for p in &b.peers {
                if let Some(e) = &p.failed {
                    if errors.len() < 5 {
                        errors.push(format!("{} in {}: {e}", b.name, b.room));
                    }
                }
                connected = match (connected, p.connected_after) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                first = match (first, p.first_media_after) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                latency.merge(&p.latency);
                socket_latency.merge(&p.socket_latency);
                counted += p.counted;
                for track in &p.tracks {
                    let t = &track.stats;
                    if t.packets == 0 {
                        continue;
                    }
                    if seen.insert(track.key()) {
                        tracks_received += 1;
                    }
                    expected += t.seq.expected();
                    received += t.seq.received();
                    lost += t.seq.lost();
                    dup += t.seq.duplicates();
                    jitters.push(t.jitter.ms());
                    if t.video {
                        vbytes += t.bytes;
                        vtracks += 1;
                        if track.decoded {
                            decoded_vtracks += 1;
                            freezes += t.freeze.freezes;
                            frames += t.freeze.frames;
                            frozen += t.freeze.frozen;
                        }
                    } else {
                        abytes += t.bytes;
                        atracks += 1;
                    }
                }
            }
            if let Some(c) = ms(connected) {
                joins.push(c);
            }
            if let Some(f) = ms(first) {
                firsts.push(f);
            }
        }
        let tracks_expected = scn.tracks_expected();
        let packet_ratio = if expected == 0 {
            0.0
        } else {
            received as f64 / expected as f64
        };
        let track_ratio = if tracks_expected == 0 {
            1.0
        } else {
            (tracks_received as f64 / tracks_expected as f64).min(1.0)
        };
        let kbps =
            |bytes: u64, n: u64| (n > 0).then(|| bytes as f64 * 8.0 / secs / 1000.0 / n as f64);

        let (mut fwd, mut rcv, mut cpu_pct, mut cpu_per, mut rss, mut rss_per) =
            (0.0, 0.0, None, None, None, None);
        let (mut nacks, mut kf, mut dropped) = (0.0, 0.0, 0.0);
        let mut by_reason = BTreeMap::new();
        let participants = end.as_ref().map(|e| e.participants);
        let mut lag = None;
        let mut wakeups = None;
        if let (Some(s), Some(e)) = (start, end) {
            lag = input_lag_quantiles(&s.input_lag_buckets, &e.input_lag_buckets);
            for (reason, v) in &e.dropped_by_reason {
                let before = s
                    .dropped_by_reason
                    .iter()
                    .find(|(r, _)| r == reason)
                    .map_or(0.0, |(_, v)| *v);
                if v - before > 0.0 {
                    by_reason.insert(reason.clone(), v - before);
                }
            }
            let server_secs = e.at.duration_since(s.at).as_secs_f64().max(1e-9);
            let out = e.packets_out - s.packets_out;
            fwd = out / server_secs;
            rcv = (e.packets_in - s.packets_in) / server_secs;
            if let (Some(w0), Some(w1)) = (s.wakeups, e.wakeups) {
                wakeups = Some((w1 - w0).max(0.0) / server_secs);
            }
            if let (Some(c0), Some(c1)) = (s.cpu_seconds, e.cpu_seconds) {
                cpu_pct = Some((c1 - c0) / server_secs * 100.0);
                if out > 0.0 {
                    cpu_per = Some((c1 - c0) * 1e6 / out);
                }
            }
            rss = e.rss_bytes;
            if let (Some(r1), Some(r0)) = (e.rss_bytes, idle.as_ref().and_then(|i| i.rss_bytes)) {
                if !bots.is_empty() {
                    rss_per = Some((r1 - r0).max(0.0) / bots.len() as f64);
                }
            }
            nacks = e.nacks - s.nacks;
            kf = e.keyframe_requests - s.keyframe_requests;
            dropped = e.dropped - s.dropped;
        }
        Report {
            mode: scn.mode.as_str().to_owned(),
            bots: bots.len(),
            rooms: scn.rooms,
            publishers_per_room: scn.publishers,
            subscribers_per_room: scn.subscribers,
            audio_only: scn.audio_only,
            video_bitrate_kbps: scn.video_bitrate,
            duration_s: secs,
            failed_bots: failed,
            tracks_expected,
            tracks_received,
            packets_expected: expected,
            packets_received: received,
            packets_lost: lost,
            packets_counted: counted,
            packets_duplicate: dup,
            delivery_ratio: packet_ratio * track_ratio,
            video_kbps_per_track: kbps(vbytes, vtracks),
            video_fps_per_track: (decoded_vtracks > 0)
                .then(|| frames as f64 / secs / decoded_vtracks as f64),
            audio_kbps_per_track: kbps(abytes, atracks),
            jitter_ms: percentiles_of(&jitters),
            latency_ms: latency.percentiles(),
            socket_latency_ms: socket_latency.percentiles(),
            join_ms: percentiles_of(&joins),
            first_media_ms: percentiles_of(&firsts),
            freezes,
            frozen_s: frozen.as_secs_f64(),
            forwarded_packets_per_s: fwd,
            received_packets_per_s: rcv,
            server_cpu_percent: cpu_pct,
            server_cpu_us_per_forwarded_packet: cpu_per,
            server_rss_bytes: rss,
            server_rss_bytes_per_participant: rss_per,
            server_nacks_answered: nacks,
            server_keyframe_requests: kf,
            server_packets_dropped: dropped,
            server_packets_dropped_by_reason: by_reason,
            server_input_lag_p50_ms: lag.map(|l| l.0),
            server_input_lag_p99_ms: lag.map(|l| l.1),
            server_wakeups_per_s: wakeups,
            server_participants: participants,
            loadtest_cpu_percent: None,
            load_average: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next()?.parse().ok()),
            errors,
            adaptive: Adaptive::default(),
            nodes: Vec::new(),
        }
    }

    /// The human table.
    pub fn table(&self) -> String {
        let f = |v: Option<f64>, d: usize| v.map_or("-".to_owned(), |v| format!("{v:.d$}"));
        let p = |p: &Percentiles| {
            format!(
                "p50 {}  p95 {}  p99 {}",
                f(p.p50, 1),
                f(p.p95, 1),
                f(p.p99, 1)
            )
        };
        let mib = |v: Option<f64>| v.map(|v| v / (1024.0 * 1024.0));
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scenario        {} mode, {} rooms x ({} publishers + {} subscribers) = {} bots, {}",
            self.mode,
            self.rooms,
            self.publishers_per_room,
            self.subscribers_per_room,
            self.bots,
            media_label(
                self.audio_only,
                self.video_bitrate_kbps,
                self.adaptive.simulcast
            )
        );
        let _ = writeln!(
            s,
            "window          {:.1} s, failed bots {}",
            self.duration_s, self.failed_bots
        );
        let _ = writeln!(
            s,
            "tracks          {}/{} received",
            self.tracks_received, self.tracks_expected
        );
        let _ = writeln!(
            s,
            "packets         {} received, {} lost after retransmission of {} expected, {} duplicates",
            self.packets_received, self.packets_lost, self.packets_expected, self.packets_duplicate
        );
        let _ = writeln!(s, "delivery        {:.4}%", self.delivery_ratio * 100.0);
        if self.packets_counted > 0 {
            let _ = writeln!(
                s,
                "receivers       counting: {} packets counted from their clear RTP headers, not decrypted or decoded",
                self.packets_counted
            );
        }
        let _ = writeln!(
            s,
            "bitrate/track   video {} kbps, audio {} kbps",
            f(self.video_kbps_per_track, 0),
            f(self.audio_kbps_per_track, 0)
        );
        let _ = writeln!(s, "latency ms      {}", p(&self.latency_ms));
        let _ = writeln!(
            s,
            "  at socket ms  {} (arrival at the bots' sockets, before they read)",
            p(&self.socket_latency_ms)
        );
        let _ = writeln!(s, "jitter ms       {}", p(&self.jitter_ms));
        let _ = writeln!(s, "join ms         {}", p(&self.join_ms));
        let _ = writeln!(s, "first media ms  {}", p(&self.first_media_ms));
        let _ = writeln!(
            s,
            "freezes         {} ({:.1} s frozen), {} decodable frames/s per video track",
            self.freezes,
            self.frozen_s,
            f(self.video_fps_per_track, 1)
        );
        let _ = writeln!(
            s,
            "server          {:.0} pkt/s forwarded, {:.0} pkt/s in, CPU {}%, {} wake-ups/s",
            self.forwarded_packets_per_s,
            self.received_packets_per_s,
            f(self.server_cpu_percent, 1),
            f(self.server_wakeups_per_s, 0)
        );
        let _ = writeln!(
            s,
            "server CPU      {} us per forwarded packet",
            f(self.server_cpu_us_per_forwarded_packet, 2)
        );
        let _ = writeln!(
            s,
            "server memory   {} MiB RSS, {} MiB per participant",
            f(mib(self.server_rss_bytes), 1),
            f(mib(self.server_rss_bytes_per_participant), 3)
        );
        let _ = writeln!(
            s,
            "server events   {} NACKs answered, {} keyframe requests, {} packets dropped; bots asked {} keyframes",
            self.server_nacks_answered,
            self.server_keyframe_requests,
            self.server_packets_dropped,
            self.adaptive.bot_keyframe_requests
        );
        if let (Some(p50), Some(p99)) = (self.server_input_lag_p50_ms, self.server_input_lag_p99_ms)
        {
            let _ = writeln!(
                s,
                "server input    waited in the kernel before read: p50 <= {p50} ms, p99 <= {p99} ms"
            );
        }
        if !self.server_packets_dropped_by_reason.is_empty() {
            let reasons: Vec<String> = self
                .server_packets_dropped_by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = writeln!(s, "server drops    {}", reasons.join(", "));
        }
        let _ = writeln!(
            s,
            "load generator  {}% CPU (bots), machine load average {}",
            f(self.loadtest_cpu_percent, 0),
            f(self.load_average, 2)
        );
        s.push_str(&nodes::table(&self.nodes));
        s.push_str(&self.adaptive.table());
        for e in &self.errors {
            let _ = writeln!(s, "error           {e}");
        }
        s
    }
}

/// What each publisher sends, for titles: "audio only", "500 kbps video +
/// audio" or "simulcast video (150/500/1500 kbps) + audio".
pub fn media_label(audio_only: bool, video_kbps: u32, simulcast: bool) -> String {
    if audio_only {
        "audio only".to_owned()
    } else if simulcast {
        "simulcast video (150/500/1500 kbps) + audio".to_owned()
    } else {
        format!("{video_kbps} kbps video + audio")
    }
}

#[cfg(test)]
mod tests;
