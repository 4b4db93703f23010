//! Bandwidth estimation per subscriber through a shard on the in-memory
//! network: every packet to a subscriber carries its connection's
//! transport-wide sequence number, the subscriber's transport-cc feedback
//! drives the estimate, probes find headroom and the allocation moves the
//! subscriber up to the layer its settings ask for; retransmissions stay
//! within their budget.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use common::sim::SimNet;
use signaling::media::TrackSettings;

const FRAME: Duration = Duration::from_millis(33);
const SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

/// A VP8 payload with PictureID/TL0PICIDX; a keyframe carries its size.
fn vp8(start: bool, pid: u16, tl0: u8, key: bool, size: (u16, u16), len: usize) -> Bytes {
    let mut v = vec![0x80 | if start { 0x10 } else { 0 }, 0xe0];
    v.extend([0x80 | (pid >> 8) as u8, pid as u8, tl0, 0x00]);
    v.extend([if key { 0x10 } else { 0x11 }, 0, 0, 0x9d, 0x01, 0x2a]);
    v.extend(size.0.to_le_bytes());
    v.extend(size.1.to_le_bytes());
    v.resize(len, 0xab);
    Bytes::from(v)
}

/// One frame on each of three simulcast streams, `packets[s]` packets of
/// 1000 bytes each (about 250, 500 and 1000 kbit/s at 30 fps with 1, 2, 4).
struct Camera {
    frame: u32,
    seq: [u16; 3],
    pid: [u16; 3],
    tl0: [u8; 3],
}

impl Camera {
    fn new() -> Self {
        Camera {
            frame: 0,
            seq: [100, 20_000, 40_000],
            pid: [1, 500, 9000],
            tl0: [0, 50, 100],
        }
    }

    fn send(&mut self, net: &mut SimNet, publisher: usize) {
        let now = net.now;
        for (s, size) in SIZES.iter().enumerate() {
            let k = self.frame.is_multiple_of(60);
            let n = [1, 2, 4][s];
            for part in 0..n {
                let p = vp8(part == 0, self.pid[s], self.tl0[s], k, *size, 1000);
                net.clients[publisher].send_rtp(s, self.seq[s], self.frame * 3000, p, now);
                self.seq[s] = self.seq[s].wrapping_add(1);
            }
            self.pid[s] = (self.pid[s] + 1) & 0x7fff;
            self.tl0[s] = self.tl0[s].wrapping_add(1);
        }
        self.frame += 1;
    }
}

fn last_width(net: &SimNet, client: usize, track: &str) -> Option<u16> {
    let r = net.clients[client].received.get(track)?;
    r.payloads.iter().rev().find_map(|p| {
        (p.len() > 16 && p[0] & 0x10 != 0 && p[6] & 0x01 == 0 && p[9..12] == [0x9d, 0x01, 0x2a])
            .then(|| u16::from_le_bytes([p[12], p[13]]) & 0x3fff)
    })
}

fn sized(w: u32, h: u32) -> TrackSettings {
    TrackSettings {
        width: w,
        height: h,
        ..Default::default()
    }
}

#[test]
fn feedback_drives_the_estimate_and_probes_move_the_subscriber_up() {
    let mut net = SimNet::new(31);
    let a = net.join("a", true, false);
    net.clients[a].add_simulcast_track("cam", &["q", "h", "f"]);
    let viewer = net.join("viewer", false, true);
    net.track_settings(viewer, a, "cam", sized(1280, 720));
    let mut cam = Camera::new();
    let mut reached = None;
    for i in 0..900 {
        cam.send(&mut net, a);
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
}

#[test]
fn a_lossy_downlink_moves_the_subscriber_down_and_bounds_retransmissions() {
    let mut net = SimNet::new(32);
    let a = net.join("a", true, false);
    net.clients[a].add_simulcast_track("cam", &["q", "h", "f"]);
    let viewer = net.join("viewer", false, true);
    net.track_settings(viewer, a, "cam", sized(1280, 720));
    let mut cam = Camera::new();
    let top = |n: &SimNet| last_width(n, viewer, "cam") == Some(1280);
    let mut i = 0;
    while i < 900 && !top(&net) {
        cam.send(&mut net, a);
        net.step(FRAME);
        i += 1;
    }
    assert!(top(&net), "the viewer first reaches the top layer");
    // A fifth of what the server sends the viewer is lost from now on.
    net.clients[viewer].downlink_loss = 0.2;
    let mut layers = HashSet::new();
    for _ in 0..450 {
        cam.send(&mut net, a);
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
}
