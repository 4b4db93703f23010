//! Media to a subscriber's connection, through its pacer while estimation
//! drives the connection (see `core::bwe::pacer`).
//!
//! Forwarded media and retransmissions are queued unstamped; each packet
//! is stamped with the connection's next transport-wide sequence number
//! when it leaves, so the numbers follow the order of sending and the send
//! times the estimator sees are the real ones. What the budget allows now
//! leaves at once (audio always); the rest leaves at the pacer's deadline,
//! which the shard's timer includes. A connection without live estimation
//! (no transport-cc feedback) has no rate to pace at: its packets go
//! straight to the write path, as they did before pacing.

use std::time::Instant;

use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::rtp::packet::Packet;
use rtc::sansio::Protocol;

use super::peer::Peer;
use super::Shard;
use crate::core::bwe::history::PacketKind;
use crate::core::bwe::pacer::DropReason;
use crate::core::ids::{PeerKey, TrackNo};
use crate::stats::{Counts, Drop};

/// Hands a packet to a connection's send path (interceptors, SRTP). The
/// track id is not used on the way out.
pub(super) fn write_rtp(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    now: Instant,
    p: Packet,
) -> Result<(), rtc::shared::error::Error> {
    pc.handle_write(TaggedRTCMessage {
        now,
        message: RTCMessage::RtpPacket(String::new(), p),
    })
}

/// Sends one packet of media (or a retransmission) to `peer`: queued in
/// its pacer and sent as far as the budget allows, or written at once when
/// the connection is not paced. `size` is the RTP size before stamping.
/// A video frame the pacer had to drop adds its leg to `lost`.
pub(super) fn send(
    peer: &mut Peer,
    mut p: Packet,
    size: usize,
    kind: PacketKind,
    now: Instant,
    counts: &mut Counts,
    lost: &mut Vec<(PeerKey, TrackNo)>,
) {
    if peer.bwe.paces() {
        peer.bwe.enqueue(p, size, kind, now);
        drain(peer, now, counts, lost);
    } else {
        peer.bwe.on_send(&mut p.header, size, kind, None, now);
        write(peer, p, size, kind, now, counts);
    }
}

/// Writes what `peer`'s pacer lets go at `now`, and counts what it
/// dropped.
pub(super) fn drain(
    peer: &mut Peer,
    now: Instant,
    counts: &mut Counts,
    lost: &mut Vec<(PeerKey, TrackNo)>,
) {
    while let Some((p, size, kind)) = peer.bwe.next_paced(now) {
        write(peer, p, size, kind, now, counts);
    }
    while let Some(d) = peer.bwe.pacer_dropped() {
        counts.drop(match d.reason {
            DropReason::QueueFull => Drop::PacerQueueFull,
            DropReason::Evicted => Drop::PacerEvicted,
            DropReason::FrameIncomplete => Drop::PacerFrameIncomplete,
            DropReason::StreamRemoved => Drop::PacerStreamRemoved,
        });
        // A video frame with a hole decodes to nothing, and neither do the
        // frames after it: the leg needs a keyframe.
        if d.kind == PacketKind::Video && d.reason != DropReason::StreamRemoved {
            if let Some(t) = peer.leg_by_ssrc.get(&d.ssrc) {
                if !lost.contains(&(peer.key, *t)) {
                    lost.push((peer.key, *t));
                }
            }
        }
    }
}

fn write(peer: &mut Peer, p: Packet, size: usize, kind: PacketKind, now: Instant, c: &mut Counts) {
    let to_relay = peer.relay.is_some();
    match write_rtp(&mut peer.pc, now, p) {
        Ok(()) if kind == PacketKind::Retransmission => c.nacks_answered += 1,
        Ok(()) => {
            c.packets_forwarded += 1;
            c.bytes_forwarded += size as u64;
            if to_relay {
                c.relay_packets_out += 1;
                c.relay_bytes_out += size as u64;
            }
        }
        Err(_) => c.drop(Drop::WriteFailed),
    }
}

impl Shard {
    /// Sends what every pacer has due at `now`.
    pub(super) fn send_paced(&mut self, now: Instant) {
        let Shard {
            peers,
            counts,
            dirty,
            pacer_lost,
            ..
        } = self;
        for (k, peer) in peers.iter_mut() {
            if peer.bwe.pacer_deadline().is_none_or(|d| d > now) {
                continue;
            }
            drain(peer, now, counts, pacer_lost);
            // Only the write path is touched: its timers stay as they are
            // (see `flush`).
            if !peer.dirty {
                peer.dirty = true;
                dirty.push(*k);
            }
        }
        self.pacer_keyframes(now);
    }

    /// Asks for a keyframe on every leg whose frame a pacer dropped (the
    /// subscriber's own throttle applies, as to its requests).
    pub(super) fn pacer_keyframes(&mut self, now: Instant) {
        if self.pacer_lost.is_empty() {
            return;
        }
        let interval = self.cfg.bwe.congested_keyframe_interval;
        for (k, t) in std::mem::take(&mut self.pacer_lost) {
            let Some(peer) = self.peers.get_mut(&k) else {
                continue;
            };
            if !peer.bwe.allow_keyframe_request(interval, now) {
                self.counts.drop(Drop::KeyframeThrottled);
                continue;
            }
            let stream = peer
                .legs
                .get(&t)
                .and_then(|l| l.fwd.current().or(l.fwd.target()))
                .map_or(0, |l| l.spatial);
            self.request_keyframe(t, stream, now);
        }
    }
}
