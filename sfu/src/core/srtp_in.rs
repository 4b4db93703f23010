//! Inbound SRTP for publishers' RTP (AES-128-GCM, RFC 7714, and AES-CM-128
//! with HMAC-SHA1-80, RFC 3711): the packet index, the replay window and
//! the decryption, in place.
//!
//! A publisher's packet read through the library walks its whole receive
//! pipeline (ICE, DTLS and SRTP handlers, the interceptor chain, a queue
//! and a copy per handler, the track lookup) before the shard sees it:
//! about 10 µs per datagram and a sixth of a busy server's time in the
//! meeting profile (`docs/benchmarks.md`). The shard decrypts the RTP of
//! the streams it forwards itself, with the remote keys the connection's
//! crypto provider noted (`engine::srtp_keys`), and hands the packet to
//! the connection's receive interceptors directly (`engine::read_side`).
//! Everything else (RTCP, STUN, DTLS, streams the shard does not know
//! yet) stays with the library.

use bytes::BytesMut;

use crate::core::ids::IdMap;
use crate::core::srtp_out::SrtpCipher;

/// How far behind the newest packet a packet may arrive and still be
/// accepted once (the library's setting on our connections, for
/// retransmissions on the media SSRC).
pub const REPLAY_WINDOW: u64 = 1024;

/// Why a packet was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum UnprotectError {
    /// Shorter than its header and tag, or not RTP version 2.
    Malformed,
    /// Received before, or older than the replay window.
    Replayed,
    /// The tag does not match: not from the holder of the keys, or
    /// altered on the way.
    Forged,
}

/// One connection's inbound SRTP state.
pub struct SrtpIn {
    cipher: SrtpCipher,
    streams: IdMap<u32, Window>,
}

/// The receiver's index of one SSRC (RFC 3711, 3.3.1 and appendix A) and
/// which of the last [`REPLAY_WINDOW`] indexes arrived.
pub(super) struct Window {
    roc: u32,
    highest: u16,
    /// Bit `i % REPLAY_WINDOW` is set when index `i` arrived.
    seen: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl Window {
    pub(super) fn new(roc: u32, seq: u16) -> Self {
        let mut w = Window {
            roc,
            highest: seq,
            seen: [0; (REPLAY_WINDOW / 64) as usize],
        };
        w.mark(index(roc, seq));
        w
    }

    fn highest_index(&self) -> u64 {
        index(self.roc, self.highest)
    }

    /// The rollover counter a packet with `seq` most likely carries.
    fn estimate(&self, seq: u16) -> u32 {
        let (s_l, seq) = (i32::from(self.highest), i32::from(seq));
        if s_l < 0x8000 {
            if seq - s_l > 0x8000 && self.roc > 0 {
                self.roc - 1
            } else {
                self.roc
            }
        } else if s_l - 0x8000 > seq {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        }
    }

    fn bit(i: u64) -> (usize, u64) {
        let b = i % REPLAY_WINDOW;
        ((b / 64) as usize, 1 << (b % 64))
    }

    fn is_marked(&self, i: u64) -> bool {
        let (w, m) = Self::bit(i);
        self.seen[w] & m != 0
    }

    fn mark(&mut self, i: u64) {
        let (w, m) = Self::bit(i);
        self.seen[w] |= m;
    }

    /// Whether index `i` may be accepted (before its tag is checked).
    pub(super) fn admits(&self, i: u64) -> bool {
        let h = self.highest_index();
        i > h || (h - i < REPLAY_WINDOW && !self.is_marked(i))
    }

    /// Records an authenticated packet.
    pub(super) fn accept(&mut self, roc: u32, seq: u16) {
        let i = index(roc, seq);
        let h = self.highest_index();
        if i > h {
            if i - h >= REPLAY_WINDOW {
                self.seen = [0; (REPLAY_WINDOW / 64) as usize];
            } else {
                for j in h + 1..i {
                    let (w, m) = Self::bit(j);
                    self.seen[w] &= !m;
                }
            }
            self.roc = roc;
            self.highest = seq;
        }
        self.mark(i);
    }
}

pub(super) fn index(roc: u32, seq: u16) -> u64 {
    (u64::from(roc) << 16) | u64::from(seq)
}

/// The length of an RTP packet's header: fixed part, CSRCs, extension.
fn header_len(buf: &[u8]) -> Option<usize> {
    let first = *buf.first()?;
    if first >> 6 != 2 || buf.len() < 12 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = buf.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    (len <= buf.len()).then_some(len)
}

impl SrtpIn {
    pub fn new(cipher: SrtpCipher) -> Self {
        SrtpIn {
            cipher,
            streams: IdMap::default(),
        }
    }

    /// Authenticates and decrypts one SRTP packet in place, leaving the
    /// RTP packet (the tag cut off).
    ///
    /// A stream's first packet here is taken to be in its first 65,536
    /// (rollover counter 0), or just past the first wrap: the library
    /// read the stream's first packets, until the shard knew it.
    pub fn unprotect(&mut self, buf: &mut BytesMut) -> Result<(), UnprotectError> {
        let header = header_len(buf).ok_or(UnprotectError::Malformed)?;
        let tag = self.cipher.tag_len();
        if buf.len() < header + tag {
            return Err(UnprotectError::Malformed);
        }
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let roc = match self.streams.get(&ssrc) {
            Some(w) => {
                let roc = w.estimate(seq);
                if !w.admits(index(roc, seq)) {
                    return Err(UnprotectError::Replayed);
                }
                if !self.cipher.open(buf, header, roc) {
                    return Err(UnprotectError::Forged);
                }
                roc
            }
            None => {
                // A failed AEAD open leaves the buffer undefined: the second
                // guess works on a copy.
                let copy = buf.clone();
                if self.cipher.open(buf, header, 0) {
                    0
                } else {
                    buf.copy_from_slice(&copy);
                    if !self.cipher.open(buf, header, 1) {
                        return Err(UnprotectError::Forged);
                    }
                    1
                }
            }
        };
        self.streams
            .entry(ssrc)
            .and_modify(|w| w.accept(roc, seq))
            .or_insert_with(|| Window::new(roc, seq));
        buf.truncate(buf.len() - tag);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::srtp_out::tests::keyed;
    use bytes::Bytes;
    use rtc::rtp::packet::Packet;
    use rtc::shared::marshal::{Marshal, Unmarshal};
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    const MASTER_KEY: [u8; 16] = [3; 16];
    const MASTER_SALT: [u8; 14] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
    const PROFILES: [ProtectionProfile; 2] = [
        ProtectionProfile::AeadAes128Gcm,
        ProtectionProfile::Aes128CmHmacSha1_80,
    ];

    /// The library's sender and our receiver, on one master key.
    fn pair(profile: ProtectionProfile) -> (Context, SrtpIn) {
        let (cipher, sender) = keyed(profile, &MASTER_KEY, &MASTER_SALT);
        (sender, SrtpIn::new(cipher))
    }

    fn rtp(seq: u16) -> Packet {
        let mut p = Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                timestamp: u32::from(seq) * 3000,
                ssrc: 0x0102_0304,
                csrc: vec![0x0a0b_0c0d],
                ..Default::default()
            },
            payload: Bytes::from(vec![seq as u8; 300]),
        };
        p.header
            .set_extension(4, Bytes::from_static(b"video"))
            .unwrap();
        p
    }

    fn protect(sender: &mut Context, p: &Packet) -> BytesMut {
        let plain = p.marshal().unwrap();
        BytesMut::from(&sender.encrypt_rtp(&plain).unwrap()[..])
    }

    fn open(rx: &mut SrtpIn, mut wire: BytesMut) -> Result<Packet, UnprotectError> {
        rx.unprotect(&mut wire)?;
        Ok(Packet::unmarshal(&mut wire.freeze()).unwrap())
    }

    /// What the library protects comes out as it went in, across a
    /// sequence number wrap (the rollover counter follows), for both
    /// profiles; a packet from before the wrap that arrives after it is
    /// still accepted.
    #[test]
    fn the_library_s_srtp_is_read_across_a_wrap_and_out_of_order() {
        for profile in PROFILES {
            let (mut tx, mut rx) = pair(profile);
            let seqs: Vec<u16> = (65_500..=65_535).chain(0..40).collect();
            let mut late = None;
            for (n, &seq) in seqs.iter().enumerate() {
                let p = rtp(seq);
                let wire = protect(&mut tx, &p);
                if seq == 65_534 {
                    late = Some((p, wire));
                    continue;
                }
                let got = open(&mut rx, wire).unwrap_or_else(|e| panic!("{profile:?} #{n}: {e:?}"));
                assert_eq!(got, p, "{profile:?}");
            }
            let (p, wire) = late.unwrap();
            assert_eq!(open(&mut rx, wire).unwrap(), p, "{profile:?}: late");
        }
    }

    #[test]
    fn a_replay_an_altered_packet_and_one_past_the_window_are_refused() {
        for profile in PROFILES {
            let (mut tx, mut rx) = pair(profile);
            let first = protect(&mut tx, &rtp(10));
            open(&mut rx, first.clone()).unwrap();
            assert_eq!(open(&mut rx, first), Err(UnprotectError::Replayed));

            let mut altered = protect(&mut tx, &rtp(11));
            let last = altered.len() - 20;
            altered[last] ^= 1;
            assert_eq!(open(&mut rx, altered), Err(UnprotectError::Forged));
            // Refused, it did not count as received: the real one passes.
            assert!(open(&mut rx, protect(&mut tx, &rtp(11))).is_ok());

            let old = protect(&mut tx, &rtp(12));
            for seq in 13..13 + REPLAY_WINDOW as u16 + 1 {
                open(&mut rx, protect(&mut tx, &rtp(seq))).unwrap();
            }
            assert_eq!(open(&mut rx, old), Err(UnprotectError::Replayed));
        }
    }

    #[test]
    fn a_stream_first_seen_just_after_its_first_wrap_is_read() {
        for profile in PROFILES {
            let (mut tx, mut rx) = pair(profile);
            // The library read 65,530 to 65,535 (we never saw them).
            for seq in 65_530..=65_535 {
                let _ = protect(&mut tx, &rtp(seq));
            }
            for seq in 0..5 {
                let p = rtp(seq);
                assert_eq!(open(&mut rx, protect(&mut tx, &p)), Ok(p), "{profile:?}");
            }
        }
    }

    #[test]
    fn garbage_is_refused_without_a_panic() {
        let (_, mut rx) = pair(ProtectionProfile::AeadAes128Gcm);
        for bad in [
            &b""[..],
            &[0x80; 11][..],
            &[
                0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff,
            ][..],
            &[0x8f; 40][..],
            &[0x80; 40][..],
        ] {
            let mut b = BytesMut::from(bad);
            assert!(rx.unprotect(&mut b).is_err(), "{bad:?}");
        }
    }
}
