//! Where a new participant goes.
//!
//! 1. A node already serving the room, while it has headroom (the room's
//!    first home first, then the one serving most of its members): keeping
//!    a room on few nodes keeps relays few.
//! 2. Otherwise the least-loaded node with headroom, preferring the region
//!    of the node the client reached (a load balancer that routes by
//!    geography sends clients to a node of their region).
//! 3. When no node has headroom, the least-loaded node anyway: limits are
//!    where the cluster spreads load, not where it turns people away.
//!
//! Draining nodes are never chosen. Load is compared by the highest
//! fraction of any configured limit (participants, tracks, CPU), then by
//! participants.

use crate::ids::NodeId;

use super::NodeInfo;

/// Per-node limits, from `[cluster]` (0: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_participants: u32,
    pub max_tracks: u32,
    pub max_cpu_percent: u32,
}

impl Limits {
    /// Whether the node can take one more participant.
    pub fn has_headroom(&self, n: &NodeInfo) -> bool {
        (self.max_participants == 0 || n.load.participants < self.max_participants)
            && (self.max_tracks == 0 || n.load.tracks < self.max_tracks)
            && (self.max_cpu_percent == 0 || n.load.cpu_percent < f64::from(self.max_cpu_percent))
    }

    /// How full the node is: the highest fraction of any limit set.
    fn fullness(&self, n: &NodeInfo) -> f64 {
        let frac = |v: f64, max: u32| if max == 0 { 0.0 } else { v / f64::from(max) };
        frac(f64::from(n.load.participants), self.max_participants)
            .max(frac(f64::from(n.load.tracks), self.max_tracks))
            .max(frac(n.load.cpu_percent, self.max_cpu_percent))
    }
}

/// Picks the node for a new participant of a room served today by
/// `room_nodes` (node and its member count; empty for a new room).
/// `region`: the region of the node the client reached. `None` when no
/// node is up and not draining.
pub fn select<'a>(
    room_nodes: &[(NodeId, u32)],
    home: Option<&NodeId>,
    nodes: &'a [NodeInfo],
    limits: &Limits,
    region: &str,
) -> Option<&'a NodeInfo> {
    let live = || nodes.iter().filter(|n| !n.draining);
    let mut serving: Vec<&(NodeId, u32)> = room_nodes.iter().collect();
    // The first home first, then by members served, then by id (stable).
    serving.sort_by(|a, b| {
        (Some(&b.0) == home)
            .cmp(&(Some(&a.0) == home))
            .then(b.1.cmp(&a.1))
            .then(a.0.cmp(&b.0))
    });
    for (id, _) in serving {
        if let Some(n) = live().find(|n| &n.id == id) {
            if limits.has_headroom(n) {
                return Some(n);
            }
        }
    }
    let least = |it: &mut dyn Iterator<Item = &'a NodeInfo>| {
        it.min_by(|a, b| {
            limits
                .fullness(a)
                .total_cmp(&limits.fullness(b))
                .then(a.load.participants.cmp(&b.load.participants))
                .then(a.id.cmp(&b.id))
        })
    };
    let in_region = |n: &&NodeInfo| region.is_empty() || n.region == region;
    least(&mut live().filter(|n| limits.has_headroom(n)).filter(in_region))
        .or_else(|| least(&mut live().filter(|n| limits.has_headroom(n))))
        .or_else(|| least(&mut live()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Load;

    fn node(id: &str, region: &str, participants: u32, tracks: u32, cpu: f64) -> NodeInfo {
        NodeInfo {
            id: NodeId::new(id),
            url: format!("ws://{id}/ws"),
            media: String::new(),
            region: region.into(),
            draining: false,
            load: Load {
                cpu_percent: cpu,
                participants,
                tracks,
                packets_per_second: 0,
            },
        }
    }

    fn pick(
        room: &[(&str, u32)],
        home: Option<&str>,
        nodes: &[NodeInfo],
        limits: Limits,
        region: &str,
    ) -> Option<String> {
        let room: Vec<(NodeId, u32)> = room.iter().map(|(n, c)| (NodeId::new(*n), *c)).collect();
        let home = home.map(NodeId::new);
        select(&room, home.as_ref(), nodes, &limits, region).map(|n| n.id.to_string())
    }

    #[test]
    fn a_room_stays_on_its_nodes_while_they_have_headroom() {
        let nodes = [node("a", "", 5, 0, 10.0), node("b", "", 0, 0, 1.0)];
        let limits = Limits {
            max_participants: 6,
            ..Limits::default()
        };
        // The room's node, although b is idle.
        assert_eq!(
            pick(&[("a", 5)], Some("a"), &nodes, limits, ""),
            Some("a".into())
        );
        // Full: the least-loaded node.
        let full = [node("a", "", 6, 0, 10.0), node("b", "", 0, 0, 1.0)];
        assert_eq!(
            pick(&[("a", 6)], Some("a"), &full, limits, ""),
            Some("b".into())
        );
    }

    #[test]
    fn the_first_home_comes_before_other_nodes_of_the_room() {
        let nodes = [node("a", "", 1, 0, 0.0), node("b", "", 1, 0, 0.0)];
        let l = Limits::default();
        assert_eq!(
            pick(&[("a", 1), ("b", 3)], Some("a"), &nodes, l, ""),
            Some("a".into())
        );
        assert_eq!(
            pick(&[("a", 1), ("b", 3)], None, &nodes, l, ""),
            Some("b".into())
        );
    }

    #[test]
    fn every_limit_counts() {
        let tracks = Limits {
            max_tracks: 10,
            ..Limits::default()
        };
        let nodes = [node("a", "", 1, 10, 0.0), node("b", "", 30, 2, 0.0)];
        assert_eq!(
            pick(&[("a", 1)], Some("a"), &nodes, tracks, ""),
            Some("b".into())
        );
        let cpu = Limits {
            max_cpu_percent: 80,
            ..Limits::default()
        };
        let nodes = [node("a", "", 1, 0, 85.0), node("b", "", 30, 0, 20.0)];
        assert_eq!(
            pick(&[("a", 1)], Some("a"), &nodes, cpu, ""),
            Some("b".into())
        );
    }

    #[test]
    fn new_rooms_prefer_the_region_then_the_least_loaded() {
        let nodes = [
            node("eu1", "eu", 4, 0, 0.0),
            node("eu2", "eu", 2, 0, 0.0),
            node("us1", "us", 0, 0, 0.0),
        ];
        let l = Limits {
            max_participants: 5,
            ..Limits::default()
        };
        assert_eq!(pick(&[], None, &nodes, l, "eu"), Some("eu2".into()));
        assert_eq!(pick(&[], None, &nodes, l, "us"), Some("us1".into()));
        assert_eq!(pick(&[], None, &nodes, l, ""), Some("us1".into()));
        // The region full: another region rather than over the limit.
        let busy = [node("eu1", "eu", 5, 0, 0.0), node("us1", "us", 3, 0, 0.0)];
        assert_eq!(pick(&[], None, &busy, l, "eu"), Some("us1".into()));
    }

    #[test]
    fn all_full_still_serves_on_the_least_loaded_and_draining_is_skipped() {
        let l = Limits {
            max_participants: 2,
            ..Limits::default()
        };
        let nodes = [node("a", "", 3, 0, 0.0), node("b", "", 2, 0, 0.0)];
        assert_eq!(
            pick(&[("a", 3)], Some("a"), &nodes, l, ""),
            Some("b".into())
        );
        let mut draining = [node("a", "", 0, 0, 0.0), node("b", "", 1, 0, 0.0)];
        draining[0].draining = true;
        assert_eq!(
            pick(&[("a", 1)], Some("a"), &draining, l, ""),
            Some("b".into())
        );
        draining[1].draining = true;
        assert_eq!(pick(&[], None, &draining, l, ""), None);
    }
}
