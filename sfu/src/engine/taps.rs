//! Interceptors of ours in each connection's chain: the tap that lets
//! feedback through to the shard, and the unwrapping of rid-based
//! retransmissions.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet as IPacket, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use crate::core::repair;

/// The part of an interceptor of ours that only passes packets along:
/// queued reads (after `handle_read` looked at them), writes untouched, no
/// timers. The type needs `read` and `write` queues of `TaggedPacket`.
macro_rules! pass_through {
    () => {
        fn poll_read(&mut self) -> Option<TaggedPacket> {
            self.read.pop_front()
        }

        fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
            self.write.push_back(msg);
            Ok(())
        }

        fn poll_write(&mut self) -> Option<TaggedPacket> {
            self.write.pop_front()
        }

        fn handle_timeout(&mut self, _now: Instant) -> Result<(), Error> {
            Ok(())
        }

        fn poll_timeout(&mut self) -> Option<Instant> {
            None
        }
    };
}

/// Lets keyframe requests, NACKs and transport-wide feedback from the remote through to the
/// application. The library's chain ends inbound RTCP before the
/// application unless a packet is marked; receiver reports and
/// transport-wide feedback stay with the interceptors that act on them.
///
/// It also counts RTP that no negotiated track owns. The library binds a
/// stream to the interceptors before the chain sees its first packet, so a
/// packet whose SSRC is unbound here is one the library will drop with
/// only a debug log line.
///
/// And it re-addresses transport-wide feedback. That feedback is about the
/// connection, not a stream, but the library routes inbound RTCP by its
/// first packet's destination SSRC and drops what no track owns. A browser
/// addresses its transport-cc feedback to the SSRC of the last packet it
/// got; after a probe that is an RTX flow or the probe SSRC, which own no
/// track. Dropped, that feedback never told the estimator its probe
/// arrived, and a subscriber with nothing else flowing (a lone paused
/// video) stayed at the estimate's floor for good.
pub(super) struct FeedbackTap {
    read: std::collections::VecDeque<TaggedPacket>,
    write: std::collections::VecDeque<TaggedPacket>,
    bound: HashSet<u32>,
    /// The connection's own media streams (what it sends), lowest first.
    local: BTreeSet<u32>,
    unknown_ssrc: Arc<AtomicU64>,
    passed: Arc<AtomicU64>,
}

impl FeedbackTap {
    pub(super) fn new(unknown_ssrc: Arc<AtomicU64>, passed: Arc<AtomicU64>) -> Self {
        FeedbackTap {
            read: Default::default(),
            write: Default::default(),
            bound: HashSet::new(),
            local: BTreeSet::new(),
            unknown_ssrc,
            passed,
        }
    }

    /// Points transport-wide feedback addressed to an SSRC that is not one
    /// of the connection's media streams at one that is, so the library
    /// hands it on instead of dropping it.
    fn readdress(&self, pkts: &mut [Box<dyn rtc::rtcp::Packet>]) {
        let Some(&to) = self.local.first() else {
            return;
        };
        for p in pkts.iter_mut() {
            let Some(cc) = p.as_any().downcast_ref::<TransportLayerCc>() else {
                continue;
            };
            if !self.local.contains(&cc.media_ssrc) {
                let mut cc = cc.clone();
                cc.media_ssrc = to;
                *p = Box::new(cc);
            }
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        self.passed.fetch_add(1, Ordering::Relaxed);
        let mut deliver = false;
        match &mut msg.message.packet {
            IPacket::Rtcp(pkts) => {
                self.readdress(pkts);
                deliver = pkts.iter().any(|p| {
                    let a = p.as_any();
                    a.is::<PictureLossIndication>()
                        || a.is::<FullIntraRequest>()
                        || a.is::<TransportLayerNack>()
                        // A subscriber's transport-wide feedback: the
                        // shard's estimator of that connection reads it.
                        || a.is::<TransportLayerCc>()
                });
            }
            IPacket::Rtp(p) if !self.bound.contains(&p.header.ssrc) => {
                self.unknown_ssrc.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        if deliver && !msg.message.has(&Attribute::DeliverToApplication) {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    pass_through!();
}

impl Interceptor for FeedbackTap {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.local.insert(info.ssrc);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.local.remove(&info.ssrc);
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.bound.insert(info.ssrc);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.bound.remove(&info.ssrc);
    }
}

/// Turns rid-based simulcast retransmissions (RTX tagged with a
/// repaired-rtp-stream-id, which the library does not bind) back into the
/// packets they repair, closer to the wire than the NACK generator so the
/// repaired sequence number counts as received; see [`repair`].
pub(super) struct RepairUnwrap {
    map: repair::RepairMap,
    bound: HashSet<u32>,
    read: std::collections::VecDeque<TaggedPacket>,
    write: std::collections::VecDeque<TaggedPacket>,
    unusable: Arc<AtomicU64>,
}

impl RepairUnwrap {
    pub(super) fn new(unusable: Arc<AtomicU64>) -> Self {
        RepairUnwrap {
            map: repair::RepairMap::default(),
            bound: HashSet::new(),
            read: Default::default(),
            write: Default::default(),
            unusable,
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RepairUnwrap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let IPacket::Rtp(p) = &mut msg.message.packet {
            if self.bound.contains(&p.header.ssrc) {
                self.map.learn(p);
            } else {
                match self.map.unwrap(p) {
                    repair::Repair::NotRepair | repair::Repair::Unwrapped => {}
                    repair::Repair::Padding | repair::Repair::Unknown => {
                        self.unusable.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                }
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    pass_through!();
}

impl Interceptor for RepairUnwrap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        let id = |uri: &str| {
            info.rtp_header_extensions
                .iter()
                .find(|e| e.uri == uri)
                .and_then(|e| u8::try_from(e.id).ok())
        };
        self.map.set_ids(id(repair::RID_URI), id(repair::RRID_URI));
        self.bound.insert(info.ssrc);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.bound.remove(&info.ssrc);
        self.map.forget(info.ssrc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::shared::TransportContext;

    fn feedback_to(media_ssrc: u32) -> Box<dyn rtc::rtcp::Packet> {
        Box::new(TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc,
            ..Default::default()
        })
    }

    /// Passes `pkts` through a tap whose connection sends `local`, and
    /// returns the destination SSRC of each packet that comes out.
    fn through(local: &[u32], pkts: Vec<Box<dyn rtc::rtcp::Packet>>) -> Vec<Vec<u32>> {
        let mut tap = FeedbackTap::new(Default::default(), Default::default());
        for &ssrc in local {
            tap.bind_local_stream(&StreamInfo {
                ssrc,
                ..Default::default()
            });
        }
        tap.handle_read(TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(IPacket::Rtcp(pkts)),
        })
        .unwrap();
        let out = tap.poll_read().expect("passed on");
        assert!(out.message.has(&Attribute::DeliverToApplication));
        let IPacket::Rtcp(pkts) = out.message.packet else {
            panic!("not RTCP")
        };
        pkts.iter().map(|p| p.destination_ssrc()).collect()
    }

    #[test]
    fn feedback_addressed_to_a_probe_or_rtx_flow_goes_to_a_media_stream() {
        // 77 is an RTX flow (or the probe SSRC): no track owns it.
        assert_eq!(through(&[30, 20], vec![feedback_to(77)]), vec![vec![20]]);
    }

    #[test]
    fn feedback_addressed_to_a_media_stream_is_left_alone() {
        assert_eq!(through(&[30, 20], vec![feedback_to(30)]), vec![vec![30]]);
    }

    #[test]
    fn only_transport_feedback_is_readdressed() {
        let rr: Box<dyn rtc::rtcp::Packet> = Box::new(ReceiverReport {
            ssrc: 1,
            reports: vec![rtc::rtcp::reception_report::ReceptionReport {
                ssrc: 77,
                ..Default::default()
            }],
            ..Default::default()
        });
        let out = through(&[20], vec![rr, feedback_to(77)]);
        assert_eq!(out, vec![vec![77], vec![20]]);
    }

    #[test]
    fn a_connection_that_sends_nothing_keeps_the_address() {
        assert_eq!(through(&[], vec![feedback_to(77)]), vec![vec![77]]);
    }
}
