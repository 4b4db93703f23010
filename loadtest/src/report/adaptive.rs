//! The adaptive-media part of a report: simulcast layers and switches,
//! dynacast, the bots' downlink caps, and the server's per-subscriber
//! bandwidth figures, per bot and for capped and uncapped subscribers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outcome::BotReport;
use crate::plan::Scenario;
use crate::stats::{Histogram, Percentiles};
use loadtest::api_stats::SubscriberFigures;

/// One received video track of a bot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrackLayers {
    /// The publisher (its participant id in an SFU room).
    pub publisher: String,
    /// The layer (frame size) most of the window's packets belonged to.
    pub layer: Option<String>,
    /// The layer at the end of the window.
    pub last_layer: Option<String>,
    /// Layer changes in the window.
    pub switches: u64,
    pub packets: u64,
}

/// What one bot received, and what the server says it gave it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BotFigures {
    pub name: String,
    pub room: String,
    pub participant: Option<String>,
    pub publisher: bool,
    pub capped: bool,
    /// The size it asked for (`track-settings`).
    pub view: Option<String>,
    pub video: Vec<TrackLayers>,
    pub packets_expected: u64,
    pub packets_received: u64,
    /// Bitrate received over all tracks (RTP payload and 12-byte header).
    pub received_kbps: f64,
    pub freezes: u64,
    /// RTP datagrams that reached its downlink cap, and those the cap dropped.
    pub cap_rtp_arrived: Option<u64>,
    pub cap_rtp_dropped: Option<u64>,
    /// The server's figures for this subscriber at the end of the window.
    pub server: Option<SubscriberFigures>,
    /// RTP packets the server says it sent this subscriber in the window.
    pub server_packets_sent: Option<f64>,
}

/// Figures of a group of subscribers (capped, uncapped).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct GroupFigures {
    pub bots: usize,
    pub tracks_received: u64,
    pub packets_expected: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
    /// received / expected by sequence numbers (after retransmission).
    pub delivery_ratio: f64,
    /// Delivery of what the server sent: received / sent, by the basis below.
    pub allocated_delivery_ratio: Option<f64>,
    /// `server` (received / the server's per-subscriber packet count),
    /// `bot_cap` (what passed the bots' caps / what reached them) or
    /// `sequence` (as delivery_ratio).
    pub allocated_delivery_basis: String,
    pub video_kbps_per_track: Option<f64>,
    /// The highest bitrate one bot of the group received, all tracks.
    pub received_kbps_max: Option<f64>,
    /// Decodable frames per second of video tracks: mean and lowest.
    pub video_fps_mean: Option<f64>,
    pub video_fps_min: Option<f64>,
    pub freezes: u64,
    pub frozen_s: f64,
    pub layer_switches: u64,
    /// (bot, video track) pairs by the layer received most.
    pub received_layers: BTreeMap<String, u64>,
    pub cap_rtp_arrived: u64,
    pub cap_rtp_dropped: u64,
    pub cap_queue_delay_ms: Percentiles,
    /// The server's estimate for these subscribers, mean, bit/s.
    pub server_estimate_bps: Option<f64>,
}

/// The adaptive-media figures of a run (flattened into the report's JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Adaptive {
    /// Publishers sent three simulcast encodings (q, h, f).
    pub simulcast: bool,
    /// Sizes the subscribers asked for, in turn.
    pub subscriber_sizes: Vec<String>,
    pub publisher_view_size: Option<String>,
    /// The subscribers' downlink cap, kbit/s, and its queue, ms.
    pub downlink_kbps: Option<f64>,
    pub downlink_queue_ms: Option<f64>,
    /// Subscribers with the cap.
    pub capped_bots: usize,
    /// Layer changes over every bot's video tracks in the window.
    pub layer_switches: u64,
    /// (bot, video track) pairs by the layer received most in the window.
    pub received_layers: BTreeMap<String, u64>,
    /// For each size asked for: the layers those subscribers received.
    pub received_layers_by_view: BTreeMap<String, BTreeMap<String, u64>>,
    /// RTP packets the publishers sent in the window, per encoding.
    pub sent_packets_by_encoding: BTreeMap<String, u64>,
    /// Encodings paused or resumed on the server's `publisher-encodings`.
    pub encoding_changes: u64,
    pub track_settings_sent: u64,
    pub active_speaker_events: u64,
    /// Keyframe requests (PLI) the bots sent because a video could not be
    /// decoded (a packet lost for good).
    pub bot_keyframe_requests: u64,
    pub capped: Option<GroupFigures>,
    pub uncapped: Option<GroupFigures>,
    /// The server exposed per-subscriber figures in `/api/stats`.
    pub server_subscriber_stats: bool,
    pub per_bot: Vec<BotFigures>,
    /// Errors the server answered after joins (the first few), e.g. a
    /// server that does not know `track-settings`.
    pub server_errors: Vec<String>,
}

fn layer_name(l: Option<crate::video_layer::FrameSize>) -> Option<String> {
    l.map(|l| l.to_string())
}

impl Adaptive {
    /// Gathers the figures. `subs_start`/`subs_end` are the server's
    /// per-subscriber figures at the window's start and end, when exposed.
    pub fn build(
        scn: &Scenario,
        bots: &[BotReport],
        window: Duration,
        subs_start: Option<&[SubscriberFigures]>,
        subs_end: Option<&[SubscriberFigures]>,
    ) -> Adaptive {
        let mut a = Adaptive {
            simulcast: scn.simulcast,
            subscriber_sizes: scn.subscriber_sizes.iter().map(|s| s.to_string()).collect(),
            publisher_view_size: scn.publisher_view.map(|s| s.to_string()),
            downlink_kbps: scn.downlink.map(|d| d.rate_bps as f64 / 1000.0),
            downlink_queue_ms: scn.downlink.map(|d| d.queue.as_secs_f64() * 1000.0),
            server_subscriber_stats: subs_end.is_some(),
            ..Default::default()
        };
        let find = |list: Option<&[SubscriberFigures]>, id: &Option<String>| {
            let id = id.as_deref()?;
            list?.iter().find(|s| s.participant == id).cloned()
        };
        let mut capped = Vec::new();
        let mut uncapped = Vec::new();
        let secs = window.as_secs_f64().max(1e-9);
        for b in bots {
            let publisher = b.publisher;
            let mut f = BotFigures {
                name: b.name.clone(),
                room: b.room.clone(),
                participant: b.participant.clone(),
                publisher,
                capped: b.capped,
                view: b.view.map(|v| v.to_string()),
                video: vec![],
                packets_expected: 0,
                packets_received: 0,
                received_kbps: 0.0,
                freezes: 0,
                cap_rtp_arrived: None,
                cap_rtp_dropped: None,
                server: find(subs_end, &b.participant),
                server_packets_sent: None,
            };
            if let (Some(s0), Some(s1)) = (
                find(subs_start, &b.participant).and_then(|s| s.packets_sent),
                f.server.as_ref().and_then(|s| s.packets_sent),
            ) {
                f.server_packets_sent = Some((s1 - s0).max(0.0));
            }
            a.track_settings_sent += b.track_settings_sent;
            a.active_speaker_events += b.active_speaker_events;
            for e in &b.server_errors {
                if a.server_errors.len() < 5 && !a.server_errors.contains(e) {
                    a.server_errors.push(e.clone());
                }
            }
            for p in &b.peers {
                for (enc, n) in &p.sent_by_encoding {
                    *a.sent_packets_by_encoding.entry(enc.clone()).or_default() += n;
                }
                a.encoding_changes += p.encoding_changes;
                if let Some(c) = &p.cap {
                    *f.cap_rtp_arrived.get_or_insert(0) += c.rtp_arrived;
                    *f.cap_rtp_dropped.get_or_insert(0) += c.rtp_dropped;
                }
                for t in p.tracks.iter().filter(|t| t.stats.packets > 0) {
                    f.packets_expected += t.stats.seq.expected();
                    f.packets_received += t.stats.seq.received();
                    f.received_kbps += t.stats.bytes as f64 * 8.0 / secs / 1000.0;
                    if !t.video {
                        continue;
                    }
                    if t.decoded {
                        f.freezes += t.stats.freeze.freezes;
                    }
                    a.bot_keyframe_requests += t.keyframe_requests;
                    let tl = TrackLayers {
                        publisher: t.stream.clone(),
                        layer: layer_name(t.layer.main_layer()),
                        last_layer: layer_name(t.layer.current),
                        switches: t.layer.switches,
                        packets: t.stats.packets,
                    };
                    a.layer_switches += tl.switches;
                    if let Some(l) = &tl.layer {
                        *a.received_layers.entry(l.clone()).or_default() += 1;
                        if let Some(v) = &f.view {
                            *a.received_layers_by_view
                                .entry(v.clone())
                                .or_default()
                                .entry(l.clone())
                                .or_default() += 1;
                        }
                    }
                    f.video.push(tl);
                }
            }
            if !publisher {
                if b.capped {
                    capped.push((b, f.clone()));
                } else {
                    uncapped.push((b, f.clone()));
                }
            }
            a.per_bot.push(f);
        }
        a.capped_bots = capped.len();
        if scn.downlink.is_some() {
            a.capped = Some(group(&capped, window, true));
            a.uncapped = Some(group(&uncapped, window, false));
        }
        a
    }

    /// Lines for the human table; empty when nothing adaptive was asked
    /// for or seen.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let counts = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                return "-".to_owned();
            }
            m.iter()
                .map(|(k, v)| format!("{k} x{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.simulcast {
            let _ = writeln!(
                s,
                "simulcast       q 320x180, h 640x360, f 1280x720; packets sent {}; {} encoding changes (dynacast)",
                counts(&self.sent_packets_by_encoding),
                self.encoding_changes
            );
        }
        if !self.subscriber_sizes.is_empty() || self.publisher_view_size.is_some() {
            let _ = writeln!(
                s,
                "views           subscribers {}, publishers {}; {} track-settings sent",
                if self.subscriber_sizes.is_empty() {
                    "-".to_owned()
                } else {
                    self.subscriber_sizes.join(", ")
                },
                self.publisher_view_size.as_deref().unwrap_or("-"),
                self.track_settings_sent
            );
        }
        if self.simulcast || !self.received_layers.is_empty() && self.layer_switches > 0 {
            let _ = writeln!(
                s,
                "layers          {} (bot x track, by most packets); {} switches",
                counts(&self.received_layers),
                self.layer_switches
            );
            for (view, layers) in &self.received_layers_by_view {
                let _ = writeln!(s, "  asked {view:<9} got {}", counts(layers));
            }
        }
        let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.2}%", v * 100.0));
        let f1 = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        for (label, g) in [("capped", &self.capped), ("uncapped", &self.uncapped)] {
            let Some(g) = g else { continue };
            let _ = writeln!(
                s,
                "{label:<15} {} bots: delivery {} ({} of what was sent, by {}), video {} kbps/track, {} fps (lowest {}), freezes {} ({:.1} s), layers {}, {} switches",
                g.bots,
                pct(Some(g.delivery_ratio)),
                pct(g.allocated_delivery_ratio),
                g.allocated_delivery_basis,
                f1(g.video_kbps_per_track),
                f1(g.video_fps_mean),
                f1(g.video_fps_min),
                g.freezes,
                g.frozen_s,
                counts(&g.received_layers),
                g.layer_switches
            );
            if label == "capped" {
                let _ = writeln!(
                    s,
                    "  cap           {} kbit/s, queue {} ms: {} RTP packets arrived, {} dropped; queue delay ms p50 {} p95 {}",
                    f1(self.downlink_kbps),
                    f1(self.downlink_queue_ms),
                    g.cap_rtp_arrived,
                    g.cap_rtp_dropped,
                    f1(g.cap_queue_delay_ms.p50),
                    f1(g.cap_queue_delay_ms.p95)
                );
            }
            if let Some(e) = g.server_estimate_bps {
                let _ = writeln!(
                    s,
                    "  server        estimate {:.0} kbit/s (mean)",
                    e / 1000.0
                );
            }
        }
        if self.simulcast || self.downlink_kbps.is_some() {
            let _ = writeln!(
                s,
                "per-subscriber  {}",
                if self.server_subscriber_stats {
                    "server estimate, allocation and layers per bot in the JSON (per_bot[].server)"
                } else {
                    "not exposed by this server (/api/stats has no media.subscribers)"
                }
            );
        }
        for e in &self.server_errors {
            let _ = writeln!(s, "server said     {e}");
        }
        s
    }
}

/// Sums a group of subscribers.
fn group(bots: &[(&BotReport, BotFigures)], window: Duration, capped: bool) -> GroupFigures {
    let mut g = GroupFigures {
        bots: bots.len(),
        ..Default::default()
    };
    let mut delay = Histogram::default();
    let (mut vbytes, mut vtracks) = (0u64, 0u64);
    let (mut frozen, mut estimates) = (Duration::ZERO, Vec::new());
    let secs = window.as_secs_f64().max(1e-9);
    let mut fps = Vec::new();
    let (mut server_sent, mut server_all) = (0.0, !bots.is_empty());
    for (b, f) in bots {
        g.received_kbps_max = Some(g.received_kbps_max.unwrap_or(0.0).max(f.received_kbps));
        g.packets_expected += f.packets_expected;
        g.packets_received += f.packets_received;
        g.cap_rtp_arrived += f.cap_rtp_arrived.unwrap_or(0);
        g.cap_rtp_dropped += f.cap_rtp_dropped.unwrap_or(0);
        match f.server_packets_sent {
            Some(n) => server_sent += n,
            None => server_all = false,
        }
        if let Some(e) = f.server.as_ref().and_then(|s| s.estimate_bps) {
            estimates.push(e);
        }
        for t in &f.video {
            g.layer_switches += t.switches;
            if let Some(l) = &t.layer {
                *g.received_layers.entry(l.clone()).or_default() += 1;
            }
        }
        for p in &b.peers {
            if let Some(c) = &p.cap {
                delay.merge(&c.queue_delay);
            }
            for t in p.tracks.iter().filter(|t| t.stats.packets > 0) {
                g.tracks_received += 1;
                if t.video {
                    vbytes += t.stats.bytes;
                    vtracks += 1;
                    if t.decoded {
                        g.freezes += t.stats.freeze.freezes;
                        frozen += t.stats.freeze.frozen;
                        fps.push(t.stats.freeze.frames as f64 / secs);
                    }
                }
            }
        }
    }
    g.packets_lost = g.packets_expected.saturating_sub(g.packets_received);
    g.delivery_ratio = ratio(g.packets_received as f64, g.packets_expected as f64).unwrap_or(0.0);
    let (allocated, basis) = if server_all {
        (ratio(g.packets_received as f64, server_sent), "server")
    } else if capped {
        let passed = g.cap_rtp_arrived.saturating_sub(g.cap_rtp_dropped);
        (ratio(passed as f64, g.cap_rtp_arrived as f64), "bot_cap")
    } else {
        (Some(g.delivery_ratio), "sequence")
    };
    g.allocated_delivery_ratio = allocated;
    g.allocated_delivery_basis = basis.to_owned();
    g.video_fps_mean = (!fps.is_empty()).then(|| fps.iter().sum::<f64>() / fps.len() as f64);
    g.video_fps_min = fps.iter().copied().reduce(f64::min);
    g.video_kbps_per_track =
        (vtracks > 0).then(|| vbytes as f64 * 8.0 / secs / 1000.0 / vtracks as f64);
    g.frozen_s = frozen.as_secs_f64();
    g.cap_queue_delay_ms = delay.percentiles();
    g.server_estimate_bps =
        (!estimates.is_empty()).then(|| estimates.iter().sum::<f64>() / estimates.len() as f64);
    g
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}
