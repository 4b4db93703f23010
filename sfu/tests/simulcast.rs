//! Simulcast through a shard on the in-memory network: each subscriber
//! gets the stream that fits how it shows the track (adaptive stream),
//! nothing for a hidden one, moves up when its tile grows; publishers are
//! told which encodings anyone needs (dynacast); rooms hear who speaks.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::camera::{last_width, sized, vp8, Camera, FRAME, SIZES};
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::TrackSettings;

fn run_until(net: &mut SimNet, cam: &mut Camera, cond: impl Fn(&SimNet) -> bool) -> bool {
    for _ in 0..1200 {
        cam.send(net, 0, false);
        net.step(FRAME);
        if cond(net) {
            return true;
        }
    }
    false
}

#[test]
fn each_subscriber_gets_the_stream_that_fits_and_a_hidden_one_gets_nothing() {
    let mut net = SimNet::new(21);
    let a = net.join("a", true, false);
    net.clients[a].add_simulcast_track("cam", &["q", "h", "f"]);
    let big = net.join("big", false, true);
    let small = net.join("small", false, true);
    let hidden = net.join("hidden", false, true);
    net.track_settings(big, a, "cam", sized(1280, 720));
    net.track_settings(small, a, "cam", sized(320, 180));
    net.track_settings(
        hidden,
        a,
        "cam",
        TrackSettings {
            visible: false,
            ..sized(320, 180)
        },
    );
    let mut cam = Camera::new();
    assert!(
        run_until(&mut net, &mut cam, |n| last_width(n, big, "cam")
            == Some(1280)
            && last_width(n, small, "cam") == Some(320)),
        "big {:?} small {:?}: {:?}",
        last_width(&net, big, "cam"),
        last_width(&net, small, "cam"),
        net.shard.counts
    );
    // Keep going: every keyframe each gets is of its own size.
    let before = [big, small].map(|c| net.clients[c].packets_of("cam"));
    for _ in 0..90 {
        cam.send(&mut net, a, false);
        net.step(FRAME);
    }
    assert!(net.clients[big].packets_of("cam") >= before[0] + 150);
    assert!(net.clients[small].packets_of("cam") >= before[1] + 150);
    assert_eq!(last_width(&net, big, "cam"), Some(1280));
    assert_eq!(last_width(&net, small, "cam"), Some(320));
    assert_eq!(
        net.clients[hidden].packets_of("cam"),
        0,
        "a hidden track gets nothing"
    );
    for c in [big, small] {
        assert_eq!(
            net.clients[c].received["cam"].gaps(),
            0,
            "one continuous stream"
        );
    }

    // The small tile grows: that subscriber moves up, with no gap.
    net.track_settings(small, a, "cam", sized(1280, 720));
    assert!(run_until(&mut net, &mut cam, |n| last_width(
        n, small, "cam"
    ) == Some(1280)));
    for _ in 0..60 {
        cam.send(&mut net, a, false);
        net.step(FRAME);
    }
    assert_eq!(net.clients[small].received["cam"].gaps(), 0);
    assert!(net.shard.counts.layer_switches >= 1);
    // Shown again, the hidden one starts receiving.
    net.track_settings(hidden, a, "cam", sized(640, 360));
    assert!(run_until(&mut net, &mut cam, |n| last_width(
        n, hidden, "cam"
    ) == Some(640)));
}

#[test]
fn dynacast_pauses_encodings_nobody_needs_and_resumes_them_when_needed() {
    let mut net = SimNet::new(22);
    let a = net.join("a", true, false);
    net.clients[a].add_simulcast_track("cam", &["q", "h", "f"]);
    let viewer = net.join("viewer", false, true);
    net.track_settings(viewer, a, "cam", sized(320, 180));
    let mut cam = Camera::new();
    let told = |n: &SimNet| n.clients[0].encodings.last().map(|(_, e)| e.clone());
    let only_low = vec![
        (Some("q".to_string()), true),
        (Some("h".to_string()), false),
        (Some("f".to_string()), false),
    ];
    assert!(
        run_until(&mut net, &mut cam, |n| told(n).as_ref() == Some(&only_low)),
        "{:?}",
        net.clients[a].encodings
    );
    assert_eq!(net.clients[a].encodings.last().unwrap().0, "cam");
    // Someone needs the top encoding: it is resumed at once.
    net.track_settings(viewer, a, "cam", sized(1280, 720));
    let top_on = |n: &SimNet| told(n).is_some_and(|e| e[2].1);
    net.step(Duration::ZERO);
    assert!(top_on(&net), "resumed by the settings change itself");
    assert!(run_until(&mut net, &mut cam, |n| last_width(n, 1, "cam")
        == Some(1280)));
    // Nobody watching: nothing is encoded.
    net.track_settings(
        viewer,
        a,
        "cam",
        TrackSettings {
            paused: true,
            ..Default::default()
        },
    );
    assert!(run_until(&mut net, &mut cam, |n| told(n)
        .is_some_and(|e| e.iter().all(|x| !x.1))));
}

#[test]
fn the_room_hears_who_speaks_loudest_first() {
    let mut net = SimNet::new(23);
    let loud = net.join("loud", true, true);
    let quiet = net.join("quiet", true, true);
    let listener = net.join("listener", false, true);
    net.clients[loud].add_track("loud-mic", RtpCodecKind::Audio);
    net.clients[quiet].add_track("quiet-mic", RtpCodecKind::Audio);
    let mut seq = 0u16;
    let ok = |n: &SimNet| {
        n.clients[listener]
            .speakers
            .last()
            .is_some_and(|s| s.first().map(|x| x.0.as_str()) == Some("loud"))
    };
    let mut heard = false;
    for _ in 0..600 {
        seq = seq.wrapping_add(1);
        let now = net.now;
        let p = Bytes::from(vec![0xfc; 60]);
        net.clients[loud].send_rtp_with(0, seq, seq as u32 * 960, p.clone(), now, Some(10));
        net.clients[quiet].send_rtp_with(0, seq, seq as u32 * 960, p, now, Some(127));
        net.step(Duration::from_millis(20));
        if ok(&net) {
            heard = true;
            break;
        }
    }
    assert!(heard, "{:?}", net.clients[listener].speakers);
    let last = net.clients[listener].speakers.last().unwrap();
    assert!(
        last.iter().all(|(id, _)| id != "quiet"),
        "silence is not speaking: {last:?}"
    );
    // Everyone in the room is told, the speaker too.
    assert!(net.clients[loud]
        .speakers
        .last()
        .is_some_and(|s| s[0].0 == "loud"));
    // Only on change: a steady speaker does not repeat the event.
    let n = net.clients[listener].speakers.len();
    for _ in 0..100 {
        seq = seq.wrapping_add(1);
        let now = net.now;
        let p = Bytes::from(vec![0xfc; 60]);
        net.clients[loud].send_rtp_with(0, seq, seq as u32 * 960, p.clone(), now, Some(10));
        net.clients[quiet].send_rtp_with(0, seq, seq as u32 * 960, p, now, Some(127));
        net.step(Duration::from_millis(20));
    }
    assert_eq!(net.clients[listener].speakers.len(), n);
}

/// A simulcast publisher `a` and a subscriber `big` that receives its top
/// layer, with the camera that got it there.
fn watching_the_top_layer(seed: u64) -> (SimNet, usize, usize, Camera) {
    let mut net = SimNet::new(seed);
    let a = net.join("a", true, false);
    net.clients[a].add_simulcast_track("cam", &["q", "h", "f"]);
    let big = net.join("big", false, true);
    net.track_settings(big, a, "cam", sized(1280, 720));
    let mut cam = Camera::new();
    assert!(run_until(&mut net, &mut cam, |n| last_width(n, big, "cam")
        == Some(1280)));
    (net, a, big, cam)
}

#[test]
fn a_lost_packet_of_a_simulcast_layer_is_repaired_by_its_rid_retransmission() {
    let (mut net, a, big, mut cam) = watching_the_top_layer(33);

    // The network loses one packet of layer f (sent as a delta frame's
    // first packet, never delivered)...
    let lost_seq = cam.seq[2];
    let lost = vp8(
        true,
        cam.pid[2],
        cam.tl0[2],
        false,
        SIZES[2],
        cam.packet_len,
    );
    cam.seq[2] = cam.seq[2].wrapping_add(1);
    for _ in 0..5 {
        cam.send(&mut net, a, false);
        net.step(FRAME);
    }
    let gaps = net.clients[big].received["cam"].gaps();
    assert!(gaps >= 1, "the loss shows as a gap");
    let unknown_before = net.shard.counts.dropped[sfu::stats::Drop::UnknownSsrc as usize];

    // ...and the publisher repairs it on its RTX flow, named only by rrid.
    let now = net.now;
    net.clients[a].send_rtx("f", 0x5eed_0001, 7, lost_seq, &lost[..], now);
    net.step(FRAME);
    for _ in 0..3 {
        cam.send(&mut net, a, false);
        net.step(FRAME);
    }
    assert_eq!(
        net.clients[big].received["cam"].gaps(),
        gaps - 1,
        "the repair reached the subscriber: {:?}",
        net.shard.counts
    );
    assert_eq!(
        net.shard.counts.dropped[sfu::stats::Drop::UnknownSsrc as usize],
        unknown_before,
        "the RTX flow is not an unknown stream"
    );

    // Padding on the RTX flow (a bandwidth probe) repairs nothing: dropped
    // and counted, the stream goes on.
    let now = net.now;
    net.clients[a].send_rtx("f", 0x5eed_0001, 8, 0, &[], now);
    for _ in 0..3 {
        cam.send(&mut net, a, false);
        net.step(FRAME);
    }
    assert_eq!(
        net.shard.counts.dropped[sfu::stats::Drop::UnusableRepair as usize],
        1
    );
    assert_eq!(net.clients[big].received["cam"].gaps(), gaps - 1);
}

#[test]
fn a_browser_probe_repeating_a_packet_already_received_is_not_forwarded() {
    let (mut net, a, big, mut cam) = watching_the_top_layer(34);

    // Browsers probe their uplink with RTX packets that repeat media they
    // sent before. The server has that packet: the repeat repairs nothing.
    // Forwarded under its first copy's numbers, the subscriber would drop
    // it as a replay and never acknowledge it in its transport-cc
    // feedback, which its bandwidth estimate takes for loss.
    cam.send(&mut net, a, false);
    for _ in 0..5 {
        net.step(FRAME);
    }
    let sent_seq = cam.seq[2].wrapping_sub(1);
    let again = vp8(
        false,
        cam.pid[2].wrapping_sub(1),
        cam.tl0[2],
        false,
        SIZES[2],
        cam.packet_len,
    );
    let received = net.clients[big].received["cam"].packets;
    let forwarded = net.shard.counts.packets_forwarded;
    let unusable = net.shard.counts.dropped[sfu::stats::Drop::UnusableRepair as usize];
    let now = net.now;
    net.clients[a].send_rtx("f", 0x5eed_0001, 7, sent_seq, &again[..], now);
    for _ in 0..5 {
        net.step(FRAME);
    }
    assert_eq!(
        (
            net.shard.counts.packets_forwarded,
            net.clients[big].received["cam"].packets
        ),
        (forwarded, received),
        "the repeat is not forwarded"
    );
    assert_eq!(
        net.shard.counts.dropped[sfu::stats::Drop::UnusableRepair as usize],
        unusable + 1
    );
    // Nothing is missing either.
    let gaps = net.clients[big].received["cam"].gaps();
    for _ in 0..3 {
        cam.send(&mut net, a, false);
        net.step(FRAME);
    }
    assert_eq!(net.clients[big].received["cam"].gaps(), gaps);
}

#[test]
fn publishers_who_subscribe_get_each_others_simulcast() {
    let mut net = SimNet::new(44);
    let a = net.join("a", true, true);
    net.clients[a].add_simulcast_track("cam-a", &["q", "h", "f"]);
    let b = net.join("b", true, true);
    net.clients[b].add_simulcast_track("cam-b", &["q", "h", "f"]);
    net.track_settings(b, a, "cam-a", sized(1280, 720));
    net.track_settings(a, b, "cam-b", sized(320, 180));
    let mut cam_a = Camera::new();
    let mut cam_b = Camera::new();
    let mut ok = false;
    for _ in 0..1200 {
        cam_a.send(&mut net, a, false);
        cam_b.send(&mut net, b, false);
        net.step(FRAME);
        if last_width(&net, b, "cam-a") == Some(1280) && last_width(&net, a, "cam-b") == Some(320) {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "b sees a at {:?}, a sees b at {:?}: {:?}",
        last_width(&net, b, "cam-a"),
        last_width(&net, a, "cam-b"),
        net.shard.counts
    );
}

/// Sends `frames` frames of the camera, one step each.
fn frames(net: &mut SimNet, cam: &mut Camera, publisher: usize, frames: usize) {
    for _ in 0..frames {
        cam.send(net, publisher, false);
        net.step(FRAME);
    }
}

#[test]
fn simulcast_keeps_flowing_after_renegotiations_once_packets_no_longer_name_their_stream() {
    // A browser names the stream (mid, rid) only until the SSRC is
    // acknowledged; the layers must survive the rounds that follow: the
    // server's offer when someone else publishes, and the publisher's own.
    // As the server runs by default: layers by track settings alone.
    let mut net = SimNet::with_config(56, |c| c.bwe.enabled = false);
    let a = net.join("a", true, true);
    net.clients[a].add_simulcast_track("cam", &["q", "h", "f"]);
    let big = net.join("big", false, true);
    let small = net.join("small", false, true);
    net.track_settings(big, a, "cam", sized(1280, 720));
    net.track_settings(small, a, "cam", sized(320, 180));
    let mut cam = Camera::new();
    assert!(run_until(&mut net, &mut cam, |n| last_width(n, big, "cam")
        == Some(1280)
        && last_width(n, small, "cam") == Some(320)));
    net.clients[a].omit_mid_rid = true;
    let offers_before = net.clients[a].server_sdps.len();

    // Someone else publishes: the server offers `a` that track.
    let b = net.join("b", true, true);
    net.clients[b].add_track("b-cam", RtpCodecKind::Video);
    for k in 0..60u16 {
        let now = net.now;
        let p = vp8(true, k, 0, k % 30 == 0, (640, 360), 300);
        net.clients[b].send_rtp(0, k, k as u32 * 3000, p, now);
        cam.send(&mut net, a, false);
        net.step(FRAME);
    }
    assert!(
        net.clients[a].server_sdps.len() > offers_before,
        "the server offered `a` the new track"
    );
    // Then `a` renegotiates itself (adds a microphone).
    net.clients[a].add_track("mic", RtpCodecKind::Audio);
    frames(&mut net, &mut cam, a, 60);
    // Every description the server sent `a` asks for its three streams.
    for sdp in &net.clients[a].server_sdps {
        assert!(sdp.contains("a=simulcast:recv q;h;f"), "{sdp}");
    }

    let before = [big, small].map(|c| net.clients[c].packets_of("cam"));
    let gaps = [big, small].map(|c| net.clients[c].received["cam"].gaps());
    frames(&mut net, &mut cam, a, 90);
    for (k, c) in [big, small].into_iter().enumerate() {
        // One stream: two packets a frame, all of them, no gap.
        let got = net.clients[c].packets_of("cam") - before[k];
        assert!(
            (170..=180).contains(&got),
            "client {c}: {got} packets in 90 frames: {:?}",
            net.shard.counts
        );
        assert_eq!(net.clients[c].received["cam"].gaps(), gaps[k]);
    }
    assert_eq!(last_width(&net, big, "cam"), Some(1280));
    assert_eq!(last_width(&net, small, "cam"), Some(320));
}

#[test]
fn publishers_joining_one_after_another_receive_every_earlier_camera() {
    // Each joins with its own simulcast camera (a `sendrecv` transceiver,
    // as `addTrack` makes) and a microphone while the others send. The
    // forwarded tracks must not land on the joiner's own camera section:
    // with its rid lines there, a stack like this one cannot receive them.
    let mut net = SimNet::with_config(57, |c| c.bwe.enabled = false);
    let mut cams: Vec<(usize, Camera)> = Vec::new();
    let names = ["a", "b", "c"];
    for name in names {
        let i = net.join(name, true, true);
        net.clients[i].add_simulcast_track(&format!("cam-{name}"), &["q", "h", "f"]);
        net.clients[i].add_track(&format!("mic-{name}"), RtpCodecKind::Audio);
        cams.push((i, Camera::new()));
        for _ in 0..30 {
            for (p, cam) in cams.iter_mut() {
                cam.send(&mut net, *p, false);
            }
            net.step(FRAME);
        }
    }
    for _ in 0..120 {
        for (p, cam) in cams.iter_mut() {
            cam.send(&mut net, *p, false);
        }
        net.step(FRAME);
    }
    for (i, me) in names.iter().enumerate() {
        for other in names.iter().filter(|o| *o != me) {
            let got = net.clients[i].packets_of(&format!("cam-{other}"));
            assert!(
                got > 100,
                "{me} got {got} packets of cam-{other}: {:?}",
                net.shard.counts
            );
        }
    }
}
