//! Who receives what: the routing graph of one shard's rooms.
//!
//! Members join a room with permissions; each published track is sent to
//! every other member of its room allowed to subscribe. Every change returns
//! the subscriptions it made or ended, for the shard to carry out
//! (add or remove a sender, renegotiate).

use std::collections::{BTreeMap, HashMap};

use super::ids::{PeerKey, TrackNo};

/// A subscription made or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteChange {
    Subscribe { subscriber: PeerKey, track: TrackNo },
    Unsubscribe { subscriber: PeerKey, track: TrackNo },
}

#[derive(Clone, Debug)]
struct Member {
    room: String,
    publish: bool,
    subscribe: bool,
}

#[derive(Clone, Debug)]
struct Route {
    publisher: PeerKey,
    subscribers: Vec<PeerKey>,
}

/// The routing graph. Ordered maps keep the changes deterministic.
#[derive(Debug, Default)]
pub struct Routing {
    members: BTreeMap<PeerKey, Member>,
    tracks: BTreeMap<TrackNo, Route>,
    /// Per-packet lookups go through here.
    fanout: HashMap<TrackNo, Vec<PeerKey>>,
}

impl Routing {
    pub fn new() -> Self {
        Self::default()
    }

    /// A member joins: it receives every track already published in its room.
    pub fn join(
        &mut self,
        peer: PeerKey,
        room: &str,
        publish: bool,
        subscribe: bool,
    ) -> Vec<RouteChange> {
        self.members.insert(
            peer,
            Member {
                room: room.to_owned(),
                publish,
                subscribe,
            },
        );
        let mut changes = Vec::new();
        if !subscribe {
            return changes;
        }
        let tracks: Vec<TrackNo> = self
            .tracks
            .iter()
            .filter(|(_, r)| self.same_room(r.publisher, peer))
            .map(|(t, _)| *t)
            .collect();
        for track in tracks {
            self.add_subscriber(track, peer);
            changes.push(RouteChange::Subscribe {
                subscriber: peer,
                track,
            });
        }
        changes
    }

    /// A member publishes a track. `None`: not allowed (not a member, or no
    /// publish permission); the track must not be forwarded.
    pub fn publish(&mut self, publisher: PeerKey, track: TrackNo) -> Option<Vec<RouteChange>> {
        let member = self.members.get(&publisher)?;
        if !member.publish {
            return None;
        }
        self.tracks.insert(
            track,
            Route {
                publisher,
                subscribers: Vec::new(),
            },
        );
        self.fanout.insert(track, Vec::new());
        let subs: Vec<PeerKey> = self
            .members
            .iter()
            .filter(|(k, m)| **k != publisher && m.subscribe && m.room == member.room)
            .map(|(k, _)| *k)
            .collect();
        let mut changes = Vec::new();
        for s in subs {
            self.add_subscriber(track, s);
            changes.push(RouteChange::Subscribe {
                subscriber: s,
                track,
            });
        }
        Some(changes)
    }

    /// A track ends: every subscriber loses it.
    pub fn unpublish(&mut self, track: TrackNo) -> Vec<RouteChange> {
        self.fanout.remove(&track);
        match self.tracks.remove(&track) {
            None => Vec::new(),
            Some(r) => r
                .subscribers
                .into_iter()
                .map(|subscriber| RouteChange::Unsubscribe { subscriber, track })
                .collect(),
        }
    }

    /// A member leaves: its tracks end for everyone, its subscriptions end.
    pub fn leave(&mut self, peer: PeerKey) -> Vec<RouteChange> {
        let mut changes = Vec::new();
        let own: Vec<TrackNo> = self
            .tracks
            .iter()
            .filter(|(_, r)| r.publisher == peer)
            .map(|(t, _)| *t)
            .collect();
        for t in own {
            changes.extend(self.unpublish(t));
        }
        for (track, route) in self.tracks.iter_mut() {
            if let Some(i) = route.subscribers.iter().position(|s| *s == peer) {
                route.subscribers.remove(i);
                if let Some(f) = self.fanout.get_mut(track) {
                    f.retain(|s| *s != peer);
                }
                changes.push(RouteChange::Unsubscribe {
                    subscriber: peer,
                    track: *track,
                });
            }
        }
        self.members.remove(&peer);
        changes
    }

    /// The subscribers a track's packets go to.
    pub fn subscribers(&self, track: TrackNo) -> &[PeerKey] {
        self.fanout.get(&track).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The publisher of a track.
    pub fn publisher(&self, track: TrackNo) -> Option<PeerKey> {
        self.tracks.get(&track).map(|r| r.publisher)
    }

    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }

    fn same_room(&self, a: PeerKey, b: PeerKey) -> bool {
        match (self.members.get(&a), self.members.get(&b)) {
            (Some(x), Some(y)) => x.room == y.room,
            _ => false,
        }
    }

    fn add_subscriber(&mut self, track: TrackNo, peer: PeerKey) {
        if let Some(r) = self.tracks.get_mut(&track) {
            r.subscribers.push(peer);
        }
        self.fanout.entry(track).or_default().push(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RouteChange::*;

    const A: PeerKey = PeerKey(1);
    const B: PeerKey = PeerKey(2);
    const C: PeerKey = PeerKey(3);
    const D: PeerKey = PeerKey(4);

    #[test]
    fn a_track_reaches_every_other_member_of_its_room() {
        let mut r = Routing::new();
        r.join(A, "r", true, true);
        r.join(B, "r", true, true);
        r.join(D, "other", true, true);
        let ch = r.publish(A, TrackNo(1)).unwrap();
        assert_eq!(
            ch,
            vec![Subscribe {
                subscriber: B,
                track: TrackNo(1)
            }]
        );
        // A late joiner gets what is already published.
        let ch = r.join(C, "r", true, true);
        assert_eq!(
            ch,
            vec![Subscribe {
                subscriber: C,
                track: TrackNo(1)
            }]
        );
        assert_eq!(r.subscribers(TrackNo(1)), &[B, C]);
    }

    #[test]
    fn permissions_gate_publishing_and_subscribing() {
        let mut r = Routing::new();
        r.join(A, "r", false, true);
        r.join(B, "r", true, false);
        r.join(C, "r", true, true);
        assert_eq!(r.publish(A, TrackNo(1)), None);
        let ch = r.publish(B, TrackNo(2)).unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(r.subscribers(TrackNo(2)), &[A, C]);
        let ch = r.publish(C, TrackNo(3)).unwrap();
        assert_eq!(r.subscribers(TrackNo(3)), &[A]);
        assert_eq!(ch.len(), 1);
        assert_eq!(r.publish(PeerKey(99), TrackNo(4)), None);
    }

    #[test]
    fn leaving_ends_its_tracks_and_its_subscriptions() {
        let mut r = Routing::new();
        r.join(A, "r", true, true);
        r.join(B, "r", true, true);
        r.join(C, "r", true, true);
        r.publish(A, TrackNo(1)).unwrap();
        r.publish(B, TrackNo(2)).unwrap();
        let mut ch = r.leave(A);
        ch.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(
            ch,
            vec![
                Unsubscribe {
                    subscriber: A,
                    track: TrackNo(2)
                },
                Unsubscribe {
                    subscriber: B,
                    track: TrackNo(1)
                },
                Unsubscribe {
                    subscriber: C,
                    track: TrackNo(1)
                },
            ]
        );
        assert_eq!(r.subscribers(TrackNo(1)), &[] as &[PeerKey]);
        assert_eq!(r.subscribers(TrackNo(2)), &[C]);
        assert_eq!(r.track_count(), 1);
        // Rejoining starts clean.
        let ch = r.join(A, "r", true, true);
        assert_eq!(ch.len(), 1);
    }

    #[test]
    fn unpublishing_removes_the_track_from_everyone() {
        let mut r = Routing::new();
        r.join(A, "r", true, true);
        r.join(B, "r", true, true);
        r.publish(A, TrackNo(1)).unwrap();
        assert_eq!(
            r.unpublish(TrackNo(1)),
            vec![Unsubscribe {
                subscriber: B,
                track: TrackNo(1)
            }]
        );
        assert_eq!(r.publisher(TrackNo(1)), None);
        assert!(r.unpublish(TrackNo(1)).is_empty());
    }
}
