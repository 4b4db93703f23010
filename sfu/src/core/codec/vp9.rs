//! The VP9 payload descriptor (RFC 9628 section 4.2): picture and layer
//! fields for spatial and temporal layer selection, and the in-place
//! rewrite of PictureID.
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |I|P|L|F|B|E|V|Z|  required
//!      +-+-+-+-+-+-+-+-+
//!   I: |M| PICTURE ID  |  M: 15 bits in two bytes
//!   M: | EXTENDED PID  |
//!   L: | TID |U| SID |D|
//!      |   TL0PICIDX   |  non-flexible mode (F=0) only
//! P,F: | P_DIFF      |N|  up to 3 times
//!   V: | SS ...        |  scalability structure: resolutions per layer
//! ```

/// What one packet's descriptor says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vp9Desc {
    /// P: the layer frame is predicted from earlier pictures.
    pub inter_picture: bool,
    /// B: first packet of a layer frame.
    pub begin: bool,
    /// E: last packet of a layer frame.
    pub end: bool,
    pub picture_id: Option<(u16, bool)>,
    pub tid: u8,
    /// U: a temporal switching-up point.
    pub switch_up: bool,
    pub sid: u8,
    /// D: depends on the lower spatial layer of the same picture.
    pub inter_layer: bool,
    pub tl0picidx: Option<u8>,
    /// From the scalability structure: width and height per spatial layer.
    pub resolutions: Vec<(u16, u16)>,
    picture_id_at: u8,
}

impl Vp9Desc {
    pub fn parse(p: &[u8]) -> Option<Vp9Desc> {
        let b0 = *p.first()?;
        let (i_f, p_f, l_f, f_f, v_f) = (
            b0 & 0x80 != 0,
            b0 & 0x40 != 0,
            b0 & 0x20 != 0,
            b0 & 0x10 != 0,
            b0 & 0x02 != 0,
        );
        let mut d = Vp9Desc {
            inter_picture: p_f,
            begin: b0 & 0x08 != 0,
            end: b0 & 0x04 != 0,
            ..Default::default()
        };
        let mut i = 1usize;
        if i_f {
            let m = *p.get(i)?;
            d.picture_id_at = i as u8;
            if m & 0x80 != 0 {
                d.picture_id = Some(((((m & 0x7f) as u16) << 8) | *p.get(i + 1)? as u16, true));
                i += 2;
            } else {
                d.picture_id = Some(((m & 0x7f) as u16, false));
                i += 1;
            }
        }
        if l_f {
            let l = *p.get(i)?;
            d.tid = l >> 5;
            d.switch_up = l & 0x10 != 0;
            d.sid = (l >> 1) & 0x07;
            d.inter_layer = l & 0x01 != 0;
            i += 1;
            if !f_f {
                d.tl0picidx = Some(*p.get(i)?);
                i += 1;
            }
        }
        if f_f && p_f {
            // Up to three reference diffs; N says another follows.
            for _ in 0..3 {
                let r = *p.get(i)?;
                i += 1;
                if r & 0x01 == 0 {
                    break;
                }
            }
        }
        if v_f {
            let ss = *p.get(i)?;
            i += 1;
            let n_s = (ss >> 5) as usize + 1;
            if ss & 0x10 != 0 {
                for _ in 0..n_s {
                    let b = p.get(i..i + 4)?;
                    d.resolutions.push((
                        u16::from_be_bytes([b[0], b[1]]),
                        u16::from_be_bytes([b[2], b[3]]),
                    ));
                    i += 4;
                }
            }
            if ss & 0x08 != 0 {
                let n_g = *p.get(i)? as usize;
                i += 1;
                for _ in 0..n_g {
                    let g = *p.get(i)?;
                    i += 1 + ((g >> 2) & 0x03) as usize;
                }
                p.get(..i)?;
            }
        }
        Some(d)
    }

    /// The start of a keyframe: the first packet of the base spatial layer
    /// of a picture predicted from no earlier picture.
    pub fn keyframe(&self) -> bool {
        self.begin && self.sid == 0 && !self.inter_picture
    }

    pub fn rewrite_picture_id(&self, payload: &mut [u8], picture_id: u16) {
        if let Some((_, wide)) = self.picture_id {
            let at = self.picture_id_at as usize;
            if wide {
                payload[at] = 0x80 | ((picture_id >> 8) as u8 & 0x7f);
                payload[at + 1] = picture_id as u8;
            } else {
                payload[at] = picture_id as u8 & 0x7f;
            }
        }
    }

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

    /// A non-flexible descriptor with a 15-bit PictureID and layer indices.
    pub(crate) fn vp9_payload(
        pid: u16,
        sid: u8,
        tid: u8,
        begin: bool,
        end: bool,
        inter_picture: bool,
    ) -> Vec<u8> {
        let mut b0 = 0x80 | 0x20;
        if inter_picture {
            b0 |= 0x40;
        }
        if begin {
            b0 |= 0x08;
        }
        if end {
            b0 |= 0x04;
        }
        let d = if sid > 0 && !inter_picture { 1 } else { 0 };
        vec![
            b0,
            0x80 | (pid >> 8) as u8,
            pid as u8,
            (tid << 5) | (sid << 1) | d,
            0,
            0xaa,
            0xbb,
        ]
    }

    #[test]
    fn layer_fields_are_read() {
        let d = Vp9Desc::parse(&vp9_payload(300, 2, 1, true, false, true)).unwrap();
        assert_eq!(d.picture_id, Some((300, true)));
        assert_eq!((d.sid, d.tid, d.begin, d.end), (2, 1, true, false));
        assert!(!d.keyframe());
        let k = Vp9Desc::parse(&vp9_payload(301, 0, 0, true, true, false)).unwrap();
        assert!(k.keyframe() && k.end);
        let upper = Vp9Desc::parse(&vp9_payload(301, 1, 0, true, true, false)).unwrap();
        assert!(!upper.keyframe() && upper.inter_layer);
    }

    #[test]
    fn scalability_structure_gives_resolutions() {
        // I, V set; 7-bit PID; SS: N_S=1 (two layers), Y=1, G=0.
        let p = [
            0x82, 0x05, 0x30, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68, 0xff,
        ];
        let d = Vp9Desc::parse(&p).unwrap();
        assert_eq!(d.resolutions, vec![(320, 180), (640, 360)]);
        for n in 0..p.len() - 1 {
            assert!(Vp9Desc::parse(&p[..n]).is_none() || n > 10, "{n}");
        }
    }

    #[test]
    fn picture_id_rewrite() {
        let mut p = vp9_payload(300, 0, 0, true, true, true);
        let d = Vp9Desc::parse(&p).unwrap();
        d.rewrite_picture_id(&mut p, 12345);
        assert_eq!(Vp9Desc::parse(&p).unwrap().picture_id, Some((12345, true)));
    }
}
