//! When a received video frame could be shown: the receiver's frame
//! assembly and decode chain, as a browser's jitter buffer works it out.
//!
//! A frame is decodable once all its packets are in (from the packet that
//! starts it to the one with the marker bit) and it is either a keyframe or
//! the frame right after the last decoded one (each VP8 interframe refers
//! to the one before it). A frame that never completes breaks the chain
//! until the next complete keyframe, which is decoded as soon as it is
//! complete, dropping any older incomplete frames, as libwebrtc does. So a
//! lost packet that is retransmitted in time costs nothing, and one that is
//! not freezes the picture until a keyframe arrives; packets merely
//! arriving (what a packet counter sees) does not mean the picture moves.
//!
//! Sans-I/O: fed with packets, it says how many frames became decodable.
//! A ring of the last [`RING`] packets bounds memory.

use std::time::{Duration, Instant};

/// Packets remembered after the last decoded frame.
const RING: u64 = 1024;

const EMPTY: u64 = u64::MAX;

#[derive(Clone, Copy, Debug)]
struct Slot {
    ext: u64,
    start: bool,
    end: bool,
    /// A padding-only packet (a bandwidth probe): no frame, but it keeps
    /// the sequence continuous.
    filler: bool,
}

const NONE: Slot = Slot {
    ext: EMPTY,
    start: false,
    end: false,
    filler: false,
};

/// What is known of one RTP packet of a VP8 track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    pub seq: u16,
    pub marker: bool,
    /// The first packet of a frame (VP8 descriptor S=1, partition 0).
    pub start: bool,
    /// The first packet of a keyframe.
    pub keyframe: bool,
    /// No payload (padding only).
    pub empty: bool,
}

impl PacketInfo {
    /// Reads the VP8 payload descriptor's start bit and the keyframe bit.
    pub fn vp8(seq: u16, marker: bool, payload: &[u8]) -> PacketInfo {
        let start = payload
            .first()
            .is_some_and(|b| b & 0x10 != 0 && b & 0x0f == 0);
        PacketInfo {
            seq,
            marker,
            start,
            keyframe: start && crate::video_layer::vp8_keyframe_size(payload).is_some(),
            empty: payload.is_empty(),
        }
    }
}

/// The decode chain of one video track.
#[derive(Debug)]
pub struct Playout {
    slots: Vec<Slot>,
    highest: Option<u64>,
    /// The last packet of the last decoded frame.
    decoded_to: Option<u64>,
    /// First packets of keyframes after `decoded_to` (a handful at most).
    keyframes: Vec<u64>,
    /// Frames decoded so far.
    pub frames: u64,
    /// Times decoding resumed at a keyframe after the chain broke.
    pub recoveries: u64,
}

impl Default for Playout {
    fn default() -> Self {
        Playout {
            slots: vec![NONE; RING as usize],
            highest: None,
            decoded_to: None,
            keyframes: Vec::new(),
            frames: 0,
            recoveries: 0,
        }
    }
}

impl Playout {
    fn unwrap(&mut self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            let ext = (1u64 << 32) + seq as u64;
            self.highest = Some(ext);
            return ext;
        };
        let mut ext = (h & !0xffff) + seq as u64;
        if ext + 0x8000 < h {
            ext += 0x1_0000;
        } else if ext > h + 0x8000 {
            ext -= 0x1_0000;
        }
        if ext > h {
            self.highest = Some(ext);
        }
        ext
    }

    fn slot(&self, ext: u64) -> Slot {
        let s = self.slots[(ext % RING) as usize];
        if s.ext == ext {
            s
        } else {
            NONE
        }
    }

    /// The last packet of the frame whose first packet is `start`, when
    /// every packet of it is in.
    fn complete_from(&self, start: u64) -> Option<u64> {
        let first = self.slot(start);
        if first.ext == EMPTY || !(first.start || first.filler) {
            return None;
        }
        let mut e = start;
        loop {
            let s = self.slot(e);
            if s.ext == EMPTY {
                return None;
            }
            if s.end || s.filler {
                return Some(e);
            }
            e += 1;
            if e - start >= RING {
                return None;
            }
        }
    }

    /// Whether the chain is broken: a packet after the last decoded frame
    /// is missing while later ones are in (not merely a frame still
    /// arriving), or packets came but no keyframe to start from.
    pub fn broken(&self) -> bool {
        let Some(highest) = self.highest else {
            return false;
        };
        let Some(d) = self.decoded_to else {
            return true;
        };
        let mut e = d + 1;
        while e < highest {
            if self.slot(e).ext == EMPTY {
                return true;
            }
            e += 1;
        }
        false
    }

    /// One packet arrived; returns how many frames became decodable.
    pub fn on_packet(&mut self, p: PacketInfo) -> u32 {
        let ext = self.unwrap(p.seq);
        let highest = self.highest.unwrap_or(ext);
        if self.decoded_to.is_some_and(|d| ext <= d) || ext + RING <= highest {
            return 0; // already decoded past it, or too old to matter
        }
        self.slots[(ext % RING) as usize] = Slot {
            ext,
            start: p.start,
            end: p.marker,
            filler: p.empty,
        };
        if p.keyframe && !self.keyframes.contains(&ext) {
            self.keyframes.push(ext);
        }
        let mut decoded = 0;
        loop {
            // The next frame in the chain.
            if let Some(d) = self.decoded_to {
                if let Some(end) = self.complete_from(d + 1) {
                    if !self.slot(d + 1).filler {
                        self.frames += 1;
                        decoded += 1;
                    }
                    self.decoded_to = Some(end);
                    continue;
                }
            }
            // Or a complete keyframe further on.
            let d = self.decoded_to;
            self.keyframes
                .retain(|&k| d.is_none_or(|d| k > d) && k + RING > highest);
            let next = self
                .keyframes
                .iter()
                .filter_map(|&k| self.complete_from(k).map(|end| (k, end)))
                .min();
            let Some((k, end)) = next else {
                break;
            };
            if d.is_some() {
                self.recoveries += 1;
            }
            self.frames += 1;
            decoded += 1;
            self.decoded_to = Some(end);
            self.keyframes.retain(|&x| x != k);
        }
        decoded
    }
}

/// How long a broken chain waits for retransmissions before the receiver
/// asks for a keyframe, and how often it asks again while still broken.
pub const KEYFRAME_AFTER: Duration = Duration::from_millis(200);
pub const KEYFRAME_EVERY: Duration = Duration::from_millis(500);

/// When a receiver asks for a keyframe (a PLI), as a browser's does: once
/// its decode chain has been broken for [`KEYFRAME_AFTER`], and again every
/// [`KEYFRAME_EVERY`] until it decodes again.
#[derive(Debug, Default)]
pub struct KeyframeRequests {
    broken_since: Option<Instant>,
    last: Option<Instant>,
    /// Requests made.
    pub sent: u64,
}

impl KeyframeRequests {
    /// A packet of the track was handled at `now`; `broken` is
    /// [`Playout::broken`] after it. Returns whether to send a PLI now.
    pub fn poll(&mut self, now: Instant, broken: bool) -> bool {
        if !broken {
            self.broken_since = None;
            self.last = None;
            return false;
        }
        let since = *self.broken_since.get_or_insert(now);
        let due = match self.last {
            None => now.saturating_duration_since(since) >= KEYFRAME_AFTER,
            Some(at) => now.saturating_duration_since(at) >= KEYFRAME_EVERY,
        };
        if due {
            self.last = Some(now);
            self.sent += 1;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of frames of `n` packets each from `seq`, keyframes where
    /// `key(frame)`; returns the packets in order.
    fn frames(seq: u16, sizes: &[u16], key: impl Fn(usize) -> bool) -> Vec<PacketInfo> {
        let mut out = Vec::new();
        let mut q = seq;
        for (f, &n) in sizes.iter().enumerate() {
            for i in 0..n {
                out.push(PacketInfo {
                    seq: q,
                    marker: i == n - 1,
                    start: i == 0,
                    keyframe: i == 0 && key(f),
                    empty: false,
                });
                q = q.wrapping_add(1);
            }
        }
        out
    }

    fn feed(p: &mut Playout, packets: &[PacketInfo]) -> Vec<u32> {
        packets.iter().map(|&x| p.on_packet(x)).collect()
    }

    #[test]
    fn frames_decode_in_order_once_complete_across_wrap() {
        let packets = frames(65530, &[3, 2, 2, 1, 4], |f| f == 0);
        let mut p = Playout::default();
        let got = feed(&mut p, &packets);
        // Each frame decodes on its marker packet.
        assert_eq!(got, vec![0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1]);
        assert_eq!((p.frames, p.recoveries), (5, 0));
    }

    #[test]
    fn nothing_decodes_before_a_keyframe() {
        let packets = frames(100, &[2, 2, 3, 2], |f| f == 2);
        let mut p = Playout::default();
        let got = feed(&mut p, &packets);
        assert_eq!(got, vec![0, 0, 0, 0, 0, 0, 1, 0, 1]);
        assert_eq!(p.recoveries, 0, "a first keyframe is no recovery");
    }

    #[test]
    fn a_retransmission_in_time_resumes_the_chain() {
        let packets = frames(0, &[2, 2, 2, 2], |f| f == 0);
        let mut p = Playout::default();
        // Packet 3 (the end of frame 1) is late: frames 2 and 3 wait for it.
        let mut order: Vec<PacketInfo> = packets.clone();
        let late = order.remove(3);
        order.push(late);
        let got = feed(&mut p, &order);
        assert_eq!(got, vec![0, 1, 0, 0, 0, 0, 0, 3]);
        assert_eq!((p.frames, p.recoveries), (4, 0));
        // A duplicate of a decoded packet changes nothing.
        assert_eq!(p.on_packet(packets[1]), 0);
    }

    #[test]
    fn a_lost_packet_freezes_until_the_next_keyframe() {
        let packets = frames(0, &[2, 2, 2, 2, 3, 2], |f| f == 0 || f == 4);
        let mut p = Playout::default();
        let mut lossy = packets.clone();
        lossy.remove(2); // frame 1 never completes
        let got = feed(&mut p, &lossy);
        // Frame 0 decodes; 1, 2, 3 never; keyframe 4 and frame 5 do.
        assert_eq!(got, vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]);
        assert_eq!((p.frames, p.recoveries), (3, 1));
    }

    #[test]
    fn a_complete_keyframe_skips_frames_still_waiting() {
        // Frame 1 misses a packet; keyframe 2 completes: decoded at once.
        let packets = frames(500, &[1, 2, 3, 1], |f| f == 0 || f == 2);
        let mut p = Playout::default();
        let mut lossy = packets.clone();
        lossy.remove(1);
        assert_eq!(feed(&mut p, &lossy), vec![1, 0, 0, 0, 1, 1]);
        // The missing packet arriving later is too old to matter.
        assert_eq!(p.on_packet(packets[1]), 0);
        assert_eq!(p.frames, 3);
    }

    #[test]
    fn padding_packets_keep_the_chain_without_counting_as_frames() {
        let mut packets = frames(10, &[1, 1], |f| f == 0);
        let probe = PacketInfo {
            seq: 11,
            marker: false,
            start: false,
            keyframe: false,
            empty: true,
        };
        packets[1].seq = 12;
        let mut p = Playout::default();
        let got = feed(&mut p, &[packets[0], probe, packets[1]]);
        assert_eq!(got, vec![1, 0, 1]);
        assert_eq!(p.frames, 2);
    }

    #[test]
    fn a_long_outage_recovers_at_a_keyframe_and_memory_stays_bounded() {
        let sizes = vec![1u16; 5000];
        let packets = frames(0, &sizes, |f| f % 1000 == 0);
        let mut p = Playout::default();
        // Everything from 100 to 2999 is lost.
        let got: u32 = packets
            .iter()
            .filter(|x| !(100..3000).contains(&x.seq))
            .map(|&x| p.on_packet(x))
            .sum();
        assert_eq!(got, 100 + 2000);
        assert_eq!(p.recoveries, 1);
        assert_eq!(p.slots.len(), RING as usize);
        assert!(p.keyframes.len() <= 1);
    }

    #[test]
    fn a_hole_breaks_the_chain_a_frame_in_progress_does_not() {
        let packets = frames(0, &[2, 3, 2], |f| f == 0);
        let mut p = Playout::default();
        assert!(!p.broken(), "nothing received yet");
        p.on_packet(packets[0]);
        assert!(p.broken(), "no keyframe decoded yet");
        p.on_packet(packets[1]);
        assert!(!p.broken());
        p.on_packet(packets[2]);
        p.on_packet(packets[3]);
        assert!(!p.broken(), "frame 1 is still arriving");
        p.on_packet(packets[5]);
        assert!(p.broken(), "packet 4 is missing");
        p.on_packet(packets[4]);
        assert!(!p.broken());
    }

    #[test]
    fn keyframes_are_asked_for_after_a_grace_and_then_at_intervals() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut k = KeyframeRequests::default();
        assert!(!k.poll(ms(0), false));
        assert!(!k.poll(ms(10), true));
        assert!(!k.poll(ms(150), true));
        assert!(k.poll(ms(210), true));
        assert!(!k.poll(ms(400), true));
        assert!(k.poll(ms(710), true));
        assert!(!k.poll(ms(720), true));
        // Decoding again resets it: a new break waits the grace again.
        assert!(!k.poll(ms(800), false));
        assert!(!k.poll(ms(900), true));
        assert!(!k.poll(ms(1050), true));
        assert!(k.poll(ms(1100), true));
        assert_eq!(k.sent, 3);
    }

    #[test]
    fn reads_vp8_descriptors() {
        let key = [
            0x10, 0x50, 0x2d, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00,
        ];
        let k = PacketInfo::vp8(7, false, &key);
        assert!(k.start && k.keyframe && !k.empty);
        let inter = PacketInfo::vp8(8, true, &[0x10, 0x51, 0x2d, 0x00]);
        assert!(inter.start && !inter.keyframe && inter.marker);
        let cont = PacketInfo::vp8(9, false, &[0x00, 0x12]);
        assert!(!cont.start);
        assert!(PacketInfo::vp8(10, false, &[]).empty);
    }
}
