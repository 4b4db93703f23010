//! Replays the fuzz targets' committed seed corpora and every crash
//! reproducer (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`)
//! through the same entry points the fuzzers drive, so a fixed crash stays
//! fixed in `cargo test`. See docs/testing.md.

use std::path::PathBuf;

/// Runs every committed input of a target; returns how many ran.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).expect("readable corpus file");
            eprintln!("{}", f.display());
            run(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn server_message_inputs_do_not_panic() {
    assert!(
        replay("server_message", loadtest::fuzzing::server_message) > 0,
        "no committed inputs for server_message"
    );
}
