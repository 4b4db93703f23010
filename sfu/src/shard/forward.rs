//! The per-packet path: RTP from a publisher to every subscriber's leg, and
//! RTCP feedback from subscribers (keyframe requests, NACKs).
//!
//! Per incoming packet: one read of its stream, layers and picture fields
//! (`track::Published::read`). Per forwarded packet: the forwarder's
//! decision (`core::forwarder`), the leg's numbers and extensions written
//! into one header the shard keeps for every leg, around the shared
//! payload, and the connection's send path (`pace`: its pacer, then the
//! shard's own SRTP). No clock read (`now` comes from the wake-up), no
//! log line.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc::interceptor::{AttributedPacket, Packet as IPacket, TaggedPacket};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::marshal::{MarshalSize, Unmarshal};

use super::pace::{self, write_rtp};
use super::Shard;
use crate::core::bwe::history::PacketKind;
use crate::core::codec::CodecKind;
use crate::core::forwarder::{Decision, DropReason, InPacket};
use crate::core::ids::{IdMap, PeerKey, TrackNo};
use crate::core::srtcp_in::{is_rtcp, SrtcpError, SrtcpIn};
use crate::core::srtp_in::SrtpIn;
use crate::engine::srtp_keys::KeyTap;
use crate::engine::Reads;
use crate::stats::Drop;

/// Who decrypts the RTP a connection publishes, and the RTCP it sends
/// (see [`Shard::read_own`]).
pub enum ReadPath {
    /// The library's receive pipeline (relays, `[media] own_srtp_in` off,
    /// and connections whose SRTP profile we do not read ourselves).
    Library,
    /// Ours once the connection is up ([`ReadPath::settle`]): its keys,
    /// and the handle on its read-side interceptors.
    Waiting(Arc<KeyTap>, Reads),
    /// Ours: see `core::srtp_in` and `core::srtcp_in`.
    Own(Box<OwnReads>),
}

/// What the shard reads itself on one connection.
pub struct OwnReads {
    rtp: SrtpIn,
    /// Its RTCP too (`[media] own_srtcp_in`).
    rtcp: Option<SrtcpIn>,
    reads: Reads,
}

impl OwnReads {
    /// Decrypts and parses `data` if it is this connection's to read here:
    /// RTCP when its RTCP keys are known and it is encrypted, RTP of a
    /// stream of `known` that the library has bound. `Ok(None)`: refused
    /// (malformed, replayed, forged). `Err`: not ours, given back.
    fn open(
        &mut self,
        known: &IdMap<u32, TrackNo>,
        mut data: BytesMut,
    ) -> Result<Option<IPacket>, BytesMut> {
        if is_rtcp(&data) {
            let Some(srtcp) = self.rtcp.as_mut() else {
                return Err(data);
            };
            return match srtcp.unprotect(&mut data) {
                Ok(()) => Ok(rtc::rtcp::packet::unmarshal(&mut data.freeze())
                    .ok()
                    .filter(|p| !p.is_empty())
                    .map(IPacket::Rtcp)),
                Err(SrtcpError::Unencrypted) => Err(data),
                Err(SrtcpError::Refused(_)) => Ok(None),
            };
        }
        let Some(ssrc) = data
            .get(8..12)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return Err(data);
        };
        if !known.contains_key(&ssrc) || !self.reads.is_bound(ssrc) {
            return Err(data);
        }
        Ok(match self.rtp.unprotect(&mut data) {
            Ok(()) => Packet::unmarshal(&mut data.freeze()).ok().map(IPacket::Rtp),
            Err(_) => None,
        })
    }
}

impl ReadPath {
    /// Decides, once the connection is up (DTLS has keyed SRTP), whether
    /// the RTP it publishes, and the RTCP it sends when `rtcp`, are ours
    /// to decrypt.
    pub(super) fn settle(&mut self, peer: PeerKey, rtcp: bool) {
        let ReadPath::Waiting(tap, reads) = self else {
            return;
        };
        *self = match tap.inbound() {
            Some(cipher) => ReadPath::Own(Box::new(OwnReads {
                rtp: SrtpIn::new(cipher),
                rtcp: rtcp.then(|| tap.inbound_rtcp()).flatten().map(SrtcpIn::new),
                reads: reads.clone(),
            })),
            None => ReadPath::Library,
        };
        tracing::debug!(
            %peer,
            own = matches!(self, ReadPath::Own(..)),
            own_rtcp = matches!(self, ReadPath::Own(o) if o.rtcp.is_some()),
            "SRTP keyed: received RTP (and RTCP) decrypted by the shard (own) or the library"
        );
    }
}

impl Shard {
    /// Drains what one connection produced: media to forward, feedback to
    /// act on, and state events.
    pub(super) fn process_peer(&mut self, key: PeerKey, now: Instant) {
        loop {
            let mut events = Vec::new();
            {
                let Some(peer) = self.peers.get_mut(&key) else {
                    return;
                };
                while let Some(ev) = peer.pc.poll_event() {
                    events.push(ev);
                }
            }
            let had_events = !events.is_empty();
            for ev in events {
                self.on_peer_event(key, ev, now);
            }
            let mut msgs = std::mem::take(&mut self.scratch);
            if let Some(peer) = self.peers.get_mut(&key) {
                while let Some(m) = peer.pc.poll_read() {
                    msgs.push(m.message);
                }
            }
            let had_msgs = !msgs.is_empty();
            for m in msgs.drain(..) {
                match m {
                    RTCMessage::RtpPacket(_, pkt) => self.forward(key, pkt, now),
                    RTCMessage::RtcpPacket(_, pkts) => {
                        for p in pkts {
                            self.on_feedback(key, p.as_any(), now);
                        }
                    }
                    _ => {}
                }
            }
            self.scratch = msgs;
            if !had_events && !had_msgs {
                return;
            }
        }
    }

    fn on_peer_event(&mut self, key: PeerKey, ev: RTCPeerConnectionEvent, now: Instant) {
        match ev {
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                self.on_track_open(key, init, now)
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track_id)) => {
                self.on_track_close(key, &track_id, now)
            }
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                let Some(peer) = self.peers.get_mut(&key) else {
                    return;
                };
                tracing::debug!(peer = %key, %state, "connection state");
                let was = peer.connected;
                let lost = matches!(
                    state,
                    RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Failed
                );
                if lost && peer.state == RTCPeerConnectionState::Connected {
                    self.counts.disconnects += 1;
                }
                peer.state = state;
                // `disconnected` means no consent check for 30 s, yet the
                // client may come back: keep sending, as browsers do, until
                // it fails or closes.
                peer.connected = match state {
                    RTCPeerConnectionState::Connected => true,
                    RTCPeerConnectionState::Disconnected => was,
                    _ => false,
                };
                if peer.connected && !was {
                    peer.srtp.settle(key);
                    peer.srtp_in.settle(key, self.cfg.own_srtcp_in);
                    // Whatever was sent before DTLS finished is lost: every
                    // video leg starts with a fresh keyframe.
                    let tracks: Vec<TrackNo> = peer.legs.keys().copied().collect();
                    for t in tracks {
                        self.request_keyframes(t, now);
                    }
                }
            }
            _ => {}
        }
    }

    /// RTP of a stream the shard forwards, or RTCP, on a connection whose
    /// remote keys it holds: decrypted here (see `core::srtp_in` and
    /// `core::srtcp_in`) and handed to the connection's read-side
    /// interceptors, not walked through the library's receive pipeline;
    /// then RTP is forwarded and RTCP acted on as the library would have
    /// handed it over. A publisher's sender reports must reach the
    /// interceptors: the receiver reports sent back to it are made from
    /// them. Gives the datagram back when it is not such a packet: streams
    /// the shard does not know yet (and their first packets, which bind
    /// them), and RTCP sent unencrypted, stay with the library.
    pub(super) fn read_own(
        &mut self,
        key: PeerKey,
        from: SocketAddr,
        data: BytesMut,
        now: Instant,
    ) -> Result<(), BytesMut> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(data);
        };
        let ReadPath::Own(own) = &mut peer.srtp_in else {
            return Err(data);
        };
        let Some(packet) = own.open(&peer.inbound_ssrc, data)? else {
            self.refuse(Drop::Rejected, from, now);
            return Ok(());
        };
        peer.active_at = Some(now);
        match packet {
            IPacket::Rtp(_) => self.counts.own_srtp_in += 1,
            _ => self.counts.own_srtcp_in += 1,
        }
        let msg = TaggedPacket {
            now,
            transport: super::udp_transport(self.local_addr, from),
            message: AttributedPacket::new(packet),
        };
        let mut out = std::mem::take(&mut self.own_reads);
        // The interceptors send their feedback on timers (transport-wide
        // feedback, NACKs, receiver reports), so a read leaves nothing to
        // write; the connection is only touched (its events polled, its
        // deadline read through the library) when a timer moved earlier.
        let due = own.reads.read(msg, &mut out);
        if due.is_some_and(|d| peer.deadline.is_none_or(|p| d < p)) {
            self.mark(key);
        }
        for p in out.drain(..) {
            match p {
                IPacket::Rtp(p) => self.forward(key, p, now),
                IPacket::Rtcp(pkts) => {
                    for p in pkts {
                        self.on_feedback(key, p.as_any(), now);
                    }
                }
                _ => {}
            }
        }
        self.own_reads = out;
        Ok(())
    }

    /// One RTP packet from a publisher to all its track's subscribers.
    ///
    /// The packet is read once (stream, layer, picture, repair); then each
    /// subscriber's forwarder decides, and the shard carries the decision
    /// out: a header with the leg's numbers and extensions around the
    /// shared (or, where a PictureID changes, copied) payload.
    fn forward(&mut self, from: PeerKey, pkt: Packet, now: Instant) {
        let Some((track, from_relay)) = self.peers.get(&from).and_then(|p| {
            Some((
                p.inbound_ssrc.get(&pkt.header.ssrc).copied()?,
                p.relay.is_some(),
            ))
        }) else {
            self.counts.drop(Drop::NotPermitted);
            return;
        };
        if from_relay {
            self.counts.relay_packets_in += 1;
        }
        let Some(published) = self.tracks.get_mut(&track) else {
            self.counts.drop(Drop::NotPermitted);
            return;
        };
        let read = match published.read(&pkt, now) {
            Ok(r) => r,
            // Counted with the repairs the connection found useless.
            Err(Drop::UnusableRepair) => {
                self.unusable_repairs.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(d) => {
                self.counts.drop(d);
                return;
            }
        };
        // A shard past its capacity sheds what came too late to be live
        // (`stale_input`), and then the library asks the publisher for it
        // again (a NACK for every gap). The retransmission arrives fresh,
        // but carries media as old as what was shed, and forwarded it
        // would reach subscribers seconds late. While the shard is behind,
        // such repairs are shed too; otherwise a late repair (a publisher
        // far away) is forwarded as any other.
        if read.retransmission && self.repair_bound().is_some_and(|b| read.lateness > b) {
            self.counts.drop(Drop::StaleRepair);
            return;
        }
        let av1 = read.codec == CodecKind::Av1;
        let input = InPacket {
            ssrc: pkt.header.ssrc,
            seq: pkt.header.sequence_number,
            ts: pkt.header.timestamp,
            pt: pkt.header.payload_type,
            marker: pkt.header.marker,
            stream: read.stream,
            retransmission: read.retransmission,
            info: &read.info,
            payload: &pkt.payload,
        };
        let mut keyframes = Vec::new();
        let Shard {
            routing,
            peers,
            counts,
            dirty,
            pacer_lost,
            leg_header: header,
            ..
        } = self;
        for sub in routing.subscribers(track) {
            let Some(peer) = peers.get_mut(sub) else {
                continue;
            };
            let Some(leg) = peer.legs.get_mut(&track) else {
                continue;
            };
            if !peer.connected {
                counts.drop(Drop::LegNotReady);
                continue;
            }
            let Some(fwd) = leg.forwarder_mut(input.stream) else {
                counts.layer_drops += 1;
                continue;
            };
            let out = match fwd.on_packet(&input, now) {
                Decision::Forward(out) => out,
                Decision::Drop(why) => {
                    match why {
                        DropReason::NotReady => counts.drop(Drop::LegNotReady),
                        DropReason::CodecMismatch => counts.drop(Drop::CodecMismatch),
                        DropReason::StaleSource => counts.drop(Drop::StaleSource),
                        DropReason::WaitingKeyframe(s) => {
                            counts.drop(Drop::WaitingKeyframe);
                            if !keyframes.contains(&s) {
                                keyframes.push(s);
                            }
                        }
                        DropReason::LayerFiltered
                        | DropReason::OtherStream
                        | DropReason::Paused => counts.layer_drops += 1,
                    }
                    continue;
                }
            };
            // One header for every leg, rewritten in place: its lists keep
            // their room, so a leg costs no allocation.
            header.version = 2;
            header.padding = pkt.header.padding;
            header.marker = out.marker;
            header.payload_type = out.pt;
            header.sequence_number = out.seq;
            header.timestamp = out.ts;
            header.ssrc = out.ssrc;
            header.csrc.clone_from(&pkt.header.csrc);
            fwd.ext.write(
                &pkt.header.extensions,
                pkt.header.extension_profile,
                header,
                av1,
            );
            if out.layer_switch {
                counts.layer_switches += 1;
                if let Some(prev) = leg.last_switch {
                    counts.observe_switch_interval(now.saturating_duration_since(prev));
                }
                leg.last_switch = Some(now);
            }
            let size = header.marshal_size() + out.payload.len();
            let kind = if leg.kind == RtpCodecKind::Audio {
                PacketKind::Audio
            } else {
                PacketKind::Video
            };
            // Straight to the connection's send path (its pacer, then the
            // write path): the numbering is the leg's own (from the SDP
            // both sides use now), which the library's per-sender checks
            // would hold against its single, first-negotiated set of
            // numbers.
            pace::send(
                peer,
                header,
                out.payload,
                size,
                kind,
                now,
                counts,
                pacer_lost,
            );
            if !peer.dirty {
                peer.dirty = true;
                dirty.push(*sub);
            }
        }
        for s in keyframes {
            self.request_keyframe(track, s, now);
        }
        self.pacer_keyframes(now);
    }

    /// RTCP a subscriber sent about one of its legs.
    fn on_feedback(&mut self, from: PeerKey, p: &dyn std::any::Any, now: Instant) {
        let media_ssrc = if let Some(pli) = p.downcast_ref::<PictureLossIndication>() {
            Some(pli.media_ssrc)
        } else if let Some(fir) = p.downcast_ref::<FullIntraRequest>() {
            fir.fir.first().map(|e| e.ssrc).or(Some(fir.media_ssrc))
        } else {
            None
        };
        if let Some(ssrc) = media_ssrc {
            let track = self
                .peers
                .get(&from)
                .and_then(|peer| peer.leg_by_ssrc.get(&ssrc).copied());
            let interval = self.cfg.bwe.congested_keyframe_interval;
            let allowed = self
                .peers
                .get_mut(&from)
                .is_none_or(|p| p.bwe.allow_keyframe_request(interval, now));
            if !allowed {
                self.counts.drop(Drop::KeyframeThrottled);
                return;
            }
            if let Some(t) = track {
                let stream = self
                    .peers
                    .get(&from)
                    .and_then(|p| p.legs.get(&t))
                    .map_or(0, |l| l.stream_for(ssrc));
                self.request_keyframe(t, stream, now);
            }
            return;
        }
        if let Some(nack) = p.downcast_ref::<TransportLayerNack>() {
            self.answer_nack(from, nack, now);
        } else if let Some(tcc) = p.downcast_ref::<TransportLayerCc>() {
            if let Some(peer) = self.peers.get_mut(&from) {
                peer.bwe.on_feedback(tcc, now);
            }
        }
    }

    /// Re-sends NACKed packets of one leg from its cache: the packets as
    /// the subscriber got them, with the leg's current extensions.
    fn answer_nack(&mut self, from: PeerKey, nack: &TransportLayerNack, now: Instant) {
        // While behind, the same bound as for a publisher's repairs: a
        // NACK read late asks for what is already old.
        let stale_after = self.repair_bound();
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        let Some(track) = peer.leg_by_ssrc.get(&nack.media_ssrc).copied() else {
            return;
        };
        let Some(fwd) = peer
            .legs
            .get(&track)
            .and_then(|l| l.by_ssrc(nack.media_ssrc))
        else {
            return;
        };
        let share = self.cfg.bwe.retransmit_share;
        let mut resend = Vec::new();
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                match fwd.retransmit(seq) {
                    Some(o) if stale_after.is_some_and(|b| fwd.behind_newest(o) > b) => {
                        self.counts.drop(Drop::StaleRepair);
                    }
                    Some(o) => {
                        // Within the leg's budget only: retransmissions
                        // beyond a share of the estimate would push a weak
                        // link further into loss.
                        let size = 12 + 24 + o.payload.len();
                        if let Err(d) = peer.bwe.allow_retransmission(size, share, now) {
                            self.counts.drop(d);
                            continue;
                        }
                        let mut header = rtc::rtp::header::Header {
                            version: 2,
                            marker: o.marker,
                            payload_type: o.pt,
                            sequence_number: o.seq,
                            timestamp: o.ts,
                            ssrc: o.ssrc,
                            ..Default::default()
                        };
                        fwd.ext.apply(&mut header, false);
                        let size = header.marshal_size() + o.payload.len();
                        resend.push((
                            Packet {
                                header,
                                payload: o.payload.clone(),
                            },
                            size,
                        ));
                    }
                    None => self.counts.drop(Drop::NackMiss),
                }
            }
        }
        for (mut p, size) in resend {
            pace::send(
                peer,
                &mut p.header,
                p.payload,
                size,
                PacketKind::Retransmission,
                now,
                &mut self.counts,
                &mut self.pacer_lost,
            );
        }
        self.pacer_keyframes(now);
        self.mark(from);
    }

    /// A subscriber wants a keyframe of one stream of a track: merged and
    /// throttled per stream before it reaches the publisher.
    pub(super) fn request_keyframe(&mut self, track: TrackNo, stream: u8, now: Instant) {
        let Some(p) = self.tracks.get_mut(&track) else {
            return;
        };
        if p.kind != RtpCodecKind::Video {
            return;
        }
        let Some(s) = p.stream_by_index_mut(stream) else {
            return;
        };
        if s.keyframe.request(now) {
            self.send_keyframe_request(track, stream, now);
        }
    }

    /// Asks every stream of a track for a keyframe (a new subscriber, or a
    /// connection that just came up, may get any of them).
    pub(super) fn request_keyframes(&mut self, track: TrackNo, now: Instant) {
        let n = self.tracks.get(&track).map_or(0, |p| p.stream_count());
        for s in 0..n {
            self.request_keyframe(track, s, now);
        }
    }

    /// Probe padding due now, on every subscriber connection that probes.
    pub(super) fn send_probes(&mut self, now: Instant) {
        let mut pkts = Vec::new();
        let mut sent = Vec::new();
        for (k, peer) in self.peers.iter_mut() {
            if !peer.connected || peer.bwe.next_deadline().is_none_or(|d| d > now) {
                continue;
            }
            let filler = peer.probe_filler();
            peer.bwe.poll_probes(now, filler.as_ref(), &mut pkts);
            for p in pkts.drain(..) {
                match write_rtp(peer, now, &p.header, p.payload, PacketKind::Padding) {
                    Ok(true) => self.counts.own_srtp += 1,
                    Ok(false) => {}
                    Err(d) => self.counts.drop(d),
                }
            }
            sent.push(*k);
        }
        for k in sent {
            self.mark(k);
        }
    }

    pub(super) fn send_keyframe_request(&mut self, track: TrackNo, stream: u8, now: Instant) {
        let Some(p) = self.tracks.get(&track) else {
            return;
        };
        let Some(ssrc) = p.stream_by_index(stream).map(|s| s.ssrc) else {
            return;
        };
        let (publisher, receiver) = (p.publisher, p.receiver);
        let Some(peer) = self.peers.get_mut(&publisher) else {
            return;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        if let Some(mut r) = peer.pc.rtp_receiver(receiver) {
            if r.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
                self.counts.keyframe_requests_sent += 1;
            }
        }
        self.mark(publisher);
    }
}
