//! The SDP the server sends follows JSEP: an answer uses the offer's
//! payload types and extension ids (also after a re-offer renumbers them),
//! lists each extension once per media section, and offers no RTCP
//! component candidate when RTCP is multiplexed.

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

/// What a client's SDP says, per media section: payload types by codec
/// name, and extension ids by URI (every extmap line, repeats included).
#[derive(Debug, Default)]
struct Section {
    mid: String,
    pts: Vec<(String, u8)>,
    exts: Vec<(String, u8)>,
    rtcp_candidates: usize,
}

fn sections(sdp: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for l in sdp.lines() {
        if l.starts_with("m=") {
            out.push(Section::default());
        }
        let Some(s) = out.last_mut() else { continue };
        if let Some(m) = l.strip_prefix("a=mid:") {
            s.mid = m.trim().to_owned();
        } else if let Some(r) = l.strip_prefix("a=rtpmap:") {
            let (pt, name) = r.split_once(' ').unwrap();
            let name = name.split('/').next().unwrap().to_ascii_lowercase();
            s.pts.push((name, pt.parse().unwrap()));
        } else if let Some(e) = l.strip_prefix("a=extmap:") {
            let mut it = e.split_whitespace();
            let id = it
                .next()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            s.exts.push((it.next().unwrap().to_owned(), id));
        } else if let Some(c) = l.strip_prefix("a=candidate:") {
            if c.split_whitespace().nth(1) == Some("2") {
                s.rtcp_candidates += 1;
            }
        }
    }
    out
}

/// Renumbers payload types and extension ids in an offer, the way another
/// stack (or the same browser after a codec change) may re-offer.
fn renumber(sdp: &str, pts: &[(u8, u8)], ext_shift: u8) -> String {
    let mut out = Vec::new();
    for l in sdp.split("\r\n") {
        let mut line = l.to_owned();
        if let Some(rest) = l.strip_prefix("a=extmap:") {
            let (id, tail) = rest.split_once(' ').unwrap();
            let id: u8 = id.parse().unwrap();
            line = format!("a=extmap:{} {tail}", id + ext_shift);
        } else if l.starts_with("m=") {
            let mut f: Vec<String> = l.split(' ').map(str::to_owned).collect();
            for x in f.iter_mut().skip(3) {
                if let Some((_, to)) = pts.iter().find(|(from, _)| x == &from.to_string()) {
                    *x = to.to_string();
                }
            }
            line = f.join(" ");
        } else {
            for (from, to) in pts {
                for p in ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"] {
                    let old = format!("{p}{from} ");
                    if line.starts_with(&old) {
                        line = format!("{p}{to} {}", &line[old.len()..]);
                    }
                }
            }
        }
        out.push(line);
    }
    out.join("\r\n")
}

fn connected_call() -> (SimNet, usize) {
    let mut net = SimNet::new(3);
    let a = net.join("a", true, true);
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    net.clients[a].add_track("a-audio", RtpCodecKind::Audio);
    let b = net.join("b", true, true);
    let mut seq = 0;
    assert!(
        until(&mut net, &mut seq, |n| n.clients[b].packets_of("a-video")
            > 5
            && n.clients[b].packets_of("a-audio") > 5),
        "no call: {:?}",
        net.shard.counts
    );
    (net, a)
}

/// Sends client `i`'s next offer through `munge` and returns the server's
/// answer.
fn reoffer(net: &mut SimNet, i: usize, munge: impl Fn(&str) -> String) -> (String, String) {
    let now = net.now;
    let c = &mut net.clients[i];
    let offer = c.pc.create_offer(None).unwrap();
    c.pc.set_local_description(now, offer).unwrap();
    let sdp = munge(&c.pc.local_description().unwrap().sdp);
    let participant = c.id.clone();
    net.shard.handle_command(
        signaling::media::MediaCommand::Offer {
            room: net.room.clone(),
            participant: participant.clone(),
            sdp: sdp.clone(),
        },
        now,
    );
    let (_, events, _) = net.shard.take_output();
    let answer = events
        .drain(..)
        .find_map(|e| match e {
            signaling::media::MediaEvent::Answer {
                participant: p,
                sdp,
            } if p == participant => Some(sdp),
            _ => None,
        })
        .expect("the server answers the re-offer");
    (sdp, answer)
}

fn assert_follows(offer: &str, answer: &str) {
    let (o, a) = (sections(offer), sections(answer));
    assert_eq!(o.len(), a.len(), "one answer section per offer section");
    for (os, as_) in o.iter().zip(&a) {
        assert_eq!(os.mid, as_.mid);
        for (name, pt) in &as_.pts {
            assert!(
                os.pts.contains(&(name.clone(), *pt)),
                "mid {}: answer has {name} as {pt}, the offer {:?}\n{answer}",
                as_.mid,
                os.pts
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (uri, id) in &as_.exts {
            assert!(
                seen.insert(uri.clone()),
                "mid {}: {uri} listed twice\n{answer}",
                as_.mid
            );
            assert!(
                os.exts.contains(&(uri.clone(), *id)),
                "mid {}: answer has {uri} as {id}, the offer {:?}\n{answer}",
                as_.mid,
                os.exts
            );
        }
        assert_eq!(
            as_.rtcp_candidates, 0,
            "RTCP component candidate with rtcp-mux\n{answer}"
        );
    }
}

#[test]
fn answers_follow_the_offers_numbering_also_after_a_renumbering_reoffer() {
    let (mut net, a) = connected_call();
    let first_answer = net.clients[a].server_sdps[0].clone();
    assert_follows(
        &net.clients[a].pc.current_local_description().unwrap().sdp,
        &first_answer,
    );
    let (offer, answer) = reoffer(&mut net, a, |sdp| {
        renumber(sdp, &[(96, 100), (111, 109)], 6)
    });
    assert!(offer.contains("a=rtpmap:100 VP8/90000"), "{offer}");
    assert_follows(&offer, &answer);
}

#[test]
fn server_offers_carry_no_rtcp_component_candidate() {
    let (net, _) = connected_call();
    let b = &net.clients[1];
    assert!(!b.server_sdps.is_empty());
    for sdp in &b.server_sdps {
        for s in sections(sdp) {
            assert_eq!(s.rtcp_candidates, 0, "{sdp}");
        }
    }
}
