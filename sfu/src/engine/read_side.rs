//! The read-side interceptors of a connection, as one link of its chain.
//!
//! The library walks every packet a connection writes through every
//! interceptor of its chain, and each one moves the packet into a queue of
//! its own and out again. Most of a server connection's interceptors only
//! read: transport-wide-cc arrivals, NACK generation and receiver reports
//! (towards publishers), and ours, the repair unwrapping and the feedback
//! tap. Forwarded media passes them untouched, at the cost of a move in and
//! out of each queue per packet, which made `memmove` the largest single
//! symbol of a busy server's profile.
//!
//! [`ReadSide`] holds those interceptors as one link. Reads walk them in
//! order, as they would the connection's chain; writes go straight past
//! them; what they generate (NACKs, receiver reports, transport-wide
//! feedback) leaves through it. A forwarded packet crosses two links
//! (sender reports, then this) instead of six.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Interceptors that only read, behind one link: see the module docs.
/// Each must pass writes through untouched.
pub(super) struct ReadSide {
    /// Wire-ward first: reads walk them in this order.
    inner: Vec<Box<dyn Interceptor>>,
    /// Packets on their way through `inner` (kept to reuse its room).
    belt: VecDeque<TaggedPacket>,
    /// Read packets that came out of the last one.
    read: VecDeque<TaggedPacket>,
    /// Written packets, passed on as they came.
    write: VecDeque<TaggedPacket>,
    /// No inner interceptor has anything to write: none was handed
    /// anything since they were last polled empty. The library polls for
    /// writes at every flush of the connection (for each forwarded packet
    /// when it wrote them); the inner ones only make feedback on a read or
    /// a timeout.
    quiet: bool,
}

impl ReadSide {
    /// `inner` wire-ward first.
    pub(super) fn new(inner: Vec<Box<dyn Interceptor>>) -> Self {
        ReadSide {
            inner,
            belt: VecDeque::new(),
            read: VecDeque::new(),
            write: VecDeque::new(),
            quiet: false,
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for ReadSide {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    /// Through each inner interceptor in turn: what one lets out (the
    /// packet, or nothing yet, or more) is what the next one takes.
    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.quiet = false;
        self.belt.push_back(msg);
        for i in self.inner.iter_mut() {
            while let Some(p) = self.belt.pop_front() {
                if let Err(e) = i.handle_read(p) {
                    tracing::debug!("read-side interceptor: {e}");
                }
            }
            while let Some(p) = i.poll_read() {
                self.belt.push_back(p);
            }
        }
        self.read.append(&mut self.belt);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.write.push_back(msg);
        Ok(())
    }

    /// Written packets first, then what the inner interceptors generated
    /// (feedback, which the others would pass untouched).
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        if let Some(p) = self.write.pop_front() {
            return Some(p);
        }
        if self.quiet {
            return None;
        }
        let p = self.inner.iter_mut().find_map(|i| i.poll_write());
        self.quiet = p.is_none();
        p
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.quiet = false;
        for i in self.inner.iter_mut() {
            i.handle_timeout(now)?;
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.inner.iter_mut().filter_map(|i| i.poll_timeout()).min()
    }

    fn close(&mut self) -> Result<(), Error> {
        self.quiet = false;
        for i in self.inner.iter_mut() {
            i.close()?;
        }
        Ok(())
    }
}

impl Interceptor for ReadSide {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.quiet = false;
        for i in self.inner.iter_mut() {
            i.bind_local_stream(info);
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.quiet = false;
        for i in self.inner.iter_mut() {
            i.unbind_local_stream(info);
        }
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.quiet = false;
        for i in self.inner.iter_mut() {
            i.bind_remote_stream(info);
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.quiet = false;
        for i in self.inner.iter_mut() {
            i.unbind_remote_stream(info);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, NackGeneratorBuilder, Packet};
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
    use rtc::shared::TransportContext;

    fn rtp(ssrc: u32, seq: u16, now: Instant) -> TaggedPacket {
        let mut p = rtc::rtp::packet::Packet::default();
        p.header.version = 2;
        p.header.ssrc = ssrc;
        p.header.sequence_number = seq;
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(p)),
        }
    }

    fn nack_generator() -> ReadSide {
        let mut r = ReadSide::new(vec![Box::new(NackGeneratorBuilder::new().build())]);
        let info = StreamInfo {
            ssrc: 7,
            rtcp_feedback: vec![rtc::interceptor::RTCPFeedback {
                typ: "nack".into(),
                parameter: String::new(),
            }],
            ..Default::default()
        };
        r.bind_remote_stream(&info);
        r
    }

    /// Reads go through the inner interceptors (a gap the NACK generator
    /// sees), writes go past them, and what they generate leaves as a
    /// write.
    #[test]
    fn reads_reach_the_inner_interceptors_writes_pass_and_their_feedback_leaves() {
        let t0 = Instant::now();
        let mut r = nack_generator();
        for seq in [1u16, 2, 5] {
            r.handle_read(rtp(7, seq, t0)).unwrap();
        }
        let mut read = Vec::new();
        while let Some(p) = r.poll_read() {
            read.push(p);
        }
        assert_eq!(read.len(), 3, "every read comes out");
        // A written packet to another SSRC passes as it was, first.
        r.handle_write(rtp(9, 100, t0)).unwrap();
        let Some(w) = r.poll_write() else {
            panic!("the write passes")
        };
        assert!(
            matches!(&w.message.packet, Packet::Rtp(p) if p.header.ssrc == 9 && p.header.sequence_number == 100)
        );
        // Nothing more to write until the generator's timer: polled empty,
        // the link stays quiet until something reaches the inner ones.
        assert!(r.poll_write().is_none());
        assert!(r.poll_write().is_none());
        // The generator's timer: the missing 3 and 4 are NACKed.
        let due = r.poll_timeout().expect("the generator has a timer");
        r.handle_timeout(due).unwrap();
        let mut nacked = Vec::new();
        while let Some(p) = r.poll_write() {
            if let Packet::Rtcp(pkts) = &p.message.packet {
                for n in pkts
                    .iter()
                    .filter_map(|x| x.as_any().downcast_ref::<TransportLayerNack>())
                {
                    nacked.extend(n.nacks.iter().flat_map(|p| p.packet_list()));
                }
            }
        }
        assert_eq!(nacked, vec![3, 4]);
    }
}
