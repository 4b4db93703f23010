//! What an idle connection costs: connected participants with nothing
//! flowing (a published microphone that sends nothing, as a muted one
//! does). The server should then do only what the protocols need: answer
//! each client's consent checks (RFC 7675), and run the connection's own
//! timers (consent expiry) about once a second, not at the library's
//! 200 ms, and send nothing it was not asked for.

mod common;

use std::time::Duration;

use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

/// What a shard did over a minute of virtual time with `n` idle
/// participants: timer wake-ups, datagrams in and out.
fn idle_minute(n: usize) -> (u64, u64, u64) {
    let mut net = SimNet::new(n as u64);
    // Joined a little apart, so no two connections' timers keep in step.
    let ids: Vec<usize> = (0..n)
        .map(|i| {
            let c = net.join(&format!("p{i}"), true, true);
            net.clients[c].add_track(&format!("mic{i}"), RtpCodecKind::Audio);
            net.run(Duration::from_millis(137), Duration::from_millis(1), |_| {});
            c
        })
        .collect();
    let connected = net.step_until(Duration::from_millis(5), Duration::from_secs(30), |n| {
        ids.iter().all(|&c| n.clients[c].connected())
    });
    assert!(connected, "{n} participants connect");
    // Past the set-up's own exchanges.
    net.run(Duration::from_secs(5), Duration::from_millis(5), |_| {});
    let (in0, out0) = (net.shard.counts.packets_in, net.shard.counts.packets_out);
    let mut wakeups = 0;
    let step = Duration::from_millis(1);
    let end = net.now + Duration::from_secs(60);
    while net.now < end {
        if net
            .shard
            .next_deadline()
            .is_some_and(|d| d <= net.now + step)
        {
            wakeups += 1;
        }
        net.step(step);
    }
    (
        wakeups,
        net.shard.counts.packets_in - in0,
        net.shard.counts.packets_out - out0,
    )
}

#[test]
fn an_idle_connection_wakes_the_shard_about_once_a_second_and_sends_only_what_it_is_asked() {
    let (w1, in1, out1) = idle_minute(1);
    let (w8, in8, out8) = idle_minute(8);
    println!("1 idle: {w1} timer wake-ups, {in1} in, {out1} out; 8 idle: {w8}, {in8}, {out8}");
    // Beyond the shard's own rounds (adaptation while anything is
    // published), each idle connection adds about one wake-up a second.
    let per_connection = w8.saturating_sub(w1) / 7;
    assert!(
        per_connection <= 70,
        "each idle connection wakes the shard {per_connection} times a minute ({w1} wake-ups for 1, {w8} for 8)"
    );
    // Every datagram out answers one in (a consent check), and the clients'
    // checks are all that arrives.
    assert!(in8 > 0, "the clients keep checking consent");
    assert!(
        out8 <= in8,
        "{out8} datagrams out for {in8} in: the server sends unasked"
    );
    assert!(out1 <= in1, "{out1} out for {in1} in");
}
