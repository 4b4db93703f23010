//! Test cases of RFC 8867 (evaluating congestion control for interactive
//! real-time media) that the link simulator can express, one test each,
//! with the RFC's parameters (capacities, times, 50 ms one-way delay and a
//! 300 ms bottleneck queue unless the case says otherwise). The RFC's
//! media source adapts to the congestion controller: that is the
//! `elastic()` encoder; where the SFU's own case differs (simulcast layers
//! chosen by the allocator) there is a variant.
//!
//! Not expressible here: 5.6 and 5.7 (competing TCP flows: no TCP model;
//! [`cross_traffic_is_yielded_to_and_reclaimed`] covers unresponsive
//! cross traffic instead) and 5.9 (ECN).

use std::time::Duration;

use super::*;
use crate::core::bwe::sim::Loss;
use crate::core::bwe::testbed::{describe, mean, Change};

/// Mean of `f` over flow `flow`'s samples in `[from, to)`.
fn avg(bed: &Bed, flow: usize, from: u32, to: u32, f: impl Fn(&Sample) -> Bitrate) -> Bitrate {
    mean(
        bed.samples(flow)
            .iter()
            .filter(|x| x.t >= from * S && x.t < to * S),
        f,
    )
}

/// Mean queueing delay at the flow's first link in `[from, to)`.
fn queue_delay(bed: &Bed, flow: usize, from: u32, to: u32, capacity_kbps: u64) -> Duration {
    let q: Vec<usize> = bed
        .samples(flow)
        .iter()
        .filter(|x| x.t >= from * S && x.t < to * S)
        .map(|x| x.queued)
        .collect();
    let bytes = q.iter().sum::<usize>() as f64 / q.len().max(1) as f64;
    kbps(capacity_kbps).time_for(bytes as u64)
}

/// Capacity schedule of link `link`: (from second, kbit/s).
fn schedule(bed: &mut Bed, link: usize, steps: &[(u32, u64)]) {
    for &(at, k) in steps {
        if at > 0 {
            bed.at(at * S, Change::Rate(link, Some(kbps(k))));
        }
    }
}

/// Per phase `(from, to, capacity)`: delivered over the phase's second half
/// between `low` and `high` of capacity, queueing delay under `max_queue`.
fn check_phases(
    bed: &Bed,
    flow: usize,
    phases: &[(u32, u32, u64)],
    low: f64,
    high: f64,
    max_queue: Duration,
) {
    for &(from, to, cap) in phases {
        let mid = from + (to - from) / 2;
        let d = avg(bed, flow, mid, to, |x| x.delivered);
        let q = queue_delay(bed, flow, mid, to, cap);
        println!("  {from:3}-{to:3} s at {cap:5} kbit/s: delivered {d}, queueing {q:?}");
        let trace = || {
            describe(
                bed.samples(flow),
                (from.saturating_sub(2)) * S,
                to * S,
                500 * MS,
            )
        };
        assert!(
            d.as_f64() >= low * cap as f64 * 1000.0,
            "{from}-{to} s: {d}\n{}",
            trace()
        );
        assert!(
            d.as_f64() <= high * cap as f64 * 1000.0,
            "{from}-{to} s: {d}\n{}",
            trace()
        );
        assert!(q <= max_queue, "{from}-{to} s: queueing {q:?}\n{}", trace());
    }
}

const TC51: [(u32, u64); 4] = [(0, 1000), (40, 2500), (60, 600), (80, 1000)];
const TC51_PHASES: [(u32, u32, u64); 4] = [
    (0, 40, 1000),
    (40, 60, 2500),
    (60, 80, 600),
    (80, 100, 1000),
];

#[test]
fn rfc8867_5_1_variable_available_capacity_single_flow() {
    let mut bed = single(elastic(), path(1000));
    schedule(&mut bed, 0, &TC51);
    bed.run(100 * S);
    println!("5.1, 50 ms one way:");
    check_phases(&bed, 0, &TC51_PHASES, 0.7, 1.01, 150 * MS);
}

#[test]
fn rfc8867_5_1_with_100_ms_one_way_delay() {
    let mut links = path(1000);
    links[0].delay = 100 * MS;
    links[1].delay = 100 * MS;
    let mut bed = single(elastic(), links);
    schedule(&mut bed, 0, &TC51);
    bed.run(100 * S);
    println!("5.1, 100 ms one way:");
    check_phases(&bed, 0, &TC51_PHASES, 0.65, 1.01, 150 * MS);
}

#[test]
fn rfc8867_5_1_simulcast_subscriber_stays_under_each_capacity() {
    let mut bed = single(two_cameras(), path(1000));
    schedule(&mut bed, 0, &TC51);
    bed.run(100 * S);
    let s = bed.samples(0);
    println!("5.1, two simulcast cameras:");
    for &(from, to, cap) in &TC51_PHASES {
        // Within 2 s of a change the sent rate is under the new capacity...
        let over = last_failure(s, (from + 2) * S, to * S, |x| x.sent <= kbps(cap));
        // ...and the allocation uses at least a third of it once settled.
        let used = avg(&bed, 0, from + 10, to, |x| x.sent);
        println!("  {from:3}-{to:3} s at {cap:5} kbit/s: sent {used}, above capacity at {over:?}");
        assert!(
            over.is_none(),
            "{from}-{to} s: above at {over:?}\n{}",
            describe(s, from * S, to * S, 250 * MS)
        );
        assert!(
            used.as_f64() >= cap as f64 * 1000.0 / 3.0,
            "{from}-{to} s: {used}"
        );
    }
}

#[test]
fn rfc8867_5_2_variable_available_capacity_multiple_flows() {
    let steps: [(u32, u64); 5] = [(0, 4000), (25, 2000), (50, 3500), (75, 1000), (100, 2000)];
    let flows = (0..2)
        .map(|i| {
            let mut f = FlowSpec::new(elastic(), vec![0], vec![1]);
            f.seed = 20 + i;
            f
        })
        .collect();
    let mut bed = Bed::new(path(4000), flows);
    schedule(&mut bed, 0, &steps);
    bed.run(125 * S);
    println!("5.2, two flows:");
    for (i, &(from, cap)) in steps.iter().enumerate() {
        let to = steps.get(i + 1).map_or(125, |s| s.0);
        let mid = from + (to - from) / 2;
        let a = avg(&bed, 0, mid, to, |x| x.delivered);
        let b = avg(&bed, 1, mid, to, |x| x.delivered);
        let q = queue_delay(&bed, 0, mid, to, cap);
        println!("  {from:3}-{to:3} s at {cap:5} kbit/s: {a} + {b}, queueing {q:?}");
        let c = cap as f64 * 1000.0;
        assert!(a.as_f64() + b.as_f64() >= 0.6 * c, "{from}-{to}: {a} + {b}");
        assert!(
            a.as_f64() + b.as_f64() <= 1.01 * c,
            "{from}-{to}: {a} + {b}"
        );
        assert!(
            a.as_f64().min(b.as_f64()) >= 0.15 * c,
            "{from}-{to}: a flow starves: {a} / {b}"
        );
        assert!(q <= 200 * MS, "{from}-{to}: queueing {q:?}");
    }
}

#[test]
fn rfc8867_5_3_congested_feedback_link_with_bidirectional_media() {
    // Link 0 forward, link 1 backward; each flow's feedback shares the
    // other direction's bottleneck with the other flow's media.
    let links = vec![
        LinkConfig::bottleneck(kbps(2000), 300 * MS, 50 * MS),
        LinkConfig::bottleneck(kbps(2000), 300 * MS, 50 * MS),
    ];
    let mut fwd = FlowSpec::new(elastic(), vec![0], vec![1]);
    fwd.seed = 31;
    let mut bwd = FlowSpec::new(elastic(), vec![1], vec![0]);
    bwd.seed = 32;
    let mut bed = Bed::new(links, vec![fwd, bwd]);
    schedule(&mut bed, 0, &[(0, 2000), (20, 1000), (40, 500), (60, 2000)]);
    schedule(&mut bed, 1, &[(0, 2000), (35, 800), (70, 2000)]);
    bed.run(100 * S);
    println!("5.3, forward flow:");
    check_phases(
        &bed,
        0,
        &[
            (0, 20, 2000),
            (20, 40, 1000),
            (40, 60, 500),
            (60, 100, 2000),
        ],
        0.5,
        1.01,
        200 * MS,
    );
    println!("5.3, backward flow:");
    check_phases(
        &bed,
        1,
        &[(0, 35, 2000), (35, 70, 800), (70, 100, 2000)],
        0.5,
        1.01,
        200 * MS,
    );
}

/// Elastic flows over one bottleneck, starting at the given seconds.
fn competing(capacity: u64, starts: &[u32], seed: u64) -> Bed {
    let flows = starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let mut f = FlowSpec::new(elastic(), vec![0], vec![1]);
            f.start = start * S;
            f.seed = seed + i as u64;
            f
        })
        .collect();
    Bed::new(path(capacity), flows)
}

/// Each flow gets at least `share` of a fair share over `[from, to)` and
/// together they use at least `use_` of the capacity.
fn check_fairness(bed: &Bed, n: usize, from: u32, to: u32, capacity: u64, share: f64, use_: f64) {
    let rates: Vec<Bitrate> = (0..n)
        .map(|f| avg(bed, f, from, to, |x| x.delivered))
        .collect();
    let total: f64 = rates.iter().map(|r| r.as_f64()).sum();
    let fair = capacity as f64 * 1000.0 / n as f64;
    println!("  {from}-{to} s: {rates:?} (fair share {fair:.0}), total {total:.0}");
    assert!(total >= use_ * capacity as f64 * 1000.0, "total {total}");
    assert!(total <= capacity as f64 * 1010.0, "total {total}");
    for (i, r) in rates.iter().enumerate() {
        assert!(
            r.as_f64() >= share * fair,
            "flow {i} gets {r} of a fair {fair}"
        );
    }
}

#[test]
fn rfc8867_5_4_competing_media_flows_with_the_same_congestion_control() {
    let mut bed = competing(3500, &[0, 20, 40], 40);
    bed.run(120 * S);
    println!("5.4, three flows on 3.5 Mbit/s:");
    check_fairness(&bed, 3, 80, 120, 3500, 0.4, 0.7);
}

#[test]
fn rfc8867_5_5_round_trip_time_fairness() {
    // Flows with one-way delays of 10, 25, 50, 100 and 150 ms share a
    // 4 Mbit/s bottleneck; they start 10 s apart.
    let delays = [10u32, 25, 50, 100, 150];
    let mut links = vec![LinkConfig::bottleneck(kbps(4000), 300 * MS, Duration::ZERO)];
    for d in delays {
        links.push(LinkConfig::wire(d * MS));
    }
    for d in delays {
        links.push(LinkConfig::wire(d * MS));
    }
    let flows = (0..5)
        .map(|i| {
            let mut f = FlowSpec::new(elastic(), vec![0, 1 + i], vec![6 + i]);
            f.start = (10 * i as u32) * S;
            f.seed = 50 + i as u64;
            f
        })
        .collect();
    let mut bed = Bed::new(links, flows);
    bed.run(150 * S);
    println!("5.5, five flows, one-way delays {delays:?} ms:");
    check_fairness(&bed, 5, 100, 150, 4000, 0.3, 0.7);
}

#[test]
fn rfc8867_5_8_media_pause_and_resume() {
    let mut bed = competing(3500, &[0, 0, 0], 80);
    bed.flows[0].spec.pause = Some((40 * S, 60 * S));
    bed.run(120 * S);
    println!("5.8, three flows, the first paused 40-60 s:");
    let others = avg(&bed, 1, 50, 60, |x| x.delivered) + avg(&bed, 2, 50, 60, |x| x.delivered);
    println!("  others during the pause: {others}");
    assert!(
        others >= kbps(2400),
        "the others take the freed capacity: {others}"
    );
    // After resuming, the paused flow gets its share back, and the resume
    // does not overrun the bottleneck.
    let back = first_time(bed.samples(0), 60 * S, |x| x.delivered >= kbps(700));
    println!("  paused flow back to 700 kbit/s at {back:?}");
    assert!(back.is_some_and(|t| t < 75 * S), "{back:?}");
    let q = queue_delay(&bed, 0, 60, 70, 3500);
    assert!(q <= 150 * MS, "queueing after resume {q:?}");
    check_fairness(&bed, 3, 90, 120, 3500, 0.4, 0.7);
}

#[test]
fn rfc8867_5_10_multiple_bottlenecks() {
    // The media crosses link 0 (2 Mbit/s) then link 1 (1.5 Mbit/s), where
    // 500 kbit/s of cross traffic also passes: 1 Mbit/s is left for it.
    let links = vec![
        LinkConfig::bottleneck(kbps(2000), 300 * MS, 25 * MS),
        LinkConfig::bottleneck(kbps(1500), 300 * MS, 25 * MS),
        LinkConfig::wire(50 * MS),
    ];
    let media = FlowSpec::new(elastic(), vec![0, 1], vec![2]);
    let mut cross = FlowSpec::new(MediaSpec::Cbr { kbps: 500 }, vec![1], vec![2]);
    cross.seed = 9;
    let mut bed = Bed::new(links, vec![media, cross]);
    bed.run(60 * S);
    let d = avg(&bed, 0, 20, 60, |x| x.delivered);
    let cross_d = avg(&bed, 1, 20, 60, |x| x.delivered);
    println!("5.10: media {d}, cross traffic {cross_d}");
    assert!(
        d >= kbps(750) && d <= kbps(1000),
        "{d}\n{}",
        describe(bed.samples(0), Duration::ZERO, 60 * S, 500 * MS)
    );
    assert!(
        cross_d >= kbps(480),
        "the cross traffic keeps its rate: {cross_d}"
    );
}

#[test]
fn cross_traffic_is_yielded_to_and_reclaimed() {
    // Unresponsive traffic of 1 Mbit/s joins a 2 Mbit/s bottleneck from 20
    // to 40 s (what the TCP cases 5.6/5.7 would do, without TCP's own
    // reaction).
    let media = FlowSpec::new(elastic(), vec![0], vec![1]);
    let mut cross = FlowSpec::new(MediaSpec::Cbr { kbps: 1000 }, vec![0], vec![1]);
    cross.start = 20 * S;
    cross.stop = Some(40 * S);
    let mut bed = Bed::new(path(2000), vec![media, cross]);
    bed.run(70 * S);
    let before = avg(&bed, 0, 10, 20, |x| x.delivered);
    let during = avg(&bed, 0, 30, 40, |x| x.delivered);
    let after = avg(&bed, 0, 60, 70, |x| x.delivered);
    let cross_d = avg(&bed, 1, 30, 40, |x| x.delivered);
    println!(
        "cross traffic: media {before} before, {during} during (cross {cross_d}), {after} after"
    );
    assert!(before >= kbps(1500));
    assert!(during <= kbps(1050) && during >= kbps(600), "{during}");
    assert!(
        cross_d >= kbps(950),
        "the cross traffic gets through: {cross_d}"
    );
    assert!(after >= kbps(1500), "{after}");
}

#[test]
fn round_trip_time_steps_do_not_collapse_the_allocation() {
    let mut bed = single(two_cameras(), path(2500));
    bed.at(20 * S, Change::Delay(0, 150 * MS));
    bed.at(40 * S, Change::Delay(0, 20 * MS));
    bed.at(60 * S, Change::Delay(1, 200 * MS));
    bed.run(80 * S);
    let s = bed.samples(0);
    let low = s
        .iter()
        .filter(|x| x.t >= 15 * S)
        .map(|x| x.sent)
        .min()
        .unwrap();
    let pauses = bed.flows[0]
        .events
        .iter()
        .filter(|(t, e)| {
            *t >= bed.time(15 * S)
                && matches!(
                    e,
                    crate::core::bwe::allocator::AllocationEvent::Paused { .. }
                )
        })
        .count();
    println!(
        "delay steps 50 -> 150 -> 20 ms, feedback 50 -> 200 ms: lowest sent {low}, pauses {pauses}"
    );
    assert!(
        low >= kbps(1000),
        "{low}\n{}",
        describe(s, 15 * S, 80 * S, 500 * MS)
    );
    assert_eq!(pauses, 0);
    let end = avg(&bed, 0, 70, 80, |x| x.sent);
    assert!(end >= kbps(1900), "back on the top layers: {end}");
}

/// Two cameras on 2.5 Mbit/s with Gilbert-Elliott loss of the given burst
/// shape; returns (mean sent after 20 s, switches after 20 s).
fn bursts(to_bad: f64, to_good: f64) -> (Bitrate, usize, Bed) {
    let mut links = path(2500);
    links[0].loss = Loss::GilbertElliott {
        to_bad,
        to_good,
        loss_good: 0.0,
        loss_bad: 1.0,
    };
    links[0].seed = 77;
    let mut bed = single(two_cameras(), links);
    bed.run(90 * S);
    let sent = avg(&bed, 0, 20, 90, |x| x.sent);
    let switches = bed.flows[0].switches_between(bed.time(20 * S), bed.time(90 * S));
    (sent, switches, bed)
}

#[test]
fn short_loss_bursts_do_not_collapse_the_allocation() {
    // About 2% loss in bursts of 2 packets on average.
    let (sent, switches, bed) = bursts(0.0102, 0.5);
    let lost = bed.link_stats(0).lost as f64 / bed.link_stats(0).sent as f64;
    println!(
        "short bursts ({:.1}% lost): mean sent {sent}, {switches} switches in 70 s",
        lost * 100.0
    );
    assert!(
        sent >= kbps(1800),
        "{sent}\n{}",
        describe(bed.samples(0), Duration::ZERO, 90 * S, S)
    );
    assert!(switches <= 4, "{switches}");
}

#[test]
fn long_loss_bursts_recover_without_a_collapse() {
    // About 2% loss in bursts of 25 packets (outages of ~100 ms).
    let (sent, switches, bed) = bursts(0.0008, 0.04);
    let lost = bed.link_stats(0).lost as f64 / bed.link_stats(0).sent as f64;
    println!(
        "long bursts ({:.1}% lost): mean sent {sent}, {switches} switches in 70 s",
        lost * 100.0
    );
    assert!(
        sent >= kbps(1500),
        "{sent}\n{}",
        describe(bed.samples(0), Duration::ZERO, 90 * S, S)
    );
    assert!(switches <= 10, "{switches}");
}

#[test]
fn jitter_alone_is_not_congestion() {
    let mut links = path(2500);
    links[0].jitter = 30 * MS;
    let mut bed = single(two_cameras(), links);
    bed.run(60 * S);
    let sent = avg(&bed, 0, 15, 60, |x| x.sent);
    let switches = bed.flows[0].switches_between(bed.time(15 * S), bed.time(60 * S));
    println!("30 ms jitter: mean sent {sent}, {switches} switches after 15 s");
    assert!(
        sent >= kbps(1900),
        "{sent}\n{}",
        describe(bed.samples(0), Duration::ZERO, 60 * S, S)
    );
    assert!(switches <= 1);
}
