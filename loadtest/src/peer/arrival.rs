//! What a bot measures of each RTP packet it receives, however it read
//! it: through the library (a full receiver) or from its clear header (a
//! counting receiver, see `counting`), and when it reached the socket.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::counting::{self, Counting};
use super::Incoming;
use crate::abs_time;
use crate::outcome::PeerReport;
use crate::plan::Shared;
use crate::shaper::is_rtp;

/// When the RTP datagrams handed to the library arrived at the socket, to
/// match with the packets it hands back: in the same order, as the same
/// stream and sequence number, except what it keeps (a repair is handed
/// back under its original's stream and number, and goes without).
#[derive(Default)]
pub(super) struct Arrivals {
    queue: VecDeque<(u32, u16, SystemTime)>,
}

impl Arrivals {
    /// At most this many wait: the library hands packets back in the same
    /// wake-up it reads them.
    const MAX: usize = 256;

    pub(super) fn note(&mut self, d: &[u8], arrived: Option<SystemTime>) {
        let Some(at) = arrived else {
            return;
        };
        let Some(h) = is_rtp(d).then(|| counting::parse(d)).flatten() else {
            return;
        };
        if self.queue.len() == Self::MAX {
            self.queue.pop_front();
        }
        self.queue.push_back((h.ssrc, h.seq, at));
    }

    /// The arrival of packet `seq` of stream `ssrc`, forgetting it and
    /// anything noted before it.
    pub(super) fn take(&mut self, ssrc: u32, seq: u16) -> Option<SystemTime> {
        let at = self
            .queue
            .iter()
            .position(|&(s, q, _)| s == ssrc && q == seq)?;
        let (_, _, t) = self.queue[at];
        self.queue.drain(..=at);
        Some(t)
    }
}

/// The SRTP authentication tag of the profile servers choose first
/// (AES-128-GCM): what a counting receiver takes off a datagram to get the
/// size the library would have reported.
const SRTP_TAG: usize = 16;

/// One received RTP packet, as the measurements need it.
pub(super) struct Arrived<'a> {
    pub seq: u16,
    pub timestamp: u32,
    /// Payload and fixed header.
    pub size: usize,
    /// The abs-capture-time extension's value.
    pub abs_time: Option<&'a [u8]>,
    /// When the kernel queued it on the bot's socket.
    pub at_socket: Option<SystemTime>,
}

/// What every RTP packet in the window counts for, however it was read:
/// delivery, jitter, bitrate and latency.
pub(super) fn measure(
    inc: &mut Incoming,
    report: &mut PeerReport,
    shared: &Shared,
    p: Arrived,
    now: Instant,
) {
    inc.track.stats.on_packet(now, p.seq, p.timestamp, p.size);
    if let Some(ext) = p.abs_time {
        if let Some(l) = abs_time::latency(ext, SystemTime::now()) {
            report.latency.record(l);
        }
        if let Some(l) = p.at_socket.and_then(|at| abs_time::latency(ext, at)) {
            report.socket_latency.record(l);
        }
    }
    shared.packets_received.fetch_add(1, Ordering::Relaxed);
}

/// A counting receiver's datagram: its track and what to measure, read
/// from its clear header, if it belongs to a stream the library named;
/// `None`: the library's to read.
pub(super) fn count<'a>(
    c: &mut Counting,
    incoming: &'a mut HashMap<String, Incoming>,
    data: &'a [u8],
    at_socket: Option<SystemTime>,
    now: Instant,
) -> Option<(&'a mut Incoming, Arrived<'a>)> {
    let (track, h) = c.claim(data)?;
    let inc = incoming.get_mut(track)?;
    c.arrived(data, &h, now);
    let arrived = Arrived {
        seq: h.seq,
        timestamp: h.timestamp,
        size: (data.len() - h.len).saturating_sub(SRTP_TAG) + 12,
        abs_time: inc.abs_time_ext.and_then(|id| h.extension(data, id)),
        at_socket,
    };
    Some((inc, arrived))
}
