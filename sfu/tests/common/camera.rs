//! A simulated simulcast camera for the in-memory network: three VP8
//! streams (320x180, 640x360, 1280x720) with PictureID and TL0PICIDX, and
//! the helpers tests use to tell which stream a subscriber receives.

use std::time::Duration;

use bytes::Bytes;
use signaling::media::TrackSettings;

use super::sim::SimNet;

/// One frame interval at 30 fps.
pub const FRAME: Duration = Duration::from_millis(33);
/// The three streams' sizes, lowest first.
pub const SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

/// A VP8 payload of `len` bytes: descriptor with a 15-bit PictureID,
/// TL0PICIDX and TID 0; a keyframe carries its size in the VP8 header.
pub fn vp8(start: bool, pid: u16, tl0: u8, key: bool, size: (u16, u16), len: usize) -> Bytes {
    let mut v = vec![0x80 | if start { 0x10 } else { 0 }, 0xe0];
    v.extend([0x80 | (pid >> 8) as u8, pid as u8, tl0, 0x00]);
    v.extend([if key { 0x10 } else { 0x11 }, 0, 0, 0x9d, 0x01, 0x2a]);
    v.extend(size.0.to_le_bytes());
    v.extend(size.1.to_le_bytes());
    v.resize(len, 0xab);
    Bytes::from(v)
}

/// Sends one frame on each of a simulcast publisher's three streams:
/// `packets[s]` packets of `packet_len` bytes on stream `s`, a keyframe
/// every `keyframe_every` frames (and whenever asked).
pub struct Camera {
    pub frame: u32,
    pub seq: [u16; 3],
    pub pid: [u16; 3],
    pub tl0: [u8; 3],
    pub packets: [u16; 3],
    pub packet_len: usize,
    pub keyframe_every: u32,
}

impl Camera {
    /// Two 300-byte packets a frame on every stream, a keyframe a second.
    pub fn new() -> Self {
        Camera {
            frame: 0,
            seq: [100, 20_000, 40_000],
            pid: [1, 500, 9000],
            tl0: [0, 50, 100],
            packets: [2, 2, 2],
            packet_len: 300,
            keyframe_every: 30,
        }
    }

    /// Simulcast at about 250, 500 and 1000 kbit/s (1, 2 and 4 packets of
    /// 1000 bytes a frame at 30 fps), a keyframe every two seconds: rates
    /// at which bandwidth decides the layer.
    pub fn at_rates() -> Self {
        Camera {
            packets: [1, 2, 4],
            packet_len: 1000,
            keyframe_every: 60,
            ..Camera::new()
        }
    }

    pub fn send(&mut self, net: &mut SimNet, publisher: usize, key: bool) {
        let now = net.now;
        let k = key || self.frame.is_multiple_of(self.keyframe_every);
        for (s, size) in SIZES.iter().enumerate() {
            for part in 0..self.packets[s] {
                let p = vp8(
                    part == 0,
                    self.pid[s],
                    self.tl0[s],
                    k,
                    *size,
                    self.packet_len,
                );
                net.clients[publisher].send_rtp(s, self.seq[s], self.frame * 3000, p, now);
                self.seq[s] = self.seq[s].wrapping_add(1);
            }
            self.pid[s] = (self.pid[s] + 1) & 0x7fff;
            self.tl0[s] = self.tl0[s].wrapping_add(1);
        }
        self.frame += 1;
    }
}

/// The width of the last keyframe a client received on a track.
pub fn last_width(net: &SimNet, client: usize, track: &str) -> Option<u16> {
    keyframe_width(net.clients[client].received.get(track)?)
}

/// The width of the last keyframe among what a client received.
pub fn keyframe_width(r: &super::Received) -> Option<u16> {
    r.payloads.iter().rev().find_map(|p| {
        // Keyframe: S bit, then P bit 0 in the VP8 header after 6 bytes.
        (p.len() > 16 && p[0] & 0x10 != 0 && p[6] & 0x01 == 0 && p[9..12] == [0x9d, 0x01, 0x2a])
            .then(|| u16::from_le_bytes([p[12], p[13]]) & 0x3fff)
    })
}

/// Track settings for a tile of `w` x `h`.
pub fn sized(w: u32, h: u32) -> TrackSettings {
    TrackSettings {
        width: w,
        height: h,
        ..Default::default()
    }
}
