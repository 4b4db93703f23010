//! The forwarder of one published track to one subscriber: every decision
//! about a packet on its way to that subscriber, returned as a value.
//!
//! It owns what is per (subscriber, track): the payload-type map, the
//! sequence/timestamp rewriter, the PictureID/TL0PICIDX rewriter (VP8,
//! VP9), the layer selector, the header-extension plan and the
//! retransmission cache. [`Forwarder::on_packet`] takes a packet (already
//! parsed once for all subscribers) and `now`, and returns a [`Decision`]:
//! the packet as the subscriber gets it, or why it gets nothing. The shard
//! only carries decisions out.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::codec::{Desc, FrameInfo};
use super::extmap::ExtMap;
use super::layer::{Layer, LayerPacket, Selector, Verdict};
use super::nack_cache::NackCache;
use super::numbering::DropMap;
use super::seq::SeqRewriter;

/// An incoming packet, read once for all its subscribers.
#[derive(Clone, Copy, Debug)]
pub struct InPacket<'a> {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub pt: u8,
    pub marker: bool,
    /// Simulcast stream index (0 for a single stream).
    pub stream: u8,
    /// A repair (older than its stream's newest, or unwrapped from RTX).
    pub retransmission: bool,
    pub info: &'a FrameInfo,
    pub payload: &'a Bytes,
}

/// A packet as one subscriber gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Out {
    pub ssrc: u32,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    /// The payload: the publisher's, shared, unless a PictureID or
    /// TL0PICIDX had to change (then a copy).
    pub payload: Bytes,
    /// The first packet after moving from one stream to another.
    pub layer_switch: bool,
}

/// Why a subscriber gets nothing of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The leg is not negotiated yet.
    NotReady,
    /// The subscriber did not negotiate the packet's codec.
    CodecMismatch,
    /// From a source older than the current one (late, after a switch).
    StaleSource,
    /// Another simulcast stream than the one forwarded.
    OtherStream,
    /// A layer the subscriber does not get now.
    LayerFiltered,
    /// Waiting for a keyframe of this stream: ask the publisher for one.
    WaitingKeyframe(u8),
    /// The subscriber gets nothing of this track now.
    Paused,
}

/// What to do with a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Forward(Out),
    Drop(DropReason),
}

/// PictureID and TL0PICIDX continuity (VP8, VP9).
#[derive(Clone, Debug)]
struct Pictures {
    ids: Option<DropMap>,
    modulus: u32,
    last_id: Option<u32>,
    tl0_offset: u8,
    last_tl0: Option<u8>,
}

impl Pictures {
    fn new() -> Self {
        Pictures {
            ids: None,
            modulus: 0,
            last_id: None,
            tl0_offset: 0,
            last_tl0: None,
        }
    }

    /// Re-bases at a switch so the first picture of the new stream follows
    /// the last one sent.
    fn rebase(&mut self, modulus: u32, id: Option<u32>, tl0: Option<u8>) {
        if let Some(id) = id {
            let offset = match self.last_id {
                Some(last) if modulus == self.modulus => last.wrapping_add(1).wrapping_sub(id),
                _ => 0,
            };
            self.modulus = modulus;
            self.ids = Some(DropMap::new(modulus, offset));
        }
        if let (Some(tl0), Some(last)) = (tl0, self.last_tl0) {
            self.tl0_offset = last.wrapping_add(1).wrapping_sub(tl0);
        }
    }

    fn drop_picture(&mut self, id: u32) {
        if let Some(m) = self.ids.as_mut() {
            m.drop_input(id);
        }
    }

    /// The output PictureID and TL0PICIDX.
    fn map(&mut self, modulus: u32, id: Option<u32>, tl0: Option<u8>) -> (Option<u32>, Option<u8>) {
        if self.ids.is_none() || self.modulus != modulus {
            self.rebase(modulus, id, None);
        }
        let out_id = match (id, self.ids.as_ref()) {
            (Some(i), Some(m)) => m.map(i),
            _ => None,
        };
        if let Some(o) = out_id {
            let newer = self
                .last_id
                .is_none_or(|l| self.ids.as_ref().is_some_and(|m| m.newer(o, l)));
            if newer {
                self.last_id = Some(o);
            }
        }
        let out_tl0 = tl0.map(|t| t.wrapping_add(self.tl0_offset));
        if let Some(t) = out_tl0 {
            let newer = self.last_tl0.is_none_or(|l| t.wrapping_sub(l) < 128);
            if newer {
                self.last_tl0 = Some(t);
            }
        }
        (out_id, out_tl0)
    }
}

/// Payload type translation: publisher's to subscriber's.
#[derive(Clone, Debug)]
pub struct PtMap {
    map: [u8; 128],
}

impl PtMap {
    const NONE: u8 = 0xff;

    pub fn new(pairs: &[(u8, u8)]) -> Self {
        let mut map = [Self::NONE; 128];
        for (from, to) in pairs {
            if let Some(slot) = map.get_mut(*from as usize) {
                *slot = *to;
            }
        }
        PtMap { map }
    }

    #[inline]
    pub fn get(&self, pt: u8) -> Option<u8> {
        self.map
            .get(pt as usize)
            .copied()
            .filter(|p| *p != Self::NONE)
    }

    pub fn is_empty(&self) -> bool {
        self.map.iter().all(|p| *p == Self::NONE)
    }
}

/// One (subscriber, track) forwarder.
pub struct Forwarder {
    /// The SSRC the subscriber sees.
    pub ssrc: u32,
    pts: PtMap,
    seq: SeqRewriter,
    pictures: Pictures,
    selector: Selector,
    /// Header-extension translation for this leg.
    pub ext: ExtMap,
    /// Sent packets by output sequence number (video).
    cache: Option<NackCache<Out>>,
    /// The newest sequence number sent (into the cache).
    latest: Option<u16>,
    ready: bool,
}

impl Forwarder {
    /// `clock_rate`: of the track's codec; `cache_packets`: 0 for no
    /// retransmission cache (audio).
    pub fn new(ssrc: u32, clock_rate: u32, selector: Selector, cache_packets: u16) -> Self {
        Forwarder {
            ssrc,
            pts: PtMap::new(&[]),
            seq: SeqRewriter::new(clock_rate),
            pictures: Pictures::new(),
            selector,
            ext: ExtMap::new(&[], &[], None),
            cache: (cache_packets > 0).then(|| NackCache::new(cache_packets)),
            latest: None,
            ready: false,
        }
    }

    /// The leg is negotiated: these are its payload types and extensions.
    /// Returns whether it just became ready.
    pub fn negotiated(&mut self, pts: PtMap, ext: ExtMap) -> bool {
        let became = !self.ready && !pts.is_empty();
        self.ready = !pts.is_empty();
        self.pts = pts;
        self.ext = ext;
        became
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Sets the layer to forward (`None`: nothing). Returns the stream a
    /// keyframe is needed from, if the change needs one.
    pub fn set_target(&mut self, target: Option<Layer>) -> Option<u8> {
        self.selector.set_target(target)
    }

    pub fn target(&self) -> Option<Layer> {
        self.selector.target()
    }

    pub fn current(&self) -> Option<Layer> {
        self.selector.current()
    }

    /// Decides what the subscriber gets of `p`.
    pub fn on_packet(&mut self, p: &InPacket, now: Instant) -> Decision {
        if !self.ready {
            return Decision::Drop(DropReason::NotReady);
        }
        let Some(pt) = self.pts.get(p.pt) else {
            return Decision::Drop(DropReason::CodecMismatch);
        };
        let before = self.selector.current();
        let verdict = self.selector.on_packet(&LayerPacket {
            stream: p.stream,
            info: p.info,
            marker: p.marker,
            retransmission: p.retransmission,
        });
        let (switched, marker) = match verdict {
            Verdict::Forward { switched, marker } => (switched, marker),
            other => {
                // A packet of the stream being forwarded that is left out
                // must leave no gap in what the subscriber sees.
                if self.seq.current_ssrc() == Some(p.ssrc) {
                    self.seq.drop_packet(p.ssrc, p.seq);
                    if p.info.picture_start {
                        if let Some(id) = picture_id(p.info) {
                            self.pictures.drop_picture(id as u32);
                        }
                    }
                }
                return Decision::Drop(match other {
                    Verdict::OtherStream => DropReason::OtherStream,
                    Verdict::Filtered => DropReason::LayerFiltered,
                    Verdict::WaitingKeyframe(s) => DropReason::WaitingKeyframe(s),
                    _ => DropReason::Paused,
                });
            }
        };
        let Some(r) = self.seq.rewrite(p.ssrc, p.seq, p.ts, now) else {
            return Decision::Drop(DropReason::StaleSource);
        };
        let payload = self.rewrite_payload(p, switched);
        let out = Out {
            ssrc: self.ssrc,
            pt,
            seq: r.seq,
            ts: r.ts,
            marker,
            payload,
            layer_switch: switched && before.is_some_and(|b| Some(b) != self.selector.current()),
        };
        if let Some(c) = self.cache.as_mut() {
            c.insert(out.seq, out.clone());
            if self
                .latest
                .is_none_or(|l| super::seq::seq_newer(out.seq, l))
            {
                self.latest = Some(out.seq);
            }
        }
        Decision::Forward(out)
    }

    /// The newest packet sent, while the cache holds it (none for audio).
    pub fn latest(&self) -> Option<&Out> {
        self.cache.as_ref()?.get(self.latest?)
    }

    /// How far a packet sent earlier is behind the newest the leg sent, in
    /// media time: how old a NACK's answer would be.
    pub fn behind_newest(&self, o: &Out) -> Duration {
        self.seq.behind_newest(o.ts)
    }

    /// A packet sent earlier, to answer a NACK.
    pub fn retransmit(&self, seq: u16) -> Option<&Out> {
        self.cache.as_ref()?.get(seq)
    }

    /// Rewrites PictureID/TL0PICIDX where they must change; otherwise the
    /// publisher's payload is shared.
    fn rewrite_payload(&mut self, p: &InPacket, switched: bool) -> Bytes {
        let (id, tl0, modulus) = match &p.info.desc {
            Desc::Vp8(d) => (
                d.picture_id.map(|(i, _)| i as u32),
                d.tl0picidx,
                d.picture_id_modulus() as u32,
            ),
            Desc::Vp9(d) => (
                d.picture_id.map(|(i, _)| i as u32),
                None,
                d.picture_id_modulus() as u32,
            ),
            Desc::None => return p.payload.clone(),
        };
        if switched {
            self.pictures.rebase(modulus, id, tl0);
        }
        let (out_id, out_tl0) = self.pictures.map(modulus, id, tl0);
        if out_id == id && out_tl0 == tl0 {
            return p.payload.clone();
        }
        let mut buf = BytesMut::from(&p.payload[..]);
        match &p.info.desc {
            Desc::Vp8(d) => d.rewrite(
                &mut buf,
                out_id.unwrap_or_default() as u16,
                out_tl0.unwrap_or_default(),
            ),
            Desc::Vp9(d) => d.rewrite_picture_id(&mut buf, out_id.unwrap_or_default() as u16),
            Desc::None => {}
        }
        buf.freeze()
    }
}

fn picture_id(info: &FrameInfo) -> Option<u16> {
    match &info.desc {
        Desc::Vp8(d) => d.picture_id.map(|(i, _)| i),
        Desc::Vp9(d) => d.picture_id.map(|(i, _)| i),
        Desc::None => None,
    }
}

#[cfg(test)]
mod tests;
