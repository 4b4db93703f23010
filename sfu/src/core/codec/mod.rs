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
        match name.to_ascii_lowercase().as_str() {
            "opus" => CodecKind::Opus,
            "vp8" => CodecKind::Vp8,
            "vp9" => CodecKind::Vp9,
            "h264" => CodecKind::H264,
            "av1" => CodecKind::Av1,
            _ => CodecKind::Other,
        }
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
    /// A point where forwarding may move up to this temporal layer.
    pub temporal_switch: bool,
    /// Last packet of this layer's part of the picture (SVC).
    pub layer_end: bool,
    pub desc: Desc,
}

/// Reads a packet's payload (and, for AV1, its dependency descriptor,
/// already resolved by the stream's [`dd::DdReader`]).
pub fn frame_info(codec: CodecKind, payload: &[u8], dd: Option<&dd::DdFrame>) -> FrameInfo {
    if let Some(f) = dd {
        return FrameInfo {
            picture_start: f.start_of_frame && f.spatial == 0,
            keyframe: f.start_of_frame && f.spatial == 0 && f.independent,
            spatial: f.spatial,
            temporal: f.temporal,
            temporal_switch: f.independent || f.temporal == 0,
            layer_end: f.end_of_frame,
            desc: match codec {
                CodecKind::Vp8 => vp8::Vp8Desc::parse(payload).map_or(Desc::None, Desc::Vp8),
                CodecKind::Vp9 => vp9::Vp9Desc::parse(payload).map_or(Desc::None, Desc::Vp9),
                _ => Desc::None,
            },
        };
    }
    match codec {
        CodecKind::Vp8 => match vp8::Vp8Desc::parse(payload) {
            Some(d) => FrameInfo {
                picture_start: d.picture_start,
                keyframe: d.keyframe,
                spatial: 0,
                temporal: d.tid,
                temporal_switch: d.layer_sync || d.tid == 0,
                layer_end: false,
                desc: Desc::Vp8(d),
            },
            None => FrameInfo::default(),
        },
        CodecKind::Vp9 => match vp9::Vp9Desc::parse(payload) {
            Some(d) => FrameInfo {
                picture_start: d.begin && d.sid == 0,
                keyframe: d.keyframe(),
                spatial: d.sid,
                temporal: d.tid,
                temporal_switch: d.switch_up || d.tid == 0,
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
