//! What the forwarder needs to know about a packet's payload, read once per
//! incoming packet (not per subscriber): where pictures start, keyframes,
//! and the spatial and temporal layer, per codec.

pub mod dd;
pub mod h264;
pub mod vp8;
pub mod vp9;

/// The codecs the forwarder tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecKind {
    Opus,
    Vp8,
    Vp9,
    H264,
    Av1,
    /// Any other: forwarded as it is, never a layer switch point.
    Other,
}

impl CodecKind {
    /// From an SDP encoding name.
    pub fn from_name(name: &str) -> CodecKind {
        // Read per packet: compared in place, not lowercased into a copy.
        const NAMES: [(&str, CodecKind); 5] = [
            ("opus", CodecKind::Opus),
            ("vp8", CodecKind::Vp8),
            ("vp9", CodecKind::Vp9),
            ("h264", CodecKind::H264),
            ("av1", CodecKind::Av1),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(CodecKind::Other, |(_, k)| *k)
    }

    pub fn is_video(self) -> bool {
        !matches!(self, CodecKind::Opus)
    }
}

/// Codec-specific header data kept for the rewrite.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Desc {
    #[default]
    None,
    Vp8(vp8::Vp8Desc),
    Vp9(vp9::Vp9Desc),
}

/// One incoming packet as the layer logic sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// First packet of a picture (of the base spatial layer for SVC).
    pub picture_start: bool,
    /// First packet of a keyframe: decoding can start here.
    pub keyframe: bool,
    /// Spatial layer within the stream (SVC; 0 otherwise).
    pub spatial: u8,
    pub temporal: u8,
    /// At this picture's start, forwarding may move up to any temporal
    /// layer up to this one (0: to none above the base), provided the
    /// picture's own layer is forwarded then.
    pub switch_up_to: u8,
    /// Last packet of this layer's part of the picture (SVC).
    pub layer_end: bool,
    pub desc: Desc,
}

/// Where forwarding may move up at a frame the dependency descriptor
/// describes. A base-layer frame refers only to base-layer frames, and in
/// every temporal structure encoders use (L1T2, L1T3, LxTy) the frames
/// above it refer to it or to later frames: every layer may start there.
/// Higher up, only a frame that refers to nothing earlier.
fn dd_switch_up_to(f: &dd::DdFrame) -> u8 {
    match f.temporal {
        0 => u8::MAX,
        t if f.independent => t,
        _ => 0,
    }
}

/// Reads a packet's payload and its dependency descriptor, already
/// resolved by the stream's [`dd::DdReader`]: for AV1, the descriptor says
/// everything; for VP8, it gives the temporal layer when the payload
/// descriptor does not (Chromium leaves the TID out of VP8's once the
/// dependency descriptor is negotiated).
pub fn frame_info(codec: CodecKind, payload: &[u8], dd: Option<&dd::DdFrame>) -> FrameInfo {
    if let Some(f) = dd.filter(|_| codec != CodecKind::Vp8) {
        return FrameInfo {
            picture_start: f.start_of_frame && f.spatial == 0,
            keyframe: f.start_of_frame && f.spatial == 0 && f.independent,
            spatial: f.spatial,
            temporal: f.temporal,
            switch_up_to: dd_switch_up_to(f),
            layer_end: f.end_of_frame,
            desc: match codec {
                CodecKind::Vp9 => vp9::Vp9Desc::parse(payload).map_or(Desc::None, Desc::Vp9),
                _ => Desc::None,
            },
        };
    }
    match codec {
        CodecKind::Vp8 => match vp8::Vp8Desc::parse(payload) {
            Some(d) => {
                let (temporal, switch_up_to) = match dd.filter(|_| !d.tid_present) {
                    Some(f) => (f.temporal, dd_switch_up_to(f)),
                    None => (d.tid, if d.layer_sync { d.tid } else { 0 }),
                };
                FrameInfo {
                    picture_start: d.picture_start,
                    keyframe: d.keyframe,
                    spatial: 0,
                    temporal,
                    switch_up_to,
                    layer_end: false,
                    desc: Desc::Vp8(d),
                }
            }
            None => FrameInfo::default(),
        },
        CodecKind::Vp9 => match vp9::Vp9Desc::parse(payload) {
            Some(d) => FrameInfo {
                picture_start: d.begin && d.sid == 0,
                keyframe: d.keyframe(),
                spatial: d.sid,
                temporal: d.tid,
                switch_up_to: if d.switch_up { d.tid } else { 0 },
                layer_end: d.end,
                desc: Desc::Vp9(d),
            },
            None => FrameInfo::default(),
        },
        CodecKind::H264 => {
            let key = h264::keyframe(payload);
            FrameInfo {
                picture_start: key,
                keyframe: key,
                ..Default::default()
            }
        }
        // AV1 without a descriptor: a single layer whose keyframes the
        // aggregation header's N bit (new coded video sequence) marks.
        CodecKind::Av1 => {
            let key = payload.first().is_some_and(|h| h & 0x08 != 0);
            FrameInfo {
                picture_start: key,
                keyframe: key,
                ..Default::default()
            }
        }
        CodecKind::Opus | CodecKind::Other => FrameInfo::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_takes_the_temporal_layer_from_the_dependency_descriptor_when_its_own_has_none() {
        let with_tid = vp8::tests::vp8_payload(true, 7, 3, 2, true, false);
        // Chromium's VP8 with the dependency descriptor: S bit only.
        let bare: Vec<u8> = [0x10]
            .into_iter()
            .chain(with_tid[6..].iter().copied())
            .collect();
        let dd = |temporal, independent| dd::DdFrame {
            start_of_frame: true,
            end_of_frame: true,
            temporal,
            independent,
            ..Default::default()
        };
        let info = frame_info(CodecKind::Vp8, &bare, Some(&dd(1, false)));
        assert_eq!((info.temporal, info.switch_up_to), (1, 0));
        assert!(info.picture_start && !info.keyframe);
        assert!(matches!(info.desc, Desc::Vp8(d) if d.picture_id.is_none()));
        let base = frame_info(CodecKind::Vp8, &bare, Some(&dd(0, false)));
        assert_eq!((base.temporal, base.switch_up_to), (0, u8::MAX));
        // Without the descriptor: the base layer, no switching point.
        let plain = frame_info(CodecKind::Vp8, &bare, None);
        assert_eq!((plain.temporal, plain.switch_up_to), (0, 0));
        // The payload descriptor's own TID wins.
        let own = frame_info(CodecKind::Vp8, &with_tid, Some(&dd(0, false)));
        assert_eq!((own.temporal, own.switch_up_to), (2, 2));
        assert!(matches!(own.desc, Desc::Vp8(d) if d.picture_id == Some((7, true))));
    }
}
