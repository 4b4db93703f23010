//! The server binary's HTTP surface under attack: statistics kept to an
//! internal address, and a TLS handshake that never comes is cut off.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `env` and returns it with the ports of the log
/// lines that start with each of `wanted` (e.g. "listening on http://").
fn start(env: &[(&str, &str)], wanted: &[&str]) -> (Server, Vec<u16>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sfu"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SFU_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SFU_SERVER__LISTEN", "127.0.0.1:0")
        .env("SFU_MEDIA__UDP_PORT", "0")
        .env("SFU_LOG__FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let mut ports = vec![None; wanted.len()];
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        for (i, w) in wanted.iter().enumerate() {
            if let Some(rest) = line.split(&format!("{w}127.0.0.1:")).nth(1) {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                ports[i] = port.parse().ok();
            }
        }
        if ports.iter().all(Option::is_some) {
            return (server, ports.into_iter().flatten().collect());
        }
    }
    panic!("server exited before listening");
}

fn get(port: u16, path: &str, auth: Option<&str>) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let a = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{a}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r
}

#[test]
fn statistics_can_be_kept_to_an_internal_address() {
    let (_s, ports) = start(
        &[("SFU_SERVER__STATS_LISTEN", "127.0.0.1:0")],
        &["listening on http://", "statistics on http://"],
    );
    let (public, internal) = (ports[0], ports[1]);
    assert!(get(public, "/metrics", None).starts_with("HTTP/1.1 404"));
    assert!(get(public, "/api/stats", None).starts_with("HTTP/1.1 404"));
    assert!(get(public, "/healthz", None).starts_with("HTTP/1.1 200"));
    let m = get(internal, "/metrics", None);
    assert!(
        m.starts_with("HTTP/1.1 200") && m.contains("sfu_packets_out_total"),
        "{m}"
    );
    assert!(get(internal, "/api/stats", None).starts_with("HTTP/1.1 200"));
}

#[test]
fn metrics_need_the_stats_token_when_one_is_set() {
    let token = "metrics-token-0123456789";
    let (_s, ports) = start(
        &[("SFU_AUTH__STATS_TOKEN", token)],
        &["listening on http://"],
    );
    assert!(get(ports[0], "/metrics", None).starts_with("HTTP/1.1 401"));
    assert!(get(ports[0], "/metrics", Some("nope-nope-nope-nope")).starts_with("HTTP/1.1 401"));
    assert!(get(ports[0], "/metrics", Some(token)).starts_with("HTTP/1.1 200"));
}

#[test]
fn short_api_secret_stops_the_server() {
    let out = Command::new(env!("CARGO_BIN_EXE_sfu"))
        .env("SFU_AUTH__KEYS__prod", "CHANGE-ME")
        .env("SFU_SERVER__LISTEN", "127.0.0.1:0")
        .env("SFU_MEDIA__UDP_PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auth.keys.prod") && err.contains("32"),
        "{err}"
    );
}

#[test]
fn tls_handshake_that_never_comes_is_cut_off() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("sfu-slowtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    let (_s, ports) = start(
        &[
            ("SFU_SERVER__TLS_CERT", c.to_str().unwrap()),
            ("SFU_SERVER__TLS_KEY", k.to_str().unwrap()),
            ("SFU_LIMITS__HEADER_READ_TIMEOUT", "300ms"),
        ],
        &["listening on https://"],
    );
    let mut s = TcpStream::connect(("127.0.0.1", ports[0])).unwrap();
    // Half a TLS record header, then nothing.
    s.write_all(&[0x16, 0x03]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 64];
    let closed = match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    assert!(closed, "the half-open TLS connection was kept");
}
