//! Counters: plain integers on the hot path, published to atomics once per
//! shard wake-up, summed across shards when read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::core::input_lag::LAG_LE_MS;

/// Why a packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Drop {
    /// A datagram from an address no connection owns, not a STUN request
    /// naming a known ufrag.
    UnknownSource = 0,
    /// Not STUN, DTLS, RTP or RTCP.
    Garbage,
    /// The connection refused it (bad DTLS record, SRTP auth failure, ...).
    Rejected,
    /// A publisher without the publish permission sent media.
    NotPermitted,
    /// The subscriber's leg is not negotiated or not connected yet.
    LegNotReady,
    /// The subscriber did not negotiate the packet's codec.
    CodecMismatch,
    /// Older than the current source of a leg (late packet of a switched source).
    StaleSource,
    /// The library refused to send it.
    WriteFailed,
    /// A NACKed packet no longer (or never) in the cache.
    NackMiss,
    /// The socket would block or failed.
    SendFailed,
    /// A datagram for a shard whose queue is gone.
    ShardGone,
    /// RTP the connection could not attribute to any negotiated track (an
    /// SSRC no receiver owns, and no mid or rid that names one).
    UnknownSsrc,
    /// A subscriber waits for a keyframe to start or switch (one was asked for).
    WaitingKeyframe,
    /// A retransmission flow's packet that repairs nothing: padding sent
    /// to probe bandwidth, a repaired rid no media arrived on, or a repeat
    /// of a packet that already arrived (a browser's probe with payload).
    UnusableRepair,
    /// A STUN message naming a connection without proving it holds the
    /// connection's ICE password (no or a wrong MESSAGE-INTEGRITY, or not a
    /// binding request): never binds an address, never reaches the
    /// connection.
    StunUnauthenticated,
    /// An authenticated STUN request from an address another live
    /// connection holds with fresh consent.
    AddressInUse,
    /// A NACKed packet not re-sent: the subscriber's retransmission budget
    /// (a share of its bandwidth estimate) was spent.
    NackBudget,
    /// A keyframe request from a congested subscriber inside its interval.
    KeyframeThrottled,
    /// A TCP connection to the media port turned away (too many open), or
    /// a frame from one dropped because the receive queue was full.
    TcpRefused,
    /// Not sent: a subscriber's pacer queue was full, even of less
    /// important packets.
    PacerQueueFull,
    /// Taken out of a subscriber's pacer queue (the newest video frame,
    /// whole) to make room for a more important packet.
    PacerEvicted,
    /// The rest of a video frame that lost a packet in the pacer: the
    /// subscriber sees a clean gap, and the shard asks for a keyframe.
    PacerFrameIncomplete,
    /// Waited in a pacer for a leg that was removed.
    PacerStreamRemoved,
    /// A datagram longer than the receive buffer (2,048 bytes): cut by
    /// the kernel, so dropped whole.
    Oversize,
    /// RTP that waited in the kernel's receive queue longer than `[media]
    /// max_input_lag` (the shard was behind): dropped unread.
    StaleInput,
    /// Dropped by the kernel before the shard could read it: the socket's
    /// receive buffer was full.
    SocketOverflow,
    /// A repair more than `[media] max_input_lag` behind its stream's
    /// newest packet while the shard was behind: a publisher's
    /// retransmission of what was lost or shed as stale, or the answer to
    /// a subscriber's NACK read late; already too old to send.
    StaleRepair,
}

pub const DROP_REASONS: &[(Drop, &str)] = &[
    (Drop::UnknownSource, "unknown_source"),
    (Drop::Garbage, "garbage"),
    (Drop::Rejected, "rejected"),
    (Drop::NotPermitted, "not_permitted"),
    (Drop::LegNotReady, "leg_not_ready"),
    (Drop::CodecMismatch, "codec_mismatch"),
    (Drop::StaleSource, "stale_source"),
    (Drop::WriteFailed, "write_failed"),
    (Drop::NackMiss, "nack_miss"),
    (Drop::SendFailed, "send_failed"),
    (Drop::ShardGone, "shard_gone"),
    (Drop::UnknownSsrc, "unknown_ssrc"),
    (Drop::WaitingKeyframe, "waiting_keyframe"),
    (Drop::UnusableRepair, "unusable_repair"),
    (Drop::StunUnauthenticated, "stun_unauthenticated"),
    (Drop::AddressInUse, "address_in_use"),
    (Drop::NackBudget, "nack_budget"),
    (Drop::KeyframeThrottled, "keyframe_throttled"),
    (Drop::TcpRefused, "tcp_refused"),
    (Drop::PacerQueueFull, "pacer_queue_full"),
    (Drop::PacerEvicted, "pacer_evicted"),
    (Drop::PacerFrameIncomplete, "pacer_frame_incomplete"),
    (Drop::PacerStreamRemoved, "pacer_stream_removed"),
    (Drop::Oversize, "oversize"),
    (Drop::StaleInput, "stale_input"),
    (Drop::SocketOverflow, "socket_overflow"),
    (Drop::StaleRepair, "stale_repair"),
];

pub const N_DROPS: usize = 27;

/// A drop reason's name in statistics.
pub fn drop_name(why: Drop) -> &'static str {
    DROP_REASONS
        .iter()
        .find(|(d, _)| *d == why)
        .map_or("other", |(_, n)| n)
}

/// One shard's (or the receiver's) running totals.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub connections: u64,
    pub tracks: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_forwarded: u64,
    pub bytes_forwarded: u64,
    pub nacks_answered: u64,
    pub keyframe_requests_sent: u64,
    /// Connections that lost consent (went disconnected or failed) after
    /// being connected.
    pub disconnects: u64,
    /// Packets a subscriber deliberately does not get: another simulcast
    /// stream, a layer above its own, a track it paused or does not show.
    pub layer_drops: u64,
    /// Layer switches completed (a subscriber moved to another stream).
    pub layer_switches: u64,
    /// Node-to-node relay connections (not in `connections`).
    pub relays: u64,
    /// RTP sent to other nodes over relays (in `packets_forwarded` too).
    pub relay_packets_out: u64,
    pub relay_bytes_out: u64,
    /// RTP received from other nodes over relays.
    pub relay_packets_in: u64,
    /// Client addresses bound to connections (gauge).
    pub addresses: u64,
    /// Addresses the receiving shard routes to a shard (gauge).
    pub routes: u64,
    /// Datagrams shard 0 read for another shard and handed over.
    pub handed_off: u64,
    /// Clients whose datagrams arrive on a connected socket of the shard
    /// that owns them (gauge; see `crate::connected`).
    pub connected_sockets: u64,
    /// RTP sent to participants through the shard's own SRTP (see
    /// `core::srtp_out`), not the library's write path.
    pub own_srtp: u64,
    /// RTP received from publishers and decrypted by the shard (see
    /// `core::srtp_in`), not the library's receive pipeline.
    pub own_srtp_in: u64,
    /// RTCP received from participants and decrypted by the shard (see
    /// `core::srtcp_in`), not the library's receive pipeline.
    pub own_srtcp_in: u64,
    /// Times the shard's thread slept and was woken (its voluntary
    /// context switches), updated about once a second.
    pub wakeups: u64,
    /// ICE restarts accepted (a client re-offered with new credentials).
    pub ice_restarts: u64,
    pub dropped: [u64; N_DROPS],
    /// Subscribers' bandwidth estimates, one observation per estimating
    /// subscriber per allocation round: per bucket of [`ESTIMATE_LE_BPS`]
    /// (the last is above them all), and their sum.
    pub estimates: [u64; ESTIMATE_BUCKETS],
    pub estimates_sum_bps: u64,
    /// Time between one subscriber's consecutive layer switches of the
    /// same track: per bucket of [`SWITCH_LE_MS`], and their sum.
    pub switch_intervals: [u64; SWITCH_BUCKETS],
    pub switch_intervals_sum_ms: u64,
    /// How long datagrams waited in the kernel before a shard read them:
    /// per bucket of [`LAG_LE_MS`], and their sum.
    pub input_lags: [u64; LAG_BUCKETS],
    pub input_lags_sum_us: u64,
}

/// Upper bounds of the estimate histogram's buckets, bit/s.
pub const ESTIMATE_LE_BPS: [u64; 10] = [
    100_000, 250_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_500_000, 5_000_000, 10_000_000,
    25_000_000,
];
const ESTIMATE_BUCKETS: usize = ESTIMATE_LE_BPS.len() + 1;
/// Upper bounds of the switch-interval histogram's buckets, ms.
pub const SWITCH_LE_MS: [u64; 8] = [500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000];
const SWITCH_BUCKETS: usize = SWITCH_LE_MS.len() + 1;
const LAG_BUCKETS: usize = LAG_LE_MS.len() + 1;

/// The bucket of `v` among upper bounds `le` (`le.len()` when above all).
fn bucket(le: &[u64], v: u64) -> usize {
    le.iter().position(|&b| v <= b).unwrap_or(le.len())
}

impl Counts {
    #[inline]
    pub fn drop(&mut self, why: Drop) {
        self.drop_n(why, 1);
    }

    #[inline]
    pub fn drop_n(&mut self, why: Drop, n: u64) {
        self.dropped[why as usize] += n;
    }

    pub fn observe_estimate(&mut self, bps: u64) {
        self.estimates[bucket(&ESTIMATE_LE_BPS, bps)] += 1;
        self.estimates_sum_bps = self.estimates_sum_bps.saturating_add(bps);
    }

    pub fn observe_input_lag(&mut self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.input_lags[bucket(&LAG_LE_MS, us / 1000)] += 1;
        self.input_lags_sum_us = self.input_lags_sum_us.saturating_add(us);
    }

    pub fn observe_switch_interval(&mut self, d: std::time::Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.switch_intervals[bucket(&SWITCH_LE_MS, ms)] += 1;
        self.switch_intervals_sum_ms = self.switch_intervals_sum_ms.saturating_add(ms);
    }
}

/// Counters before the drop reasons in [`SharedCounts`].
const N_FIELDS: usize = 26;

/// Every value of a [`SharedCounts`]: the counters, the drop reasons, and
/// the two histograms with their sums.
const N_SHARED: usize =
    N_FIELDS + N_DROPS + ESTIMATE_BUCKETS + 1 + SWITCH_BUCKETS + 1 + LAG_BUCKETS + 1;

/// The published copy of a [`Counts`], written only by its owner.
#[derive(Debug)]
pub struct SharedCounts {
    v: [AtomicU64; N_SHARED],
    /// Per-subscriber figures, replaced a few times a second (never per
    /// packet), read by `/api/stats`.
    subscribers: std::sync::Mutex<Vec<signaling::media::SubscriberStats>>,
    /// The shard reads so late that it should take no more participants
    /// (see `core::input_lag::Backlog`); read at every join.
    behind: std::sync::atomic::AtomicBool,
}

// By hand: `Default` for arrays stops at 32 elements.
impl Default for SharedCounts {
    fn default() -> Self {
        SharedCounts {
            v: std::array::from_fn(|_| AtomicU64::new(0)),
            subscribers: Default::default(),
            behind: Default::default(),
        }
    }
}

impl SharedCounts {
    pub fn set_behind(&self, behind: bool) {
        self.behind.store(behind, Relaxed);
    }

    pub fn is_behind(&self) -> bool {
        self.behind.load(Relaxed)
    }

    pub fn publish_subscribers(&self, list: Vec<signaling::media::SubscriberStats>) {
        let old = match self.subscribers.lock() {
            Ok(mut g) => std::mem::replace(&mut *g, list),
            Err(_) => return,
        };
        // Freed after the lock is released.
        drop(old);
    }

    pub fn read_subscribers(&self) -> Vec<signaling::media::SubscriberStats> {
        self.subscribers
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    pub fn publish(&self, c: &Counts) {
        let vals = [
            c.connections,
            c.tracks,
            c.packets_in,
            c.packets_out,
            c.bytes_in,
            c.bytes_out,
            c.packets_forwarded,
            c.nacks_answered,
            c.keyframe_requests_sent,
            c.bytes_forwarded,
            c.disconnects,
            c.layer_drops,
            c.layer_switches,
            c.relays,
            c.relay_packets_out,
            c.relay_bytes_out,
            c.relay_packets_in,
            c.addresses,
            c.routes,
            c.ice_restarts,
            c.handed_off,
            c.connected_sockets,
            c.own_srtp,
            c.own_srtp_in,
            c.own_srtcp_in,
            c.wakeups,
        ];
        let all = vals
            .iter()
            .chain(c.dropped.iter())
            .chain(c.estimates.iter())
            .chain(std::iter::once(&c.estimates_sum_bps))
            .chain(c.switch_intervals.iter())
            .chain(std::iter::once(&c.switch_intervals_sum_ms))
            .chain(c.input_lags.iter())
            .chain(std::iter::once(&c.input_lags_sum_us));
        for (i, v) in all.enumerate() {
            self.v[i].store(*v, Relaxed);
        }
    }

    pub fn read(&self) -> Counts {
        let g = |i: usize| self.v[i].load(Relaxed);
        let mut dropped = [0; N_DROPS];
        for (i, d) in dropped.iter_mut().enumerate() {
            *d = g(N_FIELDS + i);
        }
        let mut at = N_FIELDS + N_DROPS;
        let mut estimates = [0; ESTIMATE_BUCKETS];
        for e in estimates.iter_mut() {
            *e = g(at);
            at += 1;
        }
        let estimates_sum_bps = g(at);
        at += 1;
        let mut switch_intervals = [0; SWITCH_BUCKETS];
        for e in switch_intervals.iter_mut() {
            *e = g(at);
            at += 1;
        }
        let switch_intervals_sum_ms = g(at);
        at += 1;
        let mut input_lags = [0; LAG_BUCKETS];
        for e in input_lags.iter_mut() {
            *e = g(at);
            at += 1;
        }
        let input_lags_sum_us = g(at);
        Counts {
            connections: g(0),
            tracks: g(1),
            packets_in: g(2),
            packets_out: g(3),
            bytes_in: g(4),
            bytes_out: g(5),
            packets_forwarded: g(6),
            nacks_answered: g(7),
            keyframe_requests_sent: g(8),
            bytes_forwarded: g(9),
            disconnects: g(10),
            layer_drops: g(11),
            layer_switches: g(12),
            relays: g(13),
            relay_packets_out: g(14),
            relay_bytes_out: g(15),
            relay_packets_in: g(16),
            addresses: g(17),
            routes: g(18),
            ice_restarts: g(19),
            handed_off: g(20),
            connected_sockets: g(21),
            own_srtp: g(22),
            own_srtp_in: g(23),
            own_srtcp_in: g(24),
            wakeups: g(25),
            dropped,
            estimates,
            estimates_sum_bps,
            switch_intervals,
            switch_intervals_sum_ms,
            input_lags,
            input_lags_sum_us,
        }
    }
}

/// Sums shards into the signaling-facing snapshot.
pub fn sum(parts: impl Iterator<Item = Counts>) -> signaling::media::MediaStats {
    let mut t = Counts::default();
    for c in parts {
        t.connections += c.connections;
        t.tracks += c.tracks;
        t.packets_in += c.packets_in;
        t.packets_out += c.packets_out;
        t.bytes_in += c.bytes_in;
        t.bytes_out += c.bytes_out;
        t.packets_forwarded += c.packets_forwarded;
        t.bytes_forwarded += c.bytes_forwarded;
        t.nacks_answered += c.nacks_answered;
        t.keyframe_requests_sent += c.keyframe_requests_sent;
        t.disconnects += c.disconnects;
        t.layer_drops += c.layer_drops;
        t.layer_switches += c.layer_switches;
        t.relays += c.relays;
        t.relay_packets_out += c.relay_packets_out;
        t.relay_bytes_out += c.relay_bytes_out;
        t.relay_packets_in += c.relay_packets_in;
        t.ice_restarts += c.ice_restarts;
        t.connected_sockets += c.connected_sockets;
        t.handed_off += c.handed_off;
        t.own_srtp += c.own_srtp;
        t.own_srtp_in += c.own_srtp_in;
        t.own_srtcp_in += c.own_srtcp_in;
        t.wakeups += c.wakeups;
        for i in 0..N_DROPS {
            t.dropped[i] += c.dropped[i];
        }
        for (a, b) in t.estimates.iter_mut().zip(c.estimates) {
            *a += b;
        }
        t.estimates_sum_bps = t.estimates_sum_bps.saturating_add(c.estimates_sum_bps);
        for (a, b) in t.switch_intervals.iter_mut().zip(c.switch_intervals) {
            *a += b;
        }
        t.switch_intervals_sum_ms = t
            .switch_intervals_sum_ms
            .saturating_add(c.switch_intervals_sum_ms);
        for (a, b) in t.input_lags.iter_mut().zip(c.input_lags) {
            *a += b;
        }
        t.input_lags_sum_us = t.input_lags_sum_us.saturating_add(c.input_lags_sum_us);
    }
    signaling::media::MediaStats {
        connections: t.connections,
        tracks: t.tracks,
        // `/metrics` reads packets_out and bytes_out as what was forwarded
        // to subscribers (RTP, retransmissions included); datagrams sent
        // in total are not reported.
        packets_in: t.packets_in,
        packets_out: t.packets_forwarded + t.nacks_answered,
        bytes_in: t.bytes_in,
        bytes_out: t.bytes_forwarded,
        nacks_answered: t.nacks_answered,
        keyframe_requests_sent: t.keyframe_requests_sent,
        disconnects: t.disconnects,
        packets_skipped: t.layer_drops,
        layer_switches: t.layer_switches,
        relays: t.relays,
        relay_packets_out: t.relay_packets_out,
        relay_bytes_out: t.relay_bytes_out,
        relay_packets_in: t.relay_packets_in,
        ice_restarts: t.ice_restarts,
        connected_sockets: t.connected_sockets,
        datagrams_handed_off: t.handed_off,
        packets_own_srtp: t.own_srtp,
        packets_own_srtp_in: t.own_srtp_in,
        packets_own_srtcp_in: t.own_srtcp_in,
        shard_wakeups: t.wakeups,
        dropped: DROP_REASONS
            .iter()
            .map(|(d, name)| (name.to_string(), t.dropped[*d as usize]))
            .collect(),
        bwe_estimate_bps: signaling::media::Histogram {
            le: ESTIMATE_LE_BPS.iter().map(|&b| b as f64).collect(),
            counts: t.estimates.to_vec(),
            sum: t.estimates_sum_bps as f64,
        },
        layer_switch_interval_seconds: signaling::media::Histogram {
            le: SWITCH_LE_MS.iter().map(|&b| b as f64 / 1000.0).collect(),
            counts: t.switch_intervals.to_vec(),
            sum: t.switch_intervals_sum_ms as f64 / 1000.0,
        },
        input_lag_seconds: signaling::media::Histogram {
            le: LAG_LE_MS.iter().map(|&b| b as f64 / 1000.0).collect(),
            counts: t.input_lags.to_vec(),
            sum: t.input_lags_sum_us as f64 / 1e6,
        },
        // Set by the plane, which holds each shard's flag.
        shards_behind: 0,
        subscribers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn histograms_survive_publishing_and_add_up_across_shards() {
        let mut a = Counts::default();
        a.observe_estimate(80_000); // first bucket
        a.observe_estimate(100_000); // on a bound: that bucket
        a.observe_estimate(30_000_000); // above every bound
        a.observe_switch_interval(Duration::from_millis(300));
        a.observe_input_lag(Duration::from_micros(400)); // within 1 ms
        a.observe_input_lag(Duration::from_millis(1_200)); // the 5 s bucket
        let mut b = Counts::default();
        b.observe_input_lag(Duration::from_secs(9)); // above every bound
        b.observe_estimate(600_000);
        b.observe_switch_interval(Duration::from_secs(400));
        let shared = SharedCounts::default();
        shared.publish(&a);
        let a = shared.read();
        let m = sum([a, b].into_iter());
        let e = &m.bwe_estimate_bps;
        assert_eq!(e.le.len() + 1, e.counts.len());
        assert_eq!(e.counts[0], 2);
        assert_eq!(e.counts[3], 1, "600 kbit/s is in the 750 kbit/s bucket");
        assert_eq!(*e.counts.last().unwrap(), 1);
        assert_eq!(e.counts.iter().sum::<u64>(), 4);
        assert_eq!(e.sum, 30_780_000.0);
        let s = &m.layer_switch_interval_seconds;
        assert_eq!(s.counts[0], 1);
        assert_eq!(*s.counts.last().unwrap(), 1);
        assert_eq!(s.sum, 400.3);
        assert_eq!(s.le[0], 0.5);
        let l = &m.input_lag_seconds;
        assert_eq!(l.le[0], 0.001);
        assert_eq!(l.counts[0], 1);
        assert_eq!(l.counts[l.le.len() - 1], 1);
        assert_eq!(*l.counts.last().unwrap(), 1);
        assert_eq!(l.sum, 10.2004);
    }
}
