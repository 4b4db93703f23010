//! Runs the `loadtest` binary across two nodes of a cluster (a real
//! `redis-server`, two release servers on loopback): publishers on the
//! first node, subscribers spread over both, so the room spans the nodes
//! and its tracks cross a node-to-node relay. Checks that every track
//! arrives and that the report shows each node's figures and the relay
//! traffic.
//!
//! Needs `redis-server` and the release server binary (test.sh provides
//! both); `SFU_BIN` overrides the binary's path.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const KEY: &str = "cluster-test-api-secret-0123456789abcdef";

/// A child process killed when dropped, with a directory removed after it.
struct Proc(Child, Option<PathBuf>);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(d) = &self.1 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}

/// Waits (a generous minute at most) until something accepts on `port`.
fn wait_listening(port: u16, what: &str, p: &mut Proc) {
    let end = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(st)) = p.0.try_wait() {
            panic!("{what} exited before listening: {st}");
        }
        assert!(Instant::now() < end, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn redis() -> (Proc, u16) {
    let port = free_tcp_port();
    let dir = std::env::temp_dir().join(format!("loadtest-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs (apt-get install redis-server)");
    let mut p = Proc(child, Some(dir));
    wait_listening(port, "redis-server", &mut p);
    (p, port)
}

fn node(id: &str, redis_port: u16) -> (Proc, u16) {
    let bin = match std::env::var_os("SFU_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/sfu"),
    };
    assert!(
        bin.is_file(),
        "the server binary {} is missing: run `cargo build --release -p sfu` first (test.sh does), or set SFU_BIN",
        bin.display()
    );
    let http = free_tcp_port();
    let mut cmd = Command::new(&bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SFU_") {
            cmd.env_remove(&k);
        }
    }
    let child = cmd
        .env("SFU_SERVER__LISTEN", format!("127.0.0.1:{http}"))
        .env("SFU_MEDIA__UDP_PORT", free_udp_port().to_string())
        .env(
            "SFU_CLUSTER__REDIS",
            format!("redis://127.0.0.1:{redis_port}/"),
        )
        .env("SFU_CLUSTER__NODE_ID", id)
        .env(
            "SFU_CLUSTER__SECRET",
            "cluster-test-secret-0123456789abcdef",
        )
        .env("SFU_CLUSTER__HEARTBEAT", "250ms")
        .env("SFU_CLUSTER__NODE_TTL", "2s")
        .env("SFU_AUTH__KEYS__lt", KEY)
        .env("SFU_LOG__LEVEL", "warn")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut p = Proc(child, None);
    wait_listening(http, id, &mut p);
    (p, http)
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn a_room_across_two_nodes_reports_each_node_and_the_relay() {
    let (_redis, rport) = redis();
    let (_n1, h1) = node("lt-n1", rport);
    let (_n2, h2) = node("lt-n2", rport);
    let json = std::env::temp_dir().join(format!("loadtest-cluster-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["run", "--quiet", "--api-key", &format!("lt:{KEY}")])
        .args(["--url", &format!("http://127.0.0.1:{h1}")])
        .args(["--node", &format!("http://127.0.0.1:{h2}")])
        .args(["--publishers", "1", "--subscribers", "2"])
        .args(["--duration", "6s", "--warmup", "3s", "--room", "span"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run loadtest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadtest failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);

    // The publisher on n1 reaches the subscriber on n1 and the one on n2.
    assert_eq!(f(&r, "failed_bots"), 0.0, "{r}");
    assert_eq!(f(&r, "tracks_expected"), 4.0, "{r}");
    assert_eq!(f(&r, "tracks_received"), 4.0, "{r}");
    assert!(f(&r, "delivery_ratio") >= 0.99, "{r}");

    let nodes = r["nodes"].as_array().expect("one entry per node");
    assert_eq!(nodes.len(), 2, "{r}");
    let (n1, n2) = (&nodes[0], &nodes[1]);
    assert_eq!(n1["node"], format!("127.0.0.1:{h1}"));
    assert_eq!(n2["node"], format!("127.0.0.1:{h2}"));
    // Publisher and first subscriber on n1, the second subscriber on n2.
    assert_eq!(f(n1, "participants"), 2.0, "{r}");
    assert_eq!(f(n2, "participants"), 1.0, "{r}");
    // The publisher's two tracks cross to n2 once: about 50 audio and
    // 50-odd video packets a second, sent by n1 and received by n2.
    let out1 = f(n1, "relay_packets_out_per_s");
    let in2 = f(n2, "relay_packets_in_per_s");
    assert!(out1 > 50.0, "n1 relays to n2: {r}");
    assert!(
        in2 > 0.8 * out1 && in2 < 1.2 * out1,
        "n2 receives what n1 relays: {r}"
    );
    assert!(
        f(n1, "relay_kbps_out") > 100.0,
        "the video crosses too: {r}"
    );
    assert_eq!(
        f(n2, "relay_packets_out_per_s"),
        0.0,
        "n2 publishes nothing: {r}"
    );
    // n2 forwards the relayed tracks to its subscriber.
    assert!(f(n2, "forwarded_packets_per_s") > 0.8 * in2, "{r}");
    assert!(f(n1, "cpu_us_per_forwarded_packet") > 0.0, "{r}");
    assert!(
        stdout.contains("cluster "),
        "the text report sums the nodes:\n{stdout}"
    );
}
