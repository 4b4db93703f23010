//! An in-memory network on a virtual clock: one [`Shard`] and `rtc` client
//! peer connections exchanging datagrams in memory, with seeded loss.
//!
//! Nothing here reads the wall clock or sleeps: `now` starts at a fixed
//! instant and advances only by [`SimNet::step`], so a minute of a call
//! takes a fraction of a second and every run is the same. The connections
//! are real (ICE, DTLS, SRTP); only the sockets and the clock are simulated.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu::shard::{Shard, ShardConfig};
use signaling::ids::{ParticipantId, RoomName};
use signaling::media::{MediaCommand, MediaEvent, TrackSettings};
use signaling::protocol::{IceCandidate, Permissions};

use super::{client_pc, opus, vp8, ClientOptions, Received};

/// The server's address on the simulated network.
pub const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7882);

/// A rewrite of a client's SDP before the server sees it (to play another
/// stack's offer or answer).
pub type SdpMunge = Box<dyn FnMut(&str) -> String>;

/// `(rid, active)` per encoding of a `publisher-encodings` event.
pub type Encodings = Vec<(Option<String>, bool)>;

/// One client on the simulated network.
pub struct SimClient {
    pub id: ParticipantId,
    pub addr: SocketAddr,
    pub pc: RTCPeerConnection,
    pub senders: Vec<(RTCRtpSenderId, u32, RtpCodecKind)>,
    pub want_offer: bool,
    /// Every connection state the client's peer connection went through.
    pub states: Vec<RTCPeerConnectionState>,
    pub received: BTreeMap<String, Received>,
    pub track_streams: HashMap<String, Vec<String>>,
    /// `error` events the server sent, as `code: message`.
    pub errors: Vec<String>,
    /// The SDP of every offer and answer the server sent this client.
    pub server_sdps: Vec<String>,
    /// Offers the server sent this client.
    pub offers_received: u32,
    /// Own offers rolled back because the server's offer collided.
    pub rollbacks: u32,
    /// Candidates the server trickled (`None`: end of candidates).
    pub trickled: Vec<Option<IceCandidate>>,
    /// Applied to this client's offers and answers before the server gets them.
    pub munge: Option<SdpMunge>,
    /// Datagrams from this client are lost (the client went silent).
    pub uplink_blocked: bool,
    /// Share of server-to-client RTP lost (0.0 to 1.0).
    pub downlink_loss: f64,
    /// Share of client-to-server RTP lost (0.0 to 1.0).
    pub uplink_loss: f64,
    /// While set, the server's signaling for this client waits in `held`
    /// (to stage crossing offers).
    pub hold_signaling: bool,
    pub held: Vec<MediaEvent>,
    /// Every `active-speakers` list received: (participant id, level).
    pub speakers: Vec<Vec<(String, f32)>>,
    /// Every `publisher-encodings` received: track id, (rid, active).
    pub encodings: Vec<(String, Encodings)>,
    /// The rid of each simulcast SSRC this client sends.
    pub rids: HashMap<u32, String>,
    /// Leave the mid and rid header extensions out, as browsers do once
    /// the server has acknowledged an SSRC in a receiver report.
    pub omit_mid_rid: bool,
    /// Every `stream-state` received: (publisher, track, paused).
    pub stream_states: Vec<(String, String, bool)>,
}

impl SimClient {
    pub fn connected(&self) -> bool {
        self.states.last() == Some(&RTCPeerConnectionState::Connected)
    }

    /// Adds a track to publish; the offer goes out on the next step.
    pub fn add_track(&mut self, track_id: &str, kind: RtpCodecKind) -> u32 {
        let codec = if kind == RtpCodecKind::Audio {
            opus()
        } else {
            vp8()
        };
        let ssrc = 0x1000_0000 | (self.senders.len() as u32) << 8 | self.addr.port() as u32;
        let track = MediaStreamTrack::new(
            format!("{}-stream", self.id),
            track_id.to_owned(),
            track_id.to_owned(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        let s = self.pc.add_track(track).expect("add_track");
        self.senders.push((s, ssrc, kind));
        self.want_offer = true;
        ssrc
    }

    /// Adds a simulcast track: one encoding per rid (lowest quality
    /// first), each on its own SSRC; returns the SSRCs.
    pub fn add_simulcast_track(&mut self, track_id: &str, rids: &[&str]) -> Vec<u32> {
        let base = 0x2000_0000 | (self.senders.len() as u32) << 12 | (self.addr.port() as u32) << 2;
        let (track, ssrcs) =
            super::simulcast_track(format!("{}-stream", self.id), track_id, base, rids);
        let s = self.pc.add_track(track).expect("add_track");
        for (ssrc, rid) in ssrcs.iter().zip(rids) {
            self.senders.push((s, *ssrc, RtpCodecKind::Video));
            self.rids.insert(*ssrc, rid.to_string());
        }
        self.want_offer = true;
        ssrcs
    }

    /// Sends one RTP packet on the i-th published track; false if the
    /// sender cannot send yet (not negotiated).
    pub fn send_rtp(&mut self, i: usize, seq: u16, ts: u32, payload: Bytes, now: Instant) -> bool {
        self.send_rtp_with(i, seq, ts, payload, now, None)
    }

    /// Like [`Self::send_rtp`], with an RFC 6464 audio level (0: loudest,
    /// 127: silence) on audio.
    pub fn send_rtp_with(
        &mut self,
        i: usize,
        seq: u16,
        ts: u32,
        payload: Bytes,
        now: Instant,
        audio_level: Option<u8>,
    ) -> bool {
        let (sid, ssrc, _) = self.senders[i];
        let (pt, mid_id, rid_id, level_id) = {
            let Some(mut sender) = self.pc.rtp_sender(sid) else {
                return false;
            };
            let params = sender.get_parameters().rtp_parameters.clone();
            let Some(pt) = params.codecs.first().map(|c| c.payload_type) else {
                return false;
            };
            let ext = |uri: &str| super::sender_ext_id(&params, uri);
            (
                pt,
                ext(super::MID_URI),
                ext(super::RID_URI),
                ext(super::AUDIO_LEVEL_URI),
            )
        };
        let mid = super::sender_mid(&mut self.pc, sid);
        let Some(mut sender) = self.pc.rtp_sender(sid) else {
            return false;
        };
        let mut pkt = Packet {
            header: Header {
                version: 2,
                marker: true,
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            },
            payload,
        };
        let (mid_id, rid_id) = if self.omit_mid_rid {
            (None, None)
        } else {
            (mid_id, rid_id)
        };
        if let (Some(id), Some(mid)) = (mid_id, mid) {
            let _ = pkt.header.set_extension(id, Bytes::from(mid.into_bytes()));
        }
        if let (Some(id), Some(rid)) = (rid_id, self.rids.get(&ssrc)) {
            let _ = pkt
                .header
                .set_extension(id, Bytes::from(rid.clone().into_bytes()));
        }
        if let (Some(id), Some(l)) = (level_id, audio_level) {
            let _ = pkt
                .header
                .set_extension(id, Bytes::copy_from_slice(&[0x80 | l]));
        }
        sender.write_rtp(now, pkt).is_ok()
    }

    /// Sends a retransmission the way a browser does for a rid simulcast
    /// layer: RTX (RFC 4588) on an SSRC no SDP names, tagged with the
    /// repaired rid; `payload` is what follows the original sequence
    /// number (empty: a padding-only probe).
    pub fn send_rtx(
        &mut self,
        rid: &str,
        rtx_ssrc: u32,
        rtx_seq: u16,
        osn: u16,
        payload: &[u8],
        now: Instant,
    ) {
        let Some(&(sid, _, _)) = self
            .senders
            .iter()
            .find(|(_, s, _)| self.rids.get(s).map(String::as_str) == Some(rid))
        else {
            panic!("no simulcast layer {rid}");
        };
        let (mid_id, rrid_id) = {
            let mut sender = self.pc.rtp_sender(sid).expect("sender");
            let params = sender.get_parameters().rtp_parameters.clone();
            let ext = |uri: &str| super::sender_ext_id(&params, uri);
            (
                ext(super::MID_URI),
                ext(super::RRID_URI).expect("rrid negotiated"),
            )
        };
        let mid = super::sender_mid(&mut self.pc, sid);
        let mut body = Vec::new();
        if !payload.is_empty() {
            body.extend(osn.to_be_bytes());
            body.extend_from_slice(payload);
        }
        let mut pkt = Packet {
            header: Header {
                version: 2,
                payload_type: 97,
                sequence_number: rtx_seq,
                timestamp: 0,
                ssrc: rtx_ssrc,
                ..Default::default()
            },
            payload: Bytes::from(body),
        };
        if let (Some(id), Some(mid)) = (mid_id, mid) {
            let _ = pkt.header.set_extension(id, Bytes::from(mid.into_bytes()));
        }
        let _ = pkt
            .header
            .set_extension(rrid_id, Bytes::from(rid.to_owned().into_bytes()));
        self.pc
            .handle_write(rtc::peer_connection::message::TaggedRTCMessage {
                now,
                message: rtc::peer_connection::message::RTCMessage::RtpPacket(String::new(), pkt),
            })
            .expect("write RTX");
    }

    /// Packets received on a forwarded track, by the publisher's track id.
    pub fn packets_of(&self, track_id: &str) -> u64 {
        self.received.get(track_id).map_or(0, |r| r.packets)
    }

    /// Moves to another local address without an ICE restart, as a
    /// browser does when it nominates another pair: the old address is
    /// gone, and nothing sent to it arrives any more. The client's own
    /// ICE agent knows the new address as a host candidate.
    pub fn move_to(&mut self, addr: SocketAddr) {
        sfu::engine::add_host_candidate(&mut self.pc, addr).expect("a host candidate");
        self.addr = addr;
    }

    /// Restarts ICE (new ufrag and password in the next offer), as a
    /// browser does after `restartIce()`; with `moved_to`, from a new
    /// address, as after a switch from Wi-Fi to cellular: the old address
    /// is gone, and nothing sent to it arrives any more.
    pub fn restart_ice(&mut self, moved_to: Option<SocketAddr>) {
        if let Some(addr) = moved_to {
            sfu::engine::add_host_candidate(&mut self.pc, addr).expect("a host candidate");
            self.addr = addr;
        }
        self.pc.restart_ice();
        self.want_offer = true;
    }
}

/// A shard and its clients on a virtual clock.
pub struct SimNet {
    pub shard: Shard,
    pub clients: Vec<SimClient>,
    pub now: Instant,
    pub room: RoomName,
    rng: StdRng,
    next_port: u16,
    pending_events: Vec<MediaEvent>,
    /// Datagrams the server sent to an address no client has (any more).
    pub undelivered: u64,
    /// RTP to clients lost to their `downlink_loss`.
    pub lost: u64,
    /// RTP from clients lost to their `uplink_loss`.
    pub lost_up: u64,
}

impl SimNet {
    /// A shard with the default media configuration (bandwidth
    /// estimation and allocation on), seeded loss.
    pub fn new(seed: u64) -> SimNet {
        Self::with_config(seed, |_| {})
    }

    /// Like [`Self::new`], with the configuration changed by `f`.
    pub fn with_config(seed: u64, f: impl FnOnce(&mut ShardConfig)) -> SimNet {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let mut cfg = ShardConfig {
            codecs: vec!["opus".into(), "vp8".into()],
            advertise: vec![SERVER],
            tcp: false,
            keyframe_min_interval: Duration::from_millis(200),
            nack_cache_packets: 1024,
            bwe: Default::default(),
            own_srtp: true,
            own_srtp_in: true,
            own_srtcp_in: true,
            stale_repair_after: Some(Duration::from_millis(300)),
        };
        f(&mut cfg);
        let cfg = Arc::new(cfg);
        SimNet {
            shard: Shard::new(cfg, StdRng::seed_from_u64(seed ^ 0x5eed)),
            clients: Vec::new(),
            now: Instant::now(),
            room: RoomName::parse("room").unwrap(),
            rng: StdRng::seed_from_u64(seed),
            next_port: 40_000,
            pending_events: Vec::new(),
            undelivered: 0,
            lost: 0,
            lost_up: 0,
        }
    }

    /// An unused address on the simulated network.
    pub fn new_addr(&mut self) -> SocketAddr {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.next_port));
        self.next_port += 1;
        addr
    }

    /// A client joins the room with these permissions.
    pub fn join(&mut self, name: &str, publish: bool, subscribe: bool) -> usize {
        self.join_with(name, publish, subscribe, ClientOptions::default())
    }

    pub fn join_with(
        &mut self,
        name: &str,
        publish: bool,
        subscribe: bool,
        opts: ClientOptions,
    ) -> usize {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.next_port));
        self.next_port += 1;
        let pc = client_pc(addr, self.now, &opts);
        let c = SimClient {
            id: ParticipantId::from_string(name),
            addr,
            pc,
            senders: Vec::new(),
            want_offer: false,
            states: Vec::new(),
            received: BTreeMap::new(),
            track_streams: HashMap::new(),
            errors: Vec::new(),
            server_sdps: Vec::new(),
            offers_received: 0,
            rollbacks: 0,
            trickled: Vec::new(),
            munge: None,
            uplink_blocked: false,
            downlink_loss: 0.0,
            uplink_loss: 0.0,
            hold_signaling: false,
            held: Vec::new(),
            speakers: Vec::new(),
            encodings: Vec::new(),
            rids: HashMap::new(),
            omit_mid_rid: false,
            stream_states: Vec::new(),
        };
        self.shard.handle_command(
            MediaCommand::Join {
                room: self.room.clone(),
                participant: c.id.clone(),
                permissions: Permissions { publish, subscribe },
            },
            self.now,
        );
        self.clients.push(c);
        self.clients.len() - 1
    }

    /// Client `i` tells the server how it shows `publisher`'s `track`.
    pub fn track_settings(
        &mut self,
        i: usize,
        publisher: usize,
        track: &str,
        settings: TrackSettings,
    ) {
        let cmd = MediaCommand::TrackSettings {
            room: self.room.clone(),
            participant: self.clients[i].id.clone(),
            publisher: self.clients[publisher].id.clone(),
            track: track.to_owned(),
            settings,
        };
        self.shard.handle_command(cmd, self.now);
    }

    pub fn leave(&mut self, i: usize) {
        let participant = self.clients[i].id.clone();
        self.shard.handle_command(
            MediaCommand::Leave {
                room: self.room.clone(),
                participant,
            },
            self.now,
        );
    }

    /// Advances the clock by `dt` and moves everything that is ready:
    /// timers, signaling, datagrams, until nothing more moves at this time.
    pub fn step(&mut self, dt: Duration) {
        self.now += dt;
        let now = self.now;
        if self.shard.next_deadline().is_some_and(|d| d <= now) {
            self.shard.handle_timeout(now);
        }
        for c in self.clients.iter_mut() {
            if c.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = c.pc.handle_timeout(now);
            }
        }
        for _ in 0..8 {
            if !self.exchange() {
                break;
            }
        }
    }

    /// Steps by `dt` until `cond` holds, for at most `max` of virtual time.
    pub fn step_until(
        &mut self,
        dt: Duration,
        max: Duration,
        cond: impl FnMut(&SimNet) -> bool,
    ) -> bool {
        self.run_until(dt, max, |_| {}, cond)
    }

    /// Calls `each` (to send media), then steps by `dt`, until `cond`
    /// holds, for at most `max` of virtual time. True if it held.
    pub fn run_until(
        &mut self,
        dt: Duration,
        max: Duration,
        mut each: impl FnMut(&mut SimNet),
        mut cond: impl FnMut(&SimNet) -> bool,
    ) -> bool {
        let end = self.now + max;
        while self.now < end {
            each(self);
            self.step(dt);
            if cond(self) {
                return true;
            }
        }
        false
    }

    /// Steps for `dur`, calling `each` every `every` (to send media).
    pub fn run(&mut self, dur: Duration, every: Duration, mut each: impl FnMut(&mut SimNet)) {
        let end = self.now + dur;
        while self.now < end {
            each(self);
            self.step(every);
        }
    }

    /// Sends packet `seq` (a 200-byte payload, one frame of 90 kHz
    /// video after the last) on every published track of every client.
    pub fn send_on_every_track(&mut self, seq: u16) {
        let now = self.now;
        for c in self.clients.iter_mut() {
            for i in 0..c.senders.len() {
                c.send_rtp(i, seq, seq as u32 * 3000, super::payload(seq, 200), now);
            }
        }
    }

    /// Every `frame`, sends the next packet (`seq` counts them) on every
    /// published track, then steps; until `cond` holds, for at most `max`
    /// of virtual time. True if it held.
    pub fn media_until(
        &mut self,
        seq: &mut u16,
        frame: Duration,
        max: Duration,
        cond: impl FnMut(&SimNet) -> bool,
    ) -> bool {
        let each = |n: &mut SimNet| {
            *seq = seq.wrapping_add(1);
            n.send_on_every_track(*seq);
        };
        self.run_until(frame, max, each, cond)
    }

    /// One exchange: the shard's output to clients, clients' output to the
    /// shard. True if anything moved.
    fn exchange(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        let (out, events, _) = self.shard.take_output();
        let out: Vec<(SocketAddr, BytesMut)> = std::mem::take(out);
        let events: Vec<MediaEvent> = std::mem::take(events);
        moved |= !out.is_empty() || !events.is_empty();
        for c in self.clients.iter_mut().filter(|c| !c.hold_signaling) {
            for e in std::mem::take(&mut c.held) {
                self.pending_events.push(e);
            }
        }
        let events: Vec<MediaEvent> = self.pending_events.drain(..).chain(events).collect();
        for e in events {
            let Some(who) = e.participant() else {
                continue;
            };
            if let Some(c) = self
                .clients
                .iter_mut()
                .find(|c| &c.id == who && c.hold_signaling)
            {
                c.held.push(e);
                continue;
            }
            self.on_event(e);
        }
        for (to, data) in out {
            let Some(c) = self.clients.iter_mut().find(|c| c.addr == to) else {
                self.undelivered += 1;
                continue;
            };
            if c.downlink_loss > 0.0 && is_rtp(&data) && self.rng.random_bool(c.downlink_loss) {
                self.lost += 1;
                continue;
            }
            let _ = c.pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: c.addr,
                    peer_addr: SERVER,
                    transport_protocol: TransportProtocol::UDP,
                    ecn: None,
                },
                message: data,
            });
        }
        let mut up = Vec::new();
        let mut commands = Vec::new();
        for c in self.clients.iter_mut() {
            while let Some(ev) = c.pc.poll_event() {
                match ev {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => c.states.push(s),
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        c.track_streams
                            .insert(init.track_id.clone(), init.stream_ids.clone());
                    }
                    _ => {}
                }
            }
            while let Some(m) = c.pc.poll_read() {
                if let RTCMessage::RtpPacket(track_id, p) = m.message {
                    let streams = c.track_streams.get(&track_id).cloned().unwrap_or_default();
                    let r = c.received.entry(track_id).or_default();
                    r.stream_ids = streams;
                    r.push(&p);
                }
            }
            while let Some(w) = c.pc.poll_write() {
                if c.uplink_loss > 0.0 && is_rtp(&w.message) && self.rng.random_bool(c.uplink_loss)
                {
                    self.lost_up += 1;
                    continue;
                }
                if !c.uplink_blocked {
                    up.push((c.addr, w.message));
                }
            }
            let pending = c.pc.pending_local_description().is_some()
                || c.pc.pending_remote_description().is_some();
            if c.want_offer && !pending {
                c.want_offer = false;
                let offer = c.pc.create_offer(None).expect("create_offer");
                c.pc.set_local_description(now, offer).expect("own offer");
                let mut sdp = c.pc.local_description().expect("offer").sdp;
                if let Some(m) = c.munge.as_mut() {
                    sdp = m(&sdp);
                }
                commands.push(MediaCommand::Offer {
                    room: self.room.clone(),
                    participant: c.id.clone(),
                    sdp,
                });
            }
        }
        moved |= !up.is_empty() || !commands.is_empty();
        let delivered = !up.is_empty();
        for (from, data) in up {
            self.shard.handle_datagram(from, data, now);
        }
        // As the runtime does after each batch of datagrams.
        if delivered {
            self.shard.handle_timeout(now);
        }
        for cmd in commands {
            self.shard.handle_command(cmd, now);
        }
        moved
    }

    fn on_event(&mut self, ev: MediaEvent) {
        let now = self.now;
        match ev {
            MediaEvent::Offer { participant, sdp } => {
                let Some(c) = self.clients.iter_mut().find(|c| c.id == participant) else {
                    return;
                };
                c.server_sdps.push(sdp.clone());
                c.offers_received += 1;
                if c.pc.pending_local_description().is_some() {
                    // Polite: roll back our own offer, answer, offer again.
                    c.pc.set_local_description(now, RTCSessionDescription::rollback(None).unwrap())
                        .expect("rollback");
                    c.want_offer = true;
                    c.rollbacks += 1;
                }
                c.pc.set_remote_description(now, RTCSessionDescription::offer(sdp).unwrap())
                    .expect("server offer applies");
                let answer = c.pc.create_answer(None).expect("answer");
                c.pc.set_local_description(now, answer).expect("own answer");
                let mut sdp = c.pc.local_description().expect("answer").sdp;
                if let Some(m) = c.munge.as_mut() {
                    sdp = m(&sdp);
                }
                let room = self.room.clone();
                self.shard.handle_command(
                    MediaCommand::Answer {
                        room,
                        participant,
                        sdp,
                    },
                    now,
                );
            }
            MediaEvent::Answer { participant, sdp } => {
                let Some(c) = self.clients.iter_mut().find(|c| c.id == participant) else {
                    return;
                };
                c.server_sdps.push(sdp.clone());
                if c.pc.pending_local_description().is_some() {
                    c.pc.set_remote_description(now, RTCSessionDescription::answer(sdp).unwrap())
                        .expect("server answer applies");
                }
            }
            MediaEvent::Error {
                participant,
                code,
                message,
            } => {
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == participant) {
                    c.errors.push(format!("{}: {message}", code.as_str()));
                }
            }
            MediaEvent::ActiveSpeakers {
                participant,
                speakers,
            } => {
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == participant) {
                    c.speakers.push(
                        speakers
                            .into_iter()
                            .map(|s| (s.id.to_string(), s.level))
                            .collect(),
                    );
                }
            }
            MediaEvent::PublisherEncodings {
                participant,
                track,
                encodings,
                ..
            } => {
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == participant) {
                    c.encodings.push((
                        track,
                        encodings.into_iter().map(|e| (e.rid, e.active)).collect(),
                    ));
                }
            }
            MediaEvent::StreamState {
                participant,
                publisher,
                track,
                paused,
                ..
            } => {
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == participant) {
                    c.stream_states.push((publisher, track, paused));
                }
            }
            MediaEvent::Candidate {
                participant,
                candidate,
            } => {
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == participant) {
                    c.trickled.push(candidate);
                }
            }
            MediaEvent::RelaySdp { .. } | MediaEvent::RelayStreams { .. } => {}
        }
    }
}

/// RTP (not RTCP, STUN or DTLS), by RFC 7983's first byte and RFC 5761's
/// payload-type range.
pub fn is_rtp(d: &[u8]) -> bool {
    d.len() > 12 && (128..192).contains(&d[0]) && !(192..=223).contains(&d[1])
}
