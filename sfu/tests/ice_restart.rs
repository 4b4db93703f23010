//! ICE restart on a live connection: a client that re-offers with new ICE
//! credentials (after `restartIce()`, typically because its network
//! changed) keeps its connection, its published tracks and its
//! subscriptions; the server answers with new credentials of its own and
//! follows the client to its new address. Only the new credentials bind
//! an address afterwards. Runs on the in-memory network with a virtual
//! clock.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::payload;
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::shard::UfragChange;
use sfu::stats::Drop;

const FRAME: Duration = Duration::from_millis(33);

/// The `a=ice-ufrag` of an SDP.
fn ufrag(sdp: &str) -> String {
    common::ice_credentials(sdp).0
}

/// The `a=ice-pwd` of an SDP.
fn pwd(sdp: &str) -> String {
    common::ice_credentials(sdp).1
}

/// Publisher `a` (video) and subscriber `b`, connected and forwarding.
fn call(seed: u64) -> (SimNet, u16) {
    let mut net = SimNet::new(seed);
    let a = net.join("a", true, true);
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    net.join("b", false, true);
    let mut seq = 0u16;
    for _ in 0..600 {
        seq = seq.wrapping_add(1);
        send(&mut net, seq);
        net.step(FRAME);
        if net.clients[1].packets_of("a-video") >= 10 {
            return (net, seq);
        }
    }
    panic!("the call did not come up: {:?}", net.shard.counts);
}

fn send(net: &mut SimNet, seq: u16) {
    let now = net.now;
    net.clients[0].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 200), now);
}

/// Sends frames until subscriber `b` has `more` packets beyond what it had,
/// for at most a minute of virtual time.
fn media_resumes(net: &mut SimNet, seq: &mut u16, more: u64) -> bool {
    let target = net.clients[1].packets_of("a-video") + more;
    for _ in 0..1800 {
        *seq = seq.wrapping_add(1);
        send(net, *seq);
        net.step(FRAME);
        if net.clients[1].packets_of("a-video") >= target {
            return true;
        }
    }
    false
}

#[test]
fn subscriber_moving_to_a_new_address_restarts_ice_and_keeps_its_subscription() {
    let (mut net, mut seq) = call(11);
    let server_sdps = net.clients[1].server_sdps.len();
    let old_ufrag = ufrag(net.clients[1].server_sdps.last().expect("server sdp"));
    let tracks_before: Vec<String> = net.clients[1].received.keys().cloned().collect();

    // Wi-Fi to cellular: the old address is gone, the client restarts ICE.
    let moved = net.new_addr();
    net.clients[1].restart_ice(Some(moved));
    assert!(
        media_resumes(&mut net, &mut seq, 100),
        "no media after the restart: {:?}",
        net.shard.counts
    );

    assert_eq!(net.shard.counts.ice_restarts, 1, "{:?}", net.shard.counts);
    let answer = &net.clients[1].server_sdps[server_sdps];
    assert_ne!(
        ufrag(answer),
        old_ufrag,
        "an ICE restart answer must carry new credentials (RFC 8839 4.4.1.1.2)"
    );
    assert!(net.clients[1].connected());
    assert!(
        net.clients[1].errors.is_empty(),
        "{:?}",
        net.clients[1].errors
    );
    // The same subscription, not a new one: the same tracks, and the
    // server did not need to offer anything new.
    let tracks_after: Vec<String> = net.clients[1].received.keys().cloned().collect();
    assert_eq!(tracks_after, tracks_before);
    assert_eq!(
        net.clients[1].server_sdps.len(),
        server_sdps + 1,
        "only the answer to the restart offer"
    );
    // Everything now goes to the new address; nothing to the old one.
    let lost = net.undelivered;
    assert!(media_resumes(&mut net, &mut seq, 100));
    assert_eq!(
        net.undelivered, lost,
        "the server still sends to the old address"
    );
}

#[test]
fn publisher_restarting_ice_keeps_its_track_published() {
    let (mut net, mut seq) = call(12);
    let moved = net.new_addr();
    net.clients[0].restart_ice(Some(moved));
    assert!(
        media_resumes(&mut net, &mut seq, 100),
        "the subscriber gets nothing after the publisher's restart: {:?}",
        net.shard.counts
    );
    assert_eq!(net.shard.counts.ice_restarts, 1);
    assert_eq!(net.shard.counts.tracks, 1, "the track was published again");
    assert!(net.clients.iter().all(|c| c.connected()));
}

#[test]
fn a_restart_on_the_same_address_changes_credentials_and_media_continues() {
    let (mut net, mut seq) = call(13);
    let mut old = ufrag(net.clients[1].server_sdps.last().expect("server sdp"));
    for round in 1..=3 {
        let before = net.clients[1].server_sdps.len();
        net.clients[1].restart_ice(None);
        assert!(
            media_resumes(&mut net, &mut seq, 50),
            "no media after restart {round}"
        );
        assert_eq!(net.shard.counts.ice_restarts, round);
        let new = ufrag(&net.clients[1].server_sdps[before]);
        assert_ne!(new, old, "restart {round} kept the server's ufrag");
        old = new;
    }
    assert_eq!(net.shard.counts.disconnects, 0);
}

#[test]
fn after_a_restart_only_the_new_credentials_bind_an_address() {
    let (mut net, mut seq) = call(14);
    let last = net.clients[1]
        .server_sdps
        .last()
        .expect("server sdp")
        .clone();
    let (old_ufrag, old_pwd) = (ufrag(&last), pwd(&last));
    let old_addr = net.clients[1].addr;
    let before = net.clients[1].server_sdps.len();
    let moved = net.new_addr();
    net.clients[1].restart_ice(Some(moved));
    assert!(media_resumes(&mut net, &mut seq, 50));
    let answer = net.clients[1].server_sdps[before].clone();
    let (new_ufrag, new_pwd) = (ufrag(&answer), pwd(&answer));
    assert_ne!(new_pwd, old_pwd, "a restart keeps the server's password");
    // The runtime's table was told: the old ufrag is gone, the new one
    // comes with the new password.
    let (_, _, changes) = net.shard.take_output();
    let changes = std::mem::take(changes);
    assert!(
        changes.contains(&UfragChange::Removed(old_ufrag.clone())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&UfragChange::Added {
            ufrag: new_ufrag.clone(),
            pwd: new_pwd.clone(),
        }),
        "{changes:?}"
    );

    let addresses = net.shard.counts.addresses;
    let unknown = net.shard.counts.dropped[Drop::UnknownSource as usize];
    let unsigned = net.shard.counts.dropped[Drop::StunUnauthenticated as usize];
    let stranger = net.new_addr();
    let now = net.now;
    let request =
        |u: &str, p: &str| BytesMut::from(&sfu::fuzzing::binding_request(u, p.as_bytes())[..]);
    // A check signed with the old credentials (recorded before the
    // restart, or from whoever knew them) names no connection any more,
    // from the client's old address or from anywhere else.
    for from in [old_addr, stranger] {
        net.shard
            .handle_datagram(from, request(&old_ufrag, &old_pwd), now);
    }
    // The new ufrag with the old password proves nothing.
    net.shard
        .handle_datagram(stranger, request(&new_ufrag, &old_pwd), now);
    net.step(FRAME);
    assert_eq!(
        net.shard.counts.dropped[Drop::UnknownSource as usize],
        unknown + 2,
        "{:?}",
        net.shard.counts
    );
    assert_eq!(
        net.shard.counts.dropped[Drop::StunUnauthenticated as usize],
        unsigned + 1,
        "{:?}",
        net.shard.counts
    );
    assert_eq!(
        net.shard.counts.addresses, addresses,
        "an address was bound"
    );
    assert!(media_resumes(&mut net, &mut seq, 50));

    // The same request signed with the new password binds (the requests
    // above were refused for their credentials, not their form).
    net.shard
        .handle_datagram(stranger, request(&new_ufrag, &new_pwd), net.now);
    net.step(FRAME);
    assert_eq!(net.shard.counts.addresses, addresses + 1);
}
