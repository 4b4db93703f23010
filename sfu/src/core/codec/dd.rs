//! The dependency descriptor RTP header extension (AV1 RTP specification,
//! appendix A): which spatial and temporal layer each frame belongs to.
//!
//! Only some packets (those of keyframes, typically) carry the template
//! structure; later packets name a template by id. A [`DdReader`] per
//! published stream keeps the latest structure and resolves each packet to
//! its layer.

/// Where in a bit string the reader is.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn f(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | bit as u32;
            self.pos += 1;
        }
        Some(v)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.data.len() * 8).then_some(())
    }

    /// `ns(n)`: a non-symmetric unsigned value below `n`.
    fn ns(&mut self, n: u32) -> Option<u32> {
        let w = 32 - n.leading_zeros() as usize;
        if w == 0 {
            return Some(0);
        }
        let m = (1u32 << w) - n;
        let v = self.f(w - 1)?;
        if v < m {
            return Some(v);
        }
        let extra = self.f(1)?;
        Some((v << 1) - m + extra)
    }
}

/// The template structure: layers per template, decode targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DdStructure {
    pub template_id_offset: u8,
    /// `(spatial id, temporal id)` per template.
    pub templates: Vec<(u8, u8)>,
    /// Number of frame diffs per template (0: refers to no earlier frame).
    pub fdiff_counts: Vec<u8>,
    pub decode_targets: u8,
    pub max_spatial: u8,
    pub max_temporal: u8,
    /// Render size per spatial layer, when given.
    pub resolutions: Vec<(u16, u16)>,
}

/// One packet's descriptor, resolved against the structure in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DdFrame {
    pub start_of_frame: bool,
    pub end_of_frame: bool,
    pub frame_number: u16,
    pub spatial: u8,
    pub temporal: u8,
    /// The frame refers to no earlier frame (with spatial 0: a keyframe).
    pub independent: bool,
    /// This packet carried a new template structure.
    pub new_structure: bool,
}

/// Keeps the latest structure of one stream.
#[derive(Clone, Debug, Default)]
pub struct DdReader {
    structure: Option<DdStructure>,
}

impl DdReader {
    pub fn structure(&self) -> Option<&DdStructure> {
        self.structure.as_ref()
    }

    /// Reads one packet's extension payload. `None`: malformed, or a
    /// template id no known structure defines.
    pub fn read(&mut self, ext: &[u8]) -> Option<DdFrame> {
        let mut b = Bits { data: ext, pos: 0 };
        let start_of_frame = b.f(1)? == 1;
        let end_of_frame = b.f(1)? == 1;
        let template_id = b.f(6)? as u8;
        let frame_number = b.f(16)? as u16;
        let mut new_structure = false;
        let mut custom_fdiffs = false;
        if ext.len() > 3 {
            let structure_present = b.f(1)? == 1;
            let active_present = b.f(1)? == 1;
            let _custom_dtis = b.f(1)?;
            custom_fdiffs = b.f(1)? == 1;
            let _custom_chains = b.f(1)?;
            if structure_present {
                self.structure = Some(read_structure(&mut b)?);
                new_structure = true;
            }
            if active_present {
                let n = self.structure.as_ref()?.decode_targets as usize;
                b.f(n)?;
            }
        }
        let s = self.structure.as_ref()?;
        let index = (template_id as usize + 64 - s.template_id_offset as usize) % 64;
        let (spatial, temporal) = *s.templates.get(index)?;
        let fdiffs = s.fdiff_counts.get(index).copied().unwrap_or(0);
        Some(DdFrame {
            start_of_frame,
            end_of_frame,
            frame_number,
            spatial,
            temporal,
            independent: fdiffs == 0 && !custom_fdiffs,
            new_structure,
        })
    }
}

fn read_structure(b: &mut Bits) -> Option<DdStructure> {
    let template_id_offset = b.f(6)? as u8;
    let dt_cnt = b.f(5)? + 1;
    let (mut spatial, mut temporal) = (0u8, 0u8);
    let mut s = DdStructure {
        template_id_offset,
        decode_targets: dt_cnt as u8,
        ..Default::default()
    };
    loop {
        if s.templates.len() >= 64 {
            return None;
        }
        s.templates.push((spatial, temporal));
        s.max_temporal = s.max_temporal.max(temporal);
        match b.f(2)? {
            0 => {}
            1 => temporal = temporal.checked_add(1)?,
            2 => {
                temporal = 0;
                spatial = spatial.checked_add(1)?;
            }
            _ => break,
        }
    }
    s.max_spatial = spatial;
    let n = s.templates.len();
    // Decode target indications: two bits per template and target.
    b.skip(2 * n * dt_cnt as usize)?;
    for _ in 0..n {
        let mut count = 0u8;
        while b.f(1)? == 1 {
            b.f(4)?;
            count = count.saturating_add(1);
        }
        s.fdiff_counts.push(count);
    }
    let chains = b.ns(dt_cnt + 1)?;
    if chains > 0 {
        for _ in 0..dt_cnt {
            b.ns(chains)?;
        }
        for _ in 0..n * chains as usize {
            b.f(4)?;
        }
    }
    if b.f(1)? == 1 {
        for _ in 0..=s.max_spatial {
            let w = b.f(16)? as u16;
            let h = b.f(16)? as u16;
            s.resolutions
                .push((w.saturating_add(1), h.saturating_add(1)));
        }
    }
    Some(s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes bits, most significant first.
    #[derive(Default)]
    pub(crate) struct BitWriter {
        pub bytes: Vec<u8>,
        n: usize,
    }

    impl BitWriter {
        pub fn put(&mut self, v: u32, bits: usize) {
            for i in (0..bits).rev() {
                if self.n.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((v >> i) & 1) as u8;
                let last = self.bytes.len() - 1;
                self.bytes[last] |= bit << (7 - self.n % 8);
                self.n += 1;
            }
        }
    }

    /// An L2T2 structure: templates (s0,t0) key, (s0,t0), (s0,t1), (s1,t0),
    /// (s1,t1); 4 decode targets, no chains, resolutions 320x180 and 640x360.
    pub(crate) fn l2t2_key_descriptor(frame_number: u16) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(1, 1); // start
        w.put(1, 1); // end
        w.put(0, 6); // template id 0
        w.put(frame_number as u32, 16);
        w.put(1, 1); // structure present
        w.put(0, 1); // active targets
        w.put(0, 1);
        w.put(0, 1);
        w.put(0, 1);
        w.put(0, 6); // offset
        w.put(3, 5); // 4 decode targets
                     // layers: t0 key, t0 (same), t1 (next temporal), s1 t0 (next spatial), s1 t1, end
        for idc in [0, 1, 2, 1, 3] {
            w.put(idc, 2);
        }
        // dtis: 5 templates x 4 targets x 2 bits, all "required" (3)
        for _ in 0..20 {
            w.put(3, 2);
        }
        // fdiffs: template 0 none; others one diff of 1 (or 2)
        w.put(0, 1);
        for d in [1u32, 2, 1, 2] {
            w.put(1, 1);
            w.put(d - 1, 4);
            w.put(0, 1);
        }
        // chains: ns(5) = 0 -> no chains. w=3, m=3: v=f(2)=0 < 3.
        w.put(0, 2);
        w.put(1, 1); // resolutions
        for (x, y) in [(320u32, 180u32), (640, 360)] {
            w.put(x - 1, 16);
            w.put(y - 1, 16);
        }
        w.bytes
    }

    pub(crate) fn short_descriptor(
        template: u8,
        frame_number: u16,
        start: bool,
        end: bool,
    ) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(start as u32, 1);
        w.put(end as u32, 1);
        w.put(template as u32, 6);
        w.put(frame_number as u32, 16);
        w.bytes
    }

    #[test]
    fn structure_and_layers() {
        let mut r = DdReader::default();
        let f = r.read(&l2t2_key_descriptor(7)).unwrap();
        assert!(f.new_structure && f.independent && f.start_of_frame);
        assert_eq!((f.spatial, f.temporal, f.frame_number), (0, 0, 7));
        let s = r.structure().unwrap();
        assert_eq!(s.templates, vec![(0, 0), (0, 0), (0, 1), (1, 0), (1, 1)]);
        assert_eq!((s.max_spatial, s.max_temporal, s.decode_targets), (1, 1, 4));
        assert_eq!(s.resolutions, vec![(320, 180), (640, 360)]);
        let g = r.read(&short_descriptor(4, 8, true, false)).unwrap();
        assert_eq!((g.spatial, g.temporal, g.independent), (1, 1, false));
        assert!(
            r.read(&short_descriptor(9, 9, true, true)).is_none(),
            "no such template"
        );
    }

    #[test]
    fn without_a_structure_nothing_resolves_and_junk_never_panics() {
        let mut r = DdReader::default();
        assert!(r.read(&short_descriptor(0, 1, true, true)).is_none());
        let full = l2t2_key_descriptor(1);
        for n in 0..full.len() {
            let _ = DdReader::default().read(&full[..n]);
        }
        for seed in 0..500u32 {
            let junk: Vec<u8> = (0..(seed % 40))
                .map(|i| (seed.wrapping_mul(2654435761) >> (i % 24)) as u8)
                .collect();
            let _ = DdReader::default().read(&junk);
        }
    }
}
