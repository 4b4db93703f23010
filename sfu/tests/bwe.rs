//! Bandwidth estimation per subscriber through a shard on the in-memory
//! network: every packet to a subscriber carries its connection's
//! transport-wide sequence number, the subscriber's transport-cc feedback
//! drives the estimate, probes find headroom and the allocation moves the
//! subscriber up to the layer its settings ask for; retransmissions stay
//! within their budget.

mod common;

use std::collections::HashSet;

use common::camera::{last_width, sized, Camera, FRAME};
use common::sim::SimNet;
use common::ClientOptions;

/// With RTX negotiated (as browsers do), probes repeat media the
/// subscriber already got on the leg's RTX flow, which the server's SDP
/// names: no SSRC of their own, which a browser would show as a stream
/// that never decodes. They are counted in the subscriber's feedback and
/// lift its estimate; the media numbering stays gap-free.
#[test]
fn probes_on_the_rtx_flow_lift_the_estimate() {
    // Unpaced: a paced burst of media may fill a probe cluster by itself
    // (media counts towards a cluster), and this is about the padding.
    let mut net = SimNet::with_config(31, |c| c.bwe.pacing = false);
    let a = net.join("a", true, false);
    net.clients[a].add_simulcast_track("cam", &["q", "h", "f"]);
    let opts = ClientOptions {
        rtx: true,
        ..ClientOptions::default()
    };
    let viewer = net.join_with("viewer", false, true, opts);
    net.track_settings(viewer, a, "cam", sized(1280, 720));
    let mut cam = Camera::at_rates();
    for _ in 0..600 {
        cam.send(&mut net, a, false);
        net.step(FRAME);
    }
    let v = net
        .shard
        .subscribers
        .0
        .iter()
        .find(|s| s.participant == "viewer")
        .cloned()
        .expect("viewer figures");
    let sdp = net.clients[viewer].server_sdps.last().expect("server SDP");
    assert!(sdp.contains("a=ssrc-group:FID "), "{sdp}");
    assert!(v.probe_packets > 0 && v.probes_succeeded >= 1, "{v:?}");
    assert!(v.estimate_bps.unwrap() > 450_000, "{v:?}");
    assert_eq!(net.clients[viewer].received["cam"].gaps(), 0);
}

#[test]
fn feedback_drives_the_estimate_and_probes_move_the_subscriber_up() {
    let mut net = SimNet::new(31);
    let a = net.join("a", true, false);
    net.clients[a].add_simulcast_track("cam", &["q", "h", "f"]);
    let viewer = net.join("viewer", false, true);
    net.track_settings(viewer, a, "cam", sized(1280, 720));
    let mut cam = Camera::at_rates();
    let mut reached = None;
    for i in 0..900 {
        cam.send(&mut net, a, false);
        net.step(FRAME);
        if reached.is_none() && last_width(&net, viewer, "cam") == Some(1280) {
            reached = Some(i);
        }
    }
    let subs = net.shard.subscribers.0.clone();
    let v = subs
        .iter()
        .find(|s| s.participant == "viewer")
        .expect("viewer figures");
    assert!(v.estimation, "the viewer's feedback drives its estimate");
    assert!(v.feedbacks > 10, "{v:?}");
    assert!(v.probes_succeeded >= 1, "{v:?}");
    assert!(reached.is_some(), "the viewer reaches the top layer: {v:?}");
    assert_eq!(v.tracks[0].layer.as_deref(), Some("f"), "{v:?}");
    // The estimate was found above what the top layer takes.
    assert!(v.estimate_bps.unwrap() >= v.allocated_bps.unwrap(), "{v:?}");
    assert!(v.allocated_bps.unwrap() >= 900_000, "{v:?}");
    assert_eq!(
        net.clients[viewer].received["cam"].gaps(),
        0,
        "probes leave the media numbering gap-free"
    );
    // The histogram `/metrics` shows: every allocation round observed the
    // estimate (about four a second for 30 s).
    let c = &net.shard.counts;
    let rounds: u64 = c.estimates.iter().sum();
    assert!(rounds >= 60, "estimates observed: {:?}", c.estimates);
    assert!(c.estimates_sum_bps >= rounds * 100_000, "{c:?}");
}

#[test]
fn a_lossy_downlink_moves_the_subscriber_down_and_bounds_retransmissions() {
    let mut net = SimNet::new(32);
    let a = net.join("a", true, false);
    net.clients[a].add_simulcast_track("cam", &["q", "h", "f"]);
    let viewer = net.join("viewer", false, true);
    net.track_settings(viewer, a, "cam", sized(1280, 720));
    let mut cam = Camera::at_rates();
    let top = |n: &SimNet| last_width(n, viewer, "cam") == Some(1280);
    let mut i = 0;
    while i < 900 && !top(&net) {
        cam.send(&mut net, a, false);
        net.step(FRAME);
        i += 1;
    }
    assert!(top(&net), "the viewer first reaches the top layer");
    // A fifth of what the server sends the viewer is lost from now on.
    net.clients[viewer].downlink_loss = 0.2;
    let mut layers = HashSet::new();
    for _ in 0..450 {
        cam.send(&mut net, a, false);
        net.step(FRAME);
        if let Some(v) = net
            .shard
            .subscribers
            .0
            .iter()
            .find(|s| s.participant == "viewer")
        {
            layers.extend(v.tracks[0].layer.clone());
        }
    }
    let v = net
        .shard
        .subscribers
        .0
        .iter()
        .find(|s| s.participant == "viewer")
        .expect("viewer figures")
        .clone();
    assert!(
        layers.contains("q") || layers.contains("h"),
        "the viewer is moved down: {layers:?} {v:?}"
    );
    assert!(v.estimate_bps.unwrap() < 900_000, "{v:?}");
    assert!(v.retransmissions_sent > 0, "{v:?}");
    assert!(
        v.retransmissions_dropped > 0,
        "NACKs beyond the budget are not answered: {v:?}"
    );
    // The histogram `/metrics` shows of the time between one subscriber's
    // switches of a track: an interval for every switch after the first.
    let c = &net.shard.counts;
    assert!(c.layer_switches >= 1, "{c:?}");
    assert_eq!(
        c.switch_intervals.iter().sum::<u64>(),
        c.layer_switches - 1,
        "{c:?}"
    );
}
