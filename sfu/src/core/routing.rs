//! Who receives what: the routing graph of one shard's rooms.
//!
//! Members join a room with permissions; each published track is sent to
//! every other member of its room allowed to subscribe. Every change returns
//! the subscriptions it made or ended, for the shard to carry out
//! (add or remove a sender, renegotiate).

use std::collections::BTreeMap;

use super::ids::{IdMap, PeerKey, TrackNo};

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
    /// A node-to-node relay: it sends this node's own tracks to another
    /// node and brings that node's tracks here. A track never goes from one
    /// relay to another: each node sends its own tracks to every other node
    /// once, so nothing crosses twice and nothing loops.
    relay: bool,
}

impl Member {
    /// Whether a track published by `self` goes to `sub`.
    fn reaches(&self, sub: &Member) -> bool {
        sub.subscribe && sub.room == self.room && !(self.relay && sub.relay)
    }
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
    fanout: IdMap<TrackNo, Vec<PeerKey>>,
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
        self.add_member(peer, room, publish, subscribe, false)
    }

    /// A relay to another node joins the room: it publishes that node's
    /// tracks here and receives this node's own (not other relays').
    pub fn join_relay(&mut self, peer: PeerKey, room: &str) -> Vec<RouteChange> {
        self.add_member(peer, room, true, true, true)
    }

    fn add_member(
        &mut self,
        peer: PeerKey,
        room: &str,
        publish: bool,
        subscribe: bool,
        relay: bool,
    ) -> Vec<RouteChange> {
        let member = Member {
            room: room.to_owned(),
            publish,
            subscribe,
            relay,
        };
        self.members.insert(peer, member.clone());
        let mut changes = Vec::new();
        if !subscribe {
            return changes;
        }
        let tracks: Vec<TrackNo> = self
            .tracks
            .iter()
            .filter(|(_, r)| {
                self.members
                    .get(&r.publisher)
                    .is_some_and(|p| r.publisher != peer && p.reaches(&member))
            })
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
            .filter(|(k, m)| **k != publisher && member.reaches(m))
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
    use std::collections::HashMap;
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

    #[test]
    fn relays_carry_local_tracks_out_and_remote_tracks_in_never_relay_to_relay() {
        const R1: PeerKey = PeerKey(11);
        const R2: PeerKey = PeerKey(12);
        let mut r = Routing::new();
        r.join(A, "r", true, true);
        r.join_relay(R1, "r");
        // A local track goes to the relay already there...
        let ch = r.publish(A, TrackNo(1)).unwrap();
        assert_eq!(
            ch,
            vec![Subscribe {
                subscriber: R1,
                track: TrackNo(1)
            }]
        );
        // ...and to one that comes later.
        let ch = r.join_relay(R2, "r");
        assert_eq!(
            ch,
            vec![Subscribe {
                subscriber: R2,
                track: TrackNo(1)
            }]
        );
        // A track another node sent in reaches local members, not relays.
        r.join(B, "r", false, true);
        let ch = r.publish(R1, TrackNo(2)).unwrap();
        assert_eq!(
            ch,
            vec![
                Subscribe {
                    subscriber: A,
                    track: TrackNo(2)
                },
                Subscribe {
                    subscriber: B,
                    track: TrackNo(2)
                }
            ]
        );
        let ch = r.join_relay(PeerKey(13), "r");
        assert_eq!(
            ch,
            vec![Subscribe {
                subscriber: PeerKey(13),
                track: TrackNo(1)
            }]
        );
        // The relay goes: its tracks end here.
        let ch = r.leave(R1);
        assert!(ch.contains(&Unsubscribe {
            subscriber: A,
            track: TrackNo(2)
        }));
        assert!(ch.contains(&Unsubscribe {
            subscriber: R1,
            track: TrackNo(1)
        }));
    }

    /// Three nodes, each with two members publishing one track, relays
    /// between every pair, everything happening in a random order: each
    /// member receives every other member's track exactly once, wherever
    /// it is, and a relay carries only its own node's tracks.
    #[test]
    fn across_nodes_every_track_arrives_once_and_never_loops() {
        const NODES: usize = 3;
        const LOCALS: u64 = 2;
        // A relay on node `i` towards node `j`; a local `l` of node `i`.
        let relay = |i: usize, j: usize| PeerKey(1000 + (i * NODES + j) as u64);
        let local = |i: usize, l: u64| PeerKey(i as u64 * 10 + l);
        let origin_of = |p: PeerKey| p.0; // a local's own track's origin
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let mut routing: Vec<Routing> = (0..NODES).map(|_| Routing::new()).collect();
            // Per node: track number to the origin (member) it carries.
            let mut origin: Vec<HashMap<TrackNo, u64>> = vec![HashMap::new(); NODES];
            let mut next_track = 1u64;
            // Steps: join then publish per local, one relay pair per pair.
            let mut steps: Vec<(usize, Option<usize>, u64)> = Vec::new();
            for i in 0..NODES {
                for l in 0..LOCALS {
                    steps.push((i, None, l));
                }
                for j in i + 1..NODES {
                    steps.push((i, Some(j), 0));
                }
            }
            for k in (1..steps.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                steps.swap(k, (seed % (k as u64 + 1)) as usize);
            }
            // What crosses: (to node, from node, origin).
            let mut wire: Vec<(usize, usize, u64)> = Vec::new();
            let apply = |node: usize,
                         changes: Vec<RouteChange>,
                         origin: &HashMap<TrackNo, u64>,
                         wire: &mut Vec<(usize, usize, u64)>| {
                for c in changes {
                    if let Subscribe { subscriber, track } = c {
                        for j in 0..NODES {
                            if subscriber == relay(node, j) {
                                wire.push((j, node, origin[&track]));
                            }
                        }
                    }
                }
            };
            for (i, pair, l) in steps {
                match pair {
                    None => {
                        let me = local(i, l);
                        let ch = routing[i].join(me, "r", true, true);
                        apply(i, ch, &origin[i], &mut wire);
                        let t = TrackNo(next_track);
                        next_track += 1;
                        origin[i].insert(t, origin_of(me));
                        let ch = routing[i].publish(me, t).unwrap();
                        apply(i, ch, &origin[i], &mut wire);
                    }
                    Some(j) => {
                        for (a, b) in [(i, j), (j, i)] {
                            let ch = routing[a].join_relay(relay(a, b), "r");
                            apply(a, ch, &origin[a], &mut wire);
                        }
                    }
                }
                // Tracks that crossed are published by the relay on the
                // far side (the relay exists there: both ends open at once).
                while let Some((to, from, o)) = wire.pop() {
                    let t = TrackNo(next_track);
                    next_track += 1;
                    origin[to].insert(t, o);
                    let ch = routing[to].publish(relay(to, from), t).unwrap();
                    apply(to, ch, &origin[to], &mut wire);
                    assert!(
                        next_track < 10_000,
                        "round {round}: tracks loop between nodes"
                    );
                }
            }
            for i in 0..NODES {
                let mut got: HashMap<PeerKey, Vec<u64>> = HashMap::new();
                for (t, o) in &origin[i] {
                    for s in routing[i].subscribers(*t) {
                        got.entry(*s).or_default().push(*o);
                    }
                }
                for l in 0..LOCALS {
                    let me = local(i, l);
                    let mut mine = got.remove(&me).unwrap_or_default();
                    mine.sort();
                    let want: Vec<u64> = (0..NODES)
                        .flat_map(|n| (0..LOCALS).map(move |m| local(n, m)))
                        .filter(|p| *p != me)
                        .map(origin_of)
                        .collect();
                    assert_eq!(mine, want, "round {round}: node {i} local {l}");
                }
                // The rest are relays: each carries this node's own tracks.
                for (r, mut carried) in got {
                    carried.sort();
                    let own: Vec<u64> = (0..LOCALS).map(|m| origin_of(local(i, m))).collect();
                    assert_eq!(carried, own, "round {round}: relay {r} on node {i}");
                }
            }
        }
    }
}
