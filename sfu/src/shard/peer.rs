//! One participant's server-side connection: what it publishes and the
//! downstream legs (one per forwarded track) it receives.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::Rng;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use signaling::ids::ParticipantId;
use signaling::protocol::Permissions;

use crate::core::extmap::ExtMap;
use crate::core::forwarder::{Forwarder, PtMap};
use crate::core::ids::{IdMap, PeerKey, TrackNo};
use crate::core::layer::{Layer, Selector, Simulcast, Svc};
use crate::core::offer_check::OfferRate;
use crate::core::renomination::Renomination;
use crate::core::sdp;

use super::bwe::{BweSettings, ProbeFiller, ProbeRoute, RtxRoute, SubscriberBwe};
use super::forward::ReadPath;
use super::pace::SrtpPath;
use super::track::Published;
use signaling::media::TrackSettings;

/// One forwarded track on a subscriber's connection.
pub struct Leg {
    pub sender: RTCRtpSenderId,
    pub kind: RtpCodecKind,
    /// Every decision about this track's packets for this subscriber
    /// (on a relay carrying every simulcast stream: about stream 0).
    pub fwd: Forwarder,
    /// A relay's leg of a simulcast track carries every stream, each
    /// under its own SSRC and rid, so the other node's subscribers choose
    /// among them: the forwarders of streams 1, 2, ... (empty elsewhere).
    pub upper: Vec<Forwarder>,
    /// What the subscriber asked for this track.
    pub settings: TrackSettings,
    /// Since when the track is not visible at the subscriber (adaptive
    /// stream pauses it after a grace period).
    pub hidden_since: Option<Instant>,
    /// The RTX SSRC signaled for this leg (video): probes go on it (see
    /// `bwe::RtxRoute`).
    pub rtx_ssrc: Option<u32>,
    /// When this leg last moved to another layer (for the switch-interval
    /// histogram: a short interval is a flapping layer).
    pub last_switch: Option<Instant>,
}

impl Leg {
    /// Sets what the leg forwards (`None`: nothing). Returns the stream a
    /// keyframe is needed from, if any. A relay's leg carrying every
    /// stream takes no target: it carries what its far node needs
    /// (`Shard::relay_streams`).
    pub fn set_target(&mut self, target: Option<Layer>) -> Option<u8> {
        if !self.upper.is_empty() || target == self.fwd.target() {
            return None;
        }
        self.fwd.set_target(target)
    }

    /// The forwarder of a stream's packets: the leg's one, or on a relay
    /// carrying every stream, that stream's.
    pub fn forwarder_mut(&mut self, stream: u8) -> Option<&mut Forwarder> {
        match stream {
            s if s > 0 && !self.upper.is_empty() => self.upper.get_mut(s as usize - 1),
            _ => Some(&mut self.fwd),
        }
    }

    /// Every forwarder, mutably, stream 0's first.
    pub fn forwarders_mut(&mut self) -> impl Iterator<Item = &mut Forwarder> {
        std::iter::once(&mut self.fwd).chain(self.upper.iter_mut())
    }

    /// Every forwarder, stream 0's first.
    pub fn forwarders(&self) -> impl Iterator<Item = &Forwarder> {
        std::iter::once(&self.fwd).chain(self.upper.iter())
    }

    /// The forwarder whose packets carry `ssrc`.
    pub fn by_ssrc(&self, ssrc: u32) -> Option<&Forwarder> {
        self.forwarders().find(|f| f.ssrc == ssrc)
    }

    /// The stream a subscriber's keyframe request about `ssrc` is for:
    /// on a relay, the one sent under it; elsewhere, the one forwarded.
    pub fn stream_for(&self, ssrc: u32) -> u8 {
        if !self.upper.is_empty() {
            return self.forwarders().position(|f| f.ssrc == ssrc).unwrap_or(0) as u8;
        }
        self.fwd
            .current()
            .or(self.fwd.target())
            .map_or(0, |l| l.spatial)
    }
}

/// How often an idle connection's own timers run: see [`Peer::timer_due`].
pub const IDLE_TICK: Duration = Duration::from_secs(1);

/// A participant's connection.
pub struct Peer {
    pub key: PeerKey,
    pub participant: ParticipantId,
    pub room: String,
    pub perms: Permissions,
    pub pc: RTCPeerConnection,
    /// The ICE ufrag of our latest local description (empty before the
    /// first); it changes at every ICE restart. A relay's is set when it
    /// opens and never changes.
    pub ufrag: String,
    /// The server's ICE password of this connection, from the same
    /// description as `ufrag`: a STUN request must be signed with it to
    /// bind an address (see `core::bind`).
    pub pwd: String,
    /// The client's ICE password, from its latest SDP: its responses to
    /// the connection's checks must be signed with it.
    pub remote_pwd: Option<String>,
    /// The client's latest description as it sent it. The library's copy
    /// leaves out the simulcast lines of running sections (see
    /// `core::simulcast_sdp`); the shard reads rids and numbers here.
    pub remote_sdp: String,
    /// The UDP candidate addresses of `remote_sdp` (the only sources a
    /// relay's own socket accepts).
    pub remote_candidates: Vec<std::net::SocketAddr>,
    /// The participant's offer budget.
    pub offer_rate: OfferRate,
    /// DTLS is up: media can be sent.
    pub connected: bool,
    /// The connection state last reported.
    pub state: RTCPeerConnectionState,
    /// The set of legs changed since the last offer.
    pub needs_offer: bool,
    /// Before the first round, the server's own offer waits until then for
    /// the client's offer (see [`super::INITIAL_OFFER_GRACE`]).
    pub first_offer_at: Option<Instant>,
    /// Whether our host candidates have been trickled to the client.
    pub candidates_sent: bool,
    pub deadline: Option<Instant>,
    /// When media or data (anything but STUN) last went in or out: an idle
    /// connection's timers are run at most every `IDLE_TICK`.
    pub active_at: Option<Instant>,
    /// The client's latest nominated pair against the library's selected
    /// one (see `core::renomination`).
    pub renomination: Renomination,
    pub dirty: bool,
    /// Something other than forwarded media touched the connection since
    /// its deadline was read (see `Shard::flush`): its timers, events,
    /// reads and writes may have changed.
    pub timers_stale: bool,
    /// Forwarding handed the library something to send (media on its
    /// write path, sender reports) since its writes were last drained.
    pub library_written: bool,
    /// The publisher's track id to our number.
    pub inbound: HashMap<String, TrackNo>,
    /// Each incoming stream's SSRC to its track (the per-packet lookup).
    pub inbound_ssrc: IdMap<u32, TrackNo>,
    pub legs: IdMap<TrackNo, Leg>,
    pub leg_by_ssrc: IdMap<u32, TrackNo>,
    /// Settings that arrived for tracks not forwarded to this participant
    /// yet, by (publisher participant id, track id).
    pub pending_settings: HashMap<(String, String), TrackSettings>,
    /// Set when this is a node-to-node relay rather than a participant.
    pub relay: Option<super::relay::RelayLink>,
    /// Bandwidth estimation and allocation of what this connection receives.
    pub bwe: SubscriberBwe,
    /// Who encrypts the RTP this connection is sent.
    pub srtp: SrtpPath,
    /// Forwarded RTP protected here since the last flush, in order.
    pub srtp_queue: Vec<BytesMut>,
    /// Who decrypts the RTP this connection publishes and the RTCP it
    /// sends.
    pub srtp_in: ReadPath,
}

impl Peer {
    pub fn new(
        key: PeerKey,
        participant: ParticipantId,
        room: String,
        perms: Permissions,
        pc: RTCPeerConnection,
        bwe: &BweSettings,
        rng: &mut impl Rng,
    ) -> Self {
        let probe_ssrc = loop {
            let s: u32 = rng.random();
            if s != 0 {
                break s;
            }
        };
        Peer {
            key,
            participant,
            room,
            perms,
            pc,
            ufrag: String::new(),
            pwd: String::new(),
            remote_pwd: None,
            remote_sdp: String::new(),
            remote_candidates: Vec::new(),
            offer_rate: OfferRate::default(),
            connected: false,
            state: RTCPeerConnectionState::New,
            needs_offer: false,
            first_offer_at: None,
            candidates_sent: false,
            deadline: None,
            active_at: None,
            renomination: Renomination::default(),
            dirty: false,
            timers_stale: true,
            library_written: false,
            inbound: HashMap::new(),
            inbound_ssrc: IdMap::default(),
            legs: IdMap::default(),
            leg_by_ssrc: IdMap::default(),
            pending_settings: HashMap::new(),
            relay: None,
            bwe: SubscriberBwe::new(bwe, probe_ssrc, rng.random()),
            srtp: SrtpPath::Library,
            srtp_queue: Vec::new(),
            srtp_in: ReadPath::Library,
        }
    }

    /// Adds a sender for a published track; it is usable once the next
    /// offer/answer round completes.
    pub fn add_leg(
        &mut self,
        track: TrackNo,
        src: &Published,
        cache_packets: u16,
        rng: &mut impl Rng,
    ) {
        let Some(codec) = src.codecs.first() else {
            return;
        };
        // A relay carries every simulcast stream (one encoding each, named
        // by the publisher's rid, lowest first as the publisher lists
        // them): the other node sees a simulcast publisher.
        let every_stream = self.relay.is_some() && src.is_video() && src.rids.len() > 1;
        let streams = if every_stream { src.rids.len() } else { 1 };
        let mut ssrcs = Vec::with_capacity(streams);
        while ssrcs.len() < streams {
            let s = self.new_ssrc(rng);
            if !ssrcs.contains(&s) {
                ssrcs.push(s);
            }
        }
        let ssrc = ssrcs[0];
        // RTX carries probes, which a relay does not send.
        let rtx_ssrc = (src.kind == RtpCodecKind::Video && !every_stream).then(|| loop {
            let s = self.new_ssrc(rng);
            if s != ssrc {
                break s;
            }
        });
        // Over a relay, tracks of several publishers share one connection
        // and two may have the same track id: the id names both (the other
        // node takes the publisher's prefix off again).
        let track_id = match self.relay {
            Some(_) => super::relay::relayed_track_id(&src.stream_id, &src.track_id),
            None => src.track_id.clone(),
        };
        let encodings = ssrcs
            .iter()
            .enumerate()
            .map(|(i, &ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: if every_stream {
                        src.rids[i].clone()
                    } else {
                        Default::default()
                    },
                    ssrc: Some(ssrc),
                    rtx: rtx_ssrc.map(|ssrc| RTCRtpRtxParameters { ssrc }),
                    ..Default::default()
                },
                codec: crate::engine::rtp_codec(codec, src.kind),
                ..Default::default()
            })
            .collect();
        let media = MediaStreamTrack::new(
            src.stream_id.clone(),
            track_id.clone(),
            track_id,
            src.kind,
            encodings,
        );
        // A transceiver of its own: `add_track` would reuse one the client's
        // offer created for its own media (same kind, no sender yet), whose
        // direction the client's answer keeps as sendonly from its side.
        //
        // Offered `sendrecv`, not `sendonly`: a client that later publishes
        // with plain `addTrack` reuses this transceiver (browsers do) and
        // re-offers it `sendrecv`. The library gives a transceiver a
        // receiver only if it was created able to receive, and without one
        // every packet the client sends on it would be dropped. A client
        // with nothing to send answers `recvonly`, so nothing changes for it.
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendrecv,
            streams: vec![],
            send_encodings: vec![],
        };
        let added = self
            .pc
            .add_transceiver_from_track(media, Some(init))
            .and_then(|t| {
                self.pc
                    .rtp_transceiver(t)
                    .and_then(|t| t.sender())
                    .ok_or(rtc::shared::error::Error::ErrRTPSenderNotExisted)
            });
        let sender = match added {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(peer = %self.key, %track, "cannot add a forwarded track: {e}");
                return;
            }
        };
        // Parked `sendonly` until our next offer gives it a mid: the
        // library hands a transceiver without one (of the kind, and
        // `sendrecv` or `recvonly`) to a new section a client offers
        // `sendrecv`, e.g. its own camera; the forwarded track would then
        // share the client's publishing section (and its rid lines),
        // which some stacks cannot receive on. See `unpark_transceivers`.
        self.set_parked(sender, true);
        let clock_rate = codec.clock_rate;
        let selector = if src.kind == RtpCodecKind::Audio {
            Selector::All { paused: false }
        } else if every_stream {
            Selector::Stream {
                index: 0,
                paused: false,
            }
        } else if src.rids.is_empty() {
            // One stream, perhaps with spatial and temporal layers.
            Selector::Svc(Svc::new(Some(Layer::TOP)))
        } else {
            Selector::Simulcast(Simulcast::new(Some(Layer::new(
                src.stream_count() - 1,
                u8::MAX,
            ))))
        };
        let cache = if src.kind == RtpCodecKind::Video {
            cache_packets
        } else {
            0
        };
        for &s in &ssrcs {
            self.leg_by_ssrc.insert(s, track);
        }
        let upper = ssrcs
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, &s)| {
                let selector = Selector::Stream {
                    index: i as u8,
                    paused: false,
                };
                Forwarder::new(s, clock_rate, selector, cache)
            })
            .collect();
        let settings = self
            .pending_settings
            .remove(&(src.stream_id.clone(), src.track_id.clone()))
            .unwrap_or_default();
        self.legs.insert(
            track,
            Leg {
                sender,
                kind: src.kind,
                fwd: Forwarder::new(ssrc, clock_rate, selector, cache),
                upper,
                settings,
                hidden_since: None,
                last_switch: None,
                rtx_ssrc,
            },
        );
        self.needs_offer = true;
    }

    /// A packet one of the probe route's video legs sent last, to repeat
    /// on that leg's RTX flow.
    pub fn probe_filler(&self) -> Option<ProbeFiller> {
        self.bwe.probe_route.as_ref()?.rtx.iter().find_map(|x| {
            let o = self.legs.get(&x.track)?.fwd.latest()?;
            let mut payload = bytes::BytesMut::with_capacity(2 + o.payload.len());
            payload.extend_from_slice(&o.seq.to_be_bytes());
            payload.extend_from_slice(&o.payload);
            Some(ProbeFiller {
                ssrc: x.ssrc,
                pt: x.pts.iter().find(|(m, _)| *m == o.pt)?.1,
                mid: x.mid.clone(),
                ts: o.ts,
                payload: payload.freeze(),
            })
        })
    }

    /// An SSRC no leg of this connection uses.
    fn new_ssrc(&self, rng: &mut impl Rng) -> u32 {
        loop {
            let s: u32 = rng.random();
            let taken = self.leg_by_ssrc.contains_key(&s)
                || self.legs.values().any(|l| l.rtx_ssrc == Some(s));
            if s != 0 && s != self.bwe.probe_ssrc() && !taken {
                break s;
            }
        }
    }

    /// Parks (`sendonly`) or unparks (`sendrecv`) the transceiver of a
    /// leg's sender.
    fn set_parked(&mut self, sender: rtc::rtp_transceiver::RTCRtpSenderId, parked: bool) {
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        for t in ids {
            if let Some(mut tr) = self.pc.rtp_transceiver(t) {
                if tr.sender() == Some(sender) {
                    tr.set_direction(if parked {
                        RTCRtpTransceiverDirection::Sendonly
                    } else {
                        RTCRtpTransceiverDirection::Sendrecv
                    });
                    return;
                }
            }
        }
    }

    /// Before our offer: every leg whose transceiver has no mid yet goes
    /// back to `sendrecv` (the offer assigns the mid).
    pub fn unpark_transceivers(&mut self) {
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        let parked: Vec<_> = ids
            .into_iter()
            .filter_map(|t| {
                let tr = self.pc.rtp_transceiver(t)?;
                (tr.mid().is_none() && tr.direction() == RTCRtpTransceiverDirection::Sendonly)
                    .then(|| tr.sender())
                    .flatten()
            })
            .collect();
        for s in parked {
            if self.legs.values().any(|l| l.sender == s) {
                self.set_parked(s, false);
            }
        }
    }

    /// When to run the connection's timers, given the earliest the library
    /// asks for. The library's ICE agent asks every 200 ms whatever the
    /// state, which for a connected participant with nothing flowing (a
    /// muted microphone, a paused video, a viewer between talks) is five
    /// wake-ups a second per connection for nothing: consent expires after
    /// 30 s (RFC 7675), and the clients' checks arrive as datagrams, which
    /// are handled when they come. Once nothing but STUN has moved for an
    /// `IDLE_TICK`, the timers run at most that often. While connecting, and
    /// while media or data flows (transport-wide feedback every 100 ms,
    /// NACKs, reports), they run when asked.
    pub fn timer_due(&self, asked: Instant, now: Instant) -> Instant {
        let idle = self.connected
            && self
                .active_at
                .is_none_or(|t| now.saturating_duration_since(t) >= IDLE_TICK);
        if idle {
            asked.max(now + IDLE_TICK)
        } else {
            asked
        }
    }

    /// Keeps the client's latest description (see `remote_sdp`).
    pub fn set_remote_sdp(&mut self, sdp: String) {
        self.remote_candidates = sdp::candidate_addresses(&sdp);
        self.remote_sdp = sdp;
    }

    /// Still in the grace period before the first round.
    pub fn remote_description_is_none_and_waiting(&self) -> bool {
        self.first_offer_at.is_some() && self.pc.remote_description().is_none()
    }

    pub fn remove_leg(&mut self, track: TrackNo) {
        if let Some(leg) = self.legs.remove(&track) {
            for f in leg.forwarders() {
                self.leg_by_ssrc.remove(&f.ssrc);
                self.bwe.remove_stream(f.ssrc);
            }
            if let Err(e) = self.pc.remove_track(leg.sender) {
                tracing::debug!(peer = %self.key, %track, "remove_track: {e}");
            }
            self.needs_offer = true;
        }
    }

    /// After a completed offer/answer round: works out every leg's
    /// payload-type and extension translations from the numbers both sides
    /// use now (the publisher's SDP and this subscriber's, section by
    /// section, as JSEP has the answer follow the offer). Returns the
    /// tracks whose legs just became ready (each wants a keyframe).
    pub fn refresh_legs(&mut self, tracks: &IdMap<TrackNo, Published>) -> Vec<TrackNo> {
        let Some(remote) = self
            .pc
            .remote_description()
            .map(|d| sdp::media_sections(&d.sdp))
        else {
            return Vec::new();
        };
        let mids: Vec<(RTCRtpSenderId, Option<String>)> = self
            .pc
            .get_transceivers()
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|t| {
                let tr = self.pc.rtp_transceiver(t)?;
                Some((tr.sender()?, tr.mid().clone()))
            })
            .collect();
        let mut ready = Vec::new();
        // Transport-wide numbers are per connection: one extension id for
        // the whole bundle (RFC 8843 keeps an id the same in every section).
        self.bwe.twcc_id = remote.iter().find_map(|m| {
            m.extmaps
                .iter()
                .find(|(_, u)| u == crate::core::extmap::TRANSPORT_CC)
                .map(|(id, _)| *id)
        });
        let mut probe_route = None;
        for (track, leg) in self.legs.iter_mut() {
            let Some(src) = tracks.get(track) else {
                continue;
            };
            let Some(mid) = mids
                .iter()
                .find(|(s, _)| *s == leg.sender)
                .and_then(|(_, m)| m.clone())
            else {
                continue;
            };
            let Some(dst) = remote
                .iter()
                .find(|m| m.mid.as_deref() == Some(mid.as_str()))
            else {
                continue;
            };
            let pts: Vec<(u8, u8)> = src
                .codecs
                .iter()
                .filter(|c| c.name != "rtx")
                .filter_map(|c| {
                    dst.codecs
                        .iter()
                        .find(|d| d.same_format(c) && d.fmtp == c.fmtp)
                        .or_else(|| dst.codecs.iter().find(|d| d.same_format(c)))
                        .map(|d| (c.pt, d.pt))
                })
                .collect();
            let ext = ExtMap::new(&src.exts, &dst.extmaps, Some(&mid));
            if leg.kind == RtpCodecKind::Video {
                if let Some(&(_, pt)) = pts.first() {
                    let mid_ext = dst
                        .extmaps
                        .iter()
                        .find(|(_, u)| u == crate::core::extmap::MID)
                        .map(|(id, _)| (*id, bytes::Bytes::copy_from_slice(mid.as_bytes())));
                    // Each video leg's RTX flow where the subscriber
                    // negotiated RTX for its codecs.
                    let rtx_pts: Vec<(u8, u8)> = pts
                        .iter()
                        .filter_map(|&(_, media)| {
                            dst.codecs
                                .iter()
                                .find(|c| {
                                    c.name.eq_ignore_ascii_case("rtx") && c.apt() == Some(media)
                                })
                                .map(|c| (media, c.pt))
                        })
                        .collect();
                    let route = probe_route.get_or_insert(ProbeRoute {
                        pt,
                        mid: mid_ext.clone(),
                        rtx: Vec::new(),
                    });
                    if let Some(ssrc) = leg.rtx_ssrc.filter(|_| !rtx_pts.is_empty()) {
                        route.rtx.push(RtxRoute {
                            ssrc,
                            mid: mid_ext,
                            track: *track,
                            pts: rtx_pts,
                        });
                    }
                }
            }
            for (f, rid) in leg.upper.iter_mut().zip(src.rids.iter().skip(1)) {
                f.negotiated(PtMap::new(&pts), ext.clone().with_rid(&dst.extmaps, rid));
            }
            let ext = match src.rids.first() {
                Some(rid) if !leg.upper.is_empty() => ext.with_rid(&dst.extmaps, rid),
                _ => ext,
            };
            if leg.fwd.negotiated(PtMap::new(&pts), ext) {
                ready.push(*track);
            }
        }
        self.bwe.probe_route = probe_route;
        ready
    }
}
