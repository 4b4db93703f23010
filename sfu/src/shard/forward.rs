//! The per-packet path: RTP from a publisher to every subscriber's leg, and
//! RTCP feedback from subscribers (keyframe requests, NACKs).
//!
//! Per forwarded packet: one clone of the packet (the payload is shared),
//! SSRC/payload-type/sequence/timestamp rewrite, extension rebuild, a copy
//! into the leg's NACK cache (video), and the library's write path (SRTP).
//! No clock read (`now` comes from the wake-up), no lock, no log line.

use std::time::Instant;

use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::marshal::MarshalSize;

use super::Shard;
use crate::core::ids::{PeerKey, TrackNo};
use crate::stats::Drop;

/// Hands a forwarded packet to a connection's send path (interceptors,
/// SRTP). The track id is not used on the way out.
fn write_rtp(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    now: Instant,
    p: Packet,
) -> Result<(), rtc::shared::error::Error> {
    pc.handle_write(rtc::peer_connection::message::TaggedRTCMessage {
        now,
        message: RTCMessage::RtpPacket(String::new(), p),
    })
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
                    RTCMessage::RtpPacket(track_id, pkt) => self.forward(key, &track_id, pkt, now),
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
                    // Whatever was sent before DTLS finished is lost: every
                    // video leg starts with a fresh keyframe.
                    let tracks: Vec<TrackNo> = peer.legs.keys().copied().collect();
                    for t in tracks {
                        self.request_keyframe(t, now);
                    }
                }
            }
            _ => {}
        }
    }

    /// One RTP packet from a publisher to all its track's subscribers.
    fn forward(&mut self, from: PeerKey, track_id: &str, pkt: Packet, now: Instant) {
        let Some(track) = self
            .peers
            .get(&from)
            .and_then(|p| p.inbound.get(track_id).copied())
        else {
            self.counts.drop(Drop::NotPermitted);
            return;
        };
        if let Some(p) = self.tracks.get_mut(&track) {
            p.ssrc = pkt.header.ssrc;
        }
        let Shard {
            routing,
            peers,
            counts,
            dirty,
            ..
        } = self;
        for sub in routing.subscribers(track) {
            let Some(peer) = peers.get_mut(sub) else {
                continue;
            };
            let Some(leg) = peer.legs.get_mut(&track) else {
                continue;
            };
            if !leg.ready || !peer.connected {
                counts.drop(Drop::LegNotReady);
                continue;
            }
            let Some(pt) = leg.map_pt(pkt.header.payload_type) else {
                counts.drop(Drop::CodecMismatch);
                continue;
            };
            let Some(out) = leg.seq.rewrite(
                pkt.header.ssrc,
                pkt.header.sequence_number,
                pkt.header.timestamp,
                now,
            ) else {
                counts.drop(Drop::StaleSource);
                continue;
            };
            let mut p = pkt.clone();
            p.header.ssrc = leg.ssrc;
            p.header.payload_type = pt;
            p.header.sequence_number = out.seq;
            p.header.timestamp = out.ts;
            leg.ext.apply(&mut p.header);
            if let Some(cache) = leg.cache.as_mut() {
                cache.insert(out.seq, p.clone());
            }
            let size = (p.header.marshal_size() + p.payload.len()) as u64;
            // Straight to the connection's write path: the numbering is the
            // leg's own (from the SDP both sides use now), which the
            // library's per-sender checks would hold against its single,
            // first-negotiated set of numbers.
            match write_rtp(&mut peer.pc, now, p) {
                Ok(()) => {
                    counts.packets_forwarded += 1;
                    counts.bytes_forwarded += size;
                }
                _ => counts.drop(Drop::WriteFailed),
            }
            if !peer.dirty {
                peer.dirty = true;
                dirty.push(*sub);
            }
        }
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
            if let Some(t) = track {
                self.request_keyframe(t, now);
            }
            return;
        }
        if let Some(nack) = p.downcast_ref::<TransportLayerNack>() {
            self.answer_nack(from, nack, now);
        }
    }

    /// Re-sends NACKed packets of one leg from its cache.
    fn answer_nack(&mut self, from: PeerKey, nack: &TransportLayerNack, now: Instant) {
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        let Some(track) = peer.leg_by_ssrc.get(&nack.media_ssrc).copied() else {
            return;
        };
        let Some(leg) = peer.legs.get(&track) else {
            return;
        };
        let mut resend = Vec::new();
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                match leg.cache.as_ref().and_then(|c| c.get(seq)) {
                    Some(p) => resend.push(p.clone()),
                    None => self.counts.drop(Drop::NackMiss),
                }
            }
        }
        for p in resend {
            match write_rtp(&mut peer.pc, now, p) {
                Ok(()) => self.counts.nacks_answered += 1,
                _ => self.counts.drop(Drop::WriteFailed),
            }
        }
        self.mark(from);
    }

    /// A subscriber wants a keyframe of a track: merged and throttled per
    /// track before it reaches the publisher.
    pub(super) fn request_keyframe(&mut self, track: TrackNo, now: Instant) {
        let Some(p) = self.tracks.get_mut(&track) else {
            return;
        };
        if p.kind != RtpCodecKind::Video {
            return;
        }
        if p.keyframe.request(now) {
            self.send_keyframe_request(track, now);
        }
    }

    pub(super) fn send_keyframe_request(&mut self, track: TrackNo, now: Instant) {
        let Some(p) = self.tracks.get(&track) else {
            return;
        };
        let (publisher, receiver, ssrc) = (p.publisher, p.receiver, p.ssrc);
        if ssrc == 0 {
            return;
        }
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
