//! Telling datagrams on the shared port apart (RFC 7983) and finding the
//! connection a STUN request is for (our ufrag is the first half of its
//! USERNAME). Pure functions over bytes; nothing here trusts its input.

/// What a datagram looks like from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stun,
    Dtls,
    Rtp,
    Other,
}

pub fn classify(b: &[u8]) -> Kind {
    match b.first() {
        Some(0..=3) if b.len() >= 20 => Kind::Stun,
        Some(20..=63) => Kind::Dtls,
        Some(128..=191) if b.len() >= 8 => Kind::Rtp,
        _ => Kind::Other,
    }
}

/// Among [`Kind::Rtp`] datagrams, RTCP: RFC 5761 section 4 keeps RTP
/// payload types 64 to 95 free, so that RTCP's packet types 192 to 223
/// stand where RTP's marker bit and payload type are.
pub fn is_rtcp(b: &[u8]) -> bool {
    classify(b) == Kind::Rtp && (64..=95).contains(&(b[1] & 0x7f))
}

const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const USERNAME: u16 = 0x0006;

/// The attributes of a STUN message: its header's length must fit, and
/// the magic cookie be there (RFC 5389 section 6).
fn stun_body(b: &[u8]) -> Option<&[u8]> {
    if b.len() < 20 || b[4..8] != MAGIC {
        return None;
    }
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    b.get(20..20 + len)
}

/// One attribute: where it starts in the body, its type, its value.
struct Attr<'a> {
    at: usize,
    typ: u16,
    val: &'a [u8],
}

/// A body's attributes in order; one whose value runs past the body is
/// an `Err` and the last item.
fn attributes(body: &[u8]) -> impl Iterator<Item = Result<Attr<'_>, StunAuthError>> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i + 4 > body.len() {
            return None;
        }
        let typ = u16::from_be_bytes([body[i], body[i + 1]]);
        let alen = u16::from_be_bytes([body[i + 2], body[i + 3]]) as usize;
        let Some(val) = body.get(i + 4..i + 4 + alen) else {
            i = body.len();
            return Some(Err(StunAuthError::Malformed));
        };
        let at = i;
        i += 4 + alen.div_ceil(4) * 4;
        Some(Ok(Attr { at, typ, val }))
    })
}

/// The local (server) ufrag named by a STUN message's USERNAME attribute.
pub fn stun_ufrag(b: &[u8]) -> Option<&str> {
    // Only what `classify` calls STUN (first byte 0 to 3, RFC 7983) can
    // name a connection.
    if classify(b) != Kind::Stun {
        return None;
    }
    let name = attributes(stun_body(b)?)
        .map_while(Result::ok)
        .find(|a| a.typ == USERNAME)?;
    let s = std::str::from_utf8(name.val).ok()?;
    s.split(':').next().filter(|u| !u.is_empty())
}

const MESSAGE_INTEGRITY: u16 = 0x0008;
/// Binding request: method 0x001, class request.
pub const BINDING_REQUEST: u16 = 0x0001;
/// Binding success response: method 0x001, class success response.
pub const BINDING_SUCCESS: u16 = 0x0101;

/// A STUN message's type (method and class), for what `classify` calls STUN.
pub fn stun_type(b: &[u8]) -> Option<u16> {
    (classify(b) == Kind::Stun).then(|| u16::from_be_bytes([b[0], b[1]]))
}

const USE_CANDIDATE: u16 = 0x0025;

/// Whether a STUN message carries USE-CANDIDATE (RFC 8445 section 7.1.2)
/// among the attributes its MESSAGE-INTEGRITY covers: a nomination, once
/// the integrity is checked (`verify_binding_request`).
pub fn stun_use_candidate(b: &[u8]) -> bool {
    let Some(body) = stun_body(b).filter(|_| classify(b) == Kind::Stun) else {
        return false;
    };
    attributes(body)
        .map_while(Result::ok)
        .take_while(|a| a.typ != MESSAGE_INTEGRITY)
        .any(|a| a.typ == USE_CANDIDATE)
}

/// Why a STUN request does not prove it comes from the connection it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StunAuthError {
    #[error("not a STUN binding request (or, where one is expected, response)")]
    NotABindingRequest,
    #[error("malformed STUN message")]
    Malformed,
    #[error("no MESSAGE-INTEGRITY attribute")]
    NoIntegrity,
    #[error("MESSAGE-INTEGRITY does not match the connection's password")]
    BadIntegrity,
}

/// Checks that a STUN binding request carries a MESSAGE-INTEGRITY made with
/// `pwd`, the server's ICE password of the connection its USERNAME names
/// (RFC 8445 section 7.2.2, short-term credentials: the key is the password
/// itself; RFC 5389 section 15.4 for what the HMAC covers). Only a request
/// that passes may bind or move a client's address: anyone can write a
/// USERNAME, only the client knows the password.
///
/// Pure and allocation-free, so any receive path can call it before it
/// keeps any state for the source.
pub fn verify_binding_request(b: &[u8], pwd: &[u8]) -> Result<(), StunAuthError> {
    verify_integrity(b, pwd, BINDING_REQUEST)
}

/// Checks that a binding success response carries a MESSAGE-INTEGRITY made
/// with `pwd`, the client's ICE password: the server signs its own checks
/// with the client's password, and a response is signed with the key of
/// its request (RFC 5389 section 10.1.2). Whether it answers a request the
/// server sent is the ICE agent's to check.
pub fn verify_binding_response(b: &[u8], pwd: &[u8]) -> Result<(), StunAuthError> {
    verify_integrity(b, pwd, BINDING_SUCCESS)
}

fn verify_integrity(b: &[u8], pwd: &[u8], typ: u16) -> Result<(), StunAuthError> {
    use hmac::{Hmac, Mac};
    if b.len() < 20 || b[4..8] != MAGIC {
        return Err(StunAuthError::Malformed);
    }
    if u16::from_be_bytes([b[0], b[1]]) != typ {
        return Err(StunAuthError::NotABindingRequest);
    }
    let body = stun_body(b).ok_or(StunAuthError::Malformed)?;
    for attr in attributes(body) {
        let Attr { at, typ, val } = attr?;
        if typ != MESSAGE_INTEGRITY {
            continue;
        }
        if val.len() != 20 {
            return Err(StunAuthError::Malformed);
        }
        // The HMAC covers the header and every attribute before this
        // one, with the header's length set as if this attribute were
        // the last.
        let fake_len = (at + 24) as u16;
        let mut mac =
            Hmac::<sha1::Sha1>::new_from_slice(pwd).map_err(|_| StunAuthError::BadIntegrity)?;
        mac.update(&b[..2]);
        mac.update(&fake_len.to_be_bytes());
        mac.update(&b[4..20 + at]);
        return mac
            .verify_slice(val)
            .map_err(|_| StunAuthError::BadIntegrity);
    }
    Err(StunAuthError::NoIntegrity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtcp_is_told_from_rtp_by_its_packet_type() {
        // Receiver report, PLI, sender report.
        for pt in [201u8, 206, 200] {
            assert!(is_rtcp(&[0x81, pt, 0, 1, 0, 0, 0, 7]), "{pt}");
        }
        // VP8 (96), marked Opus (111), a dynamic type at the top (127).
        for b1 in [96u8, 0x80 | 111, 127] {
            assert!(!is_rtcp(&[0x80, b1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]), "{b1}");
        }
        // Not RTP at all: STUN's first bytes, DTLS, too short.
        assert!(!is_rtcp(&[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42]));
        assert!(!is_rtcp(&[22, 0xfe, 0xfd, 0, 0, 0, 0, 0]));
        assert!(!is_rtcp(&[0x81, 201]));
    }

    fn stun_with_username(u: &str) -> Vec<u8> {
        let mut attr = vec![0x00, 0x06];
        attr.extend((u.len() as u16).to_be_bytes());
        attr.extend(u.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend((attr.len() as u16).to_be_bytes());
        m.extend(MAGIC);
        m.extend([7u8; 12]);
        m.extend(attr);
        m
    }

    #[test]
    fn finds_the_server_ufrag() {
        let m = stun_with_username("srvUfrag:cli");
        assert_eq!(classify(&m), Kind::Stun);
        assert_eq!(stun_ufrag(&m), Some("srvUfrag"));
    }

    /// `m` with a MESSAGE-INTEGRITY made with `key` appended.
    fn sign(mut m: Vec<u8>, key: &[u8]) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        let len = (m.len() - 20 + 24) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
        mac.update(&m);
        m.extend([0x00, 0x08, 0x00, 20]);
        m.extend(mac.finalize().into_bytes());
        m
    }

    #[test]
    fn a_nomination_counts_only_under_the_integrity() {
        let plain = stun_with_username("srv:cli");
        assert!(!stun_use_candidate(&sign(plain.clone(), b"pw")));
        let mut nominating = plain.clone();
        nominating.extend([0x00, 0x25, 0x00, 0x00]);
        let len = (nominating.len() - 20) as u16;
        nominating[2..4].copy_from_slice(&len.to_be_bytes());
        assert!(stun_use_candidate(&sign(nominating, b"pw")));
        // After MESSAGE-INTEGRITY it is anyone's to add.
        let mut after = sign(plain, b"pw");
        after.extend([0x00, 0x25, 0x00, 0x00]);
        let len = (after.len() - 20) as u16;
        after[2..4].copy_from_slice(&len.to_be_bytes());
        assert!(!stun_use_candidate(&after));
        assert!(!stun_use_candidate(&[0u8; 10]));
        assert!(!stun_use_candidate(&[0x80; 40]));
    }

    #[test]
    fn only_the_connection_password_authenticates_a_request() {
        let pwd = b"serverPasswordServerPassword0123";
        let good = sign(stun_with_username("srvUfrag:cli"), pwd);
        assert_eq!(verify_binding_request(&good, pwd), Ok(()));
        // What an attacker who knows the ufrag format can send.
        let forged = sign(stun_with_username("srvUfrag:cli"), b"guess");
        assert_eq!(
            verify_binding_request(&forged, pwd),
            Err(StunAuthError::BadIntegrity)
        );
        assert_eq!(
            verify_binding_request(&stun_with_username("srvUfrag:cli"), pwd),
            Err(StunAuthError::NoIntegrity)
        );
        // A changed byte anywhere before the HMAC breaks it.
        for at in [0usize, 8, 20, 25] {
            let mut m = good.clone();
            m[at] ^= 0x01;
            assert!(verify_binding_request(&m, pwd).is_err(), "byte {at}");
        }
        // A response or indication binds nothing.
        let mut resp = good.clone();
        resp[0..2].copy_from_slice(&[0x01, 0x01]);
        assert_eq!(
            verify_binding_request(&resp, pwd),
            Err(StunAuthError::NotABindingRequest)
        );
        // A response is checked as a response, with its own key.
        let resp = sign(
            {
                let mut m = stun_with_username("srvUfrag:cli");
                m[0..2].copy_from_slice(&[0x01, 0x01]);
                m
            },
            b"clientPassword",
        );
        assert_eq!(verify_binding_response(&resp, b"clientPassword"), Ok(()));
        assert_eq!(
            verify_binding_response(&resp, pwd),
            Err(StunAuthError::BadIntegrity)
        );
        assert_eq!(
            verify_binding_response(&good, pwd),
            Err(StunAuthError::NotABindingRequest)
        );
        for n in 0..good.len() {
            let _ = verify_binding_request(&good[..n], pwd); // never panics
        }
    }

    #[test]
    fn truncated_or_foreign_input_finds_nothing() {
        let m = stun_with_username("abc:def");
        for n in 0..m.len() {
            let _ = stun_ufrag(&m[..n]); // never panics
        }
        assert_eq!(stun_ufrag(&m[..m.len() - 4]), None);
        assert_eq!(stun_ufrag(&[0u8; 20]), None);
        // A first byte outside STUN's range (found by fuzzing).
        let mut odd = m.clone();
        odd[0] = 0x0b;
        assert_eq!(stun_ufrag(&odd), None);
        assert_eq!(classify(&[200, 1]), Kind::Other);
        assert_eq!(classify(&[22, 254, 253]), Kind::Dtls);
        assert_eq!(classify(&[]), Kind::Other);
    }
}
