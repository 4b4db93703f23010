//! Inbound SRTCP (AES-128-GCM, RFC 7714 9, and AES-CM-128 with
//! HMAC-SHA1-80, RFC 3711 3.4): the replay window of each sender and the
//! decryption, in place.
//!
//! Every subscriber sends the shard a stream of RTCP about what it
//! receives (transport-wide feedback several times a second, receiver
//! reports, NACKs, keyframe requests), and every publisher its sender
//! reports. Read through the library, each such datagram walked its whole
//! receive pipeline (ICE, DTLS and SRTP handlers, the interceptor chain,
//! the track lookup): about 6 % of a busy server's time in the meeting
//! profile, more where subscribers outnumber publishers. The shard reads
//! the RTCP of a connection whose RTP it reads (`core::srtp_in`) itself,
//! with the RTCP session keys of the same master key, and hands it to the
//! connection's receive interceptors and its own feedback handling.

use bytes::BytesMut;

use crate::core::ids::IdMap;
use crate::core::srtp_in::{index, UnprotectError, Window};
use crate::core::srtp_out::SrtpCipher;

/// The packet types of RTCP (RFC 3550 and after: 192 to 223), which is
/// how an RTCP datagram is told from RTP on a shared port (RFC 5761 4).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

/// One connection's inbound SRTCP state.
pub struct SrtcpIn {
    cipher: SrtpCipher,
    /// Per sender SSRC: the SRTCP indexes that arrived (the index split as
    /// an RTP packet index is, rollover counter and sequence number).
    senders: IdMap<u32, Window>,
}

/// Why an SRTCP packet was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum SrtcpError {
    /// Sent unencrypted (E flag clear): left to the library, which reads
    /// it if the connection allows it.
    Unencrypted,
    /// Refused (malformed, replayed or forged).
    Refused(UnprotectError),
}

impl SrtcpIn {
    pub fn new(cipher: SrtpCipher) -> Self {
        SrtcpIn {
            cipher,
            senders: IdMap::default(),
        }
    }

    /// Authenticates and decrypts one SRTCP packet in place, leaving the
    /// RTCP compound packet (index and tag cut off).
    pub fn unprotect(&mut self, buf: &mut BytesMut) -> Result<(), SrtcpError> {
        let refused = SrtcpError::Refused;
        let e_index = self
            .cipher
            .rtcp_e_index(buf)
            .filter(|_| is_rtcp(buf))
            .ok_or(refused(UnprotectError::Malformed))?;
        if e_index >> 31 == 0 {
            return Err(SrtcpError::Unencrypted);
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let i = e_index & 0x7fff_ffff;
        let (roc, seq) = (i >> 16, i as u16);
        if let Some(w) = self.senders.get(&ssrc) {
            if !w.admits(index(roc, seq)) {
                return Err(refused(UnprotectError::Replayed));
            }
        }
        let Some(plain) = self.cipher.open_rtcp(buf, e_index) else {
            return Err(refused(UnprotectError::Forged));
        };
        self.senders
            .entry(ssrc)
            .and_modify(|w| w.accept(roc, seq))
            .or_insert_with(|| Window::new(roc, seq));
        buf.truncate(plain);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::srtp_out::tests::keyed_session;
    use crate::engine::srtp_keys::Session;
    use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::shared::marshal::Marshal;
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    const MASTER_KEY: [u8; 16] = [5; 16];
    const MASTER_SALT: [u8; 14] = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28];
    const PROFILES: [ProtectionProfile; 2] = [
        ProtectionProfile::AeadAes128Gcm,
        ProtectionProfile::Aes128CmHmacSha1_80,
    ];

    /// The library's sender and our receiver, on one master key.
    fn pair(profile: ProtectionProfile) -> (Context, SrtcpIn) {
        let (cipher, sender) = keyed_session(profile, &MASTER_KEY, &MASTER_SALT, Session::Rtcp);
        (sender, SrtcpIn::new(cipher))
    }

    /// A compound packet: a receiver report from `ssrc`, then a PLI.
    fn compound(ssrc: u32) -> Vec<u8> {
        let rr = ReceiverReport {
            ssrc,
            ..Default::default()
        };
        let pli = PictureLossIndication {
            sender_ssrc: ssrc,
            media_ssrc: 0xabcd,
        };
        let mut raw = rr.marshal().unwrap().to_vec();
        raw.extend_from_slice(&pli.marshal().unwrap());
        raw
    }

    fn protect(tx: &mut Context, plain: &[u8]) -> BytesMut {
        BytesMut::from(&tx.encrypt_rtcp(plain).unwrap()[..])
    }

    #[test]
    fn what_the_library_protects_is_read_back_whole() {
        for profile in PROFILES {
            let (mut tx, mut rx) = pair(profile);
            for n in 0..300u32 {
                let plain = compound(0x1000 + n % 3);
                let mut wire = protect(&mut tx, &plain);
                assert_ne!(&wire[8..plain.len()], &plain[8..], "{profile:?}: encrypted");
                rx.unprotect(&mut wire)
                    .unwrap_or_else(|e| panic!("{profile:?} packet {n}: {e:?}"));
                assert_eq!(&wire[..], &plain[..], "{profile:?} packet {n}");
                let pkts = rtc::rtcp::packet::unmarshal(&mut wire.freeze()).unwrap();
                assert_eq!(pkts.len(), 2);
            }
        }
    }

    #[test]
    fn replays_alterations_and_garbage_are_refused() {
        for profile in PROFILES {
            let (mut tx, mut rx) = pair(profile);
            let first = protect(&mut tx, &compound(1));
            assert!(rx.unprotect(&mut first.clone()).is_ok());
            assert_eq!(
                rx.unprotect(&mut first.clone()),
                Err(SrtcpError::Refused(UnprotectError::Replayed)),
                "{profile:?}"
            );
            let mut altered = protect(&mut tx, &compound(1));
            altered[10] ^= 1;
            assert_eq!(
                rx.unprotect(&mut altered),
                Err(SrtcpError::Refused(UnprotectError::Forged)),
                "{profile:?}"
            );
            // The packet after a forged one is still read.
            assert!(rx.unprotect(&mut protect(&mut tx, &compound(1))).is_ok());
            // Unencrypted: the E flag clear.
            let mut clear = protect(&mut tx, &compound(1));
            let at = match profile {
                ProtectionProfile::AeadAes128Gcm => clear.len() - 4,
                _ => clear.len() - 14,
            };
            clear[at] &= 0x7f;
            assert_eq!(rx.unprotect(&mut clear), Err(SrtcpError::Unencrypted));
            for bad in [
                &[][..],
                &[0x80, 200, 0, 1][..],
                &[
                    0x80, 96, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                    19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                ][..],
                &[0xff; 40][..],
            ] {
                let mut b = BytesMut::from(bad);
                assert!(rx.unprotect(&mut b).is_err(), "{bad:?}");
            }
        }
    }

    #[test]
    fn late_packets_within_the_window_are_read_once() {
        for profile in PROFILES {
            let (mut tx, mut rx) = pair(profile);
            let held = protect(&mut tx, &compound(9));
            for _ in 0..20 {
                assert!(rx.unprotect(&mut protect(&mut tx, &compound(9))).is_ok());
            }
            assert!(rx.unprotect(&mut held.clone()).is_ok(), "{profile:?}");
            assert!(rx.unprotect(&mut held.clone()).is_err(), "{profile:?}");
        }
    }
}
