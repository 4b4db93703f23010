//! Which connection a client address belongs to, and who may change that.
//!
//! Anyone can send a datagram with any source address, and anyone who has
//! joined a room knows the shape of a STUN USERNAME. So an address is
//! bound only by a STUN binding request that proved, with its
//! MESSAGE-INTEGRITY, that it comes from the holder of the connection's ICE
//! password (the caller checks that before calling
//! [`AddrTable::authenticated`]), and never taken from another connection
//! that still holds it: an address stays with its connection while that
//! connection is alive and has had an authenticated request from it within
//! the hold time (ICE consent, RFC 7675: a client checks every 5 s or so
//! and loses consent after 30 s). A connection that moves (a new network,
//! a NAT rebinding) proves itself from its new address and keeps its old
//! ones until they lapse or it holds too many.
//!
//! Unauthenticated datagrams leave no state here at all, so a flood of
//! spoofed sources costs nothing but the check.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Addresses one connection may hold at once (host, server-reflexive and
/// relay candidates of both address families, plus a move). Beyond this
/// the least recently authenticated one is forgotten.
pub const MAX_ADDRS_PER_OWNER: usize = 8;

/// What an authenticated request did to the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound<K> {
    /// The address was already this connection's; its consent is renewed.
    Refreshed,
    /// A new address for the connection.
    Added,
    /// The address was another connection's whose hold had lapsed.
    Moved { from: K },
}

/// Why an authenticated request does not bind its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("the address belongs to another live connection with fresh consent")]
    InUse,
}

struct Binding<K> {
    owner: K,
    last_auth: Instant,
}

/// Client addresses to their connection.
pub struct AddrTable<K> {
    by_addr: HashMap<SocketAddr, Binding<K>>,
    by_owner: HashMap<K, Vec<SocketAddr>>,
    hold: Duration,
    per_owner: usize,
    /// Changes whenever an address is bound or forgotten.
    version: u64,
}

impl<K: Clone + Eq + Hash> AddrTable<K> {
    /// `hold`: how long an address stays with its connection after the
    /// last authenticated request from it.
    pub fn new(hold: Duration, per_owner: usize) -> Self {
        AddrTable {
            by_addr: HashMap::new(),
            by_owner: HashMap::new(),
            hold,
            per_owner: per_owner.max(1),
            version: 0,
        }
    }

    /// The connection `addr` is bound to (the per-packet lookup).
    #[inline]
    pub fn owner(&self, addr: &SocketAddr) -> Option<&K> {
        self.by_addr.get(addr).map(|b| &b.owner)
    }

    /// A STUN request from `addr` proved it holds `owner`'s password.
    /// `alive` tells whether a connection still exists.
    pub fn authenticated(
        &mut self,
        addr: SocketAddr,
        owner: K,
        now: Instant,
        alive: impl Fn(&K) -> bool,
    ) -> Result<Bound<K>, BindError> {
        let mut moved = None;
        if let Some(b) = self.by_addr.get_mut(&addr) {
            if b.owner == owner {
                b.last_auth = now;
                return Ok(Bound::Refreshed);
            }
            if alive(&b.owner) && now.saturating_duration_since(b.last_auth) < self.hold {
                return Err(BindError::InUse);
            }
            let old = b.owner.clone();
            self.unbind(&addr, &old);
            moved = Some(old);
        }
        let list = self.by_owner.entry(owner.clone()).or_default();
        if list.len() >= self.per_owner {
            let oldest = list
                .iter()
                .enumerate()
                .min_by_key(|(_, a)| self.by_addr.get(a).map(|b| b.last_auth))
                .map(|(i, _)| i)
                .unwrap_or(0);
            let gone = list.swap_remove(oldest);
            self.by_addr.remove(&gone);
        }
        list.push(addr);
        self.version += 1;
        self.by_addr.insert(
            addr,
            Binding {
                owner,
                last_auth: now,
            },
        );
        Ok(match moved {
            Some(from) => Bound::Moved { from },
            None => Bound::Added,
        })
    }

    fn unbind(&mut self, addr: &SocketAddr, owner: &K) {
        self.version += 1;
        self.by_addr.remove(addr);
        if let Some(list) = self.by_owner.get_mut(owner) {
            list.retain(|a| a != addr);
            if list.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }

    /// Forgets every address of a connection that is gone.
    pub fn remove_owner(&mut self, owner: &K) {
        if let Some(list) = self.by_owner.remove(owner) {
            self.version += 1;
            for a in list {
                self.by_addr.remove(&a);
            }
        }
    }

    /// Keeps only the connections `keep` says still exist.
    pub fn retain_owners(&mut self, keep: impl Fn(&K) -> bool) {
        let before = self.by_addr.len();
        self.by_owner.retain(|k, _| keep(k));
        self.by_addr.retain(|_, b| keep(&b.owner));
        if self.by_addr.len() != before {
            self.version += 1;
        }
    }

    /// Every bound address, and a number that changes whenever the set
    /// does (to act on changes only).
    pub fn addresses(&self) -> (u64, impl Iterator<Item = &SocketAddr>) {
        (self.version, self.by_addr.keys())
    }

    /// Addresses bound in all.
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// Addresses `owner` holds.
    pub fn addrs_of(&self, owner: &K) -> &[SocketAddr] {
        self.by_owner.get(owner).map_or(&[], |v| v.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    const HOLD: Duration = Duration::from_secs(30);

    #[test]
    fn the_version_moves_when_addresses_come_and_go_not_on_a_refresh() {
        let t0 = Instant::now();
        let mut t = AddrTable::new(HOLD, 8);
        let v = |t: &AddrTable<u32>| t.addresses().0;
        let v0 = v(&t);
        t.authenticated(a(1), 1u32, t0, |_| true).unwrap();
        let v1 = v(&t);
        assert_ne!(v1, v0);
        t.authenticated(a(1), 1, t0, |_| true).unwrap();
        assert_eq!(v(&t), v1, "a refresh changes nothing");
        t.authenticated(a(2), 2, t0, |_| true).unwrap();
        let v2 = v(&t);
        assert_ne!(v2, v1);
        let mut all: Vec<SocketAddr> = t.addresses().1.copied().collect();
        all.sort();
        assert_eq!(all, vec![a(1), a(2)]);
        t.remove_owner(&1);
        let v3 = v(&t);
        assert_ne!(v3, v2);
        t.retain_owners(|k| *k != 2);
        assert_ne!(v(&t), v3);
        assert_eq!(t.addresses().1.count(), 0);
    }

    #[test]
    fn an_address_stays_with_its_live_connection_until_consent_lapses() {
        let t0 = Instant::now();
        let mut t = AddrTable::new(HOLD, 8);
        assert_eq!(t.authenticated(a(1), 1u32, t0, |_| true), Ok(Bound::Added));
        assert_eq!(t.owner(&a(1)), Some(&1));
        // Another connection's valid request from the same address (a
        // participant spoofing someone else's address with its own
        // credentials) is refused while the owner keeps consent.
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(
            t.authenticated(a(1), 2, t1, |_| true),
            Err(BindError::InUse)
        );
        assert_eq!(t.authenticated(a(1), 1, t1, |_| true), Ok(Bound::Refreshed));
        let t2 = t1 + Duration::from_secs(29);
        assert_eq!(
            t.authenticated(a(1), 2, t2, |_| true),
            Err(BindError::InUse)
        );
        // Consent lapsed: the address may go to whoever proves itself.
        let t3 = t1 + HOLD;
        assert_eq!(
            t.authenticated(a(1), 2, t3, |_| true),
            Ok(Bound::Moved { from: 1 })
        );
        assert_eq!(t.owner(&a(1)), Some(&2));
        assert!(t.addrs_of(&1).is_empty());
        // A connection that is gone holds nothing, however recent.
        assert_eq!(
            t.authenticated(a(1), 3, t3, |k| *k != 2),
            Ok(Bound::Moved { from: 2 })
        );
    }

    #[test]
    fn a_connection_holds_a_bounded_number_of_addresses() {
        let t0 = Instant::now();
        let mut t = AddrTable::new(HOLD, 4);
        for p in 0..100u16 {
            let now = t0 + Duration::from_millis(p as u64);
            t.authenticated(a(p), 7u32, now, |_| true).unwrap();
        }
        assert_eq!(t.len(), 4);
        assert_eq!(t.addrs_of(&7).len(), 4);
        // The most recent stay.
        for p in 96..100 {
            assert_eq!(t.owner(&a(p)), Some(&7));
        }
        t.remove_owner(&7);
        assert!(t.is_empty());
    }

    #[test]
    fn retain_forgets_connections_that_are_gone() {
        let now = Instant::now();
        let mut t = AddrTable::new(HOLD, 8);
        t.authenticated(a(1), 1u32, now, |_| true).unwrap();
        t.authenticated(a(2), 2, now, |_| true).unwrap();
        t.retain_owners(|k| *k == 2);
        assert_eq!(t.owner(&a(1)), None);
        assert_eq!(t.owner(&a(2)), Some(&2));
        assert_eq!(t.len(), 1);
    }
}
