//! The acceptance points of issue 13, one test each.

use std::time::Duration;

use super::*;
use crate::core::bwe::sim::Loss;
use crate::core::bwe::testbed::{describe, mean, settled_from, Change};

fn within(x: Bitrate, target: Bitrate, fraction: f64) -> bool {
    (x.as_f64() - target.as_f64()).abs() <= fraction * target.as_f64()
}

#[test]
fn on_a_1_mbps_link_the_estimate_settles_within_15_percent_in_under_5_s() {
    let mut bed = single(elastic(), path(1000));
    bed.run(60 * S);
    let s = bed.samples(0);
    let settled = settled_from(s, 60 * S, |x| within(x.estimate, kbps(1000), 0.15));
    println!("1 Mbit/s: estimate within 15% from {settled:?} on");
    assert!(
        settled.is_some_and(|t| t < 5 * S),
        "settled at {settled:?}\n{}",
        describe(s, Duration::ZERO, 60 * S, 250 * MS)
    );
}

/// Two simulcast cameras on 2.5 Mbit/s; 500 kbit/s from 30 s; back to
/// 2.5 Mbit/s at 50 s.
fn drop_and_return(until: Duration) -> Bed {
    let mut bed = single(two_cameras(), path(2500));
    bed.at(30 * S, Change::Rate(0, Some(kbps(500))));
    bed.at(50 * S, Change::Rate(0, Some(kbps(2500))));
    bed.run(until);
    bed
}

#[test]
fn after_a_drop_from_2_5_to_0_5_mbps_the_sent_rate_is_under_it_within_2_s() {
    let bed = drop_and_return(50 * S);
    let s = bed.samples(0);
    let before = mean(s.iter().filter(|x| x.t >= 20 * S && x.t < 30 * S), |x| {
        x.sent
    });
    assert!(
        before > kbps(1500),
        "the drop must start from a high rate: {before}"
    );
    let last_over = last_failure(s, 30 * S, 50 * S, |x| x.sent < kbps(500));
    println!("drop to 500 kbit/s: sent rate (1 s window) above it until {last_over:?}");
    assert!(
        last_over.is_some_and(|t| t < 32 * S),
        "sent above 500 kbit/s at {last_over:?}\n{}",
        describe(s, 28 * S, 40 * S, 100 * MS)
    );
}

#[test]
fn after_capacity_returns_the_estimate_regains_90_percent_within_8_s_without_overshoot() {
    let mut bed = drop_and_return(50 * S);
    let dropped_before = bed.link_stats(0).tail_dropped;
    bed.run(80 * S);
    let s = bed.samples(0);
    let regained = first_time(s, 50 * S, |x| x.estimate >= kbps(2250));
    println!("back to 2.5 Mbit/s: 90% regained at {regained:?}");
    assert!(
        regained.is_some_and(|t| t < 58 * S),
        "regained at {regained:?}\n{}",
        describe(s, 48 * S, 70 * S, 250 * MS)
    );
    // No overshoot: nothing lost to a full queue, no standing queue, and
    // never more sent than the link carries.
    assert_eq!(bed.link_stats(0).tail_dropped, dropped_before);
    let max_queue = s
        .iter()
        .filter(|x| x.t >= 50 * S)
        .map(|x| x.queued)
        .max()
        .unwrap_or(0);
    let max_sent = s
        .iter()
        .filter(|x| x.t >= 50 * S)
        .map(|x| x.sent)
        .max()
        .unwrap_or_default();
    println!("after the return: max queue {max_queue} bytes, max sent {max_sent}");
    assert!(max_queue < 31_250, "more than 100 ms queued: {max_queue}");
    assert!(max_sent <= kbps(2500), "{max_sent}");
}

#[test]
fn five_percent_random_loss_without_congestion_does_not_collapse_the_estimate() {
    let run = |loss: f64| {
        let mut links = path(1000);
        links[0].loss = Loss::Random(loss);
        links[0].seed = 11;
        let mut bed = single(elastic(), links);
        bed.run(60 * S);
        bed
    };
    let clean = run(0.0);
    let lossy = run(0.05);
    let avg = |b: &Bed| {
        mean(b.samples(0).iter().filter(|x| x.t >= 10 * S), |x| {
            x.estimate
        })
    };
    let (c, l) = (avg(&clean), avg(&lossy));
    let low = lossy
        .samples(0)
        .iter()
        .filter(|x| x.t >= 10 * S)
        .map(|x| x.estimate)
        .min()
        .unwrap();
    println!("1 Mbit/s: mean estimate {c} clean, {l} with 5% loss (lowest {low})");
    assert!(
        l.as_f64() >= 0.85 * c.as_f64(),
        "{l} vs {c}\n{}",
        describe(lossy.samples(0), Duration::ZERO, 60 * S, 500 * MS)
    );
    assert!(low >= kbps(600), "{low}");
}

#[test]
fn five_percent_random_loss_keeps_the_top_layer_of_a_simulcast_camera() {
    let mut links = path(2500);
    links[0].loss = Loss::Random(0.05);
    links[0].seed = 12;
    let mut bed = single(two_cameras(), links);
    bed.run(60 * S);
    let s = bed.samples(0);
    // The loss baseline takes a few seconds to learn; judge from 15 s on.
    let top = first_time(s, Duration::ZERO, |x| x.sent >= kbps(2000));
    let low = s
        .iter()
        .filter(|x| x.t >= 15 * S)
        .map(|x| x.estimate)
        .min()
        .unwrap();
    let sent = mean(s.iter().filter(|x| x.t >= 15 * S), |x| x.sent);
    let downs = bed.flows[0]
        .events
        .iter()
        .filter(|(t, e)| {
            *t >= bed.time(15 * S)
                && matches!(
                    e,
                    crate::core::bwe::allocator::AllocationEvent::Paused { .. }
                        | crate::core::bwe::allocator::AllocationEvent::LayerChanged { .. }
                )
        })
        .count();
    println!("2.5 Mbit/s, 5% loss: top layers from {top:?}, lowest estimate {low}, mean sent {sent}, switches {downs}");
    assert!(
        low >= kbps(1800),
        "{low}\n{}",
        describe(s, Duration::ZERO, 60 * S, 500 * MS)
    );
    assert!(sent >= kbps(1900), "1500 + 500 + audio expected: {sent}");
    assert_eq!(downs, 0);
}

#[test]
fn five_percent_random_loss_appearing_mid_call_keeps_the_allocation() {
    let mut bed = single(two_cameras(), path(2500));
    bed.at(20 * S, Change::Loss(0, Loss::Random(0.05)));
    bed.run(60 * S);
    let s = bed.samples(0);
    let before = mean(s.iter().filter(|x| x.t >= 10 * S && x.t < 20 * S), |x| {
        x.sent
    });
    let after = mean(s.iter().filter(|x| x.t >= 25 * S), |x| x.sent);
    let switches = bed.flows[0].switches_between(bed.time(20 * S), bed.time(60 * S));
    println!("5% loss from 20 s: sent {before} before, {after} after, {switches} switches");
    assert!(
        after.as_f64() >= 0.9 * before.as_f64(),
        "{after} vs {before}\n{}",
        describe(s, 15 * S, 60 * S, 500 * MS)
    );
    assert!(
        switches <= 2,
        "{switches}\n{}",
        describe(s, 15 * S, 60 * S, 500 * MS)
    );
}

#[test]
fn at_steady_state_at_most_two_layer_switches_a_minute() {
    let mut report = Vec::new();
    for capacity in [400, 700, 1000, 1300, 1700, 2500, 4000] {
        let mut links = path(capacity);
        links[0].jitter = 5 * MS;
        let mut bed = single(two_cameras(), links);
        bed.run(180 * S);
        let f = &bed.flows[0];
        let switches = f.switches_between(bed.time(30 * S), bed.time(180 * S));
        let per_minute = switches as f64 / 2.5;
        let sent = mean(bed.samples(0).iter().filter(|x| x.t >= 30 * S), |x| x.sent);
        report.push((capacity, per_minute, sent));
        assert!(
            per_minute <= 2.0,
            "{capacity} kbit/s: {per_minute} switches a minute: {:?}",
            f.events
                .iter()
                .map(|(t, e)| (*t - bed.t0, *e))
                .collect::<Vec<_>>()
        );
    }
    for (c, m, s) in report {
        println!("{c:5} kbit/s: {m:.1} switches/min, mean sent {s}");
    }
}

#[test]
fn the_estimate_never_exceeds_1_5_times_the_sent_rate_outside_probes() {
    let mut beds = Vec::new();
    beds.push((
        "2 cameras, 2.5 -> 0.5 -> 2.5 Mbit/s",
        drop_and_return(80 * S),
    ));
    let mut b = single(one_camera(), path(10_000));
    b.run(60 * S);
    beds.push(("1 camera on 10 Mbit/s", b));
    let mut b = single(elastic(), path(1000));
    b.run(60 * S);
    beds.push(("encoder on 1 Mbit/s", b));
    let mut links = path(2500);
    links[0].loss = Loss::Random(0.05);
    let mut b = single(two_cameras(), links);
    b.run(60 * S);
    beds.push(("2 cameras, 5% loss", b));
    for (name, bed) in &beds {
        let s = bed.samples(0);
        let checked: Vec<_> = s.iter().filter(|x| x.t >= S && !x.probing).collect();
        let worst = checked
            .iter()
            .map(|x| x.estimate.as_f64() / x.sent.as_f64().max(1.0))
            .fold(0.0, f64::max);
        println!(
            "{name}: {} of {} samples outside probes, highest estimate/sent {worst:.2}",
            checked.len(),
            s.len()
        );
        assert!(
            checked.len() > s.len() / 3,
            "{name}: too few samples outside probes"
        );
        for x in checked {
            assert!(
                x.estimate.as_f64() <= 1.5 * x.sent.as_f64() * 1.01 + 2000.0,
                "{name}: at {:?} estimate {} sent {}",
                x.t,
                x.estimate,
                x.sent
            );
        }
    }
}

/// The capped viewer of the browser test (web/tests/browser/
/// bwe-capped-viewer.test.mjs) on the simulator: three simulcast cameras
/// (100/300/900 kbit/s) and three audio tracks through 600 kbit/s with a
/// deep queue, as `tc htb` gives. The three lowest layers fit. Jitter (a
/// busy machine's scheduling, in the browser test) makes the delay
/// detector see overuse now and then; each time the estimate backs off to
/// 90% of what was delivered, about what is sent. None of that may pause a
/// video: only congestion that stands does.
#[test]
fn three_cameras_on_a_jittery_600_kbps_link_keep_flowing() {
    use crate::core::bwe::allocator::AllocationEvent;
    for jitter_ms in [0u32, 15, 30, 50] {
        let mut links = vec![
            LinkConfig::bottleneck(kbps(600), 10 * S, 2 * MS),
            LinkConfig::wire(2 * MS),
        ];
        links[0].jitter = jitter_ms * MS;
        let media = MediaSpec::Layered {
            cameras: vec![vec![100, 300, 900]; 3],
            audio: 3,
        };
        let mut bed = single(media, links);
        bed.run(120 * S);
        let s = bed.samples(0);
        let from = bed.time(20 * S);
        let pauses = bed.flows[0]
            .events
            .iter()
            .filter(|(t, e)| *t >= from && matches!(e, AllocationEvent::Paused { .. }))
            .count();
        let late = || s.iter().filter(|x| x.t >= 20 * S);
        let est = mean(late(), |x| x.estimate);
        let sent = mean(late(), |x| x.sent);
        let low = late().map(|x| x.estimate).min().unwrap();
        println!("600 kbit/s, jitter {jitter_ms} ms: {pauses} pauses, estimate mean {est}, lowest {low}, sent mean {sent}");
        assert_eq!(
            pauses,
            0,
            "jitter {jitter_ms} ms: {:?}",
            bed.flows[0]
                .events
                .iter()
                .map(|(t, e)| (*t - bed.t0, *e))
                .collect::<Vec<_>>()
        );
        assert!(
            sent >= kbps(400),
            "the three lowest layers and audio flow: {sent}"
        );
    }
}

/// Three simulcast cameras at the SDK's default rates (150/500/1500 kbit/s)
/// and three audio tracks: what a member of a four-person room receives.
fn three_cameras() -> MediaSpec {
    MediaSpec::Layered {
        cameras: vec![vec![150, 500, 1500]; 3],
        audio: 3,
    }
}

/// A path through loopback or a LAN: no rate limit but the host's, a few
/// milliseconds of delay, and a busy machine's scheduling jitter.
fn fast_path(jitter: Duration) -> Vec<LinkConfig> {
    let mut links = vec![
        LinkConfig::bottleneck(kbps(100_000), 2 * S, 2 * MS),
        LinkConfig::wire(2 * MS),
    ];
    links[0].jitter = jitter;
    links
}

/// The browser test's uncapped members: from the first feedback, the
/// estimate climbs by probes from its initial 300 kbit/s to the three top
/// layers (4.6 Mbit/s) in a few steps, not one layer at a time.
#[test]
fn three_cameras_on_a_fast_link_reach_their_top_layers_within_5_s() {
    for jitter_ms in [0u32, 15, 30] {
        let mut bed = single(three_cameras(), fast_path(jitter_ms * MS));
        bed.run(30 * S);
        let s = bed.samples(0);
        let top = first_time(s, Duration::ZERO, |x| x.at_top == 3);
        let downs = bed.flows[0].switches_between(bed.time(10 * S), bed.time(30 * S));
        println!("fast link, jitter {jitter_ms} ms: all three top layers from {top:?}, switches after 10 s: {downs}");
        assert!(
            top.is_some_and(|t| t <= 5 * S),
            "jitter {jitter_ms} ms: top layers from {top:?}\n{}",
            describe(s, Duration::ZERO, 15 * S, 250 * MS)
        );
        assert!(
            s.iter().filter(|x| x.t >= 10 * S).all(|x| x.at_top == 3),
            "jitter {jitter_ms} ms: the top layers are kept"
        );
    }
}

/// The browser test's capped viewer: 800 kbit/s with a deep queue (as
/// `tc htb` gives) and a busy machine's jitter, lifted at 40 s. Under the
/// cap the server sends less than it; after the lift all three cameras are
/// back on their top layers within 10 s.
#[test]
fn three_cameras_capped_at_800_kbps_are_back_on_their_top_layers_within_10_s_of_the_lift() {
    for jitter_ms in [0u32, 15, 30] {
        let mut links = vec![
            LinkConfig::bottleneck(kbps(800), 10 * S, 2 * MS),
            LinkConfig::wire(2 * MS),
        ];
        links[0].jitter = jitter_ms * MS;
        let mut bed = single(three_cameras(), links);
        bed.at(40 * S, Change::Rate(0, None));
        bed.run(70 * S);
        let s = bed.samples(0);
        let capped = s.iter().filter(|x| x.t >= 10 * S && x.t < 40 * S);
        let capped_sent = mean(capped.clone(), |x| x.sent);
        let capped_max = capped.clone().map(|x| x.sent).max().unwrap();
        let back = first_time(s, 40 * S, |x| x.at_top == 3).map(|t| t - 40 * S);
        println!("800 kbit/s, jitter {jitter_ms} ms: sent under the cap mean {capped_sent}, max {capped_max}; top layers {back:?} after the lift");
        assert!(
            capped_sent <= kbps(800),
            "jitter {jitter_ms} ms: {capped_sent}"
        );
        assert!(
            back.is_some_and(|t| t <= 10 * S),
            "jitter {jitter_ms} ms: back on top {back:?} after the lift\n{}",
            describe(s, 38 * S, 70 * S, 250 * MS)
        );
    }
}
