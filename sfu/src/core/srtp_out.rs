//! Outbound SRTP for forwarded RTP (AES-128-GCM, RFC 7714, and
//! AES-CM-128 with HMAC-SHA1-80, RFC 3711), and the sender reports that
//! describe what went out.
//!
//! Forwarded packets are marshalled once into the datagram that leaves,
//! encrypted in place there, and never enter the library's write path:
//! that path moves every packet through a chain of queues and copies it
//! per handler, which was a third of the server's time in the meeting
//! profile (`docs/benchmarks.md`). Everything the library would have done
//! to such a packet on the way out is here: the rollover counter of each
//! SSRC and the sender reports (RFC 3550, 6.4.1), which the library
//! builds only from packets that pass through it. RTCP keeps using the
//! library's path.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::crypto::{AeadCipher, Mac, StreamCipher};
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp::header::Header;
use rtc::shared::marshal::{Marshal, MarshalSize};

use crate::core::ids::IdMap;

/// The longest tag an SRTP packet ends with (AES-GCM's; HMAC-SHA1-80's
/// is 10 bytes).
pub const TAG_LEN: usize = 16;
const SHA1_80_LEN: usize = 10;
/// The part of an RTCP packet SRTCP leaves in the clear: version, count,
/// type, length and the sender's SSRC.
const RTCP_HEADER: usize = 8;
/// How often each stream's sender report goes out (the library's default).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// The block datagrams are cut from: a dozen full-size packets.
const BLOCK: usize = 16 * 1024;
/// Headers up to this size (fixed part, CSRCs and extensions) are written
/// on the stack; larger ones, which are rare, in the block.
const STACK_HEADER: usize = 128;
/// A stream that sent nothing for this long gets no more reports (a
/// removed or paused leg), and is forgotten.
pub const STREAM_IDLE: Duration = Duration::from_secs(5);

/// Why a packet could not be protected.
#[derive(Debug, PartialEq, Eq)]
pub enum ProtectError {
    /// The packet does not marshal (a header too large for its fields).
    Marshal,
    /// The cipher refused it.
    Cipher,
}

/// A connection's outbound RTP session cipher: its SRTP profile, keyed.
pub enum SrtpCipher {
    /// AEAD_AES_128_GCM: the cipher under the session key, the session
    /// salt.
    Gcm {
        cipher: Box<dyn AeadCipher>,
        salt: [u8; 12],
    },
    /// AES_CM_128_HMAC_SHA1_80: counter mode under the session key, the
    /// MAC under the session authentication key, the session salt.
    CmSha1_80 {
        cipher: Box<dyn StreamCipher>,
        auth: Box<dyn Mac>,
        salt: [u8; 14],
    },
}

impl SrtpCipher {
    /// Encrypts `buf` (a marshalled RTP packet, header `header_len` bytes)
    /// in place and appends its tag.
    fn seal(
        &mut self,
        buf: &mut BytesMut,
        header_len: usize,
        ssrc: u32,
        roc: u32,
        seq: u16,
    ) -> bool {
        match self {
            SrtpCipher::Gcm { cipher, salt } => {
                let iv = gcm_iv(salt, ssrc.to_be_bytes(), roc, seq.to_be_bytes());
                let mut tag = [0u8; TAG_LEN];
                let (aad, body) = buf.split_at_mut(header_len);
                if cipher.seal_in_place(&iv, aad, body, &mut tag).is_err() {
                    return false;
                }
                buf.extend_from_slice(&tag);
            }
            SrtpCipher::CmSha1_80 { cipher, auth, salt } => {
                let iv = cm_iv(salt, ssrc.to_be_bytes(), roc, seq.to_be_bytes());
                if cipher.apply_keystream(&iv, &mut buf[header_len..]).is_err() {
                    return false;
                }
                let mut tag = [0u8; 20];
                if auth
                    .sign(&[&buf[..], &roc.to_be_bytes()], &mut tag)
                    .is_err()
                {
                    return false;
                }
                buf.extend_from_slice(&tag[..SHA1_80_LEN]);
            }
        }
        true
    }

    /// Checks and decrypts `buf` (an SRTP packet, header `header_len`
    /// bytes, tag at the end) in place; the tag is left for the caller to
    /// cut. False if it is not authentic under `roc`.
    pub(crate) fn open(&mut self, buf: &mut [u8], header_len: usize, roc: u32) -> bool {
        if buf.len() < header_len + self.tag_len() || header_len < 12 {
            return false;
        }
        let ssrc = [buf[8], buf[9], buf[10], buf[11]];
        let seq = [buf[2], buf[3]];
        let body_end = buf.len() - self.tag_len();
        match self {
            SrtpCipher::Gcm { cipher, salt } => {
                let iv = gcm_iv(salt, ssrc, roc, seq);
                let (aad, rest) = buf.split_at_mut(header_len);
                let (body, tag) = rest.split_at_mut(body_end - header_len);
                cipher.open_in_place(&iv, aad, body, tag).is_ok()
            }
            SrtpCipher::CmSha1_80 { cipher, auth, salt } => {
                let mut expected = [0u8; 20];
                let (signed, tag) = buf.split_at_mut(body_end);
                if auth
                    .sign(&[signed, &roc.to_be_bytes()], &mut expected)
                    .is_err()
                {
                    return false;
                }
                // Compared in constant time: how far a forged tag matches
                // must not show in how long it takes to refuse.
                let differ = tag
                    .iter()
                    .zip(&expected[..SHA1_80_LEN])
                    .fold(0u8, |d, (a, b)| d | (a ^ b));
                if differ != 0 {
                    return false;
                }
                let iv = cm_iv(salt, ssrc, roc, seq);
                cipher
                    .apply_keystream(&iv, &mut signed[header_len..])
                    .is_ok()
            }
        }
    }

    /// The E flag and SRTCP index of an SRTCP packet (RFC 3711 3.4; RFC
    /// 7714 9, where they follow the tag), `None` if `buf` is too short to
    /// carry them, a tag and an RTCP header.
    pub(crate) fn rtcp_e_index(&self, buf: &[u8]) -> Option<u32> {
        let plain = buf
            .len()
            .checked_sub(4 + self.tag_len())
            .filter(|&p| p >= RTCP_HEADER)?;
        let at = match self {
            SrtpCipher::Gcm { .. } => plain + TAG_LEN,
            SrtpCipher::CmSha1_80 { .. } => plain,
        };
        let b = &buf[at..at + 4];
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Checks and decrypts an SRTCP packet in place: `buf` is the whole
    /// packet, `e_index` its E flag and index ([`Self::rtcp_e_index`],
    /// the E flag set). Returns the length of the RTCP it leaves at the
    /// front of `buf`, or `None` if it is not authentic.
    pub(crate) fn open_rtcp(&mut self, buf: &mut [u8], e_index: u32) -> Option<usize> {
        let tag_len = self.tag_len();
        let len = buf.len();
        let plain = len.checked_sub(4 + tag_len).filter(|&p| p >= RTCP_HEADER)?;
        let ssrc = [buf[4], buf[5], buf[6], buf[7]];
        let index = e_index & 0x7fff_ffff;
        // The index in the nonce's place of the RTP packet index: the low
        // 48 bits of both IVs (RFC 3711 4.1.1, RFC 7714 9.1).
        let (hi, lo) = (index >> 16, (index as u16).to_be_bytes());
        let ok = match self {
            SrtpCipher::Gcm { cipher, salt } => {
                let iv = gcm_iv(salt, ssrc, hi, lo);
                let mut aad = [0u8; RTCP_HEADER + 4];
                aad[..RTCP_HEADER].copy_from_slice(&buf[..RTCP_HEADER]);
                aad[RTCP_HEADER..].copy_from_slice(&e_index.to_be_bytes());
                let (body, rest) = buf[RTCP_HEADER..].split_at_mut(plain - RTCP_HEADER);
                cipher
                    .open_in_place(&iv, &aad, body, &rest[..tag_len])
                    .is_ok()
            }
            SrtpCipher::CmSha1_80 { cipher, auth, salt } => {
                let mut expected = [0u8; 20];
                let (signed, tag) = buf.split_at_mut(len - tag_len);
                if auth.sign(&[signed], &mut expected).is_err() {
                    return None;
                }
                // Constant time, as for RTP.
                let differ = tag
                    .iter()
                    .zip(&expected[..SHA1_80_LEN])
                    .fold(0u8, |d, (a, b)| d | (a ^ b));
                let iv = cm_iv(salt, ssrc, hi, lo);
                differ == 0
                    && cipher
                        .apply_keystream(&iv, &mut signed[RTCP_HEADER..plain])
                        .is_ok()
            }
        };
        ok.then_some(plain)
    }

    /// The length of the tag that ends each packet.
    pub(crate) fn tag_len(&self) -> usize {
        match self {
            SrtpCipher::Gcm { .. } => TAG_LEN,
            SrtpCipher::CmSha1_80 { .. } => SHA1_80_LEN,
        }
    }
}

/// The AES-GCM nonce of a packet (RFC 7714, 8.1).
fn gcm_iv(salt: &[u8; 12], ssrc: [u8; 4], roc: u32, seq: [u8; 2]) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc);
    iv[6..10].copy_from_slice(&roc.to_be_bytes());
    iv[10..12].copy_from_slice(&seq);
    for (v, s) in iv.iter_mut().zip(salt) {
        *v ^= s;
    }
    iv
}

/// The AES counter-mode IV of a packet (RFC 3711, 4.1.1).
fn cm_iv(salt: &[u8; 14], ssrc: [u8; 4], roc: u32, seq: [u8; 2]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[4..8].copy_from_slice(&ssrc);
    iv[8..12].copy_from_slice(&roc.to_be_bytes());
    iv[12..14].copy_from_slice(&seq);
    for (v, s) in iv.iter_mut().zip(salt) {
        *v ^= s;
    }
    iv
}

/// One connection's outbound SRTP and sender-report state.
pub struct SrtpOut {
    cipher: SrtpCipher,
    streams: IdMap<u32, Stream>,
    next_report: Option<Instant>,
    /// The unused rest of the current block.
    block: BytesMut,
}

struct Stream {
    index: Index,
    /// Set by the first packet that is not probe padding: the stream is
    /// reported from then on.
    clock_rate: Option<u32>,
    packets: u32,
    octets: u32,
    /// The RTP timestamp of the newest packet and when it went out: the
    /// report's mapping of wall clock to media clock.
    ts: u32,
    ts_at: Instant,
    last_at: Instant,
}

/// The SRTP packet index of one SSRC as the sender keeps it: the rollover
/// counter and the highest sequence number sent (RFC 3711, 3.3.1).
#[derive(Default)]
struct Index {
    roc: u32,
    /// `None` before the first packet.
    highest: Option<u16>,
}

impl Index {
    /// The rollover counter for `seq`, and whether `seq` is the newest so
    /// far (a retransmission is not).
    fn roc_for(&mut self, seq: u16) -> (u32, bool) {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return (self.roc, true);
        };
        let ahead = seq.wrapping_sub(highest);
        if ahead == 0 {
            (self.roc, false)
        } else if ahead < 0x8000 {
            if seq < highest {
                self.roc = self.roc.wrapping_add(1);
            }
            self.highest = Some(seq);
            (self.roc, true)
        } else if seq > highest {
            // Older, from before the last wrap.
            (self.roc.saturating_sub(1), false)
        } else {
            (self.roc, false)
        }
    }
}

impl SrtpOut {
    pub fn new(cipher: SrtpCipher) -> Self {
        SrtpOut {
            cipher,
            streams: IdMap::default(),
            next_report: None,
            block: BytesMut::new(),
        }
    }

    /// The SRTP datagram of the packet `header` and `payload` make:
    /// marshalled once, encrypted in place, tag appended. `clock_rate` is
    /// the stream's media clock, for its sender reports; `None` for probe
    /// padding, which is not reported (as the library reports only the
    /// streams it negotiated). The parts are borrowed: forwarding rewrites
    /// one header in place for every leg of a packet.
    pub fn protect(
        &mut self,
        header: &Header,
        payload: &Bytes,
        clock_rate: Option<u32>,
        now: Instant,
    ) -> Result<BytesMut, ProtectError> {
        // Padding (probes, and the rare padded packet forwarded) as the
        // library writes it: to the next multiple of four, four when the
        // payload is one already, the last byte its count.
        let pad = if header.padding {
            4 - payload.len() % 4
        } else {
            0
        };
        let header_len = header.marshal_size();
        let len = header_len + payload.len() + pad;
        // Datagrams are cut from a block shared by many (one allocation
        // per block, not per packet); the block is freed when the last of
        // them has been sent.
        self.block.clear();
        if self.block.capacity() < len + TAG_LEN {
            self.block = BytesMut::with_capacity(BLOCK.max(len + TAG_LEN));
        }
        let buf = &mut self.block;
        let marshalled = if header_len <= STACK_HEADER {
            // Written on the stack and copied once: zeroing the header's
            // room in the block first cost as much as the copy.
            let mut on_stack = [0u8; STACK_HEADER];
            let n = header.marshal_to(&mut on_stack[..header_len]);
            buf.extend_from_slice(&on_stack[..header_len]);
            n
        } else {
            buf.resize(header_len, 0);
            header.marshal_to(&mut buf[..])
        };
        buf.extend_from_slice(payload);
        if pad > 0 {
            buf.resize(len - 1, 0);
            buf.extend_from_slice(&[pad as u8]);
        }
        if marshalled.is_err() {
            return Err(ProtectError::Marshal);
        }
        let ssrc = header.ssrc;
        let seq = header.sequence_number;
        let stream = self.streams.entry(ssrc).or_insert_with(|| Stream {
            index: Index::default(),
            clock_rate: None,
            packets: 0,
            octets: 0,
            ts: header.timestamp,
            ts_at: now,
            last_at: now,
        });
        let (roc, newest) = stream.index.roc_for(seq);
        if !self.cipher.seal(buf, header_len, ssrc, roc, seq) {
            return Err(ProtectError::Cipher);
        }
        let buf = buf.split();

        if clock_rate.is_some() {
            stream.clock_rate = clock_rate;
        }
        stream.packets = stream.packets.wrapping_add(1);
        stream.octets = stream.octets.wrapping_add(payload.len() as u32);
        stream.last_at = now;
        if newest && header.timestamp != stream.ts {
            stream.ts = header.timestamp;
            stream.ts_at = now;
        }
        if self.next_report.is_none() {
            self.next_report = Some(now + REPORT_INTERVAL);
        }
        Ok(buf)
    }

    /// Whether sender reports are due at `now`.
    pub fn reports_due(&self, now: Instant) -> bool {
        self.next_report.is_some_and(|t| now >= t)
    }

    /// A sender report for every stream that sent lately, with `ntp` the
    /// wall clock at `now` (NTP format); streams idle for
    /// [`STREAM_IDLE`] are forgotten.
    pub fn reports(&mut self, now: Instant, ntp: u64) -> Vec<SenderReport> {
        self.next_report = Some(now + REPORT_INTERVAL);
        self.streams
            .retain(|_, s| now.saturating_duration_since(s.last_at) < STREAM_IDLE);
        self.streams
            .iter()
            .filter_map(|(&ssrc, s)| {
                let clock_rate = s.clock_rate?;
                let since = now.saturating_duration_since(s.ts_at).as_secs_f64();
                Some(SenderReport {
                    ssrc,
                    ntp_time: ntp,
                    rtp_time: s.ts.wrapping_add((since * f64::from(clock_rate)) as u32),
                    packet_count: s.packets,
                    octet_count: s.octets,
                    ..Default::default()
                })
            })
            .collect()
    }
}

/// `t` as an NTP timestamp (seconds since 1900 in the high 32 bits, the
/// fraction in the low 32).
pub fn ntp_time(t: std::time::SystemTime) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    ((d.as_secs() + UNIX_TO_NTP) << 32) | frac
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::srtp_keys::{cm_session, gcm_session, Session};
    use bytes::Bytes;
    use rtc::rtp::packet::Packet;
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    const MASTER_KEY: [u8; 16] = [7; 16];
    const MASTER_SALT: [u8; 14] = [9, 8, 7, 6, 5, 4, 3, 2, 1, 2, 3, 4, 5, 6];

    /// Our session cipher and the library's context of `profile`, on one
    /// master key and salt (the salt cut to the profile's length).
    pub(crate) fn keyed(
        profile: ProtectionProfile,
        master: &[u8; 16],
        salt: &[u8; 14],
    ) -> (SrtpCipher, Context) {
        keyed_session(profile, master, salt, Session::Rtp)
    }

    /// As [`keyed`], our cipher for `session`.
    pub(crate) fn keyed_session(
        profile: ProtectionProfile,
        master: &[u8; 16],
        salt: &[u8; 14],
        session: Session,
    ) -> (SrtpCipher, Context) {
        let provider = rtc::crypto::default_provider().unwrap();
        let salt = &salt[..profile.salt_len()];
        let cipher = match profile {
            ProtectionProfile::AeadAes128Gcm => {
                gcm_session(provider.crypto(), master, salt, session)
            }
            _ => cm_session(provider.crypto(), master, salt, session),
        }
        .unwrap();
        let library = Context::new(master, salt, profile, None, None, provider.crypto()).unwrap();
        (cipher, library)
    }

    /// Our sender and the library's receiver, on one master key.
    fn pair(profile: ProtectionProfile) -> (SrtpOut, Context) {
        let (cipher, receiver) = keyed(profile, &MASTER_KEY, &MASTER_SALT);
        (SrtpOut::new(cipher), receiver)
    }

    const PROFILES: [ProtectionProfile; 2] = [
        ProtectionProfile::AeadAes128Gcm,
        ProtectionProfile::Aes128CmHmacSha1_80,
    ];

    fn packet(seq: u16, ts: u32, payload: &'static [u8]) -> Packet {
        let mut p = Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 0x1234_5678,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        };
        p.header
            .set_extension(3, Bytes::from_static(&[1, 2]))
            .unwrap();
        p
    }

    fn protect(
        out: &mut SrtpOut,
        p: &Packet,
        clock_rate: Option<u32>,
        now: Instant,
    ) -> Result<BytesMut, ProtectError> {
        out.protect(&p.header, &p.payload, clock_rate, now)
    }

    #[test]
    fn padded_packets_and_long_headers_are_written_whole() {
        for profile in PROFILES {
            let (mut out, mut rx) = pair(profile);
            let mut padded = packet(7, 70, b"probe");
            padded.header.padding = true;
            // Longer than what is written on the stack: 15 CSRCs and a
            // large two-byte extension.
            let mut long = packet(8, 80, b"media");
            long.header.csrc = (1..=15).collect();
            long.header.extension_profile = 0x1000;
            long.header.extensions[0].payload = Bytes::from_static(&[9; 100]);
            assert!(long.header.marshal_size() > STACK_HEADER);
            for p in [padded, long] {
                let wire = protect(&mut out, &p, Some(90_000), Instant::now()).unwrap();
                let plain = rx.decrypt_rtp(&wire).unwrap();
                let back = {
                    let mut b = &plain[..];
                    <Packet as rtc::shared::marshal::Unmarshal>::unmarshal(&mut b).unwrap()
                };
                assert_eq!(back.payload, p.payload, "{profile:?}");
                assert_eq!(back.header.padding, p.header.padding);
                assert_eq!(back.header.csrc, p.header.csrc);
                assert_eq!(back.header.extensions, p.header.extensions);
            }
        }
    }

    #[test]
    fn the_library_decrypts_what_it_protects_across_a_sequence_wrap() {
        for profile in PROFILES {
            decrypts_across_a_wrap(profile);
        }
    }

    fn decrypts_across_a_wrap(profile: ProtectionProfile) {
        let (mut out, mut rx) = pair(profile);
        let t0 = Instant::now();
        let mut decrypted = 0;
        // 65535 is held back and sent after the wrap, as a retransmission
        // would be: it must still carry the old rollover counter.
        for (seq, body) in [
            (65533u16, &b"first"[..]),
            (65534, b"second"),
            (0, b"third"),
            (1, b"fourth"),
            (65535, b"late"),
            (2, b"fifth"),
        ] {
            let p = packet(seq, u32::from(seq) * 10, body);
            let wire = protect(&mut out, &p, Some(90_000), t0).unwrap();
            assert_eq!(
                wire.len(),
                p.marshal_size() + profile.rtp_auth_tag_len().max(profile.aead_auth_tag_len())
            );
            let plain = rx
                .decrypt_rtp(&wire)
                .unwrap_or_else(|e| panic!("{profile:?}: the library accepts seq {seq}: {e}"));
            let back = {
                let mut b = &plain[..];
                <Packet as rtc::shared::marshal::Unmarshal>::unmarshal(&mut b).unwrap()
            };
            assert_eq!(back.payload, p.payload, "seq {seq}");
            assert_eq!(back.header.sequence_number, seq);
            decrypted += 1;
            assert_eq!(
                back.header.get_extension(3),
                Some(Bytes::from_static(&[1, 2]))
            );
        }
        assert_eq!(decrypted, 6);
    }

    #[test]
    fn a_wrong_key_is_refused_by_the_receiver() {
        let provider = rtc::crypto::default_provider().unwrap();
        for (profile, cipher) in [
            gcm_session(
                provider.crypto(),
                &[8; 16],
                &MASTER_SALT[..12],
                Session::Rtp,
            ),
            cm_session(provider.crypto(), &[8; 16], &MASTER_SALT, Session::Rtp),
        ]
        .into_iter()
        .enumerate()
        {
            let mut out = SrtpOut::new(cipher.unwrap());
            let (_, mut rx) = pair(PROFILES[profile]);
            let wire =
                protect(&mut out, &packet(5, 0, b"x"), Some(90_000), Instant::now()).unwrap();
            assert!(rx.decrypt_rtp(&wire).is_err());
        }
    }

    #[test]
    fn reports_count_what_went_out_and_follow_the_media_clock() {
        let (mut out, _) = pair(ProtectionProfile::AeadAes128Gcm);
        let t0 = Instant::now();
        assert!(!out.reports_due(t0));
        // Probe padding on a stream of its own is protected, not reported.
        let mut probe = packet(1, 0, b"pad");
        probe.header.ssrc = 99;
        protect(&mut out, &probe, None, t0).unwrap();
        protect(&mut out, &packet(10, 1_000, b"abcd"), Some(90_000), t0).unwrap();
        protect(&mut out, &packet(11, 1_000, b"efg"), Some(90_000), t0).unwrap();
        protect(
            &mut out,
            &packet(12, 4_000, b"hi"),
            Some(90_000),
            t0 + Duration::from_millis(30),
        )
        .unwrap();
        // A retransmission of an older packet counts, but does not move
        // the clock mapping.
        protect(
            &mut out,
            &packet(10, 1_000, b"abcd"),
            Some(90_000),
            t0 + Duration::from_millis(40),
        )
        .unwrap();
        assert!(!out.reports_due(t0 + Duration::from_millis(500)));
        let at = t0 + REPORT_INTERVAL;
        assert!(out.reports_due(at));
        let r = out.reports(at, 42);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].ssrc, 0x1234_5678);
        assert_eq!(r[0].packet_count, 4);
        assert_eq!(r[0].octet_count, 4 + 3 + 2 + 4);
        assert_eq!(r[0].ntp_time, 42);
        // 970 ms after the packet stamped 4,000 at 90 kHz.
        assert_eq!(r[0].rtp_time, 4_000 + 87_300);
        assert!(!out.reports_due(at));
        // Idle streams stop being reported.
        assert!(out.reports(at + STREAM_IDLE, 43).is_empty());
    }

    #[test]
    fn ntp_time_counts_from_1900() {
        let t = std::time::UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(ntp_time(t), ((2_208_988_800u64 + 1) << 32) | (1u64 << 31));
    }
}
