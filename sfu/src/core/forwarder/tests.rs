//! The forwarder end to end on packets a simulcast (or SVC) publisher
//! would send: what one subscriber gets must be one continuous stream.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::core::codec::vp8::tests::vp8_payload;
use crate::core::codec::vp9::tests::vp9_payload;
use crate::core::codec::{frame_info, CodecKind};
use crate::core::layer::{Simulcast, Svc};

/// One simulcast stream of a VP8 publisher with three temporal layers.
struct Stream {
    ssrc: u32,
    seq: u16,
    ts: u32,
    pid: u16,
    tl0: u8,
    frame: u32,
}

impl Stream {
    fn new(ssrc: u32, seq: u16, ts: u32, pid: u16, tl0: u8) -> Stream {
        Stream {
            ssrc,
            seq,
            ts,
            pid,
            tl0,
            frame: 0,
        }
    }

    /// The packets of the next frame (`key`: a keyframe), two per frame.
    /// Temporal pattern 0 2 1 2; the first 1 and 2 after a 0 are sync.
    fn frame(&mut self, key: bool) -> Vec<(u32, u16, u32, Bytes)> {
        let tid = [0u8, 2, 1, 2][(self.frame % 4) as usize];
        let tid = if key { 0 } else { tid };
        if tid == 0 {
            self.tl0 = self.tl0.wrapping_add(1);
        }
        let sync = tid != 0 && self.frame % 4 < 3;
        let mut out = Vec::new();
        for part in 0..2 {
            let p = vp8_payload(part == 0, self.pid, self.tl0, tid, sync, key);
            out.push((self.ssrc, self.seq, self.ts, Bytes::from(p)));
            self.seq = self.seq.wrapping_add(1);
        }
        self.pid = (self.pid + 1) & 0x7fff;
        self.ts = self.ts.wrapping_add(3000);
        self.frame += 1;
        out
    }
}

/// What the subscriber got: (seq, ts, picture id, tl0, tid).
#[derive(Default)]
struct Got {
    pkts: Vec<(u16, u32, u16, u8, u8, bool)>,
}

impl Got {
    fn push(&mut self, o: &Out) {
        let d = crate::core::codec::vp8::Vp8Desc::parse(&o.payload).unwrap();
        self.pkts.push((
            o.seq,
            o.ts,
            d.picture_id.unwrap().0,
            d.tl0picidx.unwrap(),
            d.tid,
            d.picture_start,
        ));
    }

    /// Sequence numbers step by one; PictureIDs step by one per picture;
    /// TL0PICIDX steps by one per base-layer picture; timestamps never go
    /// back.
    fn assert_continuous(&self) {
        for w in self.pkts.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert_eq!(b.0, a.0.wrapping_add(1), "sequence gap {a:?} -> {b:?}");
            assert!(
                b.1.wrapping_sub(a.1) < 1 << 31,
                "timestamp went back {a:?} -> {b:?}"
            );
            if b.5 {
                assert_eq!(b.2, (a.2 + 1) & 0x7fff, "picture id gap {a:?} -> {b:?}");
                let want_tl0 = if b.4 == 0 { a.3.wrapping_add(1) } else { a.3 };
                assert_eq!(b.3, want_tl0, "tl0picidx {a:?} -> {b:?}");
            } else {
                assert_eq!(b.2, a.2, "picture id within a picture");
            }
        }
    }
}

fn vp8_forwarder(target: Layer) -> Forwarder {
    let mut f = Forwarder::new(
        0xabcd,
        90_000,
        Selector::Simulcast(Simulcast::new(Some(target))),
        1024,
    );
    f.negotiated(PtMap::new(&[(96, 100)]), ExtMap::new(&[], &[], None));
    f
}

fn feed(
    f: &mut Forwarder,
    streams: &mut [Stream],
    got: &mut Got,
    frames: usize,
    key: Option<usize>,
    now: &mut Instant,
) -> Vec<Decision> {
    let mut all = Vec::new();
    for _ in 0..frames {
        *now += Duration::from_millis(33);
        for (i, s) in streams.iter_mut().enumerate() {
            for (ssrc, seq, ts, payload) in s.frame(key == Some(i)) {
                let info = frame_info(CodecKind::Vp8, &payload, None);
                let d = f.on_packet(
                    &InPacket {
                        ssrc,
                        seq,
                        ts,
                        pt: 96,
                        marker: false,
                        stream: i as u8,
                        retransmission: false,
                        info: &info,
                        payload: &payload,
                    },
                    *now,
                );
                if let Decision::Forward(o) = &d {
                    assert_eq!((o.ssrc, o.pt), (0xabcd, 100));
                    got.push(o);
                }
                all.push(d);
            }
        }
    }
    all
}

#[test]
fn switches_keep_sequence_timestamps_and_picture_ids_continuous_across_wrap_around() {
    let mut now = Instant::now();
    // Three streams with unrelated numbering, two of them about to wrap.
    let mut streams = [
        Stream::new(1, 65_530, 4_294_960_000, 32_760, 250),
        Stream::new(2, 100, 77, 5, 9),
        Stream::new(3, 40_000, 1_000_000, 32_766, 255),
    ];
    let mut f = vp8_forwarder(Layer::new(0, 2));
    let mut got = Got::default();
    feed(&mut f, &mut streams, &mut got, 3, Some(0), &mut now);
    feed(&mut f, &mut streams, &mut got, 6, None, &mut now);
    let before = got.pkts.len();
    assert!(before > 0);
    // Up to stream 2: nothing changes until its keyframe.
    assert_eq!(f.set_target(Some(Layer::new(2, 2))), Some(2));
    let d = feed(&mut f, &mut streams, &mut got, 4, None, &mut now);
    assert!(d.contains(&Decision::Drop(DropReason::WaitingKeyframe(2))));
    assert_eq!(f.current(), Some(Layer::new(0, 2)));
    feed(&mut f, &mut streams, &mut got, 5, Some(2), &mut now);
    assert_eq!(f.current(), Some(Layer::new(2, 2)));
    // Down to stream 1, then back to 0, across more wrap-arounds.
    f.set_target(Some(Layer::new(1, 2)));
    feed(&mut f, &mut streams, &mut got, 4, Some(1), &mut now);
    f.set_target(Some(Layer::new(0, 2)));
    feed(&mut f, &mut streams, &mut got, 40, Some(0), &mut now);
    got.assert_continuous();
    assert!(got.pkts.len() > before + 100);
}

#[test]
fn temporal_layers_are_dropped_without_gaps() {
    let mut now = Instant::now();
    let mut streams = [Stream::new(7, 65_500, 0, 32_700, 0)];
    let mut f = vp8_forwarder(Layer::new(0, 2));
    let mut got = Got::default();
    feed(&mut f, &mut streams, &mut got, 1, Some(0), &mut now);
    feed(&mut f, &mut streams, &mut got, 7, None, &mut now);
    f.set_target(Some(Layer::new(0, 0)));
    let d = feed(&mut f, &mut streams, &mut got, 40, None, &mut now);
    assert!(d.contains(&Decision::Drop(DropReason::LayerFiltered)));
    assert!(
        got.pkts[8 * 2..].iter().all(|p| p.4 == 0),
        "only TL0 after the change"
    );
    f.set_target(Some(Layer::new(0, 2)));
    feed(&mut f, &mut streams, &mut got, 40, None, &mut now);
    assert!(
        got.pkts.iter().rev().take(8).any(|p| p.4 == 2),
        "back to 30 fps"
    );
    got.assert_continuous();
}

#[test]
fn no_switch_on_a_retransmitted_keyframe() {
    let now = Instant::now();
    let mut f = vp8_forwarder(Layer::new(1, 2));
    let payload = Bytes::from(vp8_payload(true, 1, 1, 0, false, true));
    let info = frame_info(CodecKind::Vp8, &payload, None);
    let p = InPacket {
        ssrc: 2,
        seq: 5,
        ts: 0,
        pt: 96,
        marker: true,
        stream: 1,
        retransmission: true,
        info: &info,
        payload: &payload,
    };
    assert_eq!(
        f.on_packet(&p, now),
        Decision::Drop(DropReason::WaitingKeyframe(1))
    );
    assert_eq!(f.current(), None);
    let fresh = InPacket {
        retransmission: false,
        seq: 6,
        ..p
    };
    assert!(matches!(f.on_packet(&fresh, now), Decision::Forward(_)));
}

#[test]
fn nacks_are_answered_with_what_was_sent_and_unknown_codecs_are_refused() {
    let now = Instant::now();
    let mut f = vp8_forwarder(Layer::new(0, 2));
    let payload = Bytes::from(vp8_payload(true, 1, 1, 0, false, true));
    let info = frame_info(CodecKind::Vp8, &payload, None);
    let p = InPacket {
        ssrc: 2,
        seq: 5,
        ts: 90,
        pt: 96,
        marker: true,
        stream: 0,
        retransmission: false,
        info: &info,
        payload: &payload,
    };
    let Decision::Forward(out) = f.on_packet(&p, now) else {
        panic!()
    };
    assert_eq!(f.retransmit(out.seq), Some(&out));
    assert_eq!(f.retransmit(out.seq.wrapping_add(1)), None);
    let other_pt = InPacket {
        pt: 97,
        seq: 6,
        ..p
    };
    assert_eq!(
        f.on_packet(&other_pt, now),
        Decision::Drop(DropReason::CodecMismatch)
    );
    let mut unready = Forwarder::new(
        1,
        90_000,
        Selector::Simulcast(Simulcast::new(Some(Layer::LOWEST))),
        0,
    );
    assert_eq!(
        unready.on_packet(&p, now),
        Decision::Drop(DropReason::NotReady)
    );
}

#[test]
fn svc_layer_dropping_keeps_pictures_decodable() {
    let mut now = Instant::now();
    let mut f = Forwarder::new(
        9,
        90_000,
        Selector::Svc(Svc::new(Some(Layer::new(1, 2)))),
        1024,
    );
    f.negotiated(PtMap::new(&[(98, 98)]), ExtMap::new(&[], &[], None));
    let (mut seq, mut pid) = (65_000u16, 32_760u16);
    // (seq, picture id, spatial, marker) of what the subscriber got.
    let mut got: Vec<(u16, u16, u8, bool)> = Vec::new();
    for pic in 0..60u32 {
        now += Duration::from_millis(33);
        let key = pic == 0;
        let tid = if key {
            0
        } else {
            [0u8, 2, 1, 2][(pic % 4) as usize]
        };
        if pic == 30 {
            f.set_target(Some(Layer::new(0, 1)));
        }
        for sid in 0..3u8 {
            for part in 0..2 {
                let begin = part == 0;
                let end = part == 1;
                let payload = Bytes::from(vp9_payload(pid, sid, tid, begin, end, !key));
                let info = frame_info(CodecKind::Vp9, &payload, None);
                let p = InPacket {
                    ssrc: 5,
                    seq,
                    ts: pic * 3000,
                    pt: 98,
                    marker: sid == 2 && end,
                    stream: 0,
                    retransmission: false,
                    info: &info,
                    payload: &payload,
                };
                if let Decision::Forward(o) = f.on_packet(&p, now) {
                    let d = crate::core::codec::vp9::Vp9Desc::parse(&o.payload).unwrap();
                    got.push((o.seq, d.picture_id.unwrap().0, d.sid, o.marker));
                }
                seq = seq.wrapping_add(1);
            }
        }
        pid = (pid + 1) & 0x7fff;
    }
    for w in got.windows(2) {
        assert_eq!(w[1].0, w[0].0.wrapping_add(1), "sequence gap {:?}", w);
    }
    // Until the change: S0 and S1, the picture ending on S1; after it: S0
    // only and no TL2, each picture ending on S0, PictureIDs without holes.
    let split = got
        .iter()
        .position(|g| g.1 == (32_760 + 30) & 0x7fff)
        .unwrap();
    let (before, after) = got.split_at(split);
    assert!(before.iter().all(|g| g.2 <= 1));
    assert!(before.iter().filter(|g| g.3).all(|g| g.2 == 1));
    assert_eq!(before.iter().filter(|g| g.3).count(), 30);
    assert!(after.iter().all(|g| g.2 == 0));
    // Half of those pictures were TL2.
    assert_eq!(after.iter().filter(|g| g.3).count(), 15);
    for w in after.windows(2).filter(|w| w[1].1 != w[0].1) {
        assert_eq!(w[1].1, (w[0].1 + 1) & 0x7fff, "picture id hole {:?}", w);
    }
}
