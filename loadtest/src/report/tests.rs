use super::*;
use crate::outcome::{PeerReport, ReceivedTrack};
use crate::playout::PacketInfo;
use signaling::protocol::RoomMode;

fn scenario() -> Scenario {
    Scenario {
        rooms: 1,
        publishers: 1,
        subscribers: 2,
        audio_only: true,
        video_bitrate: 500,
        simulcast: false,
        duration: Duration::from_secs(10),
        join_rate: 10.0,
        mode: RoomMode::Sfu,
        warmup: Duration::ZERO,
        room_prefix: "t".into(),
        subscriber_sizes: vec![],
        publisher_view: None,
        downlink: None,
        capped_share: 1.0,
        counting: false,
    }
}

fn sample(at: Instant, cpu: f64, rss: f64, out: f64) -> ServerSample {
    ServerSample {
        at,
        cpu_seconds: Some(cpu),
        rss_bytes: Some(rss),
        packets_out: out,
        packets_in: out / 2.0,
        participants: 3.0,
        nacks: 0.0,
        keyframe_requests: 0.0,
        dropped: 0.0,
        dropped_by_reason: vec![],
        input_lag_buckets: vec![],
        relay_packets_out: 0.0,
        relay_bytes_out: 0.0,
        relay_packets_in: 0.0,
        // Two wake-ups per packet forwarded.
        wakeups: Some(out * 2.0),
    }
}

#[test]
fn builds_delivery_and_server_figures() {
    let t0 = Instant::now();
    // Subscriber A got the publisher's audio: 100 expected, 98 received.
    let mut track = ReceivedTrack::new("pub".into(), false, true);
    for q in 0..100u16 {
        if q != 10 && q != 20 {
            track.stats.on_packet(t0, q, q as u32 * 960, 100);
        }
    }
    let mut latency = Histogram::default();
    latency.record(Duration::from_millis(3));
    let a = BotReport {
        name: "sub0".into(),
        room: "t-0".into(),
        joined_after: Some(Duration::from_millis(50)),
        peers: vec![PeerReport {
            connected_after: Some(Duration::from_millis(200)),
            first_media_after: Some(Duration::from_millis(250)),
            tracks: vec![track],
            latency,
            ..Default::default()
        }],
        ..Default::default()
    };
    // Subscriber B got nothing and failed; the publisher receives nothing.
    let b = BotReport {
        name: "sub1".into(),
        error: Some("peer connection failed".into()),
        ..Default::default()
    };
    let p = BotReport::default();
    let s = sample(t0, 1.0, 10e6, 1000.0);
    let e = sample(t0 + Duration::from_secs(10), 1.5, 16e6, 11_000.0);
    let idle = sample(t0, 0.5, 4e6, 0.0);
    let r = Report::build(
        &scenario(),
        &[p, a, b],
        Duration::from_secs(10),
        Some(idle),
        Some(s),
        Some(e),
    );
    assert_eq!((r.tracks_expected, r.tracks_received), (2, 1));
    assert_eq!(
        (r.packets_expected, r.packets_received, r.packets_lost),
        (100, 98, 2)
    );
    assert!(
        (r.delivery_ratio - 0.98 * 0.5).abs() < 1e-9,
        "{}",
        r.delivery_ratio
    );
    assert_eq!(r.failed_bots, 1);
    assert_eq!(r.latency_ms.p50, Some(3.01));
    assert_eq!(r.join_ms.p50, Some(200.0));
    assert_eq!(r.first_media_ms.p99, Some(250.0));
    // 10,000 packets forwarded in 10 s for 0.5 s of CPU: 50 µs each.
    assert!((r.forwarded_packets_per_s - 1000.0).abs() < 1e-9);
    assert!((r.server_cpu_us_per_forwarded_packet.unwrap() - 50.0).abs() < 1e-6);
    assert!((r.server_cpu_percent.unwrap() - 5.0).abs() < 1e-9);
    assert_eq!(r.server_wakeups_per_s, Some(2000.0));
    assert!(
        r.table().contains("CPU 5.0%, 2000 wake-ups/s"),
        "{}",
        r.table()
    );
    // (16 MB - 4 MB idle) over 3 bots.
    assert_eq!(r.server_rss_bytes_per_participant, Some(4e6));
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "bots",
        "rooms",
        "duration_s",
        "tracks_expected",
        "tracks_received",
        "delivery_ratio",
        "freezes",
        "forwarded_packets_per_s",
        "server_cpu_us_per_forwarded_packet",
        "server_rss_bytes",
        "server_rss_bytes_per_participant",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    for key in ["p50", "p95", "p99"] {
        assert!(json["latency_ms"].get(key).is_some());
        assert!(json["join_ms"].get(key).is_some());
    }
    assert!(r.table().contains("50.00 us per forwarded packet"));
    let svg = crate::chart::svg("t", &[r.clone(), r]);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 2);
}

/// The start of a VP8 keyframe of this size, as an RTP payload.
fn keyframe(width: u16, height: u16) -> Vec<u8> {
    let mut p = vec![0x10, 0x50, 0x2d, 0x00, 0x9d, 0x01, 0x2a];
    p.extend_from_slice(&width.to_le_bytes());
    p.extend_from_slice(&height.to_le_bytes());
    p
}

/// A video track of `publisher` that received `packets` packets, the first
/// a keyframe of `first`; from packet `switch_at` on, of `then`; `lost` of
/// them (by sequence) never arrived.
fn video(
    publisher: &str,
    packets: u16,
    first: (u16, u16),
    then: Option<(u16, (u16, u16))>,
    lost: &[u16],
) -> ReceivedTrack {
    let t0 = Instant::now();
    let mut t = ReceivedTrack::new(publisher.into(), true, true);
    for q in 0..packets {
        if lost.contains(&q) {
            continue;
        }
        let payload = match then {
            Some((at, size)) if q == at => keyframe(size.0, size.1),
            _ if q == 0 => keyframe(first.0, first.1),
            // A one-packet interframe.
            _ => vec![0x10, 0x01, 0x02],
        };
        t.layer.on_packet(&payload, true);
        let at = t0 + Duration::from_millis(33) * q as u32;
        t.stats.on_packet(at, q, q as u32 * 3000, 1000);
        let frames = t.playout.on_packet(PacketInfo::vp8(q, true, &payload));
        t.stats.freeze.on_frames(at, u64::from(frames));
    }
    t.stats
        .freeze
        .finish(t0 + Duration::from_millis(33) * packets as u32);
    t
}

fn subscriber(
    name: &str,
    id: &str,
    view: &str,
    capped: bool,
    tracks: Vec<ReceivedTrack>,
) -> BotReport {
    BotReport {
        name: name.into(),
        room: "t-0".into(),
        participant: Some(id.into()),
        capped,
        view: Some(view.parse().unwrap()),
        track_settings_sent: tracks.len() as u64,
        peers: vec![PeerReport {
            tracks,
            cap: capped.then(|| crate::outcome::CapReport {
                rtp_arrived: 120,
                rtp_dropped: 12,
                other_dropped: 1,
                queue_delay: {
                    let mut h = Histogram::default();
                    h.record(Duration::from_millis(40));
                    h.record(Duration::from_millis(180));
                    h
                },
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn adaptive_scenario() -> Scenario {
    Scenario {
        publishers: 2,
        subscribers: 2,
        audio_only: false,
        simulcast: true,
        subscriber_sizes: vec!["320x180".parse().unwrap(), "1280x720".parse().unwrap()],
        downlink: Some(crate::shaper::LinkSpec {
            rate_bps: 800_000,
            queue: Duration::from_millis(200),
        }),
        capped_share: 0.5,
        ..scenario()
    }
}

#[test]
fn adaptive_figures_add_up_per_bot_group_and_run() {
    // sub0 asks 320x180, is capped, gets the low layer of both publishers,
    // and loses 10 of 100 packets of one; sub1 asks 1280x720 and gets the
    // high layer after starting low once (one switch).
    let sub0 = subscriber(
        "sub2",
        "s0",
        "320x180",
        true,
        vec![
            video(
                "p0",
                100,
                (320, 180),
                None,
                &[5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
            ),
            video("p1", 50, (320, 180), None, &[]),
        ],
    );
    let sub1 = subscriber(
        "sub3",
        "s1",
        "1280x720",
        false,
        vec![
            video("p0", 100, (320, 180), Some((10, (1280, 720))), &[]),
            video("p1", 100, (1280, 720), None, &[]),
        ],
    );
    let publisher = BotReport {
        name: "pub0".into(),
        publisher: true,
        peers: vec![PeerReport {
            sent_by_encoding: vec![("q".into(), 300), ("h".into(), 0), ("f".into(), 900)],
            encoding_changes: 2,
            ..Default::default()
        }],
        active_speaker_events: 4,
        server_errors: vec!["invalid_message (to track-settings): unknown".into()],
        ..Default::default()
    };
    let bots = [publisher, sub0, sub1];
    let a = Adaptive::build(
        &adaptive_scenario(),
        &bots,
        Duration::from_secs(10),
        None,
        None,
    );
    assert!(a.simulcast);
    assert_eq!(a.downlink_kbps, Some(800.0));
    assert_eq!(a.capped_bots, 1);
    assert_eq!(a.layer_switches, 1);
    let count = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    assert_eq!(a.received_layers, count(&[("320x180", 2), ("1280x720", 2)]));
    assert_eq!(
        a.received_layers_by_view["320x180"],
        count(&[("320x180", 2)])
    );
    assert_eq!(
        a.received_layers_by_view["1280x720"],
        count(&[("1280x720", 2)])
    );
    assert_eq!(
        a.sent_packets_by_encoding,
        count(&[("q", 300), ("h", 0), ("f", 900)])
    );
    assert_eq!((a.encoding_changes, a.active_speaker_events), (2, 4));
    assert_eq!(a.track_settings_sent, 4);
    assert_eq!(a.server_errors.len(), 1);
    assert!(!a.server_subscriber_stats);

    // Per bot: the switching track's main layer is the one most packets had.
    let b1 = a.per_bot.iter().find(|b| b.name == "sub3").unwrap();
    assert_eq!(b1.video[0].layer.as_deref(), Some("1280x720"));
    assert_eq!(b1.video[0].last_layer.as_deref(), Some("1280x720"));
    assert_eq!(b1.video[0].switches, 1);
    assert_eq!((b1.packets_expected, b1.packets_received), (200, 200));
    assert!(
        a.per_bot
            .iter()
            .find(|b| b.name == "pub0")
            .unwrap()
            .publisher
    );

    // Groups: the capped subscriber lost 10 of 150 by sequence, and the
    // cap passed 108 of the 120 RTP packets that reached it.
    let c = a.capped.as_ref().unwrap();
    assert_eq!(c.bots, 1);
    assert_eq!(
        (c.packets_expected, c.packets_received, c.packets_lost),
        (150, 140, 10)
    );
    assert!((c.delivery_ratio - 140.0 / 150.0).abs() < 1e-12);
    assert_eq!(c.allocated_delivery_basis, "bot_cap");
    assert!((c.allocated_delivery_ratio.unwrap() - 0.9).abs() < 1e-12);
    assert_eq!((c.cap_rtp_arrived, c.cap_rtp_dropped), (120, 12));
    assert_eq!(c.cap_queue_delay_ms.p50, Some(40.01));
    assert_eq!(c.cap_queue_delay_ms.p95, Some(181.0));
    // 140 packets of 1000 bytes over 2 tracks in 10 s: 56 kbit/s a track.
    assert!((c.video_kbps_per_track.unwrap() - 56.0).abs() < 1e-9);
    assert!((c.received_kbps_max.unwrap() - 112.0).abs() < 1e-9);
    // The lossy track decoded its first 5 frames and then froze for good
    // (no keyframe came); the other decoded all 50.
    assert_eq!(c.freezes, 1);
    assert_eq!(c.video_fps_min, Some(0.5));
    assert_eq!(c.video_fps_mean, Some(2.75));
    assert_eq!(bots[1].peers[0].tracks[0].playout.frames, 5);
    let u = a.uncapped.as_ref().unwrap();
    assert_eq!((u.bots, u.layer_switches, u.freezes), (1, 1, 0));
    assert_eq!(u.video_fps_min, Some(10.0));
    assert_eq!(u.allocated_delivery_basis, "sequence");
    assert_eq!(u.allocated_delivery_ratio, Some(1.0));

    // The table and the JSON carry them.
    let t = a.table();
    assert!(t.contains("q x300"), "{t}");
    assert!(t.contains("1 switches"), "{t}");
    assert!(t.contains("asked 320x180   got 320x180 x2"), "{t}");
    assert!(t.contains("not exposed by this server"), "{t}");
    assert!(t.contains("90.00% of what was sent, by bot_cap"), "{t}");
    let mut r = Report::build(
        &adaptive_scenario(),
        &bots,
        Duration::from_secs(10),
        None,
        None,
        None,
    );
    r.adaptive = a;
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "simulcast",
        "layer_switches",
        "received_layers",
        "capped",
        "uncapped",
        "per_bot",
        "server_subscriber_stats",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn delivery_of_what_the_server_sent_uses_its_per_subscriber_counts() {
    use loadtest::api_stats::SubscriberFigures;
    let figures = |id: &str, sent: f64, estimate: f64| SubscriberFigures {
        participant: id.into(),
        estimate_bps: Some(estimate),
        packets_sent: Some(sent),
        layers: vec!["p0-video=q".into()],
        ..Default::default()
    };
    let sub = subscriber(
        "sub2",
        "s0",
        "320x180",
        true,
        vec![video("p0", 100, (320, 180), None, &[1, 2, 3, 4, 5])],
    );
    let start = [figures("s0", 1000.0, 900_000.0)];
    // The server sent 100 in the window, of which the bot got 95.
    let end = [figures("s0", 1100.0, 700_000.0), figures("other", 5.0, 1.0)];
    let a = Adaptive::build(
        &adaptive_scenario(),
        &[sub],
        Duration::from_secs(10),
        Some(&start),
        Some(&end),
    );
    assert!(a.server_subscriber_stats);
    let b = &a.per_bot[0];
    assert_eq!(b.server_packets_sent, Some(100.0));
    assert_eq!(b.server.as_ref().unwrap().estimate_bps, Some(700_000.0));
    let c = a.capped.as_ref().unwrap();
    assert_eq!(c.allocated_delivery_basis, "server");
    assert!((c.allocated_delivery_ratio.unwrap() - 0.95).abs() < 1e-12);
    assert_eq!(c.server_estimate_bps, Some(700_000.0));
    assert!(a.table().contains("estimate 700 kbit/s"));
    // A run without caps has no groups and an empty section.
    let plain = Adaptive::build(&scenario(), &[], Duration::from_secs(1), None, None);
    assert_eq!(
        (plain.capped.is_none(), plain.table()),
        (true, String::new())
    );
}

/// The report's input lag comes from the histogram's growth over the
/// window, as the bucket bounds holding the median and the 99th
/// percentile; an older server without the histogram gives none.
#[test]
fn input_lag_quantiles_are_taken_over_the_window() {
    let b = |v: &[(&str, f64)]| -> Vec<(String, f64)> {
        v.iter().map(|(l, n)| (l.to_string(), *n)).collect()
    };
    // Before the window: 1,000 reads, all within 1 ms.
    let start = b(&[
        ("0.001", 1000.0),
        ("0.01", 1000.0),
        ("0.5", 1000.0),
        ("+Inf", 1000.0),
    ]);
    // In the window: 100 more, 60 within 1 ms, 38 within 10 ms, 2 over 0.5 s.
    let end = b(&[
        ("0.001", 1060.0),
        ("0.01", 1098.0),
        ("0.5", 1098.0),
        ("+Inf", 1100.0),
    ]);
    assert_eq!(
        super::input_lag_quantiles(&start, &end),
        Some((1.0, f64::INFINITY))
    );
    let end = b(&[
        ("0.001", 1040.0),
        ("0.01", 1099.0),
        ("0.5", 1100.0),
        ("+Inf", 1100.0),
    ]);
    assert_eq!(super::input_lag_quantiles(&start, &end), Some((10.0, 10.0)));
    assert_eq!(super::input_lag_quantiles(&start, &start), None);
    assert_eq!(super::input_lag_quantiles(&[], &[]), None);
}
