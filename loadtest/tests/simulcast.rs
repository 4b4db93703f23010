//! Runs the `loadtest` binary with simulcast publishers against a server it
//! spawns, and checks from what the subscriber bots decode that each gets
//! the layer that fits the size it shows the video at.
//!
//! Needs the release server binary: `cargo build --release -p sfu` (test.sh
//! builds it before running the tests). `SFU_BIN` overrides its path.

use serde_json::Value;

mod common;
use common::run_allowing_failures;

fn run(name: &str, args: &[&str]) -> Value {
    let mut all = vec!["--room", name];
    all.extend_from_slice(args);
    let (v, all_in) = run_allowing_failures(&all);
    assert!(all_in, "loadtest failed: {v}");
    v
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
