//! Adaptation, run a few times a second and after every change a
//! subscriber reports: which layer each leg targets (adaptive stream and
//! the subscriber's own choices), which encodings each publisher needs to
//! send (dynacast), and who speaks in each room (active speakers).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use signaling::ids::ParticipantId;
use signaling::media::{EncodingState, MediaEvent, Speaker, TrackSettings};

use super::allocate::{allocate_peer, pause_reason, subscriber_stats, Cap, Ranking, StreamChange};
use super::track::Published;
use super::Shard;
use crate::core::ids::TrackNo;
use crate::core::layer::{choose, Layer, LayerOption};

/// How often adaptation runs without a change to prompt it.
pub const ADAPT_EVERY: Duration = Duration::from_millis(250);
/// How often the per-subscriber figures of `/api/stats` are made: a list
/// of strings per subscriber and track, too dear to build at every
/// adaptation of a busy shard (about 1.5 % of its time at four a second).
pub const FIGURES_EVERY: Duration = Duration::from_secs(1);
/// A track reported hidden keeps its layer this long (a tile flicking out
/// of view and back, a tab switched for a moment).
pub const HIDDEN_GRACE: Duration = Duration::from_secs(1);
/// An encoding nobody needs is paused at the publisher only after this
/// long, so a subscriber moving between layers does not make it flap.
pub const DYNACAST_GRACE: Duration = Duration::from_secs(2);
/// How often the node a simulcast track came from over a relay is told
/// again which of its streams this node needs: a node message lost (Redis
/// away for a moment) costs at most this long a paused stream.
pub const RELAY_NEEDS_EVERY: Duration = Duration::from_secs(5);
/// Active-speaker events: at most this often per room.
pub const SPEAKERS_EVERY: Duration = Duration::from_millis(300);
/// A smoothed level above this (about -40 dBov) is speaking.
pub const SPEAKING_LEVEL: f32 = 0.01;

/// Per-room active-speaker state.
#[derive(Default)]
pub struct SpeakerState {
    last: Vec<ParticipantId>,
    sent_at: Option<Instant>,
    /// Send the list next round even if it did not change.
    resend: bool,
}

impl SpeakerState {
    /// Makes the next round send the room's list even if it did not
    /// change: a member who just joined has not heard it.
    pub(super) fn resend(&mut self) {
        self.resend = true;
    }

    /// Who speaks now, loudest first, as last told to the room.
    pub(super) fn speaking(&self) -> &[ParticipantId] {
        &self.last
    }
}

impl Shard {
    /// A subscriber's settings for a track another member publishes.
    pub(super) fn on_track_settings(
        &mut self,
        subscriber: &ParticipantId,
        publisher: &ParticipantId,
        track_id: &str,
        settings: TrackSettings,
        now: Instant,
    ) {
        let Some(&sub) = self.by_participant.get(subscriber) else {
            return;
        };
        let track = match self.by_participant.get(publisher) {
            Some(p) => self
                .peers
                .get(p)
                .and_then(|p| p.inbound.get(track_id).copied()),
            // A publisher on another node: its track came over a relay,
            // under its own ids.
            None => self
                .tracks
                .iter()
                .find(|(_, p)| p.stream_id == publisher.as_str() && p.track_id == track_id)
                .map(|(t, _)| *t),
        };
        let Some(peer) = self.peers.get_mut(&sub) else {
            return;
        };
        match track.and_then(|t| peer.legs.get_mut(&t)) {
            Some(leg) => {
                if !settings.visible && leg.settings.visible {
                    leg.hidden_since = Some(now);
                } else if settings.visible {
                    leg.hidden_since = None;
                }
                leg.settings = settings;
            }
            // Not forwarded yet (the offer is on its way): kept for when it is.
            None => {
                if peer.pending_settings.len() < 256 {
                    peer.pending_settings
                        .insert((publisher.to_string(), track_id.to_owned()), settings);
                }
            }
        }
        self.adapt(now);
    }

    /// Re-targets every leg (within each subscriber's bandwidth estimate
    /// where it is live), then dynacast and active speakers.
    pub(super) fn adapt(&mut self, now: Instant) {
        self.next_adapt = now + ADAPT_EVERY;
        let make_figures = now >= self.next_figures;
        if make_figures {
            self.next_figures = now + FIGURES_EVERY;
        }
        let mut keyframes: Vec<(TrackNo, u8)> = Vec::new();
        // What each track's subscribers need, per stream index (SVC: one).
        let mut needed: HashMap<TrackNo, Vec<bool>> = HashMap::new();
        // SVC: how many spatial layers (the lowest ones) anyone needs.
        let mut needed_spatial: HashMap<TrackNo, u8> = HashMap::new();
        let mut changes: Vec<(ParticipantId, StreamChange)> = Vec::new();
        let mut figures = Vec::new();
        let Shard {
            peers,
            tracks,
            cfg,
            screens,
            speakers,
            counts,
            ..
        } = self;
        // A room with nobody here any more forgets its screen shares.
        screens.retain(|room, s| !s.is_empty() && peers.values().any(|p| p.room == *room));
        for peer in peers.values_mut() {
            let ranking = Ranking {
                screens: screens.get(&peer.room),
                speaking: speakers.get(&peer.room).map_or(&[], |s| s.speaking()),
            };
            let mut caps = Vec::with_capacity(peer.legs.len());
            for (track, leg) in peer.legs.iter() {
                let Some(p) = tracks.get(track) else { continue };
                let visible = leg.settings.visible
                    || leg
                        .hidden_since
                        .is_some_and(|t| now.saturating_duration_since(t) < HIDDEN_GRACE);
                let cap = if p.is_video() {
                    choose(&options(p, now), &leg.settings, visible)
                } else {
                    (!leg.settings.paused).then_some(Layer::TOP)
                };
                caps.push(Cap {
                    track: *track,
                    cap,
                    visible,
                });
            }
            // Allocation ranks equals in input order: make it the order
            // the tracks were published in, the same at every round.
            caps.sort_by_key(|c| c.track);
            let targets: Vec<(TrackNo, Option<Layer>)> =
                // A relay to another node carries every layer its subscribers
                // there may need: they are allocated on that node.
                if cfg.bwe.enabled && peer.connected && peer.relay.is_none() && peer.bwe.active() {
                    let (t, ch) =
                        allocate_peer(peer, tracks, &caps, ranking, &cfg.bwe, counts, now);
                    changes.extend(ch.into_iter().map(|c| (peer.participant.clone(), c)));
                    t
                } else {
                    caps.iter().map(|c| (c.track, c.cap)).collect()
                };
            for (track, target) in targets {
                let (Some(p), Some(leg)) = (tracks.get(&track), peer.legs.get_mut(&track)) else {
                    continue;
                };
                if let Some(s) = leg.set_target(target) {
                    keyframes.push((track, s));
                }
                if p.is_video() {
                    let n = if p.rids.is_empty() {
                        1
                    } else {
                        p.stream_count() as usize
                    };
                    let need = needed.entry(track).or_insert_with(|| vec![false; n]);
                    let simulcast = !p.rids.is_empty();
                    // What the settings ask for stays encoded even while
                    // bandwidth holds this subscriber below it: the layer is
                    // there the moment a probe proves it fits.
                    // (A relay carrying every stream needs the streams its
                    // far node needs: its forwarders' targets say which.)
                    let cap = caps
                        .iter()
                        .find(|c| c.track == track && leg.upper.is_empty())
                        .and_then(|c| c.cap);
                    let forwarded = leg.forwarders().flat_map(|f| [f.target(), f.current()]);
                    for l in std::iter::once(cap).chain(forwarded).flatten() {
                        let i = if simulcast { l.spatial as usize } else { 0 };
                        if let Some(x) = need.get_mut(i) {
                            *x = true;
                        }
                        if p.svc() {
                            let k = l.spatial.saturating_add(1).min(p.spatial_layers);
                            let e = needed_spatial.entry(track).or_insert(0);
                            *e = (*e).max(k);
                        }
                    }
                }
            }
            if make_figures && !peer.legs.is_empty() {
                figures.push(subscriber_stats(peer, tracks, now));
            }
        }
        if make_figures {
            figures.sort_by(|a, b| a.participant.cmp(&b.participant));
            self.subscribers = (figures, true);
        }
        for (participant, c) in changes {
            let Some(p) = self.tracks.get(&c.track) else {
                continue;
            };
            self.events.push(MediaEvent::StreamState {
                participant,
                publisher: p.stream_id.clone(),
                track: p.track_id.clone(),
                paused: c.paused.is_some(),
                reason: c.paused.map(pause_reason),
            });
        }
        for (t, s) in keyframes {
            self.request_keyframe(t, s, now);
        }
        self.dynacast(&needed, &needed_spatial, now);
        self.active_speakers(now);
    }

    /// Tells publishers which encodings anyone needs, and of an SVC
    /// encoding how many spatial layers: the others are paused after a
    /// grace period, and resumed at once when needed again.
    fn dynacast(
        &mut self,
        needed: &HashMap<TrackNo, Vec<bool>>,
        needed_spatial: &HashMap<TrackNo, u8>,
        now: Instant,
    ) {
        let mut events = Vec::new();
        for (t, p) in self.tracks.iter_mut() {
            if !p.is_video() {
                continue;
            }
            let n = if p.rids.is_empty() {
                1
            } else {
                p.stream_count() as usize
            };
            let need = needed.get(t).cloned().unwrap_or_else(|| vec![false; n]);
            if p.encodings_told.len() != n {
                p.encodings_told = vec![true; n];
                p.unneeded_since = vec![None; n];
            }
            let mut changed = false;
            for i in 0..n {
                let wanted = need.get(i).copied().unwrap_or(false);
                if wanted {
                    p.unneeded_since[i] = None;
                    if !p.encodings_told[i] {
                        p.encodings_told[i] = true;
                        changed = true;
                    }
                } else if p.encodings_told[i] {
                    let since = *p.unneeded_since[i].get_or_insert(now);
                    if now.saturating_duration_since(since) >= DYNACAST_GRACE {
                        p.encodings_told[i] = false;
                        changed = true;
                    }
                }
            }
            if p.svc() && tell_spatial(p, needed_spatial.get(t).copied(), now) {
                changed = true;
            }
            let relayed = self
                .peers
                .get(&p.publisher)
                .is_some_and(|x| x.relay.is_some());
            if relayed && n > 1 {
                let due = p
                    .relay_told_at
                    .is_none_or(|at| now.saturating_duration_since(at) >= RELAY_NEEDS_EVERY);
                if changed || due {
                    changed = true;
                    p.relay_told_at = Some(now);
                }
            }
            if changed {
                let encodings: Vec<EncodingState> = (0..n)
                    .map(|i| EncodingState {
                        rid: p.rids.get(i).cloned(),
                        active: p.encodings_told[i],
                        spatial_layers: p.spatial_told,
                    })
                    .collect();
                events.push((
                    p.publisher,
                    p.stream_id.clone(),
                    p.track_id.clone(),
                    p.mid.clone(),
                    encodings,
                ));
            }
        }
        for (publisher, stream_id, track, mid, encodings) in events {
            let Some(peer) = self.peers.get(&publisher) else {
                continue;
            };
            match &peer.relay {
                // A track that came over a relay: its node hears what this
                // one needs, and its end of the relay carries only that.
                Some(link) if encodings.len() > 1 => self.events.push(MediaEvent::RelayStreams {
                    room: link.room.clone(),
                    node: link.node.clone(),
                    publisher: ParticipantId::from_string(stream_id),
                    track,
                    active: encodings.iter().map(|e| e.active).collect(),
                }),
                Some(_) => {}
                None => self.events.push(MediaEvent::PublisherEncodings {
                    participant: peer.participant.clone(),
                    track,
                    mid: Some(mid),
                    encodings,
                }),
            }
        }
    }

    /// Sends each room its speakers, loudest first, when the list changes.
    fn active_speakers(&mut self, now: Instant) {
        let mut rooms: HashMap<String, Vec<(ParticipantId, f32)>> = HashMap::new();
        // A microphone that sends nothing (its source ended, the browser
        // stopped sending) keeps its last level: it is not speaking.
        let sending = |p: &&Published| p.streams.iter().any(|s| s.active(now));
        for p in self
            .tracks
            .values()
            .filter(|p| !p.is_video())
            .filter(sending)
        {
            let Some(peer) = self.peers.get(&p.publisher) else {
                continue;
            };
            let list = rooms.entry(peer.room.clone()).or_default();
            // The stream id names the publisher, here or (over a relay) on
            // another node.
            if p.level >= SPEAKING_LEVEL && !list.iter().any(|(id, _)| id.as_str() == p.stream_id) {
                list.push((ParticipantId::from_string(p.stream_id.clone()), p.level));
            }
        }
        for state_room in self.speakers.keys().cloned().collect::<Vec<_>>() {
            rooms.entry(state_room).or_default();
        }
        for (room, mut list) in rooms {
            list.sort_by(|a, b| b.1.total_cmp(&a.1));
            let ids: Vec<ParticipantId> = list.iter().map(|(id, _)| id.clone()).collect();
            let state = self.speakers.entry(room.clone()).or_default();
            let due = state
                .sent_at
                .is_none_or(|t| now.saturating_duration_since(t) >= SPEAKERS_EVERY);
            if (ids == state.last && !state.resend) || !due {
                continue;
            }
            state.last = ids;
            state.resend = false;
            state.sent_at = Some(now);
            let speakers: Vec<Speaker> = list
                .into_iter()
                .map(|(id, level)| Speaker {
                    id,
                    level: (level * 1000.0).round() / 1000.0,
                })
                .collect();
            let members: Vec<ParticipantId> = self
                .peers
                .values()
                .filter(|p| p.room == room && p.relay.is_none())
                .map(|p| p.participant.clone())
                .collect();
            if members.is_empty() {
                self.speakers.remove(&room);
                continue;
            }
            for participant in members {
                self.events.push(MediaEvent::ActiveSpeakers {
                    participant,
                    speakers: speakers.clone(),
                });
            }
        }
    }
}

/// SVC dynacast: how many spatial layers `p`'s publisher encodes, given
/// that subscribers need the lowest `needed` (`None`: nobody needs any;
/// the encoding as a whole is paused then, and comes back with all its
/// layers). Fewer once they have been enough for `DYNACAST_GRACE`, more
/// at once. True when the publisher must be told.
fn tell_spatial(p: &mut Published, needed: Option<u8>, now: Instant) -> bool {
    let want = needed.filter(|k| *k >= 1 && *k < p.spatial_layers);
    if want == p.spatial_told {
        p.spatial_unneeded_since = None;
        return false;
    }
    // `None` is all of them: more than any count.
    let more = want.unwrap_or(u8::MAX) > p.spatial_told.unwrap_or(u8::MAX);
    if !more {
        let since = *p.spatial_unneeded_since.get_or_insert(now);
        if now.saturating_duration_since(since) < DYNACAST_GRACE {
            return false;
        }
    }
    p.spatial_told = want;
    p.spatial_unneeded_since = None;
    true
}

/// The layers a subscriber can be given of a video track, lowest first.
fn options(p: &Published, now: Instant) -> Vec<LayerOption> {
    if p.rids.is_empty() {
        // One stream: its spatial layers (one without SVC).
        let stream_active = p.streams.iter().any(|s| s.active(now));
        return (0..p.spatial_layers as usize)
            .map(|i| LayerOption {
                size: p.layer_sizes.get(i).copied().or_else(|| {
                    (p.spatial_layers == 1)
                        .then(|| p.streams.first()?.size)
                        .flatten()
                }),
                available: stream_active || p.encodings_told.first() == Some(&false),
            })
            .collect();
    }
    (0..p.stream_count())
        .map(|i| {
            let s = p.stream_by_index(i);
            LayerOption {
                size: s.and_then(|s| s.size),
                // Paused by dynacast: it comes back when asked for.
                available: s.is_some_and(|s| s.active(now))
                    || p.encodings_told.get(i as usize) == Some(&false),
            }
        })
        .collect()
}
