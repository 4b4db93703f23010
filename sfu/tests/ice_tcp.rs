//! ICE over TCP on the media port: frames (RFC 4571) take the same path as
//! UDP datagrams, so what is refused over UDP is refused over TCP and
//! counted the same way; a malformed frame ends the connection at once.
//! (That a browser whose UDP is dropped gets media this way is tested in
//! `web/tests/browser/udp-blocked.test.mjs`.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sfu::{MediaConfig, SfuPlane};
use signaling::media::MediaPlane;

fn plane() -> std::sync::Arc<SfuPlane> {
    let cfg = MediaConfig {
        udp_port: 0,
        shards: 1,
        tcp: true,
        ..MediaConfig::default()
    };
    SfuPlane::start(&cfg).expect("media plane starts").0
}

fn dropped(plane: &SfuPlane, why: &str) -> u64 {
    plane
        .stats()
        .dropped
        .iter()
        .find(|(k, _)| k == why)
        .map_or(0, |(_, v)| *v)
}

/// Waits (a generous 30 s at most) until `cond` holds.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn frame(data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

#[test]
fn frames_are_taken_like_datagrams_and_a_bad_frame_ends_the_connection() {
    let plane = plane();
    let port = plane.local_addr().port();
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("the media port takes TCP");
    // A binding request for a ufrag nobody has, and an RTP-looking packet
    // from an address no connection owns: refused as over UDP.
    let stun = sfu::fuzzing::binding_request("nobody:x", b"pwd");
    c.write_all(&frame(&stun)).unwrap();
    let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
    rtp.extend([0u8; 100]);
    c.write_all(&frame(&rtp)).unwrap();
    assert!(
        eventually(|| dropped(&plane, "unknown_source") >= 2),
        "both frames reached the receive path and were refused: {:?}",
        plane.stats().dropped
    );

    // A zero-length frame is no frame: the server closes the connection.
    c.write_all(&[0, 0]).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 16];
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the connection is closed");
}
