//! What the tests that run the `loadtest` binary share.
//!
//! They need the release server binary: `cargo build --release -p sfu`
//! (test.sh builds it before running the tests). `SFU_BIN` overrides its
//! path.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The release server binary.
pub fn server_bin() -> PathBuf {
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

/// Runs `loadtest run --spawn-server --quiet` with `args`; a run in which
/// bots fail is an answer here, not an error: the JSON report and whether
/// every bot got in.
pub fn run_allowing_failures(args: &[&str]) -> (Value, bool) {
    let json = std::env::temp_dir().join(format!(
        "loadtest-it-{}-{}.json",
        std::process::id(),
        args.join("").replace(['-', ' ', '/', ':', '='], "")
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .arg("run")
        .arg("--spawn-server")
        .arg("--server-bin")
        .arg(server_bin())
        .arg("--quiet")
        .arg("--json")
        .arg(&json)
        .args(args)
        .output()
        .expect("run loadtest");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let _ = std::fs::remove_file(&json);
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    (
        serde_json::from_str(&text).expect("valid JSON"),
        out.status.success(),
    )
}
