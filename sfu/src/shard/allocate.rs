//! Each subscriber's bandwidth estimate distributed over its tracks, and
//! the figures `/api/stats` reports per subscriber.
//!
//! `adapt.rs` works out what each leg may get from how the subscriber
//! shows the track (size, visibility, quality, pause: the cap). For a
//! subscriber whose estimate is live (transport-cc negotiated, feedback
//! arriving), [`allocate_peer`] then hands the estimate to the core's
//! two-phase [`Allocator`](crate::core::bwe::allocator::Allocator): every
//! video gets at most its cap, at least its lowest layer while that fits,
//! is paused (and the subscriber told) when not even that fits, and moves
//! up only with the allocator's hysteresis (a probe or a held, delivered
//! rate). Without live estimation the cap is the target, as before.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use signaling::media::{EstimateParts, PacerFigures, SubscriberStats, SubscriberTrackStats};

use super::bwe::BweSettings;
use super::peer::{Leg, Peer};
use super::track::Published;
use crate::core::bwe::allocator::{
    AllocationEvent, Layer as ALayer, LayerRate, PauseReason, Signal, Target, TrackInput, TrackKind,
};
use crate::core::bwe::Bitrate;
use crate::core::forwarder::Forwarder;
use crate::core::ids::{IdMap, TrackNo};
use crate::core::layer::Layer;
use crate::stats::Counts;

/// What audio is counted at (Opus in a call: 32 to 50 kbit/s with headers).
const AUDIO_RATE: Bitrate = Bitrate::kbps(50);
/// Expected rates of simulcast streams not measured yet, top last.
const EXPECTED: [u64; 3] = [150_000, 500_000, 1_500_000];
/// Expected rate of a single-stream video not measured yet.
const EXPECTED_SINGLE: u64 = 800_000;
/// A measured rate older than this is not trusted over the expected one
/// (the stream stopped; it will restart at about its usual rate).
const STALE: Duration = Duration::from_secs(3);

/// One leg's cap from its settings, as `adapt` worked it out.
pub struct Cap {
    pub track: TrackNo,
    pub cap: Option<Layer>,
    pub visible: bool,
}

/// A change to tell the subscriber: a track paused for lack of bandwidth,
/// or resumed.
pub struct StreamChange {
    pub track: TrackNo,
    pub paused: Option<PauseReason>,
}

/// What ranks a subscriber's videos when its estimate does not carry them
/// all: screen shares first, then the video of whoever is speaking.
#[derive(Clone, Copy, Default)]
pub struct Ranking<'a> {
    /// Publisher (participant id) to its screen-share track ids.
    pub screens: Option<&'a HashMap<String, Vec<String>>>,
    /// Who speaks in the room now, loudest first.
    pub speaking: &'a [signaling::ids::ParticipantId],
}

impl Ranking<'_> {
    fn screen_share(&self, p: &Published) -> bool {
        self.screens
            .and_then(|s| s.get(&p.stream_id))
            .is_some_and(|ids| ids.contains(&p.track_id))
    }

    fn speaking(&self, p: &Published) -> bool {
        self.speaking.iter().any(|id| id.as_str() == p.stream_id)
    }
}

/// The allocation of one subscriber: per leg the target to set, and what
/// to tell the subscriber.
pub fn allocate_peer(
    peer: &mut Peer,
    tracks: &IdMap<TrackNo, Published>,
    caps: &[Cap],
    ranking: Ranking<'_>,
    settings: &BweSettings,
    counts: &mut Counts,
    now: Instant,
) -> (Vec<(TrackNo, Option<Layer>)>, Vec<StreamChange>) {
    let mut inputs = Vec::with_capacity(caps.len());
    for c in caps {
        let (Some(p), Some(leg)) = (tracks.get(&c.track), peer.legs.get(&c.track)) else {
            continue;
        };
        // Only a layered video (simulcast streams, or an SVC stream's
        // spatial layers) has a lower layer to fall back to. A
        // single-layer video is a fixed cost like audio, as mediasoup
        // treats its simple consumers: pausing it would be no adaptation,
        // and with nothing sent the estimate could not be measured back up.
        let kind = if p.layered() {
            TrackKind::Video {
                layers: layer_rates(p, now),
            }
        } else if p.is_video() {
            TrackKind::Audio {
                bitrate: layer_rates(p, now)
                    .first()
                    .map_or(Bitrate::bps(EXPECTED_SINGLE), |l| l.bitrate),
            }
        } else {
            TrackKind::Audio {
                bitrate: AUDIO_RATE,
            }
        };
        inputs.push(TrackInput {
            track: c.track,
            kind,
            screen_share: p.is_video() && ranking.screen_share(p),
            active_speaker: p.is_video() && ranking.speaking(p),
            visible: c.visible || c.cap.is_some(),
            paused_by_subscriber: leg.settings.paused,
            max_layer: c.cap.map(|l| max_layer(p, l)),
        });
    }
    let bwe = &mut peer.bwe;
    let estimate = bwe.leg.estimate(now);
    counts.observe_estimate(estimate.as_bps());
    let signal = Signal {
        congested: bwe.leg.is_congested(now),
        probe_success: bwe.probe_success.take(),
        delivered: bwe.leg.recent_best(),
        standing: bwe.leg.standing_congestion(),
        sustained: Some(bwe.leg.sustained(now)),
        carried: bwe.leg.delivered(),
        backlog: bwe.leg.backlogged(now),
    };
    let alloc = bwe.alloc.allocate(&inputs, estimate, signal, now);
    bwe.allocated = alloc.total;
    bwe.limited = signal.congested || alloc.probe_target.is_some();
    bwe.set_pacing_rate(now);
    let mut changes = Vec::new();
    let mut moved_up = false;
    if !alloc.events.is_empty() && tracing::enabled!(tracing::Level::DEBUG) {
        // Why a subscriber moved: what it had to go on, and each video's
        // layer rates (measured, or expected before a measurement).
        let rates: Vec<String> = inputs
            .iter()
            .filter_map(|i| match &i.kind {
                TrackKind::Video { layers } => Some(format!(
                    "{}:{}",
                    i.track,
                    layers
                        .iter()
                        .map(|l| format!("{}", l.bitrate))
                        .collect::<Vec<_>>()
                        .join("/")
                )),
                _ => None,
            })
            .collect();
        tracing::debug!(
            peer = %peer.key,
            events = ?alloc.events,
            %estimate,
            total = %alloc.total,
            probe = ?signal.probe_success.map(|b| b.to_string()),
            delivered = ?signal.delivered.map(|b| b.to_string()),
            congested = signal.congested,
            ?rates,
            "allocation moved"
        );
    }
    for e in &alloc.events {
        match *e {
            // Only pauses the subscriber did not choose are news to it.
            AllocationEvent::Paused { track, reason } => {
                if reason == PauseReason::Bandwidth && !bwe.told_paused.contains(&track) {
                    bwe.told_paused.push(track);
                    changes.push(StreamChange {
                        track,
                        paused: Some(reason),
                    });
                }
            }
            AllocationEvent::Resumed { track, .. } => {
                moved_up = true;
                if let Some(i) = bwe.told_paused.iter().position(|t| *t == track) {
                    bwe.told_paused.swap_remove(i);
                    changes.push(StreamChange {
                        track,
                        paused: None,
                    });
                }
            }
            AllocationEvent::LayerChanged { from, to, .. } => moved_up |= to > from,
        }
    }
    if moved_up {
        // The switch's keyframe leaves within a frame or two of the
        // publisher's answer to our request.
        bwe.leg.on_layer_switch(now + Duration::from_millis(100));
    }
    if settings.probing {
        bwe.maybe_probe(alloc.probe_target.zip(alloc.probe_goal), now);
    }
    let targets = alloc
        .tracks
        .iter()
        .filter_map(|a| Some((a, caps.iter().find(|c| c.track == a.track)?)))
        .map(|(a, c)| {
            (
                a.track,
                forwarder_target(tracks.get(&a.track), c.cap, a.target),
            )
        })
        .collect();
    (targets, changes)
}

/// The highest allocator layer the cap allows: its spatial layer (a
/// simulcast stream or an SVC spatial layer), within what the track has,
/// and its temporal layer.
fn max_layer(p: &Published, cap: Layer) -> ALayer {
    ALayer::new(
        cap.spatial.min(layer_count(p).saturating_sub(1)),
        cap.temporal,
    )
}

/// The forwarder's target for the allocator's: the layer it chose, never
/// above the cap; the cap itself for a track of one layer.
fn forwarder_target(p: Option<&Published>, cap: Option<Layer>, target: Target) -> Option<Layer> {
    match target {
        Target::Audio => cap,
        Target::Paused(_) => None,
        Target::Layer(l) => cap.map(|cap| {
            if p.is_some_and(Published::layered) {
                Layer::new(l.spatial.min(cap.spatial), l.temporal.min(cap.temporal))
            } else {
                cap
            }
        }),
    }
}

/// A layer's temporal part when it has every temporal layer of its
/// spatial layer: stable whatever the count, so a target does not move
/// when an encoder changes its temporal structure.
const ALL_TEMPORAL: u8 = u8::MAX;

/// The temporal layers below all of them that the allocator may choose
/// within spatial layer `spatial` of a stream that sends `count`: only on
/// the lowest spatial layer, where the other choice is to pause the video;
/// above it, a larger picture at a lower frame rate is no better than the
/// smaller one at the full rate (a camera that delivers 20 fps on a busy
/// machine would show 10 at half), and the next move up is a spatial
/// layer either way.
fn fewer_temporal(spatial: u8, count: u8) -> std::ops::Range<u8> {
    0..if spatial == 0 {
        count.saturating_sub(1)
    } else {
        0
    }
}

/// How many layers the allocator chooses among: simulcast streams, an SVC
/// stream's spatial layers, or 1.
fn layer_count(p: &Published) -> u8 {
    if p.rids.is_empty() {
        p.spatial_layers.max(1)
    } else {
        p.stream_count()
    }
}

/// The expected rate of layer `i` of `n` not measured yet: the lowest
/// of `n` takes the `n`-th last of [`EXPECTED`].
fn expected(i: u8, n: u8) -> Bitrate {
    let k = (i as usize + EXPECTED.len()).saturating_sub(n as usize);
    Bitrate::bps(EXPECTED.get(k).copied().unwrap_or(EXPECTED_SINGLE))
}

/// The layers of a video track the allocator may choose from: simulcast
/// streams, an SVC stream's spatial layers (each with the layers below it,
/// as the SVC selector forwards it), or the one stream; each with all its
/// temporal layers and, once measured, the lowest with fewer
/// ([`fewer_temporal`]).
fn layer_rates(p: &Published, now: Instant) -> Vec<LayerRate> {
    let fresh = |i: u8| {
        p.stream_by_index(i).filter(|s| {
            s.last_packet
                .is_some_and(|t| now.saturating_duration_since(t) < STALE)
        })
    };
    let measured = |i: u8| fresh(i).map(|s| s.bitrate()).filter(|b| *b > 0);
    let available = |i: u8| {
        p.stream_by_index(i)
            .is_some_and(|s| s.active(now))
            // Paused by dynacast: it comes back when asked for.
            || p.encodings_told.get(i as usize) == Some(&false)
    };
    // Fewer temporal layers of a measured layer: `rate(t)` is what the
    // forwarder sends of it up to temporal layer `t`.
    let with_fewer = |all: LayerRate, count: u8, rate: &dyn Fn(u8) -> u64| {
        let mut out: Vec<LayerRate> = fewer_temporal(all.layer.spatial, count)
            .filter_map(|t| {
                let b = rate(t);
                (b > 0).then_some(LayerRate {
                    layer: ALayer::new(all.layer.spatial, t),
                    bitrate: Bitrate::bps(b),
                    available: all.available,
                })
            })
            .collect();
        out.push(all);
        out
    };
    if p.svc() {
        let n = p.spatial_layers;
        let stream = fresh(0).filter(|s| s.bitrate() > 0);
        // Dropped by dynacast: it comes back when asked for, at about its
        // rate before (what the layers below it cost now at least).
        let told_off = |i: u8| p.spatial_told.is_some_and(|k| i >= k);
        return (0..n)
            .flat_map(|i| {
                let measured = stream
                    .map(|s| s.rate_up_to(i, ALL_TEMPORAL))
                    .filter(|b| *b > 0);
                let all = LayerRate {
                    layer: ALayer::new(i, ALL_TEMPORAL),
                    bitrate: match measured {
                        Some(b) if told_off(i) => Bitrate::bps(b).max(expected(i, n)),
                        Some(b) => Bitrate::bps(b),
                        None => expected(i, n),
                    },
                    // A spatial layer the encoder stopped sending (Chromium
                    // drops its top layers when its own uplink or CPU is
                    // short) is not there to switch to, until it returns.
                    available: (available(0) || p.streams.is_empty())
                        && (stream.is_none_or(|s| s.layer_seen(i)) || told_off(i)),
                };
                match stream.filter(|s| !told_off(i) && s.layer_seen(i)) {
                    Some(s) => with_fewer(all, s.temporal_layers(), &|t| s.rate_up_to(i, t)),
                    None => vec![all],
                }
            })
            .collect();
    }
    if p.rids.is_empty() {
        return vec![LayerRate {
            layer: ALayer::new(0, ALL_TEMPORAL),
            bitrate: Bitrate::bps(measured(0).unwrap_or(EXPECTED_SINGLE)),
            available: available(0) || p.streams.is_empty(),
        }];
    }
    let n = p.stream_count();
    (0..n)
        .flat_map(|i| {
            let all = LayerRate {
                layer: ALayer::new(i, ALL_TEMPORAL),
                bitrate: measured(i).map_or_else(|| expected(i, n), Bitrate::bps),
                available: available(i),
            };
            match fresh(i).filter(|s| s.bitrate() > 0) {
                Some(s) => with_fewer(all, s.temporal_layers(), &|t| s.rate_up_to(ALL_TEMPORAL, t)),
                None => vec![all],
            }
        })
        .collect()
}

/// The layers of a layered video its publisher sends now (or would send
/// again when asked: paused by dynacast), by name, lowest first.
fn publisher_layers(p: &Published, now: Instant) -> Vec<String> {
    if !p.layered() {
        return Vec::new();
    }
    layer_rates(p, now)
        .iter()
        .filter(|l| l.available && l.layer.temporal == ALL_TEMPORAL)
        .map(|l| layer_name(p, Layer::new(l.layer.spatial, l.layer.temporal)))
        .collect()
}

/// How a layer is named in the figures: the simulcast stream's rid (with
/// `.tM` when only its temporal layers up to `M` are taken), or the
/// spatial and temporal layer.
fn layer_name(p: &Published, l: Layer) -> String {
    match p.rids.get(l.spatial as usize) {
        Some(rid) if l.temporal == ALL_TEMPORAL => rid.clone(),
        Some(rid) => format!("{rid}.t{}", l.temporal),
        None if l == Layer::TOP => "top".to_owned(),
        None => format!("s{}t{}", l.spatial, l.temporal),
    }
}

fn reason_name(r: PauseReason) -> &'static str {
    match r {
        PauseReason::NotVisible => "hidden",
        PauseReason::PausedBySubscriber => "subscriber",
        PauseReason::Bandwidth => "bandwidth",
        PauseReason::NoLayers => "no_layers",
    }
}

/// The wire name of why a track is paused.
pub fn pause_reason(r: PauseReason) -> String {
    reason_name(r).to_owned()
}

/// What a leg forwards (or is to), by layer name: on a relay carrying
/// every simulcast stream, each stream's joined by `+` (`q+h+f`).
fn names(leg: &Leg, p: &Published, of: fn(&Forwarder) -> Option<Layer>) -> Option<String> {
    let v: Vec<String> = leg
        .forwarders()
        .filter_map(of)
        .map(|l| layer_name(p, l))
        .collect();
    (!v.is_empty()).then(|| v.join("+"))
}

/// One subscriber's figures.
pub fn subscriber_stats(
    peer: &mut Peer,
    tracks: &IdMap<TrackNo, Published>,
    now: Instant,
) -> SubscriberStats {
    let bwe = &mut peer.bwe;
    let active = bwe.active();
    let state = bwe.leg.state(now);
    let c = bwe.counts;
    let mut list: Vec<SubscriberTrackStats> = peer
        .legs
        .iter()
        .filter_map(|(t, leg)| {
            let p = tracks.get(t)?;
            let paused = match bwe.alloc.target(*t) {
                Some(Target::Paused(r)) if active => Some(reason_name(r).to_owned()),
                _ if leg.forwarders().all(|f| f.target().is_none()) => Some(
                    if leg.settings.paused {
                        "subscriber"
                    } else {
                        "hidden"
                    }
                    .to_owned(),
                ),
                _ => None,
            };
            Some(SubscriberTrackStats {
                track: p.track_id.clone(),
                publisher: p.stream_id.clone(),
                kind: if p.is_video() { "video" } else { "audio" }.to_owned(),
                layer: names(leg, p, Forwarder::current),
                target: names(leg, p, Forwarder::target),
                paused,
                publisher_layers: publisher_layers(p, now),
            })
        })
        .collect();
    list.sort_by(|a, b| (&a.publisher, &a.track).cmp(&(&b.publisher, &b.track)));
    SubscriberStats {
        participant: peer.participant.to_string(),
        estimation: active,
        estimate_bps: active.then(|| state.estimate.as_bps()),
        allocated_bps: active.then(|| bwe.allocated.as_bps()),
        sent_bps: bwe.sent_rate(now),
        packets_sent: c.packets_sent,
        congested: active && bwe.leg.is_congested(now),
        rtt_ms: state.rtt.map(|d| d.as_millis() as u64),
        feedbacks: c.feedbacks,
        probes_started: c.probes_started,
        probes_succeeded: c.probes_succeeded,
        probes_failed: c.probes_failed,
        probes_unconfirmed: c.probes_unconfirmed,
        probe_packets: c.probe_packets,
        probes_unsendable: c.probes_unsendable,
        retransmissions_sent: c.retransmissions_sent,
        retransmissions_dropped: c.retransmissions_dropped,
        keyframe_requests_throttled: c.keyframe_requests_throttled,
        bwe: active.then(|| EstimateParts {
            delay_bps: state.delay_based.as_bps(),
            loss_bound_bps: state.loss_bound.map(|b| b.as_bps()),
            cap_bps: state.cap.map(|b| b.as_bps()),
            usage: state.usage.as_str().to_owned(),
            loss_permille: (state.loss * 1000.0).round().clamp(0.0, 1000.0) as u32,
            queueing_ms: state.queueing.as_millis() as u64,
            trend: state.trend.round() as i64,
            threshold_ms: state.threshold_ms.round() as u64,
        }),
        pacer: active.then(|| {
            let (packets, bytes, wait, st) = bwe.pacer_figures(now);
            PacerFigures {
                paced: bwe.paces(),
                queued_packets: packets as u64,
                queued_bytes: bytes,
                queue_ms: wait.as_millis() as u64,
                max_wait_ms: st.max_wait_us / 1000,
                sent_packets: st.sent_packets,
                dropped_packets: st.queue_full + st.evicted + st.frame_incomplete,
            }
        }),
        tracks: list,
    }
}

#[cfg(test)]
mod tests;
