//! Media to a subscriber's connection, through its pacer while estimation
//! drives the connection (see `core::bwe::pacer`).
//!
//! Forwarded media and retransmissions are queued unstamped; each packet
//! is stamped with the connection's next transport-wide sequence number
//! when it leaves, so the numbers follow the order of sending and the send
//! times the estimator sees are the real ones. What the budget allows now
//! leaves at once (audio always); the rest leaves at the pacer's deadline,
//! which the shard's timer includes. A packet that may leave at once
//! skips the queue (`Pacer::pass`) and is written from the caller's
//! borrowed header. A connection without live estimation
//! (no transport-cc feedback) has no rate to pace at: its packets go
//! straight to the write path, as they did before pacing.
//!
//! The write path is the shard's own SRTP (`core::srtp_out`) once the
//! connection's keys are known, the library's otherwise (see [`SrtpPath`]).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::sansio::Protocol;

use super::peer::Peer;
use super::Shard;
use crate::core::bwe::history::PacketKind;
use crate::core::bwe::pacer::DropReason;
use crate::core::ids::{PeerKey, TrackNo};
use crate::core::srtp_out::{ntp_time, SrtpOut};
use crate::engine::srtp_keys::KeyTap;
use crate::stats::{Counts, Drop};

/// Who encrypts the RTP a connection is sent.
pub enum SrtpPath {
    /// The library's write path (relays, `[media] own_srtp` off, and
    /// connections whose SRTP profile we do not protect ourselves).
    Library,
    /// Ours once the connection is up ([`SrtpPath::settle`]); until then
    /// nothing can be sent anyway.
    Waiting(Arc<KeyTap>),
    /// Ours: see `core::srtp_out`.
    Own(Box<SrtpOut>),
}

impl SrtpPath {
    /// Decides, once the connection is up (DTLS has keyed SRTP), whether
    /// its RTP is ours to protect.
    pub(super) fn settle(&mut self, peer: PeerKey) {
        let SrtpPath::Waiting(tap) = self else {
            return;
        };
        *self = match tap.outbound() {
            Some(cipher) => SrtpPath::Own(Box::new(SrtpOut::new(cipher))),
            None => SrtpPath::Library,
        };
        tracing::debug!(
            %peer,
            own = matches!(self, SrtpPath::Own(_)),
            "SRTP keyed: forwarded RTP encrypted by the shard (own) or the library"
        );
    }
}

/// Sends one RTP packet, `header` and `payload`, to `peer`: protected
/// here into the datagram that leaves (queued for the flush) when the
/// connection's keys are ours, otherwise through the library's write path
/// (interceptors, SRTP). The track id is not used on the way out.
/// `Ok(true)`: our own SRTP.
pub(super) fn write_rtp(
    peer: &mut Peer,
    now: Instant,
    header: &Header,
    payload: Bytes,
    kind: PacketKind,
) -> Result<bool, Drop> {
    let SrtpPath::Own(out) = &mut peer.srtp else {
        peer.library_written = true;
        let p = Packet {
            header: header.clone(),
            payload,
        };
        return peer
            .pc
            .handle_write(TaggedRTCMessage {
                now,
                message: RTCMessage::RtpPacket(String::new(), p),
            })
            .map(|()| false)
            .map_err(|_| Drop::WriteFailed);
    };
    let clock_rate = match kind {
        PacketKind::Audio => Some(48_000),
        PacketKind::Padding => None,
        _ => Some(90_000),
    };
    let wire = out
        .protect(header, &payload, clock_rate, now)
        .map_err(|_| Drop::WriteFailed)?;
    peer.srtp_queue.push(wire);
    if out.reports_due(now) {
        let reports = out.reports(now, ntp_time(SystemTime::now()));
        if !reports.is_empty() {
            let packets = reports
                .into_iter()
                .map(|r| Box::new(r) as Box<dyn rtc::rtcp::packet::Packet>)
                .collect();
            // A report the library cannot send now is made again in a
            // second.
            peer.library_written = true;
            let _ = peer.pc.handle_write(TaggedRTCMessage {
                now,
                message: RTCMessage::RtcpPacket(String::new(), packets),
            });
        }
    }
    Ok(true)
}

/// Sends one packet of media (or a retransmission) to `peer`: queued in
/// its pacer and sent as far as the budget allows, or written at once when
/// the connection is not paced. `size` is the RTP size before stamping.
/// The header is borrowed (the caller reuses it for the next leg) and
/// copied only when the packet has to wait in the pacer. A video frame
/// the pacer had to drop adds its leg to `lost`.
#[allow(clippy::too_many_arguments)]
pub(super) fn send(
    peer: &mut Peer,
    header: &mut Header,
    payload: Bytes,
    size: usize,
    kind: PacketKind,
    now: Instant,
    counts: &mut Counts,
    lost: &mut Vec<(PeerKey, TrackNo)>,
) {
    if peer.bwe.paces() {
        let p = Packet {
            header: header.clone(),
            payload,
        };
        peer.bwe.enqueue(p, size, kind, now);
        drain(peer, now, counts, lost);
    } else {
        peer.bwe.on_send(header, size, kind, None, now);
        write(peer, header, payload, size, kind, now, counts);
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
        write(peer, &p.header, p.payload, size, kind, now, counts);
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

fn write(
    peer: &mut Peer,
    header: &Header,
    payload: Bytes,
    size: usize,
    kind: PacketKind,
    now: Instant,
    c: &mut Counts,
) {
    let to_relay = peer.relay.is_some();
    let written = write_rtp(peer, now, header, payload, kind);
    if written == Ok(true) {
        c.own_srtp += 1;
    }
    match written {
        Ok(_) if kind == PacketKind::Retransmission => c.nacks_answered += 1,
        Ok(_) => {
            c.packets_forwarded += 1;
            c.bytes_forwarded += size as u64;
            if to_relay {
                c.relay_packets_out += 1;
                c.relay_bytes_out += size as u64;
            }
        }
        Err(d) => c.drop(d),
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
