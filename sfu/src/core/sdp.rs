//! Reading the parts of SDP the forwarder needs (per media section: mid,
//! codecs with their payload types, header extensions by id), and touch-ups
//! of the SDP text the server sends where the library's output and JSEP
//! disagree. Pure text in, values or text out.

/// A codec as one media section numbers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    pub pt: u8,
    /// Encoding name, lower case (`vp8`, `opus`, `rtx`).
    pub name: String,
    pub clock_rate: u32,
    pub channels: u16,
    /// The `a=fmtp` parameters, as written.
    pub fmtp: String,
}

impl Codec {
    /// For RTX: the payload type it repairs (`apt=`).
    pub fn apt(&self) -> Option<u8> {
        fmtp_param(&self.fmtp, "apt")?.parse().ok()
    }

    /// Same codec and the parameters that tell variants apart (H.264's
    /// profile and packetization mode, VP9's profile).
    pub fn same_format(&self, other: &Codec) -> bool {
        self.name == other.name
            && self.clock_rate == other.clock_rate
            && [
                "profile-level-id",
                "packetization-mode",
                "profile-id",
                "profile",
            ]
            .iter()
            .all(|k| {
                let (a, b) = (fmtp_param(&self.fmtp, k), fmtp_param(&other.fmtp, k));
                match *k {
                    // The profile part (first 4 hex digits) decides; the level may differ.
                    "profile-level-id" => {
                        a.map(|v| v.get(..4).unwrap_or(v).to_ascii_lowercase())
                            == b.map(|v| v.get(..4).unwrap_or(v).to_ascii_lowercase())
                    }
                    _ => a.unwrap_or("0") == b.unwrap_or("0"),
                }
            })
    }
}

fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then_some(v.trim())
    })
}

/// One media section (`m=`) as far as forwarding cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video` or `application`.
    pub kind: String,
    pub mid: Option<String>,
    /// In the order of the `m=` line (preference order).
    pub codecs: Vec<Codec>,
    /// `(id, uri)` of every `a=extmap`.
    pub extmaps: Vec<(u8, String)>,
    /// `a=rid` ids with direction `send` (simulcast layers the remote sends).
    pub send_rids: Vec<String>,
    /// `a=msid:<stream id> <track id>`, when present.
    pub msid: Option<(String, String)>,
}

impl Media {
    pub fn codec(&self, pt: u8) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.pt == pt)
    }

    pub fn extmap_id(&self, uri: &str) -> Option<u8> {
        self.extmaps
            .iter()
            .find(|(_, u)| u == uri)
            .map(|(id, _)| *id)
    }
}

/// The media sections of a session description, in order.
pub fn media_sections(sdp: &str) -> Vec<Media> {
    let mut out: Vec<Media> = Vec::new();
    for raw in sdp.lines() {
        let l = raw.trim_end();
        if let Some(m) = l.strip_prefix("m=") {
            let mut f = m.split_whitespace();
            let kind = f.next().unwrap_or_default().to_ascii_lowercase();
            let codecs = f
                .skip(2)
                .filter_map(|pt| pt.parse().ok())
                .map(|pt| Codec {
                    pt,
                    name: String::new(),
                    clock_rate: 0,
                    channels: 0,
                    fmtp: String::new(),
                })
                .collect();
            out.push(Media {
                kind,
                codecs,
                ..Default::default()
            });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        if let Some(v) = l.strip_prefix("a=mid:") {
            m.mid = Some(v.trim().to_owned());
        } else if let Some(v) = l.strip_prefix("a=msid:") {
            let mut f = v.split_whitespace();
            if let Some(stream) = f.next() {
                let track = f.next().unwrap_or_default();
                m.msid = Some((stream.to_owned(), track.to_owned()));
            }
        } else if let Some(v) = l.strip_prefix("a=rtpmap:") {
            let Some((pt, enc)) = v.split_once(' ') else {
                continue;
            };
            let Ok(pt) = pt.parse::<u8>() else { continue };
            let mut parts = enc.trim().split('/');
            if let Some(c) = m.codecs.iter_mut().find(|c| c.pt == pt) {
                c.name = parts.next().unwrap_or_default().to_ascii_lowercase();
                c.clock_rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                c.channels = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            }
        } else if let Some(v) = l.strip_prefix("a=fmtp:") {
            let Some((pt, params)) = v.split_once(' ') else {
                continue;
            };
            let Ok(pt) = pt.parse::<u8>() else { continue };
            if let Some(c) = m.codecs.iter_mut().find(|c| c.pt == pt) {
                c.fmtp = params.trim().to_owned();
            }
        } else if let Some(v) = l.strip_prefix("a=extmap:") {
            let mut f = v.split_whitespace();
            let id = f.next().and_then(|i| i.split('/').next()?.parse().ok());
            if let (Some(id), Some(uri)) = (id, f.next()) {
                m.extmaps.push((id, uri.to_owned()));
            }
        } else if let Some(v) = l.strip_prefix("a=rid:") {
            let mut f = v.split_whitespace();
            if let (Some(id), Some("send")) = (f.next(), f.next()) {
                m.send_rids.push(id.to_owned());
            }
        }
    }
    // Payload types named on the m= line with no rtpmap are static or
    // bogus: not something the forwarder can map.
    for m in out.iter_mut() {
        m.codecs.retain(|c| !c.name.is_empty());
    }
    out
}

/// Renumbers an answer the way JSEP requires: each media section uses the
/// payload types and header-extension ids of the matching offer section,
/// lists each extension once, and none the offer did not have.
///
/// The library keeps one set of numbers per connection, fixed by the first
/// negotiation; a client whose later offer numbers things differently (a
/// new section with its own defaults, or another stack's renumbering) would
/// otherwise get an answer that contradicts its offer.
pub fn follow_offer(answer: &str, offer: &str) -> String {
    let offered = media_sections(offer);
    let answered = media_sections(answer);
    let mut out = String::with_capacity(answer.len());
    for (i, section) in split_sections(answer).into_iter().enumerate() {
        // Section 0 is the session part.
        let (Some(o), Some(a)) = (
            i.checked_sub(1).and_then(|k| offered.get(k)),
            i.checked_sub(1).and_then(|k| answered.get(k)),
        ) else {
            out.push_str(section);
            continue;
        };
        let pts = pt_map(a, o);
        let mut seen_ext: Vec<&str> = Vec::new();
        for line in section.split_inclusive('\n') {
            let body = line.trim_end_matches(['\r', '\n']);
            let eol = &line[body.len()..];
            if let Some(v) = body.strip_prefix("a=extmap:") {
                let mut f = v.splitn(2, ' ');
                let (_, rest) = (f.next(), f.next().unwrap_or_default());
                let uri = rest.split_whitespace().next().unwrap_or_default();
                match o.extmap_id(uri) {
                    Some(id) if !seen_ext.contains(&uri) => {
                        seen_ext.push(uri);
                        out.push_str(&format!("a=extmap:{id} {rest}{eol}"));
                    }
                    _ => {}
                }
                continue;
            }
            out.push_str(&renumber_line(body, &pts));
            out.push_str(eol);
        }
    }
    out
}

/// Gives every header extension in `ours` the id the client's latest SDP
/// (`theirs`) gives its URI, session-wide, and lists each once per
/// section.
///
/// With BUNDLE an id means one extension across all sections, and a
/// browser refuses to see an id re-assigned ("RTP extension ID
/// reassignment not supported"). The library numbers its offers from its
/// own table, so a server offer after the client's first offer would
/// contradict the client's numbering. URIs the client never used keep the
/// server's id unless the client uses that id for something else; then
/// they take the lowest free id.
pub fn align_extmaps(ours: &str, theirs: &str) -> String {
    let mut taken: Vec<(u8, String)> = Vec::new();
    for m in media_sections(theirs) {
        for (id, uri) in m.extmaps {
            if !taken.iter().any(|(i, u)| *i == id || *u == uri) {
                taken.push((id, uri));
            }
        }
    }
    let mut out = String::with_capacity(ours.len());
    for section in split_sections(ours) {
        let mut seen: Vec<String> = Vec::new();
        for line in section.split_inclusive('\n') {
            let body = line.trim_end_matches(['\r', '\n']);
            let eol = &line[body.len()..];
            let Some(v) = body.strip_prefix("a=extmap:") else {
                out.push_str(line);
                continue;
            };
            let Some((id_dir, rest)) = v.split_once(' ') else {
                out.push_str(line);
                continue;
            };
            let uri = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            if seen.contains(&uri) {
                continue;
            }
            seen.push(uri.clone());
            let (id, dir) = match id_dir.split_once('/') {
                Some((i, d)) => (i, Some(d)),
                None => (id_dir, None),
            };
            let ours_id: u8 = id.parse().unwrap_or(0);
            let id = match taken.iter().find(|(_, u)| *u == uri) {
                Some((i, _)) => *i,
                None => {
                    let free = |i: u8| i != 0 && !taken.iter().any(|(t, _)| *t == i);
                    let id = if free(ours_id) {
                        ours_id
                    } else {
                        (1..=14u8)
                            .chain(16..=255)
                            .find(|i| free(*i))
                            .unwrap_or(ours_id)
                    };
                    taken.push((id, uri.clone()));
                    id
                }
            };
            out.push_str("a=extmap:");
            out.push_str(&id.to_string());
            if let Some(d) = dir {
                out.push('/');
                out.push_str(d);
            }
            out.push(' ');
            out.push_str(rest);
            out.push_str(eol);
        }
    }
    out
}

/// Answer payload type to offer payload type, for one section.
fn pt_map(answer: &Media, offer: &Media) -> Vec<(u8, u8)> {
    let mut map: Vec<(u8, u8)> = Vec::new();
    for c in answer.codecs.iter().filter(|c| c.name != "rtx") {
        if let Some(o) = offer
            .codecs
            .iter()
            .find(|o| o.same_format(c) && o.fmtp == c.fmtp)
            .or_else(|| offer.codecs.iter().find(|o| o.same_format(c)))
        {
            map.push((c.pt, o.pt));
        }
    }
    // RTX follows the codec it repairs.
    for c in answer.codecs.iter().filter(|c| c.name == "rtx") {
        let Some(apt) = c.apt().and_then(|a| map.iter().find(|(x, _)| *x == a)) else {
            continue;
        };
        if let Some(o) = offer
            .codecs
            .iter()
            .find(|o| o.name == "rtx" && o.apt() == Some(apt.1))
        {
            map.push((c.pt, o.pt));
        }
    }
    map
}

fn renumber_line(line: &str, pts: &[(u8, u8)]) -> String {
    let to = |pt: &str| -> String {
        pt.parse::<u8>()
            .ok()
            .and_then(|p| pts.iter().find(|(a, _)| *a == p))
            .map_or_else(|| pt.to_owned(), |(_, o)| o.to_string())
    };
    if let Some(m) = line.strip_prefix("m=") {
        let f: Vec<&str> = m.split(' ').collect();
        if f.len() > 3 {
            let mut out = format!("m={} {} {}", f[0], f[1], f[2]);
            for pt in &f[3..] {
                out.push(' ');
                out.push_str(&to(pt));
            }
            return out;
        }
        return line.to_owned();
    }
    for prefix in ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"] {
        if let Some(v) = line.strip_prefix(prefix) {
            let (pt, rest) = v.split_once(' ').unwrap_or((v, ""));
            let mut rest = rest.to_owned();
            if prefix == "a=fmtp:" {
                if let Some(apt) = fmtp_param(&rest, "apt") {
                    rest = rest.replacen(&format!("apt={apt}"), &format!("apt={}", to(apt)), 1);
                }
            }
            let sep = if v.contains(' ') { " " } else { "" };
            return format!("{prefix}{}{sep}{rest}", to(pt));
        }
    }
    line.to_owned()
}

/// Drops RTCP-component (component 2) candidates from every media section
/// that multiplexes RTCP (`a=rtcp-mux`): with RTCP on the RTP port they name
/// a second path that never carries anything, and some agents (aiortc,
/// older Firefox) then try to gather for it.
pub fn drop_rtcp_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for section in split_sections(sdp) {
        let muxed = section.lines().any(|l| l.trim_end() == "a=rtcp-mux");
        for line in section.split_inclusive('\n') {
            if muxed && candidate_component(line) == Some("2") {
                continue;
            }
            out.push_str(line);
        }
    }
    out
}

/// The ICE username fragment a description carries (the first
/// `a=ice-ufrag`, session-level or in the first media section: with BUNDLE
/// every section shares one).
pub fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
}

/// The ICE password a description carries (the first `a=ice-pwd`, as for
/// [`ice_ufrag`]).
pub fn ice_pwd(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-pwd:"))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
}

/// The session part, then each media section, as slices of the text.
pub(crate) fn split_sections(sdp: &str) -> Vec<&str> {
    let mut starts = vec![0];
    let mut at = 0;
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("m=") && at != 0 {
            starts.push(at);
        }
        at += line.len();
    }
    starts.push(sdp.len());
    starts.windows(2).map(|w| &sdp[w[0]..w[1]]).collect()
}

/// The addresses of the UDP candidates a description carries (any
/// section), as `ip:port`.
pub fn candidate_addresses(sdp: &str) -> Vec<std::net::SocketAddr> {
    let mut out = Vec::new();
    for line in sdp.lines() {
        let Some(c) = line.trim_end().strip_prefix("a=candidate:") else {
            continue;
        };
        // foundation component transport priority address port typ ...
        let f: Vec<&str> = c.split_whitespace().collect();
        let (Some(proto), Some(ip), Some(port)) = (f.get(2), f.get(4), f.get(5)) else {
            continue;
        };
        if !proto.eq_ignore_ascii_case("udp") {
            continue;
        }
        if let (Ok(ip), Ok(port)) = (ip.parse::<std::net::IpAddr>(), port.parse::<u16>()) {
            let a = std::net::SocketAddr::new(ip, port);
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// The component id of an `a=candidate:` line.
fn candidate_component(line: &str) -> Option<&str> {
    line.strip_prefix("a=candidate:")?.split_whitespace().nth(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_addresses_are_the_udp_ones_once_each() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host\r\n\
            a=candidate:1 2 udp 2130706430 10.0.0.1 5000 typ host\r\n\
            a=candidate:2 1 tcp 1518280447 10.0.0.1 9 typ host tcptype active\r\n\
            a=candidate:3 1 UDP 1 [::1] 7 typ host\r\n\
            a=candidate:4 1 udp 1 not-an-ip 7 typ host\r\n\
            a=candidate:5 1 udp 1 fe80::1 7000 typ host\r\n";
        assert_eq!(
            candidate_addresses(sdp),
            vec![
                "10.0.0.1:5000".parse::<std::net::SocketAddr>().unwrap(),
                "[fe80::1]:7000".parse::<std::net::SocketAddr>().unwrap()
            ]
        );
    }

    #[test]
    fn ice_credentials_are_the_first_ones_and_never_empty() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:AbCd\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:AbCd\r\n";
        assert_eq!(ice_ufrag(sdp).as_deref(), Some("AbCd"));
        assert_eq!(ice_ufrag("v=0\r\na=ice-ufrag:\r\n"), None);
        assert_eq!(ice_ufrag("v=0\r\n"), None);
        let sdp = "v=0\r\na=ice-pwd:Secret0123456789Secret01\r\na=ice-pwd:other\r\n";
        assert_eq!(ice_pwd(sdp).as_deref(), Some("Secret0123456789Secret01"));
        assert_eq!(ice_pwd("v=0\r\na=ice-pwd:\r\n"), None);
    }

    const OFFER: &str = "v=0\r\ns=-\r\na=group:BUNDLE 0 1\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 109 0\r\na=mid:0\r\n\
        a=rtpmap:109 opus/48000/2\r\na=fmtp:109 minptime=10;useinbandfec=1\r\n\
        a=extmap:3 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 120 124 126\r\na=mid:1\r\n\
        a=rtpmap:120 VP8/90000\r\na=rtcp-fb:120 nack\r\na=rtcp-fb:120 nack pli\r\n\
        a=rtpmap:124 rtx/90000\r\na=fmtp:124 apt=120\r\n\
        a=rtpmap:126 H264/90000\r\na=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n\
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
        a=rid:l send\r\na=rid:h send\r\na=simulcast:send l;h\r\na=sendrecv\r\n";

    #[test]
    fn sections_give_codecs_extensions_and_rids() {
        let m = media_sections(OFFER);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mid.as_deref(), Some("0"));
        assert_eq!(m[0].kind, "audio");
        assert_eq!(
            m[0].codecs.len(),
            1,
            "PCMU has no rtpmap here: not mappable"
        );
        assert_eq!(m[0].codecs[0].name, "opus");
        assert_eq!(m[0].codecs[0].channels, 2);
        assert_eq!(
            m[1].codecs.iter().map(|c| c.pt).collect::<Vec<_>>(),
            [120, 124, 126]
        );
        assert_eq!(m[1].codecs[1].apt(), Some(120));
        assert_eq!(
            m[1].extmap_id("urn:ietf:params:rtp-hdrext:sdes:mid"),
            Some(4)
        );
        assert_eq!(m[1].send_rids, ["l", "h"]);
    }

    #[test]
    fn an_answer_takes_the_offers_numbers_and_drops_repeats() {
        // The library's answer: its own numbers, abs-send-time twice, and an
        // extension the offer did not have.
        let answer = "v=0\r\ns=-\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
            a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\na=mid:1\r\n\
            a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\n\
            a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
            a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
            a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
            a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
            a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n\
            a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=recvonly\r\n";
        let out = follow_offer(answer, OFFER);
        let m = media_sections(&out);
        assert_eq!(m[0].codecs[0].pt, 109);
        assert_eq!(
            m[0].extmaps,
            [(3, "urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_string())]
        );
        assert_eq!(
            m[1].codecs.iter().map(|c| c.pt).collect::<Vec<_>>(),
            [120, 124, 126]
        );
        assert_eq!(m[1].codecs[1].apt(), Some(120));
        assert_eq!(
            m[1].extmaps,
            [
                (
                    7,
                    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time".to_string()
                ),
                (4, "urn:ietf:params:rtp-hdrext:sdes:mid".to_string()),
            ]
        );
        assert!(out.contains("a=rtcp-fb:120 nack\r\n"), "{out}");
        assert!(
            out.contains("m=video 9 UDP/TLS/RTP/SAVPF 120 124 126\r\n"),
            "{out}"
        );
        // Lines that name no payload type or extension are untouched.
        assert!(out.contains("a=recvonly\r\n") && out.starts_with("v=0\r\ns=-\r\n"));
    }

    #[test]
    fn offers_take_the_clients_extension_ids_session_wide() {
        // The client (Chromium) numbered its first offer its own way.
        let theirs = "v=0\r\nm=audio 9 RTP/SAVPF 111\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            m=video 9 RTP/SAVPF 96\r\n\
            a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n";
        // The server's offer, from its own table, with a repeat.
        let ours = "v=0\r\nm=audio 9 RTP/SAVPF 111\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            a=extmap:4 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
            m=video 9 RTP/SAVPF 96\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
            a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n\
            a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
            a=extmap:4/sendonly urn:3gpp:video-orientation\r\n\
            a=sendrecv\r\n";
        let out = align_extmaps(ours, theirs);
        let m = media_sections(&out);
        assert_eq!(
            m[0].extmaps,
            [
                (4, "urn:ietf:params:rtp-hdrext:sdes:mid".into()),
                (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level".into())
            ]
        );
        assert_eq!(
            m[1].extmap_id("urn:ietf:params:rtp-hdrext:sdes:mid"),
            Some(4)
        );
        assert_eq!(
            m[1].extmap_id("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
            Some(2)
        );
        // Not used by the client: keeps its id where free, else the lowest free one.
        assert_eq!(
            m[1].extmap_id("http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"),
            Some(3)
        );
        assert_eq!(m[1].extmap_id("urn:3gpp:video-orientation"), Some(5));
        assert!(
            out.contains("a=extmap:5/sendonly urn:3gpp:video-orientation\r\n"),
            "{out}"
        );
        assert_eq!(m[1].extmaps.len(), 4, "abs-send-time once");
        assert!(out.ends_with("a=sendrecv\r\n"));
        // Nothing from the client yet: only repeats go.
        assert_eq!(
            media_sections(&align_extmaps(ours, ""))
                .iter()
                .map(|m| m.extmaps.len())
                .sum::<usize>(),
            6
        );
    }

    #[test]
    fn h264_variants_are_told_apart_by_profile_and_mode() {
        let a = |fmtp: &str| Codec {
            pt: 1,
            name: "h264".into(),
            clock_rate: 90_000,
            channels: 0,
            fmtp: fmtp.into(),
        };
        let base = a("profile-level-id=42e01f;packetization-mode=1");
        assert!(base.same_format(&a("packetization-mode=1;profile-level-id=42e034")));
        assert!(!base.same_format(&a("profile-level-id=42e01f;packetization-mode=0")));
        assert!(!base.same_format(&a("profile-level-id=640c1f;packetization-mode=1")));
    }

    #[test]
    fn component_two_goes_only_where_rtcp_is_muxed() {
        let sdp = "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtcp-mux\r\n\
                   a=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host\r\n\
                   a=candidate:1 2 udp 2130706431 127.0.0.1 7882 typ host\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
                   a=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host\r\n\
                   a=candidate:1 2 udp 2130706431 127.0.0.1 7883 typ host\r\n";
        let out = drop_rtcp_candidates(sdp);
        assert_eq!(
            out,
            "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtcp-mux\r\n\
             a=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
             a=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host\r\n\
             a=candidate:1 2 udp 2130706431 127.0.0.1 7883 typ host\r\n"
        );
    }

    #[test]
    fn text_without_candidates_is_unchanged() {
        let sdp = "v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtcp-mux\r\na=sendrecv\r\n";
        assert_eq!(drop_rtcp_candidates(sdp), sdp);
        assert_eq!(drop_rtcp_candidates(""), "");
    }
}
