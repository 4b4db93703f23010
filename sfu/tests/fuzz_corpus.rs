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
fn datagram_inputs_do_not_panic() {
    assert!(
        replay("datagram", sfu::fuzzing::datagram) > 0,
        "no committed inputs for datagram"
    );
}

#[test]
fn rtp_rtcp_inputs_do_not_panic() {
    assert!(
        replay("rtp_rtcp", sfu::fuzzing::rtp_rtcp) > 0,
        "no committed inputs for rtp_rtcp"
    );
}

#[test]
fn client_sdp_inputs_do_not_panic() {
    assert!(
        replay("client_sdp", sfu::fuzzing::client_sdp) > 0,
        "no committed inputs for client_sdp"
    );
}

#[test]
fn sdp_inputs_do_not_panic() {
    assert!(
        replay("sdp", sfu::fuzzing::sdp) > 0,
        "no committed inputs for sdp"
    );
}

#[test]
fn shard_datagram_inputs_do_not_panic() {
    assert!(
        replay("shard_datagram", sfu::fuzzing::shard_datagram) > 0,
        "no committed inputs for shard_datagram"
    );
}

#[test]
fn codec_inputs_do_not_panic() {
    assert!(
        replay("codec", sfu::fuzzing::codec) > 0,
        "no committed inputs for codec"
    );
}

#[test]
fn forwarder_inputs_do_not_panic() {
    assert!(
        replay("forwarder", sfu::fuzzing::forwarder) > 0,
        "no committed inputs for forwarder"
    );
}

#[test]
fn sdp_helpers_inputs_do_not_panic() {
    assert!(
        replay("sdp_helpers", sfu::fuzzing::sdp_helpers) > 0,
        "no committed inputs for sdp_helpers"
    );
}

#[test]
fn twcc_inputs_do_not_panic() {
    assert!(
        replay("twcc", sfu::fuzzing::twcc) > 0,
        "no committed inputs for twcc"
    );
}
