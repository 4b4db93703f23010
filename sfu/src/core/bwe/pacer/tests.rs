use super::*;

const MS: Duration = Duration::from_millis(1);

fn meta(size: usize, priority: Priority, stream: u32, frame: u32) -> PacketMeta {
    PacketMeta {
        size,
        priority,
        stream,
        frame,
    }
}

fn video(stream: u32, frame: u32) -> PacketMeta {
    meta(1250, Priority::Video, stream, frame)
}

/// Polls every `step` until `until`; returns (time, item) of each send.
/// A pacer of `max_packets` places, `frame_reserve` of them kept for
/// frames already started, at an estimate of `kbps`.
fn small_pacer<T>(max_packets: usize, frame_reserve: usize, kbps: u64) -> Pacer<T> {
    let cfg = PacerConfig {
        max_packets,
        frame_reserve,
        ..Default::default()
    };
    Pacer::new(cfg, Bitrate::kbps(kbps))
}

fn drain<T>(p: &mut Pacer<T>, from: Instant, until: Instant, step: Duration) -> Vec<(Instant, T)> {
    let mut out = Vec::new();
    let mut t = from;
    while t < until {
        while let Some(s) = p.poll(t) {
            out.push((t, s.item));
        }
        t += step;
    }
    out
}

#[test]
fn paces_at_the_multiple_of_the_estimate() {
    let t0 = Instant::now();
    // 400 kbit/s x 2.5 = 1 Mbit/s: one 1250-byte packet every 10 ms.
    let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(400));
    // 40 packets: 400 ms of sending, within the queue-time bound.
    for i in 0..40u32 {
        p.push(i, video(1, i / 4), t0);
    }
    let sent = drain(&mut p, t0, t0 + 2000 * MS, MS);
    assert_eq!(sent.len(), 40);
    // The first goes at once, the second after the 5 ms burst allowance.
    let span = sent[39].0 - sent[0].0;
    assert!(span >= 380 * MS && span <= 390 * MS, "{span:?}");
    let gaps: Vec<_> = sent.windows(2).skip(1).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps.iter().all(|g| *g >= 9 * MS && *g <= 11 * MS),
        "{gaps:?}"
    );
    assert_eq!(p.stats().sent_bytes, 50_000);
}

#[test]
fn audio_then_retransmissions_then_video_then_padding() {
    let t0 = Instant::now();
    let mut p = Pacer::new(
        PacerConfig {
            audio_unpaced: false,
            ..Default::default()
        },
        Bitrate::kbps(100),
    );
    p.push("pad", meta(200, Priority::Padding, 9, 0), t0);
    p.push("v1", video(1, 1), t0);
    p.push("v2", video(1, 1), t0);
    p.push("rtx", meta(1250, Priority::Retransmission, 1, 0), t0);
    p.push("audio", meta(100, Priority::Audio, 2, 7), t0);
    let order: Vec<_> = drain(&mut p, t0, t0 + 2000 * MS, MS)
        .into_iter()
        .map(|(_, x)| x)
        .collect();
    assert_eq!(order, vec!["audio", "rtx", "v1", "v2", "pad"]);
}

#[test]
fn audio_leaves_at_once_even_when_the_budget_is_spent() {
    let t0 = Instant::now();
    let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(40));
    for i in 0..10 {
        p.push(i, video(1, 0), t0);
    }
    assert!(p.poll(t0).is_some());
    assert!(p.poll(t0 + MS).is_none(), "about 50 ms per packet");
    p.push(100, meta(100, Priority::Audio, 2, 0), t0 + MS);
    assert_eq!(p.next_deadline(), Some(t0 + MS));
    assert_eq!(p.poll(t0 + MS).map(|s| s.item), Some(100));
    assert!(p.next_deadline().unwrap() > t0 + 50 * MS);
}

#[test]
fn frames_of_a_stream_leave_in_order_between_other_streams() {
    let t0 = Instant::now();
    let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(1000));
    // Two frames of stream 1, interleaved on arrival with stream 2.
    let mut expected1 = Vec::new();
    for i in 0..6u32 {
        let frame = i / 3;
        p.push((1, i), video(1, frame), t0);
        expected1.push((1, i));
        p.push((2, i), video(2, 10 + frame), t0);
    }
    let sent: Vec<_> = drain(&mut p, t0, t0 + 1000 * MS, MS)
        .into_iter()
        .map(|(_, x)| x)
        .collect();
    let s1: Vec<_> = sent.iter().copied().filter(|(s, _)| *s == 1).collect();
    assert_eq!(s1, expected1);
}

#[test]
fn a_full_queue_rejects_new_frames_whole_and_lets_started_ones_finish() {
    let t0 = Instant::now();
    let mut p = small_pacer(20, 5, 100);
    for i in 0..14u32 {
        p.push(i, video(1, 1), t0);
    }
    // A new frame starts with 14 queued (below 15): admitted, and may use
    // the reserve to finish.
    for i in 0..6u32 {
        p.push(100 + i, video(1, 2), t0);
    }
    assert_eq!(p.len(), 20);
    assert!(p.pop_dropped().is_none());
    // The next frame does not fit: all of it is dropped, with the reasons.
    p.push(200, video(1, 3), t0);
    p.push(201, video(1, 3), t0);
    let d1 = p.pop_dropped().unwrap();
    let d2 = p.pop_dropped().unwrap();
    assert_eq!((d1.item, d1.reason), (200, DropReason::QueueFull));
    assert_eq!((d2.item, d2.reason), (201, DropReason::FrameIncomplete));
    // Even after room is made, the rest of frame 3 is not queued torn.
    drain(&mut p, t0, t0 + 3000 * MS, MS);
    p.push(202, video(1, 3), t0 + 3000 * MS);
    assert_eq!(p.pop_dropped().unwrap().reason, DropReason::FrameIncomplete);
    // A new frame is fine again.
    p.push(300, video(1, 4), t0 + 3000 * MS);
    assert!(p.pop_dropped().is_none());
    let st = p.stats();
    assert_eq!((st.queue_full, st.frame_incomplete), (1, 2));
}

#[test]
fn audio_on_a_full_queue_evicts_the_newest_video_frame_whole() {
    let t0 = Instant::now();
    let mut p = small_pacer(10, 0, 100);
    for i in 0..6u32 {
        p.push(i, video(1, 1), t0);
    }
    for i in 6..10u32 {
        p.push(i, video(1, 2), t0);
    }
    p.push(99, meta(100, Priority::Audio, 5, 0), t0);
    let evicted: Vec<_> = std::iter::from_fn(|| p.pop_dropped()).collect();
    assert_eq!(evicted.len(), 4, "the whole of frame 2");
    assert!(evicted
        .iter()
        .all(|d| d.meta.frame == 2 && d.reason == DropReason::Evicted));
    assert_eq!(p.len(), 7);
    // Later packets of the evicted frame are dropped too.
    p.push(10, video(1, 2), t0);
    assert_eq!(p.pop_dropped().unwrap().reason, DropReason::FrameIncomplete);
    // Padding makes room before video does.
    let mut p = small_pacer(2, 0, 100);
    p.push(1, meta(300, Priority::Padding, 9, 0), t0);
    p.push(2, video(1, 1), t0);
    p.push(3, meta(1250, Priority::Retransmission, 1, 0), t0);
    assert_eq!(p.pop_dropped().map(|d| d.item), Some(1));
    assert_eq!(p.queued_bytes(), 2500);
}

#[test]
fn a_long_queue_drains_faster_than_the_pacing_rate() {
    let t0 = Instant::now();
    let cfg = PacerConfig {
        max_queue_time: Duration::from_millis(500),
        ..Default::default()
    };
    // 40 kbit/s x 2.5 = 100 kbit/s; 100 x 1250 bytes would take 10 s.
    let mut p = Pacer::new(cfg, Bitrate::kbps(40));
    for i in 0..100u32 {
        p.push(i, video(1, i), t0);
    }
    assert_eq!(p.effective_rate(), Bitrate::kbps(2000));
    let sent = drain(&mut p, t0, t0 + 10_000 * MS, MS);
    let last = sent.last().unwrap().0 - t0;
    assert!(last < 3_000 * MS, "{last:?}");
    assert!(p.stats().max_wait_us >= 400_000);
}

#[test]
fn removing_a_stream_returns_its_packets() {
    let t0 = Instant::now();
    let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(100));
    p.push(1, video(1, 1), t0);
    p.push(2, video(2, 1), t0);
    p.push(3, meta(1250, Priority::Retransmission, 1, 0), t0);
    p.remove_stream(1);
    let gone: Vec<_> = std::iter::from_fn(|| p.pop_dropped())
        .map(|d| (d.item, d.reason))
        .collect();
    assert_eq!(
        gone,
        vec![
            (3, DropReason::StreamRemoved),
            (1, DropReason::StreamRemoved)
        ]
    );
    assert_eq!(p.len(), 1);
    assert_eq!(p.queued_bytes(), 1250);
}

#[test]
fn an_empty_queue_has_no_deadline_and_a_spent_budget_has_a_future_one() {
    let t0 = Instant::now();
    let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(400));
    assert_eq!(p.next_deadline(), None);
    p.push(1, video(1, 1), t0);
    p.push(2, video(1, 1), t0);
    assert_eq!(p.next_deadline(), Some(t0));
    assert!(p.poll(t0).is_some());
    let d = p.next_deadline().unwrap();
    assert!(d > t0 && d <= t0 + 10 * MS, "{:?}", d - t0);
    assert!(p.poll(t0).is_none());
    assert!(p.poll(d).is_some());
}

#[test]
fn late_polls_catch_up_so_the_mean_rate_holds() {
    let t0 = Instant::now();
    // 400 kbit/s x 2.5 = 1 Mbit/s: 40 x 1250 bytes take 400 ms, whether
    // polled every millisecond or every 33 ms (a busy shard, a coarse
    // timer). Only the first 5 ms go at once.
    for step in [MS, 33 * MS] {
        let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(400));
        for i in 0..40u32 {
            p.push(i, video(1, i / 4), t0);
        }
        let sent = drain(&mut p, t0, t0 + 3000 * MS, step);
        assert_eq!(sent.len(), 40, "{step:?}");
        let last = sent[39].0 - t0;
        assert!(
            last >= 380 * MS && last <= 390 * MS + step,
            "{step:?}: {last:?}"
        );
        let first_poll = sent.iter().filter(|(t, _)| *t == t0).count();
        assert_eq!(first_poll, 1, "{step:?}");
    }
    // After idle time the allowance is the burst again, not the idle time.
    let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(400));
    p.push(0, video(1, 0), t0);
    assert!(p.poll(t0).is_some());
    let later = t0 + 1000 * MS;
    for i in 1..10u32 {
        p.push(i, video(1, i), later);
    }
    let at_once = std::iter::from_fn(|| p.poll(later)).count();
    assert_eq!(at_once, 1);
}

/// What a pacer did over a run: (time, item) of each send, then each drop.
type Trace = (Vec<(Instant, u32)>, Vec<(u32, DropReason)>, PacerStats);

/// Feeds `packets` (time, meta) to a pacer at a low estimate with a small
/// queue, polling every millisecond in between and after each packet, as
/// the shard does; `pass` tries [`Pacer::pass`] before queueing.
fn trace(packets: &[(Instant, PacketMeta)], pass: bool) -> Trace {
    let mut p = small_pacer(24, 4, 300);
    let (mut sent, mut dropped) = (Vec::new(), Vec::new());
    let mut t = packets[0].0;
    for (i, (at, m)) in packets.iter().enumerate() {
        while t < *at {
            sent.extend(std::iter::from_fn(|| p.poll(t)).map(|s| (t, s.item)));
            t += MS;
        }
        let i = i as u32;
        if pass && p.pass(*m, *at) {
            sent.push((*at, i));
        } else {
            p.push(i, *m, *at);
        }
        sent.extend(std::iter::from_fn(|| p.poll(*at)).map(|s| (*at, s.item)));
        dropped.extend(std::iter::from_fn(|| p.pop_dropped()).map(|d| (d.item, d.reason)));
    }
    let end = t + 5000 * MS;
    while t < end {
        sent.extend(std::iter::from_fn(|| p.poll(t)).map(|s| (t, s.item)));
        t += MS;
    }
    (sent, dropped, p.stats())
}

#[test]
fn passing_the_queue_sends_what_the_queue_would_have_sent_at_the_same_time() {
    let t0 = Instant::now();
    // A pseudo-random mix (fixed seed) of audio, retransmissions and
    // video frames of two streams, in bursts above and below the rate, so
    // that some packets pass, some wait and some are dropped.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut packets = Vec::new();
    let mut t = t0;
    let mut frames = [0u32; 2];
    for _ in 0..3000 {
        t += Duration::from_micros(next(14_000));
        let m = match next(10) {
            0..=3 => meta(120, Priority::Audio, 9, 0),
            4 => meta(1000, Priority::Retransmission, 1, 0),
            _ => {
                let s = next(2) as usize;
                if next(4) == 0 {
                    frames[s] += 1;
                }
                meta(
                    900 + next(300) as usize,
                    Priority::Video,
                    s as u32,
                    frames[s],
                )
            }
        };
        packets.push((t, m));
    }
    let queued = trace(&packets, false);
    let passed = trace(&packets, true);
    let (sends, drops) = (queued.0.len(), queued.1.len());
    assert!(drops > 10 && drops < sends / 10, "{drops} drops of {sends}");
    assert!(
        queued
            .0
            .iter()
            .filter(|(t, i)| *t == packets[*i as usize].0)
            .count()
            > 1000,
        "the mix never leaves at once"
    );
    // The first difference, not the whole trace.
    let at = (0..queued.0.len().max(passed.0.len())).find(|&i| queued.0.get(i) != passed.0.get(i));
    assert_eq!(at, None, "sends differ from send {at:?}");
    let at = (0..queued.1.len().max(passed.1.len())).find(|&i| queued.1.get(i) != passed.1.get(i));
    assert_eq!(at, None, "drops differ from drop {at:?}");
    assert_eq!(passed.2, queued.2);
}

#[test]
fn the_rest_of_a_dropped_frame_does_not_pass_an_idle_queue() {
    let t0 = Instant::now();
    let mut p = small_pacer(8, 2, 400);
    // Frame 0 fills the queue; frame 1 finds no room and is dropped.
    for i in 0..6u32 {
        p.push(i, video(1, 0), t0);
    }
    p.push(6, video(1, 1), t0);
    assert_eq!(
        p.pop_dropped().map(|d| d.reason),
        Some(DropReason::QueueFull)
    );
    let sent = drain(&mut p, t0, t0 + 1000 * MS, MS);
    assert_eq!(sent.len(), 6);
    assert!(p.is_empty());
    // The rest of frame 1 arrives at an idle queue with budget to spare.
    let later = t0 + 2000 * MS;
    assert!(!p.pass(video(1, 1), later));
    p.push(7, video(1, 1), later);
    assert_eq!(
        p.pop_dropped().map(|d| d.reason),
        Some(DropReason::FrameIncomplete)
    );
    // The next frame passes.
    assert!(p.pass(video(1, 2), later));
}

#[test]
fn audio_passes_a_full_queue_without_evicting_video() {
    let t0 = Instant::now();
    let mut p = small_pacer(8, 2, 100);
    for i in 0..8u32 {
        p.push(i, video(1, 0), t0);
    }
    assert_eq!(p.len(), 8);
    assert!(p.pass(meta(120, Priority::Audio, 9, 0), t0));
    assert_eq!(p.len(), 8, "no video frame evicted");
    assert!(p.pop_dropped().is_none());
    assert_eq!(p.stats().sent_packets, 1);
    // Queued instead, the audio packet evicts the video frame.
    p.push(99, meta(120, Priority::Audio, 9, 0), t0);
    assert_eq!(p.pop_dropped().map(|d| d.reason), Some(DropReason::Evicted));
}
