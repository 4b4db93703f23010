//! A malicious participant's signaling: offers that fail to apply, huge
//! offers at a high rate, `.local` candidates, candidates out of turn.
//! Each is refused with `media_rejected` and a reason, never answered; the
//! sender's own connection stays usable, the server sends no multicast
//! DNS, and another participant on the same shard is not held up.
//!
//! In memory on a virtual clock (`common::sim`).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::MediaCommand;
use signaling::protocol::IceCandidate;

/// A valid offer as a client of this test stack makes it: audio and video.
fn sample_offer() -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut pc = common::client_pc(addr, Instant::now(), &Default::default());
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        pc.add_transceiver_from_kind(kind, None).unwrap();
    }
    let offer = pc.create_offer(None).unwrap();
    pc.set_local_description(Instant::now(), offer).unwrap();
    pc.local_description().unwrap().sdp
}

fn offer(net: &mut SimNet, i: usize, sdp: String) {
    let cmd = MediaCommand::Offer {
        room: net.room.clone(),
        participant: net.clients[i].id.clone(),
        sdp,
    };
    net.shard.handle_command(cmd, net.now);
}

fn candidate(net: &mut SimNet, i: usize, text: &str) {
    let cmd = MediaCommand::Candidate {
        room: net.room.clone(),
        participant: net.clients[i].id.clone(),
        candidate: Some(IceCandidate {
            candidate: text.into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }),
    };
    net.shard.handle_command(cmd, net.now);
}

/// No datagram the shard is about to send goes to a multicast address.
fn assert_no_multicast(net: &mut SimNet) {
    let (out, _, _) = net.shard.take_output();
    for (to, _) in out.iter() {
        assert!(!to.ip().is_multicast(), "the server sent to {to}");
    }
}

/// The report's offers that wedged a connection, and those that were
/// answered though they should not be.
fn broken_offers(good: &str) -> Vec<(&'static str, String)> {
    let first_line = |key: &str| {
        good.lines()
            .find(|l| l.starts_with(key))
            .map(|l| format!("{l}\r\n"))
            .unwrap_or_default()
    };
    let ufrag_line = first_line("a=ice-ufrag:");
    let fp_line = first_line("a=fingerprint:");
    let mid_lines: Vec<String> = good
        .lines()
        .filter(|l| l.starts_with("a=mid:"))
        .map(str::to_owned)
        .collect();
    let pt = good
        .lines()
        .find_map(|l| l.strip_prefix("a=rtpmap:"))
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_owned();
    let ext = good
        .lines()
        .find_map(|l| l.strip_prefix("a=extmap:"))
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_owned();
    let head: String = good.split("\r\nm=").next().unwrap().to_owned() + "\r\n";
    vec![
        ("no m-lines", head),
        ("no fingerprint", good.replace(&fp_line, "")),
        (
            "broken fingerprint",
            good.replace("a=fingerprint:sha-256 ", "a=fingerprint:sha-256 ZZ:"),
        ),
        ("no ICE credentials", good.replace(&ufrag_line, "")),
        ("empty ufrag", good.replace(&ufrag_line, "a=ice-ufrag:\r\n")),
        (
            "20 KB ufrag",
            good.replace(
                &ufrag_line,
                &format!("a=ice-ufrag:{}\r\n", "u".repeat(20_000)),
            ),
        ),
        (
            "payload type 999",
            good.replace(&format!("a=rtpmap:{pt} "), "a=rtpmap:999 "),
        ),
        (
            "extmap id 300",
            good.replace(&format!("a=extmap:{ext} "), "a=extmap:300 "),
        ),
        ("duplicate mids", good.replace(&mid_lines[1], &mid_lines[0])),
        ("m=text", good.replacen("m=video", "m=text", 1)),
    ]
}

#[test]
fn bad_offers_are_refused_and_the_connection_stays_usable() {
    let mut net = SimNet::new(5);
    let good = sample_offer();
    let p = net.join("p", true, true);
    let bad = broken_offers(&good);
    for (what, sdp) in &bad {
        offer(&mut net, p, sdp.clone());
        let (_, events, _) = net.shard.take_output();
        assert!(
            events
                .iter()
                .all(|e| !matches!(e, signaling::media::MediaEvent::Answer { .. })),
            "{what}: answered"
        );
    }
    // Before the fix, every later offer was refused: "invalid proposed
    // signaling state transition". Now each bad one has its own error and
    // the client's real offer is answered and connects.
    assert_eq!(
        net.clients[p].errors.len(),
        0,
        "errors are delivered by step"
    );
    net.step(Duration::from_millis(1));
    let errors = net.clients[p].errors.clone();
    assert_eq!(
        errors.len(),
        bad.len(),
        "one error per bad offer: {errors:#?}"
    );
    for ((what, _), e) in bad.iter().zip(&errors) {
        assert!(e.starts_with("media_rejected: "), "{what}: {e}");
        assert!(!e.contains("signaling state"), "{what}: {e}");
    }
    net.clients[p].add_track("cam", RtpCodecKind::Video);
    let v = net.join("v", false, true);
    // The viewer is offered the track once its media flows.
    let mut seq = 0u16;
    let end = net.now + Duration::from_secs(30);
    while !net.clients.iter().all(|c| c.connected()) && net.now < end {
        seq = seq.wrapping_add(1);
        let now = net.now;
        net.clients[p].send_rtp(0, seq, seq as u32 * 3000, common::payload(seq, 400), now);
        net.step(Duration::from_millis(20));
    }
    assert!(
        net.clients.iter().all(|c| c.connected()),
        "the client that sent the bad offers connects: {:?}",
        net.clients[p].errors
    );
    net.run(Duration::from_secs(3), Duration::from_millis(20), |n| {
        seq = seq.wrapping_add(1);
        n.clients[p].send_rtp(0, seq, seq as u32 * 3000, common::payload(seq, 400), n.now);
    });
    assert!(
        net.clients[v].packets_of("cam") > 50,
        "its media is forwarded"
    );
    assert_eq!(net.clients[p].errors.len(), bad.len(), "no other error");
}

#[test]
fn huge_offers_at_a_high_rate_are_refused_cheaply() {
    let mut net = SimNet::new(6);
    let good = sample_offer();
    let m = good.find("\r\nm=").unwrap() + 2;
    let (head, sections) = good.split_at(m);
    // 500 video sections (about the 64 KiB a message may carry).
    let video = &sections[sections.find("m=video").unwrap()..];
    let mut big = head.to_owned();
    for i in 0..500 {
        let mid = video
            .lines()
            .find(|l| l.starts_with("a=mid:"))
            .unwrap()
            .to_owned();
        big += &video.replace(&mid, &format!("a=mid:x{i}"));
    }
    let attacker = net.join("attacker", true, true);
    // Another participant on the same shard joins while the attack runs.
    let other = net.join("other", true, true);
    net.clients[other].add_track("cam", RtpCodecKind::Video);
    let mut answered = 0;
    let mut refused = 0;
    let start = Instant::now();
    // 45 offers a second for 4 s, half of them huge.
    for i in 0..180 {
        let sdp = if i % 2 == 0 {
            big.clone()
        } else {
            good.clone()
        };
        offer(&mut net, attacker, sdp);
        let attacker_id = net.clients[attacker].id.clone();
        let (_, events, _) = net.shard.take_output();
        // The attacker's replies are counted here; the others' go on.
        events.retain(|e| match e {
            signaling::media::MediaEvent::Answer { participant, .. }
                if *participant == attacker_id =>
            {
                answered += 1;
                false
            }
            signaling::media::MediaEvent::Error { participant, .. }
                if *participant == attacker_id =>
            {
                refused += 1;
                false
            }
            _ => true,
        });
        net.step(Duration::from_millis(22));
    }
    eprintln!(
        "180 offers in 4 s: {answered} answered, {refused} refused, {:?} of real time",
        start.elapsed()
    );
    // Huge offers are never applied; the others at most as the rate allows
    // (a burst of 10, then 2 a second).
    assert!(answered <= 10 + 2 * 4 + 1, "answered {answered}");
    assert!(refused >= 180 - answered, "refused {refused}");
    assert!(
        net.step_until(Duration::from_millis(10), Duration::from_secs(20), |n| n
            .clients[other]
            .connected()),
        "the other participant connects"
    );
}

#[test]
fn local_candidates_make_no_multicast_dns_and_out_of_turn_candidates_get_errors() {
    let mut net = SimNet::new(7);
    let p = net.join("p", true, true);
    // Before any offer or answer: an error, not silence.
    candidate(
        &mut net,
        p,
        "candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host",
    );
    assert_no_multicast(&mut net);
    net.step(Duration::from_millis(1));
    assert_eq!(
        net.clients[p].errors.len(),
        1,
        "{:?}",
        net.clients[p].errors
    );
    assert!(net.clients[p].errors[0].contains("before any offer"));

    // An offer with `.local` host candidates, then trickled ones with
    // names a client chose.
    net.clients[p].munge = Some(Box::new(|sdp: &str| {
        let at = sdp.find("a=mid:").unwrap();
        let mut s = sdp.to_owned();
        s.insert_str(
            at,
            "a=candidate:1 1 udp 2122260223 3f2a5e1c-aaaa-bbbb-cccc-0123456789ab.local 54321 typ host\r\n",
        );
        s
    }));
    net.clients[p].add_track("cam", RtpCodecKind::Video);
    for _ in 0..50 {
        net.step(Duration::from_millis(10));
        assert_no_multicast(&mut net);
    }
    for i in 0..100 {
        candidate(
            &mut net,
            p,
            &format!("candidate:{i} 1 udp 2122260223 attacker-chosen-name-{i}.local 5000 typ host"),
        );
        assert_no_multicast(&mut net);
    }
    candidate(&mut net, p, "candidate:garbage");
    assert_no_multicast(&mut net);
    net.step(Duration::from_millis(1));
    let errors = &net.clients[p].errors;
    assert_eq!(
        errors.len(),
        2,
        "only the garbage candidate is refused: {errors:?}"
    );
    assert!(errors[1].contains("candidate rejected"), "{errors:?}");
    assert!(
        net.step_until(Duration::from_millis(10), Duration::from_secs(20), |n| n
            .clients[p]
            .connected()),
        "the client connects"
    );
}
