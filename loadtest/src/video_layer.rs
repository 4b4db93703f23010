//! Which simulcast layer a subscriber receives, told from the video itself:
//! the frame size written in every VP8 keyframe. A change of size between
//! two keyframes is a layer switch.

use std::fmt;

/// A frame size in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameSize {
    pub width: u16,
    pub height: u16,
}

impl fmt::Display for FrameSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// The frame size of the VP8 keyframe that starts in this RTP payload;
/// `None` for any other packet (a later packet of a frame, an interframe,
/// or a payload too short to tell).
///
/// RFC 7741: the payload descriptor (1 byte; with X, an extension byte and
/// the PictureID, TL0PICIDX and TID/KEYIDX fields it announces), then, in
/// the packet that starts partition 0 (S=1, PID=0), the VP8 frame: a 3-byte
/// frame tag whose lowest bit is 0 for a keyframe, the start code
/// `9d 01 2a`, and 14-bit width and height, little-endian (the top 2 bits
/// of each are the scaling mode).
pub fn vp8_keyframe_size(payload: &[u8]) -> Option<FrameSize> {
    let first = *payload.first()?;
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let partition = first & 0x0f;
    if !start || partition != 0 {
        return None;
    }
    let mut i = 1;
    if extended {
        let x = *payload.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: 15 bits when its first bit (M) is set, else 7.
            let m = *payload.get(i)? & 0x80 != 0;
            i += if m { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID / Y / KEYIDX
        }
    }
    let frame = payload.get(i..i + 10)?;
    if frame[0] & 0x01 != 0 {
        return None; // interframe
    }
    if frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some(FrameSize { width, height })
}

/// The layer history of one received video track.
#[derive(Debug, Default, Clone)]
pub struct LayerTracker {
    /// The size of the last keyframe.
    pub current: Option<FrameSize>,
    /// Changes of size between keyframes counted while measuring.
    pub switches: u64,
    /// Packets received while measuring, by the layer they belong to (the
    /// last keyframe's size before them). A handful of entries.
    pub packets_by_layer: Vec<(FrameSize, u64)>,
}

impl LayerTracker {
    /// One RTP packet of the track arrived; `measuring` tells whether it
    /// falls in the measured window (the layer is followed throughout, so a
    /// window starts knowing it).
    pub fn on_packet(&mut self, payload: &[u8], measuring: bool) {
        if let Some(size) = vp8_keyframe_size(payload) {
            if self.current.is_some_and(|c| c != size) && measuring {
                self.switches += 1;
            }
            self.current = Some(size);
        }
        if !measuring {
            return;
        }
        let Some(layer) = self.current else {
            return;
        };
        match self.packets_by_layer.iter_mut().find(|(s, _)| *s == layer) {
            Some((_, n)) => *n += 1,
            None => self.packets_by_layer.push((layer, 1)),
        }
    }

    /// The layer most packets of the window belonged to.
    pub fn main_layer(&self) -> Option<FrameSize> {
        self.packets_by_layer
            .iter()
            .max_by_key(|(s, n)| (*n, *s))
            .map(|(s, _)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::Clip;
    use std::path::Path;

    /// A VP8 keyframe's first bytes for a size: frame tag (keyframe, shown),
    /// start code, width and height with scaling bits set (ignored).
    fn keyframe(width: u16, height: u16) -> Vec<u8> {
        let mut f = vec![0x50, 0x2d, 0x00, 0x9d, 0x01, 0x2a];
        f.extend_from_slice(&(width | 0x4000).to_le_bytes());
        f.extend_from_slice(&(height | 0x8000).to_le_bytes());
        f.extend_from_slice(&[0xaa; 20]);
        f
    }

    #[test]
    fn reads_the_size_after_each_descriptor_shape() {
        let k = keyframe(640, 360);
        let want = Some(FrameSize {
            width: 640,
            height: 360,
        });
        // Minimal descriptor: S=1, PID=0.
        let cases: Vec<Vec<u8>> = vec![
            vec![0x10],
            // X with a 7-bit PictureID.
            vec![0x90, 0x80, 0x12],
            // X with a 15-bit PictureID, TL0PICIDX and TID/KEYIDX (what
            // libwebrtc sends for simulcast).
            vec![0x90, 0xe0, 0x81, 0x23, 0x07, 0x20],
            // X with only KEYIDX.
            vec![0x90, 0x10, 0x00],
        ];
        for d in cases {
            let mut p = d.clone();
            p.extend_from_slice(&k);
            assert_eq!(vp8_keyframe_size(&p), want, "descriptor {d:02x?}");
        }
    }

    #[test]
    fn other_packets_have_no_size() {
        let k = keyframe(320, 180);
        // Not the start of a frame.
        let mut p = vec![0x00];
        p.extend_from_slice(&k);
        assert_eq!(vp8_keyframe_size(&p), None);
        // Start of partition 1.
        let mut p = vec![0x11];
        p.extend_from_slice(&k);
        assert_eq!(vp8_keyframe_size(&p), None);
        // An interframe (frame tag bit 0 set).
        let mut p = vec![0x10];
        let mut inter = k.clone();
        inter[0] |= 1;
        p.extend_from_slice(&inter);
        assert_eq!(vp8_keyframe_size(&p), None);
        // Bad start code, truncated payloads.
        let mut p = vec![0x10];
        let mut bad = k.clone();
        bad[4] = 0;
        p.extend_from_slice(&bad);
        assert_eq!(vp8_keyframe_size(&p), None);
        for n in 0..10 {
            let p = [vec![0x10], k[..n].to_vec()].concat();
            assert_eq!(vp8_keyframe_size(&p), None, "{n}");
        }
        assert_eq!(vp8_keyframe_size(&[0x90, 0x80]), None);
    }

    #[test]
    fn the_clips_are_the_three_simulcast_sizes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("media");
        for (file, w, h) in [
            ("vp8-150k.ivf", 320, 180),
            ("vp8-500k.ivf", 640, 360),
            ("vp8-1500k.ivf", 1280, 720),
        ] {
            let clip = Clip::read_ivf(&dir.join(file)).unwrap();
            let mut p = vec![0x10];
            p.extend_from_slice(&clip.frames[0].data);
            assert_eq!(
                vp8_keyframe_size(&p),
                Some(FrameSize {
                    width: w,
                    height: h
                }),
                "{file}"
            );
        }
    }

    #[test]
    fn counts_switches_between_keyframes_of_different_sizes() {
        let small = [vec![0x10], keyframe(320, 180)].concat();
        let large = [vec![0x10], keyframe(1280, 720)].concat();
        let inter = vec![0x00, 0x01, 0x02];
        let mut t = LayerTracker::default();
        // Before the window: the layer is followed, nothing counted.
        t.on_packet(&large, false);
        t.on_packet(&small, false);
        assert_eq!((t.switches, t.packets_by_layer.len()), (0, 0));
        // In the window: small, a keyframe of the same size (a PLI), then up.
        t.on_packet(&inter, true);
        t.on_packet(&small, true);
        t.on_packet(&inter, true);
        t.on_packet(&large, true);
        t.on_packet(&inter, true);
        assert_eq!(t.switches, 1);
        // Back down and up again.
        t.on_packet(&small, true);
        t.on_packet(&large, true);
        assert_eq!(t.switches, 3);
        let s = FrameSize {
            width: 320,
            height: 180,
        };
        let l = FrameSize {
            width: 1280,
            height: 720,
        };
        assert_eq!(t.current, Some(l));
        assert_eq!(t.packets_by_layer, vec![(s, 4), (l, 3)]);
        assert_eq!(t.main_layer(), Some(s));
        assert_eq!(s.to_string(), "320x180");
    }
}
