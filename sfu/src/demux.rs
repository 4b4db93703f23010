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

const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const USERNAME: u16 = 0x0006;

/// The local (server) ufrag named by a STUN message's USERNAME attribute.
pub fn stun_ufrag(b: &[u8]) -> Option<&str> {
    if b.len() < 20 || b[4..8] != MAGIC {
        return None;
    }
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    let body = b.get(20..20 + len)?;
    let mut i = 0;
    while i + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[i], body[i + 1]]);
        let alen = u16::from_be_bytes([body[i + 2], body[i + 3]]) as usize;
        let val = body.get(i + 4..i + 4 + alen)?;
        if typ == USERNAME {
            let s = std::str::from_utf8(val).ok()?;
            return s.split(':').next().filter(|u| !u.is_empty());
        }
        i += 4 + alen.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn truncated_or_foreign_input_finds_nothing() {
        let m = stun_with_username("abc:def");
        for n in 0..m.len() {
            let _ = stun_ufrag(&m[..n]); // never panics
        }
        assert_eq!(stun_ufrag(&m[..m.len() - 4]), None);
        assert_eq!(stun_ufrag(&[0u8; 20]), None);
        assert_eq!(classify(&[200, 1]), Kind::Other);
        assert_eq!(classify(&[22, 254, 253]), Kind::Dtls);
        assert_eq!(classify(&[]), Kind::Other);
    }
}
