//! Tracks coming and going while offers cross: the server (impolite)
//! ignores a client offer that collides with its own, the client (polite)
//! rolls back and offers again, and in the end everyone receives every
//! track of the others.

mod common;

use std::time::Duration;

use common::{payload, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::MediaPlane;

#[test]
fn concurrent_changes_converge() {
    let mut net = Net::new(1);
    let a = net.join("a", true, true);
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    let b = net.join("b", true, true);
    net.clients[b].add_track("b-video", RtpCodecKind::Video);
    let mut seq = 0u16;
    let mut send = move |net: &mut Net| {
        seq = seq.wrapping_add(1);
        for c in net.clients.iter_mut() {
            for i in 0..c.senders.len() {
                c.send_rtp(i, seq, seq as u32 * 3000, payload(seq, 300), true);
            }
        }
    };
    let receives = |n: &Net, who: usize, tracks: &[&str]| {
        tracks.iter().all(|t| {
            n.clients[who]
                .received
                .get(*t)
                .is_some_and(|r| r.packets >= 20)
        })
    };
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !(receives(&net, a, &["b-video"]) && receives(&net, b, &["a-video"]))
        && std::time::Instant::now() < end
    {
        net.pump_for(
            Duration::from_millis(50),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(receives(&net, a, &["b-video"]) && receives(&net, b, &["a-video"]));

    // Staged glare: c publishes, so the server offers a; a does not see
    // that offer yet and sends an offer of its own (a new track). b adds a
    // track at the same time.
    net.hold.push(net.clients[a].id.clone());
    let c = net.join("c", true, true);
    net.clients[c].add_track("c-video", RtpCodecKind::Video);
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while net.held.is_empty() && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(20),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(!net.held.is_empty(), "the server offered a the new track");
    net.clients[a].add_track("a-audio", RtpCodecKind::Audio);
    net.clients[b].add_track("b-audio", RtpCodecKind::Audio);
    net.pump_for(
        Duration::from_millis(50),
        Duration::from_millis(10),
        &mut send,
    );
    net.hold.clear();
    let all = |n: &Net| {
        receives(n, a, &["b-video", "b-audio", "c-video"])
            && receives(n, b, &["a-video", "a-audio", "c-video"])
            && receives(n, c, &["a-video", "a-audio", "b-video", "b-audio"])
    };
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !all(&net) && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(50),
            Duration::from_millis(10),
            &mut send,
        );
    }
    for (i, cl) in net.clients.iter().enumerate() {
        let got: Vec<(&String, u64)> = cl.received.iter().map(|(k, r)| (k, r.packets)).collect();
        assert!(
            all(&net),
            "client {i} received {got:?}; errors {:?}",
            cl.errors
        );
    }
    assert_eq!(net.plane.stats().tracks, 5);
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
