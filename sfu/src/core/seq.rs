//! Sequence number and timestamp rewriting for one downstream leg.
//!
//! A subscriber sees one continuous RTP stream per forwarded track even when
//! the source behind it changes: the publisher re-publishes (new SSRC), or
//! restarts its encoder (sequence numbers jump). At a change the rewriter
//! re-bases both so the next packet follows the last one sent, with the
//! timestamp advanced by the wall-clock gap (from the caller's `now`, read
//! once per batch, not per packet).

use std::time::{Duration, Instant};

use super::numbering::DropMap;

/// A jump of more than this many sequence numbers within one SSRC is taken
/// as a restart of the source rather than loss or reordering.
const MAX_SEQ_JUMP: u16 = 3000;

/// Output numbering for one forwarded stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub seq: u16,
    pub ts: u32,
}

#[derive(Clone, Debug)]
struct Source {
    ssrc: u32,
    /// First input sequence number of this source: anything older predates
    /// the switch and is dropped.
    first_seq: u16,
    highest_seq: u16,
    /// Whether packets older than `first_seq` are still told apart: only
    /// near the switch, since far from it "older" wraps into "newer".
    guard: bool,
    /// Input to output sequence numbers, without the packets dropped on
    /// purpose.
    seq: DropMap,
    ts_offset: u32,
}

/// Rewrites one leg's sequence numbers and timestamps.
#[derive(Clone, Debug)]
pub struct SeqRewriter {
    clock_rate: u32,
    source: Option<Source>,
    last_seq: u16,
    last_ts: u32,
    last_at: Option<Instant>,
}

/// `a` is newer than `b` in sequence-number space.
pub fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// An RTP timestamp difference (newer minus older) at `clock_rate` as
/// time; a difference that went backwards (a stream that restarted its
/// clock) is none.
pub fn media_time(ticks: u32, clock_rate: u32) -> Duration {
    match i32::try_from(ticks) {
        Ok(t) if t > 0 => {
            Duration::from_micros(t as u64 * 1_000_000 / u64::from(clock_rate.max(1)))
        }
        _ => Duration::ZERO,
    }
}

impl SeqRewriter {
    pub fn new(clock_rate: u32) -> Self {
        SeqRewriter {
            clock_rate: clock_rate.max(1),
            source: None,
            last_seq: 0,
            last_ts: 0,
            last_at: None,
        }
    }

    /// How far output timestamp `ts` is behind the newest one written, in
    /// media time.
    pub fn behind_newest(&self, ts: u32) -> Duration {
        media_time(self.last_ts.wrapping_sub(ts), self.clock_rate)
    }

    /// The output numbers for an input packet, or `None` to drop it (it
    /// belongs to a source before the current one).
    pub fn rewrite(&mut self, ssrc: u32, seq: u16, ts: u32, now: Instant) -> Option<Rewritten> {
        let switch = match &self.source {
            None => true,
            Some(s) if s.ssrc != ssrc => true,
            Some(s) => {
                let ahead = seq.wrapping_sub(s.highest_seq);
                let behind = s.highest_seq.wrapping_sub(seq);
                ahead > MAX_SEQ_JUMP && behind > MAX_SEQ_JUMP
            }
        };
        if switch {
            self.switch_to(ssrc, seq, ts, now);
        }
        let src = self.source.as_mut()?;
        // Older than the first packet of this source: from before the switch.
        if src.guard && seq != src.first_seq && seq_newer(src.first_seq, seq) {
            return None;
        }
        if seq_newer(seq, src.highest_seq) {
            src.highest_seq = seq;
            if seq.wrapping_sub(src.first_seq) > 0x4000 {
                src.guard = false;
            }
        }
        let out = Rewritten {
            seq: src.seq.map(seq as u32)? as u16,
            ts: ts.wrapping_add(src.ts_offset),
        };
        if self.last_at.is_none() || seq_newer(out.seq, self.last_seq) {
            self.last_seq = out.seq;
            self.last_ts = out.ts;
            self.last_at = Some(now);
        }
        Some(out)
    }

    /// Leaves a packet of the current source out on purpose (a layer the
    /// subscriber does not get): later packets close the gap, so the
    /// subscriber sees no loss. A repair of it later is dropped too.
    pub fn drop_packet(&mut self, ssrc: u32, seq: u16) {
        if let Some(src) = self.source.as_mut().filter(|s| s.ssrc == ssrc) {
            if seq_newer(seq, src.highest_seq) {
                src.highest_seq = seq;
            }
            src.seq.drop_input(seq as u32);
        }
    }

    /// The source whose packets are forwarded now.
    pub fn current_ssrc(&self) -> Option<u32> {
        self.source.as_ref().map(|s| s.ssrc)
    }

    fn switch_to(&mut self, ssrc: u32, seq: u16, ts: u32, now: Instant) {
        let (seq_offset, ts_offset) = match self.last_at {
            // The first source keeps its own numbering.
            None => (0, 0),
            Some(at) => {
                let gap = now.saturating_duration_since(at);
                let ticks = (gap.as_secs_f64() * self.clock_rate as f64) as u64;
                let ticks = ticks.clamp(1, u32::MAX as u64 / 2) as u32;
                let next_seq = self.last_seq.wrapping_add(1);
                let next_ts = self.last_ts.wrapping_add(ticks);
                (next_seq.wrapping_sub(seq), next_ts.wrapping_sub(ts))
            }
        };
        self.source = Some(Source {
            ssrc,
            first_seq: seq,
            highest_seq: seq,
            guard: true,
            seq: DropMap::new(1 << 16, seq_offset as u32),
            ts_offset,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_time_of_a_timestamp_difference() {
        assert_eq!(media_time(90_000, 90_000), Duration::from_secs(1));
        assert_eq!(media_time(960, 48_000), Duration::from_millis(20));
        // Backwards (the older one is newer), or a restarted clock.
        assert_eq!(media_time(0u32.wrapping_sub(3000), 90_000), Duration::ZERO);
        assert_eq!(media_time(0, 90_000), Duration::ZERO);
        assert_eq!(
            media_time(10, 0),
            Duration::from_secs(10),
            "a zero rate is taken as 1"
        );
    }
    use std::time::Duration;

    #[test]
    fn first_source_keeps_its_numbers() {
        let t0 = Instant::now();
        let mut r = SeqRewriter::new(90_000);
        assert_eq!(
            r.rewrite(1, 100, 5000, t0),
            Some(Rewritten { seq: 100, ts: 5000 })
        );
        assert_eq!(
            r.rewrite(1, 101, 8000, t0),
            Some(Rewritten { seq: 101, ts: 8000 })
        );
    }

    #[test]
    fn a_new_ssrc_continues_the_sequence_and_timestamps() {
        let t0 = Instant::now();
        let mut r = SeqRewriter::new(90_000);
        for i in 0..10u16 {
            r.rewrite(1, 65530u16.wrapping_add(i), 1000 + i as u32 * 3000, t0);
        }
        // Last out: seq 3 (wrapped), ts 28000. The new source starts 100 ms later.
        let t1 = t0 + Duration::from_millis(100);
        let out = r.rewrite(2, 7, 999_999, t1).unwrap();
        assert_eq!(out.seq, 4);
        assert_eq!(out.ts, 28_000 + 9_000);
        let next = r.rewrite(2, 8, 999_999 + 3000, t1).unwrap();
        assert_eq!(next, Rewritten { seq: 5, ts: 40_000 });
    }

    #[test]
    fn a_restart_with_a_sequence_jump_is_a_new_source() {
        let t0 = Instant::now();
        let mut r = SeqRewriter::new(48_000);
        r.rewrite(1, 10, 100, t0);
        r.rewrite(1, 11, 1060, t0);
        let out = r
            .rewrite(1, 40_000, 7, t0 + Duration::from_millis(20))
            .unwrap();
        assert_eq!(
            out,
            Rewritten {
                seq: 12,
                ts: 1060 + 960
            }
        );
    }

    #[test]
    fn reordering_and_loss_keep_their_gaps() {
        let t0 = Instant::now();
        let mut r = SeqRewriter::new(90_000);
        r.rewrite(1, 10, 0, t0);
        r.rewrite(2, 500, 0, t0); // switch: 500 -> 11
        assert_eq!(r.rewrite(2, 503, 0, t0).map(|o| o.seq), Some(14));
        assert_eq!(r.rewrite(2, 502, 0, t0).map(|o| o.seq), Some(13));
        // Older than the switch point: dropped.
        assert_eq!(r.rewrite(2, 499, 0, t0), None);
    }

    #[test]
    fn a_long_run_wraps_around_without_drops_or_switches() {
        let t0 = Instant::now();
        let mut r = SeqRewriter::new(90_000);
        let mut seq = 3u16;
        for i in 0..140_000u32 {
            let out = r.rewrite(1, seq, i * 3000, t0).expect("never dropped");
            assert_eq!(out.seq, seq, "numbers kept at {i}");
            seq = seq.wrapping_add(1);
        }
    }

    #[test]
    fn dropped_packets_leave_no_gap_and_stay_dropped() {
        let t0 = Instant::now();
        let mut r = SeqRewriter::new(90_000);
        assert_eq!(r.rewrite(1, 10, 0, t0).map(|o| o.seq), Some(10));
        r.drop_packet(1, 11);
        r.drop_packet(1, 12);
        assert_eq!(r.rewrite(1, 13, 3000, t0).map(|o| o.seq), Some(11));
        assert_eq!(r.rewrite(1, 12, 0, t0), None, "a repaired dropped packet");
        // Another source's drop does not count.
        r.drop_packet(2, 14);
        assert_eq!(r.rewrite(1, 14, 6000, t0).map(|o| o.seq), Some(12));
        // A switch continues from the last sent number.
        let out = r
            .rewrite(3, 500, 0, t0 + std::time::Duration::from_millis(33))
            .unwrap();
        assert_eq!(out.seq, 13);
    }

    #[test]
    fn switching_back_to_an_old_ssrc_is_a_switch_too() {
        let t0 = Instant::now();
        let mut r = SeqRewriter::new(90_000);
        r.rewrite(1, 10, 0, t0);
        r.rewrite(2, 90, 0, t0);
        let out = r.rewrite(1, 11, 0, t0).unwrap();
        assert_eq!(out.seq, 12);
    }
}
