//! Following a client that nominates another candidate pair.
//!
//! The controlling agent (the browser) may nominate a pair after it
//! nominated another: Chromium does when a pair it prefers becomes valid a
//! moment after the first (a host has several interfaces or sockets) and
//! when its network changes, and from then on sends its media and consent
//! checks on the new pair only (RFC 8445 section 8.1.1 leaves the choice
//! to the controlling agent). The media library's ICE-lite agent selects
//! the first nominated pair and keeps it for the connection's life: it
//! goes on sending to the first pair's address, and since nothing comes
//! from there any more, it declares the connection disconnected after the
//! consent timeout and failed ten seconds later, with the client still
//! there and sending. Seen in the browser tests: about one connection in
//! twenty, 40 s into the call.
//!
//! [`Renomination`] keeps the two views apart without touching the
//! library: it learns the library's address from where the library sends
//! media, and the client's from its latest signed request with
//! USE-CANDIDATE. While they differ, the library's media and DTLS go to the
//! client's address instead, and each check from the client's address is
//! also shown to the library as if from its own (so its consent stays
//! fresh); the library's answer to that copy is dropped, since the client
//! gets the library's answer to the original. Decisions are returned; the
//! shard carries them out.

use std::net::SocketAddr;

/// Where a connection's traffic goes, in the library's view and the
/// client's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Renomination {
    /// Where the library sends non-STUN datagrams: its selected pair.
    library: Option<SocketAddr>,
    /// Where the client's latest nomination came from.
    client: Option<SocketAddr>,
}

/// What to do with a datagram the library wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Send it there.
    To(SocketAddr),
    /// The library's answer to a check shown to it under its own address:
    /// the client has the answer to the original.
    Drop,
}

impl Renomination {
    /// A signed binding request with USE-CANDIDATE came from `from`.
    /// True when this starts a detour (the client has left the library's
    /// pair), to say so once.
    pub fn nominated(&mut self, from: SocketAddr) -> bool {
        let was = self.detour().is_some();
        self.client = Some(from);
        !was && self.detour().is_some()
    }

    /// The library's pair and the client's, while they differ.
    fn detour(&self) -> Option<(SocketAddr, SocketAddr)> {
        match (self.library, self.client) {
            (Some(l), Some(c)) if l != c => Some((l, c)),
            _ => None,
        }
    }

    /// The address the library selected, when the client has nominated
    /// another one since.
    pub fn moved_from(&self) -> Option<SocketAddr> {
        self.detour().map(|(l, _)| l)
    }

    /// For a binding request from `from`: the address to show the library
    /// a copy under, when `from` is where the client moved to.
    pub fn check_copy_for(&self, from: SocketAddr) -> Option<SocketAddr> {
        self.detour().filter(|&(_, c)| c == from).map(|(l, _)| l)
    }

    /// Where media the library did not write goes: the client's pair while
    /// it differs from the library's, else the library's; `None` before
    /// the library has sent anything but STUN.
    pub fn media_to(&self) -> Option<SocketAddr> {
        self.library.map(|l| self.detour().map_or(l, |(_, c)| c))
    }

    /// Where a datagram the library wrote to `to` goes. `stun`: it is a
    /// STUN message (an ICE-lite agent sends only answers); anything else
    /// tells where the library's selected pair is.
    pub fn outgoing(&mut self, to: SocketAddr, stun: bool) -> Outgoing {
        if !stun {
            self.library = Some(to);
        }
        match self.detour() {
            Some((old, _)) if to == old && stun => Outgoing::Drop,
            Some((old, new)) if to == old => Outgoing::To(new),
            _ => Outgoing::To(to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn one_nomination_changes_nothing() {
        let mut r = Renomination::default();
        r.nominated(a(1));
        assert_eq!(r.outgoing(a(1), true), Outgoing::To(a(1)));
        assert_eq!(r.outgoing(a(1), false), Outgoing::To(a(1)));
        assert_eq!(r.moved_from(), None);
        assert_eq!(r.check_copy_for(a(1)), None);
    }

    #[test]
    fn media_follows_the_latest_nomination_and_checks_keep_the_first_alive() {
        let mut r = Renomination::default();
        assert!(!r.nominated(a(1)));
        assert_eq!(r.outgoing(a(1), false), Outgoing::To(a(1)));
        assert!(r.nominated(a(2)), "the detour starts");
        assert!(!r.nominated(a(2)), "and is said once");
        assert_eq!(r.moved_from(), Some(a(1)));
        // The library still sends to its pair: media goes to the client's.
        assert_eq!(r.outgoing(a(1), false), Outgoing::To(a(2)));
        // Checks from the new address are shown to the library as from the
        // old one; its answer to that copy is dropped, the one to the
        // original goes out.
        assert_eq!(r.check_copy_for(a(2)), Some(a(1)));
        assert_eq!(r.check_copy_for(a(1)), None);
        assert_eq!(r.check_copy_for(a(3)), None);
        assert_eq!(r.outgoing(a(1), true), Outgoing::Drop);
        assert_eq!(r.outgoing(a(2), true), Outgoing::To(a(2)));
    }

    #[test]
    fn back_on_the_first_pair_or_the_library_moving_ends_the_detour() {
        let mut r = Renomination::default();
        r.nominated(a(1));
        r.outgoing(a(1), false);
        r.nominated(a(2));
        r.nominated(a(1));
        assert_eq!(r.moved_from(), None);
        assert_eq!(r.outgoing(a(1), true), Outgoing::To(a(1)));
        // After an ICE restart the library selects the client's new pair.
        r.nominated(a(3));
        assert_eq!(r.outgoing(a(1), false), Outgoing::To(a(3)));
        assert_eq!(r.outgoing(a(3), false), Outgoing::To(a(3)));
        assert_eq!(r.moved_from(), None);
        assert_eq!(r.outgoing(a(3), true), Outgoing::To(a(3)));
    }

    #[test]
    fn nothing_is_known_before_the_library_sends() {
        let mut r = Renomination::default();
        r.nominated(a(2));
        assert_eq!(r.check_copy_for(a(2)), None);
        assert_eq!(r.outgoing(a(2), true), Outgoing::To(a(2)));
    }
}
