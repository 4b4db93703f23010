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
//!
//! The shard reads the RTP of the streams it forwards itself
//! (`core::srtp_in`) and hands it to the same interceptors through
//! [`Reads`], the other handle on the link: one transport-wide recorder,
//! NACK generator and receiver report per connection, whichever way a
//! packet came in, and their feedback leaves through the library as
//! before.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use crate::core::ids::IdSet;

/// Interceptors that only read, behind one link: see the module docs.
/// Each must pass writes through untouched.
pub(super) struct ReadSide {
    shared: Arc<Mutex<Link>>,
}

/// The shard's handle on a connection's read-side interceptors: what it
/// decrypted itself goes through them here (see the module docs).
#[derive(Clone)]
pub struct Reads {
    shared: Arc<Mutex<Link>>,
}

struct Link {
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
    /// The remote streams the library bound (it binds a stream before its
    /// first packet reaches the chain).
    bound: IdSet<u32>,
}

fn lock(shared: &Mutex<Link>) -> MutexGuard<'_, Link> {
    // Nothing is left half-done across a panic that matters here: the
    // queues hold whole packets.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReadSide {
    /// `inner` wire-ward first; the handle is the shard's.
    pub(super) fn new(inner: Vec<Box<dyn Interceptor>>) -> (Self, Reads) {
        let shared = Arc::new(Mutex::new(Link {
            inner,
            belt: VecDeque::new(),
            read: VecDeque::new(),
            write: VecDeque::new(),
            quiet: false,
            bound: IdSet::default(),
        }));
        (
            ReadSide {
                shared: shared.clone(),
            },
            Reads { shared },
        )
    }
}

impl Reads {
    /// Whether the library has bound remote stream `ssrc` to the
    /// interceptors (it has then read the stream's first packets).
    pub fn is_bound(&self, ssrc: u32) -> bool {
        lock(&self.shared).bound.contains(&ssrc)
    }

    /// Walks one decrypted packet (RTP, or an RTCP compound) through the
    /// interceptors, and puts what comes out in `out`: the packet, or an
    /// unwrapped repair, or nothing. Returns the interceptors' earliest
    /// timer after it (the feedback they will send).
    pub fn read(&self, msg: TaggedPacket, out: &mut Vec<Packet>) -> Option<Instant> {
        let mut link = lock(&self.shared);
        link.walk(msg);
        out.extend(link.belt.drain(..).map(|p| p.message.packet));
        link.next_timeout()
    }
}

impl Link {
    fn next_timeout(&mut self) -> Option<Instant> {
        self.inner.iter_mut().filter_map(|i| i.poll_timeout()).min()
    }

    /// Through each inner interceptor in turn: what one lets out (the
    /// packet, or nothing yet, or more) is what the next one takes. What
    /// the last lets out is left on the belt.
    fn walk(&mut self, msg: TaggedPacket) {
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
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for ReadSide {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        let mut link = lock(&self.shared);
        link.walk(msg);
        let Link { belt, read, .. } = &mut *link;
        read.append(belt);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        lock(&self.shared).read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        lock(&self.shared).write.push_back(msg);
        Ok(())
    }

    /// Written packets first, then what the inner interceptors generated
    /// (feedback, which the others would pass untouched).
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        let mut link = lock(&self.shared);
        if let Some(p) = link.write.pop_front() {
            return Some(p);
        }
        if link.quiet {
            return None;
        }
        let p = link.inner.iter_mut().find_map(|i| i.poll_write());
        link.quiet = p.is_none();
        p
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        let mut link = lock(&self.shared);
        link.quiet = false;
        for i in link.inner.iter_mut() {
            i.handle_timeout(now)?;
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        lock(&self.shared).next_timeout()
    }

    fn close(&mut self) -> Result<(), Error> {
        let mut link = lock(&self.shared);
        link.quiet = false;
        for i in link.inner.iter_mut() {
            i.close()?;
        }
        Ok(())
    }
}

impl Interceptor for ReadSide {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        let mut link = lock(&self.shared);
        link.quiet = false;
        for i in link.inner.iter_mut() {
            i.bind_local_stream(info);
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        let mut link = lock(&self.shared);
        link.quiet = false;
        for i in link.inner.iter_mut() {
            i.unbind_local_stream(info);
        }
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        let mut link = lock(&self.shared);
        link.quiet = false;
        link.bound.insert(info.ssrc);
        for i in link.inner.iter_mut() {
            i.bind_remote_stream(info);
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        let mut link = lock(&self.shared);
        link.quiet = false;
        link.bound.remove(&info.ssrc);
        for i in link.inner.iter_mut() {
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

    /// The sequence numbers NACKed in what the link writes now.
    fn nacks_written(r: &mut ReadSide) -> Vec<u16> {
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
        nacked
    }

    fn nack_generator() -> ReadSide {
        nack_generator_and_reads().0
    }

    fn nack_generator_and_reads() -> (ReadSide, Reads) {
        let (mut r, reads) = ReadSide::new(vec![Box::new(NackGeneratorBuilder::new().build())]);
        let info = StreamInfo {
            ssrc: 7,
            rtcp_feedback: vec![rtc::interceptor::RTCPFeedback {
                typ: "nack".into(),
                parameter: String::new(),
            }],
            ..Default::default()
        };
        r.bind_remote_stream(&info);
        (r, reads)
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
        let nacked = nacks_written(&mut r);
        assert_eq!(nacked, vec![3, 4]);
    }

    /// What the shard reads itself goes through the same interceptors:
    /// the generator sees its gap, and the NACK leaves through the link.
    #[test]
    fn the_shard_s_own_reads_reach_the_same_interceptors() {
        let t0 = Instant::now();
        let (mut r, reads) = nack_generator_and_reads();
        assert!(reads.is_bound(7) && !reads.is_bound(8));
        let mut out = Vec::new();
        for seq in [1u16, 2] {
            let _ = reads.read(rtp(7, seq, t0), &mut out);
        }
        // One through the library's side of the link, one through ours.
        r.handle_read(rtp(7, 4, t0)).unwrap();
        assert!(r.poll_read().is_some());
        let _ = reads.read(rtp(7, 6, t0), &mut out);
        let seqs: Vec<u16> = out
            .iter()
            .filter_map(|p| match p {
                Packet::Rtp(p) => Some(p.header.sequence_number),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 6], "the shard's reads come back to it");
        assert!(r.poll_read().is_none(), "and not out of the link");
        let due = r.poll_timeout().expect("the generator has a timer");
        r.handle_timeout(due).unwrap();
        let nacked = nacks_written(&mut r);
        assert_eq!(nacked, vec![3, 5]);
    }
}
