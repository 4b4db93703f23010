//! A flood of packets the server refuses writes a bounded number of log
//! lines, with the server's own log filter, while the counters count every
//! packet. Before, every unauthenticated packet from a client's address
//! wrote one or two WARN lines (60,000 packets: about 120,000 lines).
//!
//! In memory on a virtual clock (`common::sim`), with a subscriber that
//! captures every line the server and the media library write.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

/// Every line written, shared with the test.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn dropped(net: &SimNet, why: &str) -> u64 {
    sfu::stats::DROP_REASONS
        .iter()
        .find(|(_, n)| *n == why)
        .map_or(0, |(d, _)| net.shard.counts.dropped[*d as usize])
}

#[test]
fn a_flood_of_refused_packets_writes_a_bounded_number_of_lines() {
    let lines = Lines::default();
    let sink = lines.clone();
    // What the server installs (`[log] level = "info"`).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "info,{}",
            sfu::LIBRARY_LOG_DIRECTIVES
        )))
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let mut net = SimNet::new(11);
    let publisher = net.join("pub", true, true);
    net.clients[publisher].add_track("v", RtpCodecKind::Video);
    let viewer = net.join("viewer", false, true);
    // The viewer is offered the track once its media flows.
    let mut seq = 0u16;
    let end = net.now + Duration::from_secs(30);
    while !net.clients.iter().all(|c| c.connected()) && net.now < end {
        seq = seq.wrapping_add(1);
        let now = net.now;
        net.clients[publisher].send_rtp(0, seq, seq as u32 * 3000, common::payload(seq, 300), now);
        net.step(Duration::from_millis(20));
    }
    assert!(net.clients.iter().all(|c| c.connected()), "the call is up");
    let server_sdp = net.clients[viewer].server_sdps.last().cloned().unwrap();
    let ufrag = server_sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .to_owned();
    let lines_before = lines.text().lines().count();
    let counted_before: u64 = net.shard.counts.dropped.iter().sum();

    // 60,000 packets over 6 s of virtual time: STUN naming the viewer with
    // a wrong password, and junk "SRTP", both from the publisher's bound
    // address; RTP and garbage from strangers.
    let bound = net.clients[publisher].addr;
    let stun = sfu::fuzzing::binding_request(&ufrag, b"wrong password");
    let mut junk_rtp = vec![0x80u8, 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    junk_rtp.extend([0x55; 100]);
    let sent = 60_000u64;
    for i in 0..sent {
        let stranger = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 9000));
        let (from, data): (SocketAddr, &[u8]) = match i % 4 {
            0 => (bound, &stun[..]),
            1 => (bound, &junk_rtp[..]),
            2 => (stranger, &junk_rtp[..]),
            _ => (stranger, b"P: not a protocol"),
        };
        net.shard
            .handle_datagram(from, BytesMut::from(data), net.now);
        if i % 1_000 == 999 {
            net.step(Duration::from_millis(100));
        }
    }
    let text = lines.text();
    let flood_lines = text.lines().count() - lines_before;
    let counted: u64 = net.shard.counts.dropped.iter().sum::<u64>() - counted_before;
    eprintln!("{sent} refused packets: {flood_lines} log lines, {counted} counted");
    for why in [
        "stun_unauthenticated",
        "rejected",
        "unknown_source",
        "garbage",
    ] {
        assert!(
            dropped(&net, why) >= sent / 4,
            "{why} counted every packet: {}",
            dropped(&net, why)
        );
    }
    assert!(counted >= sent, "every packet counted: {counted}");
    // Four reasons, at most one line each per 10 s.
    assert!(
        (1..=8).contains(&flood_lines),
        "a bounded number of lines ({flood_lines}):\n{text}"
    );
    assert!(
        text.contains("stun_unauthenticated") && text.contains("unlogged"),
        "the line says what and how many were not logged:\n{text}"
    );
    // The call carries on.
    assert!(net.clients.iter().all(|c| c.connected()));
}
