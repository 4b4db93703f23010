//! Tracks coming and going while offers cross: the server (impolite)
//! ignores a client offer that collides with its own, the client (polite)
//! rolls back and offers again, and in the end everyone receives every
//! track of the others. On the simulated network, in virtual time.

mod common;

use std::time::Duration;

use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::MediaEvent;

const FRAME: Duration = Duration::from_millis(10);
/// Virtual time allowed for each phase to converge.
const PATIENCE: Duration = Duration::from_secs(30);

/// Client `who` has received at least 20 packets of each of `tracks`.
fn receives(n: &SimNet, who: usize, tracks: &[&str]) -> bool {
    tracks.iter().all(|t| n.clients[who].packets_of(t) >= 20)
}

#[test]
fn concurrent_changes_converge() {
    let mut net = SimNet::new(7);
    let a = net.join("a", true, true);
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    let b = net.join("b", true, true);
    net.clients[b].add_track("b-video", RtpCodecKind::Video);
    let mut seq = 0u16;
    assert!(
        net.media_until(&mut seq, FRAME, PATIENCE, |n| receives(n, a, &["b-video"])
            && receives(n, b, &["a-video"]))
    );

    // Staged glare: c publishes, so the server offers a; a does not see
    // that offer yet and sends an offer of its own (a new track). b adds a
    // track at the same time.
    net.clients[a].hold_signaling = true;
    let c = net.join("c", true, true);
    net.clients[c].add_track("c-video", RtpCodecKind::Video);
    assert!(
        net.media_until(&mut seq, FRAME, PATIENCE, |n| n.clients[a]
            .held
            .iter()
            .any(|e| matches!(e, MediaEvent::Offer { .. }))),
        "the server offered a the new track"
    );
    net.clients[a].add_track("a-audio", RtpCodecKind::Audio);
    net.clients[b].add_track("b-audio", RtpCodecKind::Audio);
    net.media_until(&mut seq, FRAME, Duration::from_millis(50), |_| false);
    net.clients[a].hold_signaling = false;
    let all = |n: &SimNet| {
        receives(n, a, &["b-video", "b-audio", "c-video"])
            && receives(n, b, &["a-video", "a-audio", "c-video"])
            && receives(n, c, &["a-video", "a-audio", "b-video", "b-audio"])
    };
    net.media_until(&mut seq, FRAME, PATIENCE, all);
    for (i, cl) in net.clients.iter().enumerate() {
        let got: Vec<(&String, u64)> = cl.received.iter().map(|(k, r)| (k, r.packets)).collect();
        assert!(
            all(&net),
            "client {i} received {got:?}; errors {:?}",
            cl.errors
        );
    }
    assert_eq!(net.shard.counts.tracks, 5);
    assert!(
        net.clients[a].rollbacks >= 1,
        "a rolled its colliding offer back"
    );
    // The only word from the server: a's crossed offer was ignored.
    assert!(
        net.clients[a]
            .errors
            .iter()
            .any(|e| e.contains("offer crossed")),
        "{:?}",
        net.clients[a].errors
    );
    assert!(net
        .clients
        .iter()
        .flat_map(|c| &c.errors)
        .all(|e| e.contains("offer crossed")));
}
