//! Transport-wide sequence numbers and the send history of one leg.
//!
//! Every packet sent on a leg (media, retransmission, padding, probe) gets
//! the next transport-wide sequence number, written into its transport-cc
//! header extension. The history remembers, per number, when the packet
//! left, its size and what it was, for a bounded number of packets and a
//! bounded age; feedback is matched against it to learn each packet's fate.

use std::time::{Duration, Instant};

use super::feedback::{TransportFeedback, DELTA_UNIT_US, REFERENCE_UNIT_US};

/// The largest receive delta the wire format carries (16 bits signed of
/// 250 us).
const MAX_DELTA_US: i64 = 32_768 * DELTA_UNIT_US;

/// A transport-wide sequence number, extended to 64 bits (never wraps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransportSeq(pub u64);

impl TransportSeq {
    /// The 16-bit number written on the wire.
    pub fn wire(self) -> u16 {
        self.0 as u16
    }
}

/// One probe cluster; packets sent while it runs carry its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeClusterId(pub u32);

/// What a sent packet carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    Audio,
    Video,
    Retransmission,
    /// Padding or a probe packet: no media.
    Padding,
}

/// What the history knows of one sent packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentPacket {
    pub seq: TransportSeq,
    pub sent_at: Instant,
    /// Bytes on the wire (RTP header, payload, padding).
    pub size: u32,
    pub kind: PacketKind,
    /// The probe cluster running when it was sent.
    pub probe: Option<ProbeClusterId>,
}

/// A sent packet and what the feedback says of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketResult {
    pub sent: SentPacket,
    /// Arrival on the receiver's clock in microseconds (only differences
    /// mean anything), or `None` when reported not received.
    pub arrival_us: Option<i64>,
}

/// Hands out transport-wide sequence numbers in order.
#[derive(Clone, Debug, Default)]
pub struct SeqAllocator {
    next: u64,
}

impl SeqAllocator {
    /// Starts at `first` (a random start is allowed; numbers only need to be
    /// consecutive).
    pub fn new(first: u16) -> Self {
        SeqAllocator { next: first as u64 }
    }

    pub fn next_seq(&mut self) -> TransportSeq {
        let s = TransportSeq(self.next);
        self.next += 1;
        s
    }
}

/// Counters of feedback that could not be used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryStats {
    pub feedbacks: u64,
    /// Reported numbers never sent, evicted, or older than the age bound.
    pub unknown: u64,
    /// Packets reported again after a report that they arrived.
    pub duplicate: u64,
    /// Reports cut short at a receive delta the wire format cannot carry.
    pub malformed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reported {
    Not,
    Lost,
    Received,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    packet: SentPacket,
    reported: Reported,
}

/// The last `capacity` packets of a leg, by transport-wide number.
#[derive(Debug)]
pub struct SendHistory {
    slots: Vec<Option<Slot>>,
    mask: u64,
    max_age: Duration,
    highest: Option<u64>,
    /// Last reference time seen (raw 24-bit, extended).
    reference: Option<(u32, i64)>,
    stats: HistoryStats,
}

impl SendHistory {
    /// `capacity` is rounded up to a power of two (at least 64); packets
    /// older than `max_age` are forgotten even if their slot is still held.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        let cap = capacity.clamp(64, 1 << 16).next_power_of_two();
        SendHistory {
            slots: vec![None; cap],
            mask: cap as u64 - 1,
            max_age,
            highest: None,
            reference: None,
            stats: HistoryStats::default(),
        }
    }

    pub fn stats(&self) -> HistoryStats {
        self.stats
    }

    /// Remembers a sent packet. Numbers come from one [`SeqAllocator`], so
    /// they only grow.
    pub fn on_sent(&mut self, packet: SentPacket) {
        let s = packet.seq.0;
        self.highest = Some(self.highest.map_or(s, |h| h.max(s)));
        self.slots[(s & self.mask) as usize] = Some(Slot {
            packet,
            reported: Reported::Not,
        });
    }

    pub fn get(&self, seq: TransportSeq) -> Option<&SentPacket> {
        match &self.slots[(seq.0 & self.mask) as usize] {
            Some(slot) if slot.packet.seq == seq => Some(&slot.packet),
            _ => None,
        }
    }

    /// Matches a feedback report against the history and appends one result
    /// per known packet to `out` (in sequence order). Packets already
    /// reported as received are skipped; a packet first reported lost and
    /// later received is reported again as received. Returns how many
    /// results were appended.
    pub fn on_feedback(
        &mut self,
        fb: &TransportFeedback,
        now: Instant,
        out: &mut Vec<PacketResult>,
    ) -> usize {
        self.stats.feedbacks += 1;
        let Some(highest) = self.highest else {
            self.stats.unknown += fb.packets.len() as u64;
            return 0;
        };
        // The base is at or before the highest number sent.
        let back = (highest as u16).wrapping_sub(fb.base_seq) as u64;
        let Some(base) = highest.checked_sub(back) else {
            self.stats.unknown += fb.packets.len() as u64;
            return 0;
        };
        let mut arrival = self
            .unwrap_reference(fb.reference_time)
            .saturating_mul(REFERENCE_UNIT_US);
        let before = out.len();
        for (i, status) in fb.packets.iter().enumerate() {
            if let Some(delta) = status {
                if delta.abs() > MAX_DELTA_US {
                    // Beyond what the wire format can say: a malformed
                    // report; what follows cannot be trusted.
                    self.stats.malformed += 1;
                    break;
                }
                arrival = arrival.saturating_add(*delta);
            }
            let seq = base + i as u64;
            let idx = (seq & self.mask) as usize;
            let slot = match &mut self.slots[idx] {
                Some(slot)
                    if slot.packet.seq.0 == seq
                        && seq <= highest
                        && now.saturating_duration_since(slot.packet.sent_at) <= self.max_age =>
                {
                    slot
                }
                _ => {
                    self.stats.unknown += 1;
                    continue;
                }
            };
            let received = status.is_some();
            match (slot.reported, received) {
                (Reported::Received, _) => {
                    self.stats.duplicate += 1;
                    continue;
                }
                (Reported::Lost, false) => continue,
                _ => {}
            }
            slot.reported = if received {
                Reported::Received
            } else {
                Reported::Lost
            };
            out.push(PacketResult {
                sent: slot.packet,
                arrival_us: received.then_some(arrival),
            });
        }
        out.len() - before
    }

    /// Extends the 24-bit reference time across wraps (the nearest value to
    /// the last one seen).
    fn unwrap_reference(&mut self, raw: u32) -> i64 {
        let raw = raw & 0x00ff_ffff;
        let ext = match self.reference {
            None => raw as i64,
            Some((last_raw, last_ext)) => {
                let mut d = (raw.wrapping_sub(last_raw) & 0x00ff_ffff) as i64;
                if d >= 0x0080_0000 {
                    d -= 0x0100_0000;
                }
                last_ext + d
            }
        };
        self.reference = Some((raw, ext));
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn sent(h: &mut SendHistory, alloc: &mut SeqAllocator, at: Instant, size: u32) -> TransportSeq {
        let seq = alloc.next_seq();
        h.on_sent(SentPacket {
            seq,
            sent_at: at,
            size,
            kind: PacketKind::Video,
            probe: None,
        });
        seq
    }

    #[test]
    fn numbers_are_consecutive_and_wrap_on_the_wire() {
        let mut a = SeqAllocator::new(65_535);
        let s1 = a.next_seq();
        let s2 = a.next_seq();
        assert_eq!((s1.wire(), s2.wire()), (65_535, 0));
        assert_eq!(s2.0, s1.0 + 1);
    }

    #[test]
    fn feedback_across_the_wrap_maps_to_the_right_packets() {
        let t0 = Instant::now();
        let mut h = SendHistory::new(64, Duration::from_secs(5));
        let mut a = SeqAllocator::new(65_534);
        for i in 0..4 {
            sent(&mut h, &mut a, t0 + i * MS, 100 + i);
        }
        // Packets 65534, 65535, 0, 1: the second lost.
        let fb = TransportFeedback::from_arrivals(
            65_534,
            0,
            &[Some(1_000_000), None, Some(1_002_000), Some(1_003_000)],
        );
        let mut out = Vec::new();
        assert_eq!(h.on_feedback(&fb, t0 + 50 * MS, &mut out), 4);
        let sizes: Vec<u32> = out.iter().map(|r| r.sent.size).collect();
        assert_eq!(sizes, vec![100, 101, 102, 103]);
        assert_eq!(out[1].arrival_us, None);
        let a0 = out[0].arrival_us.unwrap();
        assert_eq!(out[2].arrival_us.unwrap() - a0, 2_000);
        assert_eq!(out[3].arrival_us.unwrap() - a0, 3_000);
    }

    #[test]
    fn a_packet_reported_twice_counts_once_and_a_late_arrival_is_reported() {
        let t0 = Instant::now();
        let mut h = SendHistory::new(64, Duration::from_secs(5));
        let mut a = SeqAllocator::new(10);
        for i in 0..3 {
            sent(&mut h, &mut a, t0 + i * MS, 100);
        }
        let mut out = Vec::new();
        let fb1 = TransportFeedback::from_arrivals(10, 0, &[Some(0), None]);
        assert_eq!(h.on_feedback(&fb1, t0, &mut out), 2);
        // Same again, plus packet 11 now arrived and 12.
        let fb2 = TransportFeedback::from_arrivals(10, 1, &[Some(0), Some(4_000), Some(5_000)]);
        out.clear();
        assert_eq!(h.on_feedback(&fb2, t0, &mut out), 2);
        assert_eq!(out[0].sent.seq, TransportSeq(11));
        assert!(out[0].arrival_us.is_some());
        assert_eq!(h.stats().duplicate, 1);
        // A second "lost" report of an already lost packet adds nothing.
        let mut h2 = SendHistory::new(64, Duration::from_secs(5));
        let mut a2 = SeqAllocator::new(0);
        sent(&mut h2, &mut a2, t0, 100);
        let lost = TransportFeedback::from_arrivals(0, 0, &[None]);
        assert_eq!(h2.on_feedback(&lost, t0, &mut out), 1);
        assert_eq!(h2.on_feedback(&lost, t0, &mut out), 0);
    }

    #[test]
    fn unknown_evicted_and_stale_packets_are_counted_not_used() {
        let t0 = Instant::now();
        let mut h = SendHistory::new(64, Duration::from_millis(500));
        let mut out = Vec::new();
        // Nothing sent yet.
        let fb = TransportFeedback::from_arrivals(0, 0, &[Some(0)]);
        assert_eq!(h.on_feedback(&fb, t0, &mut out), 0);
        assert_eq!(h.stats().unknown, 1);

        let mut a = SeqAllocator::new(0);
        for i in 0..100 {
            sent(&mut h, &mut a, t0 + i * MS, 100);
        }
        // 0..36 are evicted by 64..100; 99 is known; 100.. never sent.
        let fb = TransportFeedback::from_arrivals(30, 0, &[Some(0); 8]);
        let n = h.on_feedback(&fb, t0 + 100 * MS, &mut out);
        assert_eq!(n, 2, "36 and 37 are still held");
        let fb = TransportFeedback::from_arrivals(99, 0, &[Some(0), Some(1), Some(2)]);
        assert_eq!(h.on_feedback(&fb, t0 + 100 * MS, &mut out), 1);
        // Too old by the time the report comes.
        let fb = TransportFeedback::from_arrivals(90, 0, &[Some(0)]);
        assert_eq!(h.on_feedback(&fb, t0 + 2000 * MS, &mut out), 0);
        assert_eq!(h.stats().unknown, 1 + 6 + 2 + 1);
    }

    #[test]
    fn the_reference_time_unwraps_across_24_bits() {
        let t0 = Instant::now();
        let mut h = SendHistory::new(64, Duration::from_secs(5));
        let mut a = SeqAllocator::new(0);
        sent(&mut h, &mut a, t0, 100);
        sent(&mut h, &mut a, t0, 100);
        let mut out = Vec::new();
        let mut fb = TransportFeedback::new(0, 0x00ff_ffff, 0);
        fb.push_received(0);
        h.on_feedback(&fb, t0, &mut out);
        let mut fb = TransportFeedback::new(1, 0, 1);
        fb.push_received(0);
        h.on_feedback(&fb, t0, &mut out);
        let d = out[1].arrival_us.unwrap() - out[0].arrival_us.unwrap();
        assert_eq!(
            d, REFERENCE_UNIT_US,
            "one unit later, not 2^24 units earlier"
        );
    }
}
