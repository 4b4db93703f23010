//! Identifier newtypes of the media plane.

use std::fmt;

/// A map keyed by ids or SSRCs, looked up per packet and per subscriber.
///
/// Its hasher (rustc-hash's Fx) is a multiply and a rotate where the
/// standard map's SipHash runs several rounds: the forwarding profile had
/// about 5 % of the server's time in these lookups. Fx does not resist
/// chosen keys, which is why it is kept to maps whose keys are the shard's
/// own numbers or SSRCs the shard has registered (a peer cannot add
/// entries by sending packets: an unknown SSRC is a miss in a small map).
pub type IdMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// A set of ids or SSRCs, on the same terms as [`IdMap`].
pub type IdSet<K> = rustc_hash::FxHashSet<K>;

/// A peer connection held by a shard (one per participant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub u64);

/// A published track, numbered by its shard. Cheaper to look up per packet
/// than the publisher's own track id string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackNo(pub u64);

/// An RTP synchronisation source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

impl fmt::Display for TrackNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "track#{}", self.0)
    }
}
