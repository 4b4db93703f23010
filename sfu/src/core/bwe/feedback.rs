//! Transport-wide congestion control feedback in plain form.
//!
//! The subscriber reports, per transport-wide sequence number, whether each
//! packet arrived and when (draft-holmer-rmcat-transport-wide-cc-extensions-01).
//! The shard parses the RTCP with the media library and fills a
//! [`TransportFeedback`]; nothing here knows the library's types.
//!
//! # Filling it from the library's RTCP
//!
//! The conversion lives in the shard, with this shape:
//!
//! ```text
//! fn to_feedback(tcc: &rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc)
//!     -> TransportFeedback
//! {
//!     let mut fb = TransportFeedback::new(tcc.base_sequence_number,
//!                                         tcc.reference_time, tcc.fb_pkt_count);
//!     let mut deltas = tcc.recv_deltas.iter();
//!     // Expand tcc.packet_chunks into one status symbol per packet, in order,
//!     // stopping after tcc.packet_status_count symbols:
//!     //   RunLengthChunk { packet_status_symbol, run_length }: the symbol run_length times
//!     //   StatusVectorChunk { symbol_list, .. }: each symbol of the list
//!     for symbol in symbols {
//!         match symbol {
//!             PacketNotReceived => fb.push_lost(),
//!             PacketReceivedSmallDelta | PacketReceivedLargeDelta =>
//!                 // RecvDelta::delta is already in microseconds; a missing
//!                 // delta (malformed packet) ends the conversion.
//!                 match deltas.next() { Some(d) => fb.push_received(d.delta), None => break },
//!             PacketReceivedWithoutDelta => fb.push_received(0),
//!         };
//!     }
//!     fb
//! }
//! ```
//!
//! A report longer than [`MAX_REPORTED`] packets is cut there (`push_*`
//! returns `false`); the rest is ignored, never a panic.

/// The most packets one feedback may report; more is ignored.
pub const MAX_REPORTED: usize = 8192;

/// Microseconds of one `reference_time` unit.
pub const REFERENCE_UNIT_US: i64 = 64_000;

/// Microseconds of one receive-delta unit on the wire.
pub const DELTA_UNIT_US: i64 = 250;

/// One transport-cc feedback packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportFeedback {
    /// Transport-wide sequence number of the first packet reported.
    pub base_seq: u16,
    /// The receiver's clock at the first received packet, in 64 ms units
    /// (24 bits on the wire; wraps).
    pub reference_time: u32,
    /// The receiver's feedback packet counter (wraps at 256).
    pub feedback_count: u8,
    /// One entry per packet from `base_seq` on: `None` when not received,
    /// else its receive delta in microseconds from the previous received
    /// packet (the first one's from the reference time). Deltas can be
    /// negative (reordering).
    pub packets: Vec<Option<i64>>,
}

impl TransportFeedback {
    pub fn new(base_seq: u16, reference_time: u32, feedback_count: u8) -> Self {
        TransportFeedback {
            base_seq,
            reference_time: reference_time & 0x00ff_ffff,
            feedback_count,
            packets: Vec::new(),
        }
    }

    /// The next packet arrived `delta_us` after the previous received one.
    /// `false` when the report is full.
    pub fn push_received(&mut self, delta_us: i64) -> bool {
        if self.packets.len() >= MAX_REPORTED {
            return false;
        }
        self.packets.push(Some(delta_us));
        true
    }

    /// The next packet did not arrive. `false` when the report is full.
    pub fn push_lost(&mut self) -> bool {
        if self.packets.len() >= MAX_REPORTED {
            return false;
        }
        self.packets.push(None);
        true
    }

    /// Builds a report the way a receiver does: `arrivals[i]` is the arrival
    /// time (receiver clock, microseconds, non-negative) of packet
    /// `base_seq + i`. The reference time is the first arrival rounded down
    /// to 64 ms and deltas are rounded to 250 us, as on the wire. Used by
    /// tests and the link simulator.
    pub fn from_arrivals(base_seq: u16, feedback_count: u8, arrivals: &[Option<i64>]) -> Self {
        let first = arrivals
            .iter()
            .flatten()
            .next()
            .copied()
            .unwrap_or(0)
            .max(0);
        let reference = first / REFERENCE_UNIT_US;
        let mut fb = TransportFeedback::new(base_seq, reference as u32, feedback_count);
        // Deltas accumulate in wire units so rounding errors do not add up.
        let mut last_units = reference * REFERENCE_UNIT_US / DELTA_UNIT_US;
        for a in arrivals.iter().take(MAX_REPORTED) {
            match a {
                Some(at) => {
                    let units = at.max(&0) / DELTA_UNIT_US;
                    fb.push_received((units - last_units) * DELTA_UNIT_US);
                    last_units = units;
                }
                None => {
                    fb.push_lost();
                }
            }
        }
        fb
    }

    /// How many packets are reported as received.
    pub fn received_count(&self) -> usize {
        self.packets.iter().filter(|p| p.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_arrivals_rounds_like_the_wire_and_keeps_losses() {
        let fb = TransportFeedback::from_arrivals(
            65_534,
            7,
            &[Some(130_100), None, Some(130_400), Some(131_000)],
        );
        assert_eq!(fb.base_seq, 65_534);
        assert_eq!(fb.feedback_count, 7);
        // 130.1 ms rounds down to the 64 ms grid: reference 2 (128 ms).
        assert_eq!(fb.reference_time, 2);
        assert_eq!(
            fb.packets,
            vec![Some(2_000), None, Some(250), Some(750)],
            "deltas in 250 us steps from 128 ms"
        );
        assert_eq!(fb.received_count(), 3);
    }

    #[test]
    fn a_report_is_bounded() {
        let mut fb = TransportFeedback::new(0, 0, 0);
        for _ in 0..MAX_REPORTED {
            assert!(fb.push_lost());
        }
        assert!(!fb.push_lost());
        assert!(!fb.push_received(1));
        assert_eq!(fb.packets.len(), MAX_REPORTED);
    }

    #[test]
    fn reference_time_is_24_bits() {
        assert_eq!(
            TransportFeedback::new(0, 0xff12_3456, 0).reference_time,
            0x12_3456
        );
    }
}
