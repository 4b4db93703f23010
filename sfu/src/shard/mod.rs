//! A shard: the peer connections of its rooms and the forwarding between
//! them. Single-threaded and clock-free: every entry point takes `now`
//! (read once per wake-up by the runtime), and what is to be sent comes out
//! of [`Shard::take_output`]. The runtime owns sockets and threads.
//!
//! - [`peer`]: one participant's connection, its inbound tracks and its
//!   downstream legs.
//! - [`signal`]: offers, answers, candidates, renegotiation.
//! - [`forward`]: the per-packet path and RTCP feedback.
//! - [`relay`]: node-to-node relays, members of a room like any other.

mod adapt;
mod allocate;
pub mod bwe;
mod forward;
mod pace;
mod peer;
mod relay;
mod signal;
mod track;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::StdRng;
use rtc::peer_connection::message::RTCMessage;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use signaling::error::ErrorCode;
use signaling::ids::ParticipantId;
use signaling::media::{MediaCommand, MediaEvent};

use crate::core::bind::{AddrTable, Bound, MAX_ADDRS_PER_OWNER};
use crate::core::ids::{IdMap, PeerKey, TrackNo};
use crate::core::keyframe::KeyframeThrottle;
use crate::core::loglimit::{LogLimiter, LOG_INTERVAL};
use crate::core::renomination::Outgoing;
use crate::core::routing::{RouteChange, Routing};
use crate::demux;
use crate::engine::srtp_keys::KeyTap;
use crate::engine::{build_peer, PeerSetup, CONSENT_TIMEOUT};
use crate::stats::{Counts, Drop, N_DROPS};
use forward::ReadPath;
use pace::SrtpPath;

pub use peer::Peer;
pub use relay::RelayLink;
use track::Published;

/// How long the server waits, after a join, for the client's own offer
/// before it offers the room's tracks itself. A publishing client offers at
/// once, and answering that offer first avoids a glare at the start of
/// every call (Chromium stalls ICE gathering after rolling back its first
/// offer); a subscriber-only client never offers and gets ours after this.
/// A participant without the publish grant cannot offer anything to
/// publish, so it gets ours at once.
pub const INITIAL_OFFER_GRACE: Duration = Duration::from_millis(400);
/// Screen-share tracks remembered per publisher (the signaling side keeps
/// at most 16 tracks per member).
const MAX_SCREEN_TRACKS: usize = 16;

/// What every shard is configured with.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub codecs: Vec<String>,
    /// Host candidates: advertised address(es) with the shared port.
    pub advertise: Vec<SocketAddr>,
    /// The same addresses are also advertised as passive TCP candidates
    /// (the runtime takes ICE over TCP on the media port).
    pub tcp: bool,
    pub keyframe_min_interval: Duration,
    pub nack_cache_packets: u16,
    /// Bandwidth estimation, probing and allocation per subscriber.
    pub bwe: bwe::BweSettings,
    /// Forwarded RTP is encrypted here, not by the library (`[media]
    /// own_srtp`; see `core::srtp_out`).
    pub own_srtp: bool,
    /// Whether publishers' RTP is decrypted by the shard (`[media]
    /// own_srtp_in`; see `core::srtp_in`).
    pub own_srtp_in: bool,
    /// Whether their RTCP is too, on connections whose RTP is (`[media]
    /// own_srtcp_in`; see `core::srtcp_in`).
    pub own_srtcp_in: bool,
    /// `[media] max_input_lag` (`None`: 0, never): while the shard is
    /// behind, a repair further than this behind its stream (a
    /// publisher's retransmission, or the answer to a subscriber's NACK)
    /// is not sent (see `forward`).
    pub stale_repair_after: Option<Duration>,
}

/// A change to the ufrag table the runtime demultiplexes by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UfragChange {
    /// A connection's ufrag and its ICE password (the runtime checks STUN
    /// requests with it before it routes their source address).
    Added {
        ufrag: String,
        pwd: String,
    },
    Removed(String),
}

/// One shard's state.
pub struct Shard {
    cfg: Arc<ShardConfig>,
    local_addr: SocketAddr,
    peers: IdMap<PeerKey, Peer>,
    by_participant: HashMap<ParticipantId, PeerKey>,
    /// Client addresses, bound only by authenticated STUN.
    addrs: AddrTable<PeerKey>,
    refusal_log: LogLimiter<N_DROPS>,
    /// Packets that passed SRTP and parsing, counted by the connections.
    srtp_ok: Arc<AtomicU64>,
    by_ufrag: HashMap<String, PeerKey>,
    routing: Routing,
    tracks: IdMap<TrackNo, Published>,
    next_key: u64,
    next_track: u64,
    dirty: Vec<PeerKey>,
    scratch: Vec<RTCMessage>,
    /// Packets out of a connection's read-side interceptors (reused).
    own_reads: Vec<rtc::interceptor::Packet>,
    events: Vec<MediaEvent>,
    out: Vec<(SocketAddr, BytesMut)>,
    ufrag_changes: Vec<UfragChange>,
    /// RTP no track of its connection owns, counted by the connections.
    unknown_ssrc: Arc<AtomicU64>,
    /// Retransmissions that repair nothing, counted by the connections.
    unusable_repairs: Arc<AtomicU64>,
    /// When adaptation (layers, dynacast, speakers) runs next.
    next_adapt: Instant,
    /// When the per-subscriber figures are next made (see `FIGURES_EVERY`).
    next_figures: Instant,
    speakers: HashMap<String, adapt::SpeakerState>,
    /// Per room, per publisher (here or on another node), the track ids
    /// that carry a screen share; kept while the room has members here.
    screens: HashMap<String, HashMap<String, Vec<String>>>,
    relays: relay::Relays,
    /// Legs whose video frame a pacer dropped: each wants a keyframe.
    pacer_lost: Vec<(PeerKey, TrackNo)>,
    /// The header forwarding rewrites for each leg of a packet (see
    /// `forward`): kept between packets for the room its lists have.
    leg_header: rtc::rtp::header::Header,
    /// Every random choice of the shard (SSRCs of forwarded tracks and of
    /// probes, first transport-wide sequence numbers) comes from here, so
    /// a test that seeds it replays the same call. ICE credentials are
    /// not among them: the library picks those (see `sync_ufrag`).
    rng: StdRng,
    pub counts: Counts,
    /// The shard reads late for long (`core::input_lag::Backlog`, kept by
    /// the runtime, which sets this).
    pub behind: bool,
    /// Per-subscriber figures, refreshed with the first adaptation after
    /// each `FIGURES_EVERY`; `true` in the flag when they changed since the
    /// runtime last took them.
    pub subscribers: (Vec<signaling::media::SubscriberStats>, bool),
}

impl Shard {
    /// A shard that takes its random choices from `rng` (the runtime seeds
    /// it from the operating system, tests with a fixed seed).
    pub fn new(cfg: Arc<ShardConfig>, rng: StdRng) -> Self {
        let local_addr = cfg
            .advertise
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        Shard {
            cfg,
            local_addr,
            peers: IdMap::default(),
            by_participant: HashMap::new(),
            addrs: AddrTable::new(CONSENT_TIMEOUT, MAX_ADDRS_PER_OWNER),
            refusal_log: LogLimiter::new(LOG_INTERVAL),
            srtp_ok: Arc::default(),
            by_ufrag: HashMap::new(),
            routing: Routing::new(),
            tracks: IdMap::default(),
            next_key: 1,
            next_track: 1,
            dirty: Vec::new(),
            scratch: Vec::new(),
            own_reads: Vec::new(),
            events: Vec::new(),
            out: Vec::new(),
            ufrag_changes: Vec::new(),
            unknown_ssrc: Arc::default(),
            unusable_repairs: Arc::default(),
            next_adapt: Instant::now(),
            next_figures: Instant::now(),
            speakers: HashMap::new(),
            screens: HashMap::new(),
            relays: relay::Relays::default(),
            pacer_lost: Vec::new(),
            leg_header: rtc::rtp::header::Header::default(),
            rng,
            counts: Counts::default(),
            behind: false,
            subscribers: (Vec::new(), false),
        }
    }

    /// How far behind its stream a repair may be and still be sent: the
    /// bound (`[media] max_input_lag`) while the shard is behind, none
    /// while it keeps up (see `forward`).
    fn repair_bound(&self) -> Option<Duration> {
        self.cfg.stale_repair_after.filter(|_| self.behind)
    }

    /// Carries out a signaling command.
    pub fn handle_command(&mut self, cmd: MediaCommand, now: Instant) {
        match cmd {
            MediaCommand::Join {
                room,
                participant,
                permissions,
            } => self.join(participant, room.as_str(), permissions, now),
            MediaCommand::Leave { participant, .. } => self.leave(&participant, now),
            MediaCommand::Offer {
                participant, sdp, ..
            } => self.on_offer(&participant, sdp, now),
            MediaCommand::Answer {
                participant, sdp, ..
            } => self.on_answer(&participant, sdp, now),
            MediaCommand::Candidate {
                participant,
                candidate,
                ..
            } => self.on_candidate(&participant, candidate),
            MediaCommand::TrackSettings {
                participant,
                publisher,
                track,
                settings,
                ..
            } => self.on_track_settings(&participant, &publisher, &track, settings, now),
            // A full end needs a socket: the runtime binds it and calls
            // `open_relay` itself.
            MediaCommand::RelayOpen { room, node, end } => {
                self.open_relay(&room, &node, end, None, now)
            }
            MediaCommand::RelayClose { room, node } => self.close_relay(&room, &node, now),
            MediaCommand::RelaySdp {
                room,
                node,
                kind,
                sdp,
            } => self.relay_sdp(&room, &node, kind, sdp, now),
            MediaCommand::RelayStreams {
                room,
                node,
                publisher,
                track,
                active,
            } => self.relay_streams(&room, &node, &publisher, &track, active, now),
            MediaCommand::ScreenTracks {
                room,
                publisher,
                mut tracks,
            } => {
                tracks.truncate(MAX_SCREEN_TRACKS);
                let room = self.screens.entry(room.as_str().to_owned()).or_default();
                if tracks.is_empty() {
                    room.remove(publisher.as_str());
                } else {
                    room.insert(publisher.as_str().to_owned(), tracks);
                }
            }
        }
        self.flush(now);
    }

    /// A datagram from `from` on the shared port.
    pub fn handle_datagram(&mut self, from: SocketAddr, data: BytesMut, now: Instant) {
        self.counts.packets_in += 1;
        self.counts.bytes_in += data.len() as u64;
        // Only a STUN request signed with a connection's password binds an
        // address to it; anything else must come from a bound address.
        let kind = demux::classify(&data);
        let key = if kind == demux::Kind::Stun {
            match self.authenticate_stun(from, &data, now) {
                Some(k) => k,
                None => return,
            }
        } else {
            match self.addrs.owner(&from) {
                Some(k) => *k,
                None => {
                    let why = if kind == demux::Kind::Other {
                        Drop::Garbage
                    } else {
                        Drop::UnknownSource
                    };
                    self.refuse(why, from, now);
                    return;
                }
            }
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            self.refuse(Drop::UnknownSource, from, now);
            return;
        };
        // A signed check (authenticated above) from where the client moved
        // to is also shown to the library under the address it selected.
        let mut check_copy = None;
        if kind == demux::Kind::Stun && demux::stun_type(&data) == Some(demux::BINDING_REQUEST) {
            if demux::stun_use_candidate(&data) && peer.renomination.nominated(from) {
                let selected = peer.renomination.moved_from();
                tracing::info!(peer = %key, %from, ?selected, "client nominated another candidate pair: media follows it");
            }
            check_copy = peer
                .renomination
                .check_copy_for(from)
                .map(|old| (old, data.clone()));
        }
        let data = if kind == demux::Kind::Rtp {
            match self.read_own(key, from, data, now) {
                Ok(()) => return,
                Err(data) => data,
            }
        } else {
            data
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let first = data.first().copied().unwrap_or(0);
        let msg = udp_message(self.local_addr, from, data, now);
        // SRTP and RTP parse failures end inside the library with no error
        // returned; a packet that passed shows up at the connection's
        // interceptor, which counts it.
        let seen = self.srtp_ok.load(Ordering::Relaxed);
        if kind != demux::Kind::Stun {
            peer.active_at = Some(now);
        }
        let read = peer.pc.handle_read(msg);
        let unseen = kind == demux::Kind::Rtp && self.srtp_ok.load(Ordering::Relaxed) == seen;
        // A packet with the padding bit that went through but reached no
        // interceptor is most likely padding only (browsers probe their
        // uplink with it on the RTX stream), which the library discards:
        // counted with the other repairs that repair nothing.
        let padding = unseen && read.is_ok() && first & 0x20 != 0;
        if padding {
            self.unusable_repairs.fetch_add(1, Ordering::Relaxed);
        }
        let refused = read.is_err() || (unseen && !padding);
        if let Some((old, copy)) = check_copy {
            let _ = peer
                .pc
                .handle_read(udp_message(self.local_addr, old, copy, now));
        }
        if refused {
            self.refuse(Drop::Rejected, from, now);
        }
        self.mark(key);
    }

    /// The connection a STUN message is for, if it proves it holds that
    /// connection's password and may use its source address (see
    /// [`crate::core::bind`]). Everything else is counted and dropped
    /// before it reaches any connection: the library would otherwise act on
    /// parts of an unauthenticated request (ICE role conflicts) and log it.
    fn authenticate_stun(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Option<PeerKey> {
        if demux::stun_type(data) == Some(demux::BINDING_SUCCESS) {
            return self.authenticate_response(from, data, now);
        }
        let Some(key) = demux::stun_ufrag(data)
            .and_then(|u| self.by_ufrag.get(u))
            .copied()
        else {
            // What is neither a binding request naming a connection nor a
            // response to the server's own checks (indications, error
            // responses, other methods): an ICE-lite server needs none.
            let why = if self.addrs.owner(&from).is_some() {
                Drop::StunUnauthenticated
            } else {
                Drop::UnknownSource
            };
            self.refuse(why, from, now);
            return None;
        };
        let signed = self
            .peers
            .get(&key)
            .map(|p| demux::verify_binding_request(data, p.pwd.as_bytes()).is_ok())?;
        if !signed {
            self.refuse(Drop::StunUnauthenticated, from, now);
            return None;
        }
        let peers = &self.peers;
        match self
            .addrs
            .authenticated(from, key, now, |k| peers.contains_key(k))
        {
            Ok(Bound::Refreshed) => {}
            Ok(Bound::Added) => tracing::debug!(peer = %key, %from, "address bound"),
            Ok(Bound::Moved { from: old }) => {
                tracing::debug!(peer = %key, %from, old = %old, "address moved")
            }
            Err(_) => {
                self.refuse(Drop::AddressInUse, from, now);
                return None;
            }
        }
        Some(key)
    }

    /// A response to one of the connection's own checks: it must come from
    /// an address the connection holds and be signed with the client's
    /// password (from its SDP); it binds nothing.
    fn authenticate_response(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Option<PeerKey> {
        let Some(key) = self.addrs.owner(&from).copied() else {
            self.refuse(Drop::UnknownSource, from, now);
            return None;
        };
        let signed = self.peers.get(&key).is_some_and(|p| {
            p.remote_pwd
                .as_deref()
                .is_some_and(|pwd| demux::verify_binding_response(data, pwd.as_bytes()).is_ok())
        });
        if !signed {
            self.refuse(Drop::StunUnauthenticated, from, now);
            return None;
        }
        Some(key)
    }

    /// Every client address bound to a connection here, and a number
    /// that changes whenever the set does.
    pub fn bound_addresses(&self) -> (u64, impl Iterator<Item = &SocketAddr>) {
        self.addrs.addresses()
    }

    /// A datagram longer than the receive slot arrived cut: counted as
    /// received, and refused whole.
    pub fn refuse_oversize(&mut self, from: SocketAddr, len: usize, now: Instant) {
        self.counts.packets_in += 1;
        self.counts.bytes_in += len as u64;
        self.refuse(Drop::Oversize, from, now);
    }

    /// Counts a refused datagram and says so in the log at most once per
    /// interval per reason (a flood must not become a flood of log lines).
    pub fn refuse(&mut self, why: Drop, from: SocketAddr, now: Instant) {
        self.counts.drop(why);
        if let Some(unlogged) = self.refusal_log.hit(why as usize, now) {
            let reason = crate::stats::drop_name(why);
            tracing::info!(
                reason,
                %from,
                unlogged,
                total = self.counts.dropped[why as usize],
                "media datagram refused (at most one line per {}s per reason)",
                LOG_INTERVAL.as_secs()
            );
        }
    }

    /// Runs due timers: the connections' own, and merged keyframe requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.tracks.is_empty() && now >= self.next_adapt {
            self.adapt(now);
        }
        // Connections whose library timers are due, and those whose first
        // offer is: one visit each.
        let (mut due, mut offers) = (Vec::new(), Vec::new());
        for (k, p) in self.peers.iter() {
            if p.deadline.is_some_and(|d| d <= now) {
                due.push(*k);
            }
            if p.first_offer_at.is_some_and(|d| d <= now) {
                offers.push(*k);
            }
        }
        // In key order, not the map's (seeded per process): the same input
        // then gives the same output, datagram for datagram.
        due.sort_unstable();
        for k in due {
            if let Some(p) = self.peers.get_mut(&k) {
                p.deadline = None;
                if let Err(e) = p.pc.handle_timeout(now) {
                    tracing::debug!(peer = %k, "timeout handling failed: {e}");
                }
            }
            self.mark(k);
        }
        offers.sort_unstable();
        for k in offers {
            if let Some(p) = self.peers.get_mut(&k) {
                p.first_offer_at = None;
            }
            self.maybe_offer(k, now);
        }
        let mut kf: Vec<(TrackNo, u8)> = Vec::new();
        for (t, p) in self.tracks.iter_mut() {
            for i in 0..p.stream_count() {
                if p.stream_by_index_mut(i)
                    .is_some_and(|s| s.keyframe.poll(now))
                {
                    kf.push((*t, i));
                }
            }
        }
        kf.sort_unstable();
        for (t, s) in kf {
            self.send_keyframe_request(t, s, now);
        }
        self.send_paced(now);
        self.send_probes(now);
        self.flush(now);
    }

    /// The earliest time [`Self::handle_timeout`] has work. One visit per
    /// connection (its timers sit in different parts of its state, each
    /// visit a few cache misses) and per track.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for p in self.peers.values() {
            take(p.deadline);
            take(p.first_offer_at);
            take(p.bwe.next_deadline());
            take(p.bwe.pacer_deadline());
        }
        for t in self.tracks.values() {
            for s in &t.streams {
                take(s.keyframe.deadline());
            }
        }
        // Adaptation only has work while something is published.
        if !self.tracks.is_empty() {
            take(Some(self.next_adapt));
        }
        next
    }

    /// Datagrams to send, then events for signaling, then ufrag-table changes.
    pub fn take_output(
        &mut self,
    ) -> (
        &mut Vec<(SocketAddr, BytesMut)>,
        &mut Vec<MediaEvent>,
        &mut Vec<UfragChange>,
    ) {
        self.relay_events();
        (&mut self.out, &mut self.events, &mut self.ufrag_changes)
    }

    /// Participants on this shard.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    fn mark(&mut self, key: PeerKey) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.timers_stale = true;
            if !p.dirty {
                p.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Drains every touched connection: media and feedback it produced
    /// (which touches other connections), events, datagrams and timers.
    fn flush(&mut self, now: Instant) {
        while let Some(k) = self.dirty.pop() {
            // A connection touched only by forwarding (written to) has no
            // events or reads: only a datagram, a timer or a signaling
            // call makes them. Polling for them walks every handler of the
            // library's pipeline, once per subscriber per wake-up.
            if self.peers.get(&k).is_some_and(|p| p.timers_stale) {
                self.process_peer(k, now);
            }
            // Forwarding may have touched `k` again; writes are drained once
            // everything queued so far is processed.
            let relay_socket = self.relay_socket(k);
            if let Some(p) = self.peers.get_mut(&k) {
                p.dirty = false;
                // Likewise its writes: forwarded media of ours waits in
                // `srtp_queue`, and draining the library's walks its whole
                // pipeline.
                let library_writes = p.timers_stale || p.library_written;
                p.library_written = false;
                if library_writes {
                    while let Some(w) = p.pc.poll_write() {
                        let stun = demux::classify(&w.message) == demux::Kind::Stun;
                        if !stun {
                            p.active_at = Some(now);
                        }
                        let len = w.message.len() as u64;
                        match relay_socket {
                            Some(local) => {
                                self.relays
                                    .out
                                    .push((local, w.transport.peer_addr, w.message))
                            }
                            None => match p.renomination.outgoing(w.transport.peer_addr, stun) {
                                Outgoing::To(to) => self.out.push((to, w.message)),
                                Outgoing::Drop => continue,
                            },
                        }
                        self.counts.packets_out += 1;
                        self.counts.bytes_out += len;
                    }
                }
                // Forwarded RTP protected by the shard (see `pace::write_rtp`)
                // goes where the library sends its own media.
                if !p.srtp_queue.is_empty() {
                    p.active_at = Some(now);
                    match p.renomination.media_to() {
                        Some(to) => {
                            for w in p.srtp_queue.drain(..) {
                                self.counts.packets_out += 1;
                                self.counts.bytes_out += w.len() as u64;
                                self.out.push((to, w));
                            }
                        }
                        None => {
                            for _ in p.srtp_queue.drain(..) {
                                self.counts.drop(Drop::WriteFailed);
                            }
                        }
                    }
                }
                // Reading the deadline walks every handler of the connection
                // (about as dear as forwarding a packet), and forwarded media
                // only ever feeds timers already armed (sender reports), so a
                // leg touched only by forwarding keeps its deadline.
                if p.timers_stale || p.deadline.is_none() {
                    p.timers_stale = false;
                    p.deadline = p.pc.poll_timeout().map(|d| p.timer_due(d, now));
                }
            }
        }
        self.counts.connections = self.peers.len() as u64 - self.counts.relays;
        self.counts.tracks = self.tracks.len() as u64;
        self.counts.addresses = self.addrs.len() as u64;
        self.counts.dropped[Drop::UnknownSsrc as usize] = self.unknown_ssrc.load(Ordering::Relaxed);
        self.counts.dropped[Drop::UnusableRepair as usize] =
            self.unusable_repairs.load(Ordering::Relaxed);
    }

    fn join(
        &mut self,
        participant: ParticipantId,
        room: &str,
        perms: signaling::protocol::Permissions,
        now: Instant,
    ) {
        if self.by_participant.contains_key(&participant) {
            self.leave(&participant, now);
        }
        // ICE credentials are left to the library: it picks new ones at
        // every ICE restart, which configured ones would prevent. The shard
        // learns them from each local description (`sync_ufrag`).
        let setup = PeerSetup {
            codecs: self.cfg.codecs.clone(),
            advertise: self.cfg.advertise.clone(),
            ufrag: String::new(),
            pwd: String::new(),
            unknown_ssrc: self.unknown_ssrc.clone(),
            unusable_repairs: self.unusable_repairs.clone(),
            relay_full: false,
            srtp_ok: self.srtp_ok.clone(),
            keys: if self.cfg.own_srtp || self.cfg.own_srtp_in {
                KeyTap::new().ok()
            } else {
                None
            },
        };
        let (pc, reads) = match build_peer(&setup, now) {
            Ok(built) => built,
            Err(e) => {
                tracing::error!(%participant, "cannot create a peer connection: {e}");
                self.events.push(MediaEvent::Error {
                    participant,
                    code: ErrorCode::MediaRejected,
                    message: "the server could not set up media for this participant".into(),
                });
                return;
            }
        };
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        tracing::debug!(%participant, room, peer = %key, "media join");
        self.by_participant.insert(participant.clone(), key);
        let mut peer = Peer::new(
            key,
            participant,
            room.to_owned(),
            perms,
            pc,
            &self.cfg.bwe,
            &mut self.rng,
        );
        if let Some(tap) = setup.keys {
            if self.cfg.own_srtp_in {
                peer.srtp_in = ReadPath::Waiting(tap.clone(), reads);
            }
            if self.cfg.own_srtp {
                peer.srtp = SrtpPath::Waiting(tap);
            }
        }
        let grace = if perms.publish {
            INITIAL_OFFER_GRACE
        } else {
            Duration::ZERO
        };
        peer.first_offer_at = Some(now + grace);
        self.peers.insert(key, peer);
        if let Some(speakers) = self.speakers.get_mut(room) {
            speakers.resend();
        }
        let changes = self.routing.join(key, room, perms.publish, perms.subscribe);
        self.apply_routes(changes, now);
    }

    fn leave(&mut self, participant: &ParticipantId, now: Instant) {
        let Some(key) = self.by_participant.remove(participant) else {
            return;
        };
        let changes = self.routing.leave(key);
        self.tracks.retain(|_, t| t.publisher != key);
        if let Some(mut p) = self.peers.remove(&key) {
            if !p.ufrag.is_empty() {
                self.by_ufrag.remove(&p.ufrag);
                self.ufrag_changes
                    .push(UfragChange::Removed(p.ufrag.clone()));
            }
            self.addrs.remove_owner(&key);
            let _ = p.pc.close();
        }
        self.apply_routes(changes, now);
        tracing::debug!(%participant, peer = %key, "media leave");
    }

    /// Adds and removes downstream legs, then renegotiates the subscribers
    /// that changed.
    fn apply_routes(&mut self, changes: Vec<RouteChange>, now: Instant) {
        let mut touched = Vec::new();
        for c in changes {
            match c {
                RouteChange::Subscribe { subscriber, track } => {
                    let (Some(p), Some(t)) =
                        (self.peers.get_mut(&subscriber), self.tracks.get(&track))
                    else {
                        continue;
                    };
                    p.add_leg(track, t, self.cfg.nack_cache_packets, &mut self.rng);
                    touched.push(subscriber);
                }
                RouteChange::Unsubscribe { subscriber, track } => {
                    if let Some(p) = self.peers.get_mut(&subscriber) {
                        p.remove_leg(track);
                        touched.push(subscriber);
                    }
                }
            }
        }
        touched.sort();
        touched.dedup();
        for k in touched {
            self.maybe_offer(k, now);
            self.mark(k);
        }
    }

    fn error(&mut self, participant: &ParticipantId, message: String) {
        self.events.push(MediaEvent::Error {
            participant: participant.clone(),
            code: ErrorCode::MediaRejected,
            message,
        });
    }

    /// Points the demultiplexing tables at the ICE credentials of the
    /// connection's latest local description. The library chooses them,
    /// and new ones when the client restarts ICE (RFC 8445 section 9: both
    /// sides change them), so after every local description the shard
    /// learns the ufrag and the password it must check STUN requests with,
    /// and forgets the old ones: a request under the old ufrag names no
    /// connection any more, and one under the new ufrag binds an address
    /// only if signed with the new password. The runtime's table follows
    /// through `ufrag_changes`. Our candidates are trickled again under the
    /// new ufrag.
    ///
    /// Relays keep the credentials they were opened with (the other node
    /// never restarts ICE on them), and a relay's full end is not in the
    /// ufrag table at all.
    fn sync_ufrag(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.relay.is_some() {
            return;
        }
        let Some((ufrag, pwd)) = peer.pc.local_description().and_then(|d| {
            crate::core::sdp::ice_ufrag(&d.sdp).zip(crate::core::sdp::ice_pwd(&d.sdp))
        }) else {
            return;
        };
        if ufrag == peer.ufrag && pwd == peer.pwd {
            return;
        }
        let old = std::mem::replace(&mut peer.ufrag, ufrag.clone());
        peer.pwd = pwd.clone();
        if !old.is_empty() {
            tracing::debug!(peer = %key, "ICE restart: new credentials");
            peer.candidates_sent = false;
            self.counts.ice_restarts += 1;
            self.by_ufrag.remove(&old);
            self.ufrag_changes.push(UfragChange::Removed(old));
            // The library dropped every candidate pair: a path is usable
            // again only once a check signed under the new credentials
            // names it, so the old addresses are forgotten (the client's
            // may be gone, or someone else's by now).
            self.addrs.remove_owner(&key);
        }
        self.by_ufrag.insert(ufrag.clone(), key);
        self.ufrag_changes.push(UfragChange::Added { ufrag, pwd });
    }

    fn new_track_no(&mut self) -> TrackNo {
        let t = TrackNo(self.next_track);
        self.next_track += 1;
        t
    }

    fn keyframe_throttle(&self) -> KeyframeThrottle {
        KeyframeThrottle::new(self.cfg.keyframe_min_interval)
    }
}

/// A datagram from `peer` to the library, as received on `local`.
fn udp_message(
    local: SocketAddr,
    peer: SocketAddr,
    data: BytesMut,
    now: Instant,
) -> TaggedBytesMut {
    TaggedBytesMut {
        now,
        transport: udp_transport(local, peer),
        message: data,
    }
}

/// The library's description of a datagram between `local` and `peer`.
fn udp_transport(local: SocketAddr, peer: SocketAddr) -> TransportContext {
    TransportContext {
        local_addr: local,
        peer_addr: peer,
        transport_protocol: TransportProtocol::UDP,
        ecn: None,
    }
}
