//! Keeping a publisher's simulcast streams across renegotiation.
//!
//! A browser names each simulcast stream (its rid, with the mid) in RTP
//! header extensions only until the server acknowledges the SSRC in an
//! RTCP receiver report; after that its packets carry the SSRC alone. The
//! WebRTC library re-reads every remote description and resets the
//! receiver of each section that has rids to "SSRC unknown, waiting for a
//! rid". After any renegotiation (a participant joining is enough: the
//! server offers everyone its tracks) it would drop every packet of the
//! streams it already knew, for good.
//!
//! So the library gets a publisher's description with the simulcast lines
//! of its running sections left out: it then has no new track to set up
//! there and keeps the SSRCs it learnt. The server puts the receive side of
//! those lines back into what it sends the client, since the library no
//! longer writes them, and the client keeps sending every stream.

use super::sdp::{media_sections, split_sections};

/// A simulcast section the server already receives: the publisher's
/// `mid`, the track id its `a=msid` names and its rids (lowest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    pub mid: String,
    pub track_id: String,
    pub rids: Vec<String>,
}

/// Lines of a running section the library must not see again.
fn hidden(line: &str) -> bool {
    [
        "a=rid:",
        "a=simulcast:",
        "a=msid:",
        "a=ssrc:",
        "a=ssrc-group:",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// The publisher's description as the library gets it: each section that
/// still sends the same track with the same rids as a running one loses
/// its rid, simulcast, msid and SSRC lines. A section with another track
/// or other rids is a new stream set, and stays whole.
pub fn hide_running(sdp: &str, running: &[Running]) -> String {
    if running.is_empty() {
        return sdp.to_owned();
    }
    let media = media_sections(sdp);
    let mut out = String::with_capacity(sdp.len());
    for (i, section) in split_sections(sdp).into_iter().enumerate() {
        // Section 0 is the session part.
        let same = i
            .checked_sub(1)
            .and_then(|k| media.get(k))
            .is_some_and(|m| {
                running.iter().any(|r| {
                    m.mid.as_deref() == Some(r.mid.as_str())
                        && m.msid.as_ref().is_some_and(|(_, t)| *t == r.track_id)
                        && m.send_rids == r.rids
                })
            });
        if !same {
            out.push_str(section);
            continue;
        }
        for line in section.split_inclusive('\n') {
            if !hidden(line) {
                out.push_str(line);
            }
        }
    }
    out
}

/// The server's description as the client gets it: each running
/// section that still receives and names no simulcast gets `a=rid:<id>
/// recv` per stream and `a=simulcast:recv`, as the library would have
/// written them from the publisher's lines.
pub fn restore_recv(sdp: &str, running: &[Running]) -> String {
    if running.is_empty() {
        return sdp.to_owned();
    }
    let mut out = String::with_capacity(sdp.len() + 128);
    for section in split_sections(sdp) {
        let mid = section
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("a=mid:"));
        let r = mid.and_then(|mid| running.iter().find(|r| r.mid == mid));
        let receives = section
            .lines()
            .any(|l| matches!(l.trim_end(), "a=recvonly" | "a=sendrecv"));
        let rejected = section
            .lines()
            .next()
            .is_some_and(|m| m.starts_with("m=") && m.split_whitespace().nth(1) == Some("0"));
        let named = section.lines().any(|l| l.starts_with("a=simulcast:"));
        out.push_str(section);
        let Some(r) = r.filter(|_| receives && !rejected && !named) else {
            continue;
        };
        let eol = if section.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        if !section.ends_with('\n') {
            out.push_str(eol);
        }
        for rid in &r.rids {
            out.push_str(&format!("a=rid:{rid} recv{eol}"));
        }
        out.push_str(&format!("a=simulcast:recv {}{eol}", r.rids.join(";")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "v=0\r\ns=-\r\na=group:BUNDLE 0 1\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:0\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        a=sendonly\r\na=msid:s1 cam\r\n\
        a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=rtpmap:111 opus/48000/2\r\n\
        a=sendonly\r\na=msid:s1 mic\r\na=ssrc:5 cname:x\r\n";

    fn cam() -> Running {
        Running {
            mid: "0".into(),
            track_id: "cam".into(),
            rids: vec!["q".into(), "h".into(), "f".into()],
        }
    }

    #[test]
    fn a_running_section_loses_its_simulcast_and_track_lines_only() {
        let out = hide_running(CHROME, &[cam()]);
        let m = media_sections(&out);
        assert!(m[0].send_rids.is_empty());
        assert_eq!(m[0].msid, None);
        assert!(!out.contains("a=simulcast:"));
        // Everything else stays, the other section whole.
        assert!(out.contains("a=fmtp:97 apt=96\r\na=sendonly\r\nm=audio"));
        assert!(out.ends_with("a=msid:s1 mic\r\na=ssrc:5 cname:x\r\n"));
    }

    #[test]
    fn another_track_or_other_rids_stay_whole() {
        let mut other = cam();
        other.track_id = "screen".into();
        assert_eq!(hide_running(CHROME, &[other]), CHROME);
        let mut fewer = cam();
        fewer.rids.pop();
        assert_eq!(hide_running(CHROME, &[fewer]), CHROME);
        let mut mid = cam();
        mid.mid = "1".into();
        assert_eq!(hide_running(CHROME, &[mid]), CHROME);
        assert_eq!(hide_running(CHROME, &[]), CHROME);
    }

    const OURS: &str = "v=0\r\ns=-\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\na=recvonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=sendonly\r\na=msid:x y\r\n";

    #[test]
    fn the_receive_side_comes_back_in_what_the_client_gets() {
        let out = restore_recv(OURS, &[cam()]);
        assert!(out.contains(
            "a=recvonly\r\na=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\n\
             a=simulcast:recv q;h;f\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n"
        ));
        // Applied twice it adds nothing more.
        assert_eq!(restore_recv(&out, &[cam()]), out);
    }

    #[test]
    fn no_receive_side_for_a_section_that_does_not_receive() {
        for dir in ["a=inactive", "a=sendonly"] {
            let sdp = OURS.replace("a=recvonly", dir);
            assert_eq!(restore_recv(&sdp, &[cam()]), sdp);
        }
        let rejected = OURS.replacen("m=video 9", "m=video 0", 1);
        assert_eq!(restore_recv(&rejected, &[cam()]), rejected);
    }

    #[test]
    fn hidden_then_restored_the_client_sees_simulcast_recv_for_its_send() {
        // The round trip the shard makes: what the library answers from
        // the hidden offer, restored, names the streams the client sends.
        let hidden = hide_running(CHROME, &[cam()]);
        let answer = hidden
            .replace("a=sendonly", "a=recvonly")
            .replace("a=ssrc:5 cname:x\r\n", "");
        let out = restore_recv(&answer, &[cam()]);
        assert!(out.contains("a=simulcast:recv q;h;f\r\n"));
        assert_eq!(out.matches("a=simulcast:").count(), 1);
    }
}
