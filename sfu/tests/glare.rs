//! An offer that crosses the server's own pending offer is ignored (the
//! server is the impolite side of perfect negotiation), and the client is
//! told so: a client that cannot roll back would otherwise wait forever
//! for an answer that never comes.

mod common;

use std::time::Duration;

use common::payload;
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const FRAME: Duration = Duration::from_millis(33);

fn until(net: &mut SimNet, seq: &mut u16, mut cond: impl FnMut(&SimNet) -> bool) -> bool {
    for _ in 0..900 {
        *seq = seq.wrapping_add(1);
        let now = net.now;
        let s = *seq;
        for c in net.clients.iter_mut() {
            for i in 0..c.senders.len() {
                c.send_rtp(i, s, s as u32 * 3000, payload(s, 200), now);
            }
        }
        net.step(FRAME);
        if cond(net) {
            return true;
        }
    }
    false
}

#[test]
fn a_crossed_offer_is_ignored_with_a_word_and_the_call_converges() {
    let mut net = SimNet::new(11);
    let a = net.join("a", true, true);
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    let b = net.join("b", true, true);
    let mut seq = 0;
    assert!(until(&mut net, &mut seq, |n| n.clients[b]
        .packets_of("a-video")
        > 5));
    assert!(
        net.clients[b].errors.is_empty(),
        "{:?}",
        net.clients[b].errors
    );

    // a publishes another track, so the server offers it to b; b does not
    // see that offer yet and offers a track of its own: the offers cross.
    net.clients[b].hold_signaling = true;
    net.clients[a].add_track("a-audio", RtpCodecKind::Audio);
    assert!(until(&mut net, &mut seq, |n| n.clients[b].held.iter().any(
        |e| matches!(e, signaling::media::MediaEvent::Offer { .. })
    )));
    net.clients[b].add_track("b-video", RtpCodecKind::Video);
    net.step(FRAME);
    net.clients[b].hold_signaling = false;
    assert!(
        until(&mut net, &mut seq, |n| !n.clients[b].errors.is_empty()),
        "the client was not told its offer was ignored"
    );
    let e = &net.clients[b].errors[0];
    assert!(e.starts_with("offer_ignored: "), "{e}");
    // The polite client rolled back, answered, offered again: everyone
    // gets everything.
    assert!(
        until(&mut net, &mut seq, |n| n.clients[b].packets_of("a-audio")
            > 5
            && n.clients[a].packets_of("b-video") > 5),
        "no convergence after the glare: {:?}",
        net.shard.counts
    );
    assert_eq!(net.clients[b].errors.len(), 1);
}
