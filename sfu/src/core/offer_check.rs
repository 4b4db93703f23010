//! What a client's offer must be before the server applies it.
//!
//! The media library applies an offer in steps; one that fails half-way
//! leaves the connection in a state where every later offer is refused
//! ("invalid proposed signaling state transition"). So an offer is checked
//! here first, as text, for everything the library would fail on or the
//! server will not do; the shard still rolls back if the library refuses
//! one anyway. The checks are linear in the offer's size and allocate only
//! the list of mids.

use std::time::{Duration, Instant};

/// New media sections a client may add in one offer, beyond those the
/// connection has. Each costs the server a transceiver and work on every
/// later offer; a participant publishes at most a handful of tracks.
pub const MAX_NEW_SECTIONS_PER_OFFER: usize = 16;
/// Offers a participant may send in a burst.
pub const OFFER_BURST: u32 = 10;
/// Offers a participant may send per second, sustained.
pub const OFFERS_PER_SECOND: u32 = 2;

/// A participant's offer budget: a token bucket of [`OFFER_BURST`]
/// refilled at [`OFFERS_PER_SECOND`]. Applying an offer is the dearest
/// thing a client can ask of its shard, whose other rooms wait meanwhile.
#[derive(Clone, Debug)]
pub struct OfferRate {
    tokens: u32,
    refilled: Option<Instant>,
}

impl Default for OfferRate {
    fn default() -> Self {
        OfferRate {
            tokens: OFFER_BURST,
            refilled: None,
        }
    }
}

impl OfferRate {
    /// Takes one offer's token at `now`; false when none is left.
    pub fn take(&mut self, now: Instant) -> bool {
        let step = Duration::from_secs(1) / OFFERS_PER_SECOND;
        let since = *self.refilled.get_or_insert(now);
        let due = (now.saturating_duration_since(since).as_nanos() / step.as_nanos()) as u32;
        if due > 0 {
            self.tokens = (self.tokens + due).min(OFFER_BURST);
            self.refilled = Some(since + step * due);
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// Why an offer is refused before it is applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("the offer has no media section")]
    NoMedia,
    #[error("the offer has {0} media sections; at most {1} are accepted here")]
    TooManySections(usize, usize),
    #[error("media section {0} is `{1}`: only audio, video and application are accepted")]
    UnsupportedMedia(usize, String),
    #[error("media section {0} has no ICE ufrag or password")]
    NoIceCredentials(usize),
    #[error("ICE ufrag must be 4 to 256 characters of ALPHA, DIGIT, '+' or '/' (RFC 8839)")]
    BadUfrag,
    #[error("ICE password must be 22 to 256 characters of ALPHA, DIGIT, '+' or '/' (RFC 8839)")]
    BadPassword,
    #[error("media section {0} has no DTLS fingerprint")]
    NoFingerprint(usize),
    #[error("a DTLS fingerprint is malformed: {0:?}")]
    BadFingerprint(String),
    #[error("media section {0} has no mid")]
    NoMid(usize),
    #[error("mid {0:?} is used by more than one media section")]
    DuplicateMid(String),
    #[error("payload type {0:?} is not a number from 0 to 127")]
    BadPayloadType(String),
    #[error("header extension id {0:?} is not a number from 1 to 255")]
    BadExtensionId(String),
}

/// Checks an offer's text (see the module documentation). `max_sections`:
/// how many media sections this connection may offer now.
pub fn check_offer(sdp: &str, max_sections: usize) -> Result<(), OfferError> {
    let mut session_ufrag = false;
    let mut session_pwd = false;
    let mut session_fp = false;
    let mut sections = 0usize;
    // Per section: ufrag, pwd, fingerprint, mid seen.
    let mut cur = [false; 4];
    let mut mids: Vec<&str> = Vec::new();
    let end_section = |n: usize, cur: &[bool; 4], su: bool, sp: bool, sf: bool| {
        if n == 0 {
            return Ok(());
        }
        if !(cur[0] || su) || !(cur[1] || sp) {
            return Err(OfferError::NoIceCredentials(n - 1));
        }
        if !(cur[2] || sf) {
            return Err(OfferError::NoFingerprint(n - 1));
        }
        if !cur[3] {
            return Err(OfferError::NoMid(n - 1));
        }
        Ok(())
    };
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            end_section(sections, &cur, session_ufrag, session_pwd, session_fp)?;
            sections += 1;
            if sections > max_sections {
                let total = sdp.lines().filter(|l| l.starts_with("m=")).count();
                return Err(OfferError::TooManySections(total, max_sections));
            }
            cur = [false; 4];
            let mut parts = m.split_ascii_whitespace();
            let kind = parts.next().unwrap_or("");
            if !matches!(kind, "audio" | "video" | "application") {
                return Err(OfferError::UnsupportedMedia(sections - 1, kind.to_owned()));
            }
            let _port = parts.next();
            let proto = parts.next().unwrap_or("");
            if kind != "application" || proto.contains("RTP") {
                for pt in parts {
                    payload_type(pt)?;
                }
            }
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
        let in_media = sections > 0;
        match name {
            "ice-ufrag" => {
                ice_chars(value, 4).map_err(|_| OfferError::BadUfrag)?;
                if in_media {
                    cur[0] = true;
                } else {
                    session_ufrag = true;
                }
            }
            "ice-pwd" => {
                ice_chars(value, 22).map_err(|_| OfferError::BadPassword)?;
                if in_media {
                    cur[1] = true;
                } else {
                    session_pwd = true;
                }
            }
            "fingerprint" => {
                fingerprint(value)?;
                if in_media {
                    cur[2] = true;
                } else {
                    session_fp = true;
                }
            }
            "mid" if in_media => {
                let mid = value.trim();
                if mids.contains(&mid) {
                    return Err(OfferError::DuplicateMid(mid.to_owned()));
                }
                mids.push(mid);
                cur[3] = true;
            }
            "rtpmap" | "fmtp" | "rtcp-fb" => {
                let pt = value.split_ascii_whitespace().next().unwrap_or("");
                if !(name == "rtcp-fb" && pt == "*") {
                    payload_type(pt)?;
                }
            }
            "extmap" => {
                let id = value.split_ascii_whitespace().next().unwrap_or("");
                // `id/direction` is allowed.
                let num = id.split('/').next().unwrap_or("");
                match num.parse::<u16>() {
                    Ok(1..=255) if num.len() <= 3 => {}
                    _ => return Err(OfferError::BadExtensionId(id.to_owned())),
                }
            }
            _ => {}
        }
    }
    end_section(sections, &cur, session_ufrag, session_pwd, session_fp)?;
    if sections == 0 {
        return Err(OfferError::NoMedia);
    }
    Ok(())
}

fn payload_type(pt: &str) -> Result<(), OfferError> {
    match pt.parse::<u8>() {
        Ok(0..=127) if pt.len() <= 3 => Ok(()),
        _ => Err(OfferError::BadPayloadType(pt.chars().take(16).collect())),
    }
}

/// RFC 8839 `ice-char` strings of `min` to 256 characters.
fn ice_chars(v: &str, min: usize) -> Result<(), ()> {
    let v = v.trim();
    let ok = (min..=256).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

/// `hash-func fingerprint`: a hash the DTLS stack knows, and as many
/// colon-separated hex bytes as it makes.
fn fingerprint(v: &str) -> Result<(), OfferError> {
    let bad = || OfferError::BadFingerprint(v.chars().take(32).collect());
    let (alg, hex) = v.trim().split_once(' ').ok_or_else(bad)?;
    let bytes = match alg.to_ascii_lowercase().as_str() {
        "sha-1" => 20,
        "sha-224" => 28,
        "sha-256" => 32,
        "sha-384" => 48,
        "sha-512" => 64,
        _ => return Err(bad()),
    };
    let parts: Vec<&str> = hex.trim().split(':').collect();
    if parts.len() != bytes
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    fn offer(sections: usize) -> String {
        let mut s =
            format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:{FP}\r\n");
        for i in 0..sections {
            s += &format!(
                "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:{i}\r\n\
                 a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
                 a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
                 a=rtcp-fb:* nack\r\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
            );
        }
        s
    }

    #[test]
    fn offers_are_limited_to_a_burst_then_a_rate() {
        let t0 = Instant::now();
        let mut r = OfferRate::default();
        let taken = (0..100).filter(|_| r.take(t0)).count();
        assert_eq!(taken, OFFER_BURST as usize);
        // 45 offers a second for 10 s: only the sustained rate gets through.
        let mut ok = 0;
        for i in 1..=450u64 {
            if r.take(t0 + Duration::from_millis(i * 1000 / 45)) {
                ok += 1;
            }
        }
        assert_eq!(ok, 10 * OFFERS_PER_SECOND as usize);
        // After a pause the burst is back, no more.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            (0..100).filter(|_| r.take(later)).count(),
            OFFER_BURST as usize
        );
    }

    #[test]
    fn a_browser_like_offer_passes() {
        assert_eq!(check_offer(&offer(1), 16), Ok(()));
        assert_eq!(check_offer(&offer(16), 16), Ok(()));
    }

    /// Each offer of the report that wedged a connection is refused
    /// before it is applied.
    #[test]
    fn broken_offers_are_refused_with_a_reason() {
        let ok = offer(2);
        type Case = (String, fn(&OfferError) -> bool);
        let cases: Vec<Case> = vec![
            (
                "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".into(),
                |e| *e == OfferError::NoMedia,
            ),
            (ok.replace(&format!("a=fingerprint:{FP}\r\n"), ""), |e| {
                matches!(e, OfferError::NoFingerprint(0))
            }),
            (ok.replace("AB:CD", "XY:CD"), |e| {
                matches!(e, OfferError::BadFingerprint(_))
            }),
            (ok.replace("a=ice-ufrag:abcd\r\n", ""), |e| {
                matches!(e, OfferError::NoIceCredentials(0))
            }),
            (ok.replace("a=ice-ufrag:abcd", "a=ice-ufrag:"), |e| {
                *e == OfferError::BadUfrag
            }),
            (
                ok.replace(
                    "a=ice-ufrag:abcd",
                    &format!("a=ice-ufrag:{}", "u".repeat(20_000)),
                ),
                |e| *e == OfferError::BadUfrag,
            ),
            (ok.replace("96 97", "96 999"), |e| {
                matches!(e, OfferError::BadPayloadType(_))
            }),
            (ok.replace("rtpmap:96", "rtpmap:999"), |e| {
                matches!(e, OfferError::BadPayloadType(_))
            }),
            (ok.replace("extmap:3", "extmap:300"), |e| {
                matches!(e, OfferError::BadExtensionId(_))
            }),
            (ok.replace("a=mid:1", "a=mid:0"), |e| {
                matches!(e, OfferError::DuplicateMid(_))
            }),
            (ok.replace("m=video", "m=text"), |e| {
                matches!(e, OfferError::UnsupportedMedia(0, _))
            }),
            (offer(17), |e| {
                matches!(e, OfferError::TooManySections(17, 16))
            }),
        ];
        for (sdp, expect) in cases {
            let got = check_offer(&sdp, 16);
            assert!(
                got.as_ref().is_err_and(expect),
                "{got:?} for {}",
                &sdp[..sdp.len().min(300)]
            );
        }
    }
}
