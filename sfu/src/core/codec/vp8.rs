//! The VP8 payload descriptor (RFC 7741 section 4.2): what the forwarder
//! reads (start of a picture, keyframe, PictureID, TL0PICIDX, temporal
//! layer, layer sync) and the in-place rewrite of PictureID and TL0PICIDX.
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |X|R|N|S|R| PID |  required
//!      +-+-+-+-+-+-+-+-+
//!   X: |I|L|T|K| RSV   |
//!      +-+-+-+-+-+-+-+-+
//!   I: |M| PictureID   |  M: 15-bit PictureID in two bytes
//!      +-+-+-+-+-+-+-+-+
//!   L: |   TL0PICIDX   |
//!      +-+-+-+-+-+-+-+-+
//! T/K: |TID|Y| KEYIDX  |
//!      +-+-+-+-+-+-+-+-+
//! ```

/// What one packet's descriptor says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vp8Desc {
    /// S=1 and partition 0: the first packet of a picture.
    pub picture_start: bool,
    /// The first packet of a keyframe (its VP8 payload header's P bit is 0).
    pub keyframe: bool,
    /// PictureID and whether it is the 15-bit form.
    pub picture_id: Option<(u16, bool)>,
    pub tl0picidx: Option<u8>,
    /// Temporal layer (0 when absent).
    pub tid: u8,
    /// The descriptor carries a TID (the T bit).
    pub tid_present: bool,
    /// Y: this frame depends only on temporal layer 0 (a point to switch up).
    pub layer_sync: bool,
    /// Offset of the PictureID field, when present.
    picture_id_at: u8,
    /// Offset of the TL0PICIDX field, when present.
    tl0_at: u8,
    /// Length of the descriptor: the VP8 payload starts here.
    pub header_len: u8,
}

impl Vp8Desc {
    /// Parses the descriptor at the start of a VP8 RTP payload. `None`:
    /// too short or inconsistent (the packet is then forwarded as it is,
    /// with no picture or layer information).
    pub fn parse(p: &[u8]) -> Option<Vp8Desc> {
        let b0 = *p.first()?;
        let mut d = Vp8Desc::default();
        let s = b0 & 0x10 != 0;
        let pid = b0 & 0x07;
        let mut i = 1usize;
        if b0 & 0x80 != 0 {
            let x = *p.get(i)?;
            i += 1;
            if x & 0x80 != 0 {
                let m = *p.get(i)?;
                d.picture_id_at = i as u8;
                if m & 0x80 != 0 {
                    let lo = *p.get(i + 1)?;
                    d.picture_id = Some(((((m & 0x7f) as u16) << 8) | lo as u16, true));
                    i += 2;
                } else {
                    d.picture_id = Some(((m & 0x7f) as u16, false));
                    i += 1;
                }
            }
            if x & 0x40 != 0 {
                d.tl0_at = i as u8;
                d.tl0picidx = Some(*p.get(i)?);
                i += 1;
            }
            if x & 0x30 != 0 {
                let t = *p.get(i)?;
                if x & 0x20 != 0 {
                    d.tid_present = true;
                    d.tid = t >> 6;
                    d.layer_sync = t & 0x20 != 0;
                }
                i += 1;
            }
        }
        d.header_len = i as u8;
        d.picture_start = s && pid == 0;
        // The VP8 payload header follows the descriptor in the first packet
        // of a partition; its lowest bit is P, 0 for a keyframe.
        d.keyframe = d.picture_start && p.get(i).is_some_and(|h| h & 0x01 == 0);
        Some(d)
    }

    /// Writes a new PictureID (in the packet's own width) and TL0PICIDX
    /// into a copy of the payload.
    pub fn rewrite(&self, payload: &mut [u8], picture_id: u16, tl0picidx: u8) {
        if let Some((_, wide)) = self.picture_id {
            let at = self.picture_id_at as usize;
            if wide {
                payload[at] = 0x80 | ((picture_id >> 8) as u8 & 0x7f);
                payload[at + 1] = picture_id as u8;
            } else {
                payload[at] = picture_id as u8 & 0x7f;
            }
        }
        if self.tl0picidx.is_some() {
            payload[self.tl0_at as usize] = tl0picidx;
        }
    }

    /// Width and height from a keyframe's VP8 header (RFC 6386 9.1): a
    /// 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and
    /// height.
    pub fn keyframe_size(&self, payload: &[u8]) -> Option<(u16, u16)> {
        if !self.keyframe {
            return None;
        }
        let at = self.header_len as usize;
        let f = payload.get(at..at + 10)?;
        if f[3..6] != [0x9d, 0x01, 0x2a] {
            return None;
        }
        let w = u16::from_le_bytes([f[6], f[7]]) & 0x3fff;
        let h = u16::from_le_bytes([f[8], f[9]]) & 0x3fff;
        Some((w, h))
    }

    /// The modulus of this packet's PictureID.
    pub fn picture_id_modulus(&self) -> u16 {
        match self.picture_id {
            Some((_, true)) => 1 << 15,
            _ => 1 << 7,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A VP8 payload with every optional field: 15-bit PictureID, TL0PICIDX,
    /// TID/Y, then a VP8 payload header (`key`: P bit 0).
    pub(crate) fn vp8_payload(
        start: bool,
        pid: u16,
        tl0: u8,
        tid: u8,
        sync: bool,
        key: bool,
    ) -> Vec<u8> {
        let mut v = vec![0x80 | if start { 0x10 } else { 0 }, 0xe0];
        v.push(0x80 | (pid >> 8) as u8);
        v.push(pid as u8);
        v.push(tl0);
        v.push((tid << 6) | if sync { 0x20 } else { 0 });
        // Frame tag (P bit: 0 for a keyframe), start code, 640x360.
        v.extend_from_slice(&[if key { 0x10 } else { 0x11 }, 0, 0]);
        v.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 7]);
        v
    }

    #[test]
    fn every_field_is_read() {
        let p = vp8_payload(true, 0x1234, 9, 2, true, false);
        let d = Vp8Desc::parse(&p).unwrap();
        assert!(d.picture_start && !d.keyframe);
        assert_eq!(d.picture_id, Some((0x1234, true)));
        assert_eq!(d.tl0picidx, Some(9));
        assert_eq!((d.tid, d.layer_sync), (2, true));
        let kp = vp8_payload(true, 1, 0, 0, false, true);
        let k = Vp8Desc::parse(&kp).unwrap();
        assert!(k.keyframe);
        assert_eq!(k.keyframe_size(&kp), Some((640, 360)));
        assert_eq!(d.keyframe_size(&p), None);
        // A continuation packet is never a keyframe start, whatever follows.
        let c = Vp8Desc::parse(&vp8_payload(false, 1, 0, 0, false, true)).unwrap();
        assert!(!c.picture_start && !c.keyframe);
    }

    #[test]
    fn minimal_and_short_descriptors() {
        // No extension: only S and PID.
        let d = Vp8Desc::parse(&[0x10, 0x00]).unwrap();
        assert!(d.keyframe && d.picture_id.is_none() && d.tid == 0);
        // 7-bit PictureID, no TL0PICIDX, no TID.
        let d = Vp8Desc::parse(&[0x90, 0x80, 0x05, 0x01]).unwrap();
        assert_eq!(d.picture_id, Some((5, false)));
        assert!(!d.keyframe);
        // Truncated anywhere: None, never a panic.
        let full = vp8_payload(true, 0x1234, 9, 2, true, false);
        for n in 0..6 {
            assert_eq!(Vp8Desc::parse(&full[..n]), None, "{n} bytes");
        }
    }

    #[test]
    fn rewrite_keeps_the_width_and_the_rest() {
        let mut p = vp8_payload(true, 0x1234, 9, 1, false, false);
        let d = Vp8Desc::parse(&p).unwrap();
        d.rewrite(&mut p, 0x7ffe, 200);
        let e = Vp8Desc::parse(&p).unwrap();
        assert_eq!(e.picture_id, Some((0x7ffe, true)));
        assert_eq!(e.tl0picidx, Some(200));
        assert_eq!((e.tid, e.picture_start), (1, true));
        let mut q = vec![0x90, 0x80, 0x05, 0x01];
        Vp8Desc::parse(&q).unwrap().rewrite(&mut q, 130, 0);
        assert_eq!(Vp8Desc::parse(&q).unwrap().picture_id, Some((2, false)));
    }
}
