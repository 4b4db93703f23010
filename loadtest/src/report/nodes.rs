//! Per-node figures of a run across several nodes of a cluster: what each
//! node forwarded, what crossed its node-to-node relays, and what it cost.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::ServerSample;

/// One node's figures over the measured window, from its `/metrics` at the
/// window's start and end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeFigures {
    /// The node's HTTP address.
    pub node: String,
    /// Participants the node hosted at the end of the window.
    pub participants: f64,
    /// RTP packets sent per second, to its participants and over relays.
    pub forwarded_packets_per_s: f64,
    /// RTP packets received per second, from publishers and over relays.
    pub received_packets_per_s: f64,
    /// RTP packets sent to other nodes per second (in `forwarded_packets_per_s`).
    pub relay_packets_out_per_s: f64,
    /// Bitrate sent to other nodes, kbit/s.
    pub relay_kbps_out: f64,
    /// RTP packets received from other nodes per second.
    pub relay_packets_in_per_s: f64,
    /// User+system CPU over the window, percent of one core.
    pub cpu_percent: Option<f64>,
    /// CPU time per forwarded packet (relayed ones included), microseconds.
    pub cpu_us_per_forwarded_packet: Option<f64>,
}

impl NodeFigures {
    /// The figures between two samples of one node.
    pub fn between(node: String, start: &ServerSample, end: &ServerSample) -> NodeFigures {
        let secs = end
            .at
            .saturating_duration_since(start.at)
            .as_secs_f64()
            .max(1e-9);
        let per_s = |a: f64, b: f64| (b - a).max(0.0) / secs;
        let cpu = match (start.cpu_seconds, end.cpu_seconds) {
            (Some(a), Some(b)) => Some((b - a).max(0.0)),
            _ => None,
        };
        let forwarded = (end.packets_out - start.packets_out).max(0.0);
        NodeFigures {
            node,
            participants: end.participants,
            forwarded_packets_per_s: forwarded / secs,
            received_packets_per_s: per_s(start.packets_in, end.packets_in),
            relay_packets_out_per_s: per_s(start.relay_packets_out, end.relay_packets_out),
            relay_kbps_out: per_s(start.relay_bytes_out, end.relay_bytes_out) * 8.0 / 1000.0,
            relay_packets_in_per_s: per_s(start.relay_packets_in, end.relay_packets_in),
            cpu_percent: cpu.map(|c| c / secs * 100.0),
            cpu_us_per_forwarded_packet: cpu
                .filter(|_| forwarded > 0.0)
                .map(|c| c / forwarded * 1e6),
        }
    }
}

/// The cluster as a whole: packets delivered to participants (relayed
/// copies left out, since a relayed packet is delivered by the node it
/// reaches) and the CPU of all nodes together per delivered packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterTotal {
    pub delivered_packets_per_s: f64,
    pub cpu_percent: Option<f64>,
    pub cpu_us_per_delivered_packet: Option<f64>,
}

/// Sums the nodes; `None` for a single node.
pub fn total(nodes: &[NodeFigures]) -> Option<ClusterTotal> {
    if nodes.len() < 2 {
        return None;
    }
    let delivered: f64 = nodes
        .iter()
        .map(|n| n.forwarded_packets_per_s - n.relay_packets_out_per_s)
        .sum();
    let cpu: Option<f64> = nodes.iter().map(|n| n.cpu_percent).sum();
    Some(ClusterTotal {
        delivered_packets_per_s: delivered,
        cpu_percent: cpu,
        cpu_us_per_delivered_packet: cpu
            .filter(|_| delivered > 0.0)
            .map(|c| c / 100.0 / delivered * 1e6),
    })
}

/// The report's lines for the nodes, empty for a single node.
pub fn table(nodes: &[NodeFigures]) -> String {
    let mut s = String::new();
    let Some(t) = total(nodes) else {
        return s;
    };
    let f = |v: Option<f64>, d: usize| v.map_or("-".to_owned(), |v| format!("{v:.d$}"));
    for n in nodes {
        let _ = writeln!(
            s,
            "node {}  {:.0} participants, {:.0} pkt/s forwarded ({:.0} to other nodes, {:.0} kbit/s), {:.0} pkt/s in ({:.0} from other nodes), CPU {}%, {} us per forwarded packet",
            n.node,
            n.participants,
            n.forwarded_packets_per_s,
            n.relay_packets_out_per_s,
            n.relay_kbps_out,
            n.received_packets_per_s,
            n.relay_packets_in_per_s,
            f(n.cpu_percent, 1),
            f(n.cpu_us_per_forwarded_packet, 2),
        );
    }
    let _ = writeln!(
        s,
        "cluster         {:.0} pkt/s delivered to participants, CPU {}% on all nodes, {} us per delivered packet",
        t.delivered_packets_per_s,
        f(t.cpu_percent, 1),
        f(t.cpu_us_per_delivered_packet, 2),
    );
    s
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn sample(at: Instant, cpu: f64, out: f64, relay_out: f64, relay_bytes: f64) -> ServerSample {
        ServerSample {
            at,
            cpu_seconds: Some(cpu),
            rss_bytes: None,
            packets_out: out,
            packets_in: 0.0,
            participants: 5.0,
            nacks: 0.0,
            keyframe_requests: 0.0,
            dropped: 0.0,
            dropped_by_reason: Vec::new(),
            input_lag_buckets: Vec::new(),
            relay_packets_out: relay_out,
            relay_bytes_out: relay_bytes,
            relay_packets_in: 0.0,
            wakeups: None,
        }
    }

    #[test]
    fn a_node_s_rates_and_cost_come_from_the_window() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        let n = NodeFigures::between(
            "n1".into(),
            &sample(t0, 1.0, 1000.0, 100.0, 0.0),
            &sample(t1, 3.0, 21_000.0, 5100.0, 1_250_000.0),
        );
        assert_eq!(n.forwarded_packets_per_s, 2000.0);
        assert_eq!(n.relay_packets_out_per_s, 500.0);
        assert_eq!(n.relay_kbps_out, 1000.0);
        assert_eq!(n.cpu_percent, Some(20.0));
        assert_eq!(n.cpu_us_per_forwarded_packet, Some(100.0));
    }

    #[test]
    fn the_cluster_total_leaves_relayed_copies_out() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let a = NodeFigures::between(
            "n1".into(),
            &sample(t0, 0.0, 0.0, 0.0, 0.0),
            &sample(t1, 0.5, 1000.0, 200.0, 0.0),
        );
        let b = NodeFigures::between(
            "n2".into(),
            &sample(t0, 0.0, 0.0, 0.0, 0.0),
            &sample(t1, 0.3, 800.0, 0.0, 0.0),
        );
        assert_eq!(
            total(std::slice::from_ref(&a)),
            None,
            "one node: no cluster line"
        );
        let t = total(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(t.delivered_packets_per_s, 1600.0);
        assert_eq!(t.cpu_percent, Some(80.0));
        assert_eq!(t.cpu_us_per_delivered_packet, Some(500.0));
        let text = table(&[a, b]);
        assert!(text.contains("node n1  5 participants, 1000 pkt/s forwarded (200 to other nodes"));
        assert!(text.contains("cluster         1600 pkt/s delivered"));
    }
}
