//! H.264 (RFC 6184): whether a packet starts an IDR picture, the only
//! point a subscriber can start decoding or switch streams at.

/// True when the packet carries (the start of) an IDR slice or a sequence
/// parameter set: single NAL units, STAP-A aggregates, and the first
/// fragment of an FU-A.
pub fn keyframe(p: &[u8]) -> bool {
    let Some(&h) = p.first() else {
        return false;
    };
    let is_key = |t: u8| t == 5 || t == 7;
    match h & 0x1f {
        // STAP-A: 16-bit size, then a NAL unit, repeated.
        24 => {
            let mut i = 1;
            while let Some(sz) = p.get(i..i + 2) {
                let n = u16::from_be_bytes([sz[0], sz[1]]) as usize;
                match p.get(i + 2) {
                    Some(nal) if is_key(nal & 0x1f) => return true,
                    Some(_) => {}
                    None => return false,
                }
                i += 2 + n;
            }
            false
        }
        // FU-A: the start bit and the fragmented unit's type.
        28 => p
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && is_key(fu & 0x1f)),
        t => is_key(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idr_and_sps_in_every_packetization() {
        assert!(keyframe(&[0x65, 1, 2])); // IDR slice
        assert!(keyframe(&[0x67, 1])); // SPS
        assert!(!keyframe(&[0x41, 1])); // non-IDR slice
                                        // STAP-A with SPS and PPS.
        assert!(keyframe(&[0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 1]));
        assert!(!keyframe(&[0x78, 0, 2, 0x68, 1, 0, 2, 0x41, 1]));
        assert!(!keyframe(&[0x78, 0, 9])); // truncated
                                           // FU-A start of an IDR, and a middle fragment.
        assert!(keyframe(&[0x7c, 0x85, 1]));
        assert!(!keyframe(&[0x7c, 0x05, 1]));
        assert!(!keyframe(&[]));
    }
}
