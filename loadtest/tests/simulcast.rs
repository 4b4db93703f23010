//! Runs the `loadtest` binary with simulcast publishers against a server it
//! spawns, and checks from what the subscriber bots decode that each gets
//! the layer that fits the size it shows the video at.
//!
//! Needs the release server binary: `cargo build --release -p sfu` (test.sh
//! builds it before running the tests). `SFU_BIN` overrides its path.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SFU_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/sfu");
    assert!(
        p.is_file(),
        "the server binary {} is missing: run `cargo build --release -p sfu` first (test.sh does), or set SFU_BIN",
        p.display()
    );
    p
}

fn run(name: &str, args: &[&str]) -> Value {
    let json = std::env::temp_dir().join(format!(
        "loadtest-simulcast-{}-{name}.json",
        std::process::id()
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .arg("run")
        .arg("--spawn-server")
        .arg("--server-bin")
        .arg(server_bin())
        .arg("--quiet")
        .arg("--json")
        .arg(&json)
        .arg("--room")
        .arg(name)
        .args(args)
        .output()
        .expect("run loadtest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadtest failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let text = std::fs::read_to_string(&json).expect("the JSON report");
    let _ = std::fs::remove_file(&json);
    eprintln!("{stdout}");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The per-bot entry of `name`.
fn bot<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["per_bot"]
        .as_array()
        .and_then(|a| a.iter().find(|b| b["name"] == name))
        .unwrap_or_else(|| panic!("no bot {name} in {r}"))
}

#[test]
fn subscribers_get_the_layer_that_fits_the_size_they_show() {
    // One simulcast publisher; sub1 shows it at 320x180, sub2 at 1280x720.
    let r = run(
        "itsimulcast",
        &[
            "--simulcast",
            "--publishers",
            "1",
            "--subscribers",
            "2",
            "--subscriber-size",
            "320x180,1280x720",
            "--duration",
            "6s",
            // The large view starts low and climbs by probing (about 2 to
            // 4 s, longer on a busy machine); the window measures where it
            // settled.
            "--warmup",
            "8s",
        ],
    );
    assert_eq!(r["failed_bots"], 0, "{r}");
    assert_eq!(r["simulcast"], true);
    // Every subscriber receives the publisher's audio and video.
    assert_eq!(r["tracks_received"], r["tracks_expected"], "{r}");
    assert!(r["delivery_ratio"].as_f64().unwrap() >= 0.99, "{r}");
    // The publisher sent the low and the high encodings.
    for rid in ["q", "f"] {
        let sent = r["sent_packets_by_encoding"][rid].as_u64().unwrap_or(0);
        assert!(sent > 50, "encoding {rid}: {sent} packets sent: {r}");
    }
    // Each subscriber decoded the layer of its size, told from the frame
    // size in the keyframes it received, for the whole window.
    for (name, size) in [("sub1", "320x180"), ("sub2", "1280x720")] {
        let b = bot(&r, name);
        assert_eq!(b["view"], size, "{b}");
        let video = b["video"].as_array().expect("video tracks");
        assert_eq!(video.len(), 1, "{b}");
        assert_eq!(video[0]["layer"], size, "{name}: {b}");
        assert_eq!(video[0]["last_layer"], size, "{name}: {b}");
        assert_eq!(video[0]["switches"], 0, "{name}: {b}");
    }
    assert_eq!(r["received_layers_by_view"]["320x180"]["320x180"], 1);
    assert_eq!(r["received_layers_by_view"]["1280x720"]["1280x720"], 1);
    // The small view costs a fraction of the large one.
    let kbps = |name: &str| bot(&r, name)["received_kbps"].as_f64().unwrap();
    assert!(
        kbps("sub1") * 3.0 < kbps("sub2"),
        "{} vs {} kbit/s",
        kbps("sub1"),
        kbps("sub2")
    );
    assert_eq!(r["freezes"], 0, "{r}");
}
