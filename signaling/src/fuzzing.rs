//! Entry points for the fuzz targets in `fuzz/` and for the tests that
//! replay their corpora and crash reproducers
//! (`signaling/tests/fuzz_corpus.rs`). Each takes untrusted bytes exactly as
//! they arrive from the network and must never panic; see docs/testing.md.

use crate::protocol::{parse_client_message, sdp_text, ClientMessage};

/// One WebSocket text frame from a client, through the parser and the
/// helpers the hub applies to what it accepted.
pub fn client_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(incoming) = parse_client_message(text) else {
        return;
    };
    // Whatever parsed is an object with a known type.
    assert!(incoming.raw.contains_key("type"));
    match &incoming.message {
        ClientMessage::Offer { sdp, .. } => {
            let _ = sdp_text(sdp, "offer");
        }
        ClientMessage::Answer { sdp, .. } => {
            let _ = sdp_text(sdp, "answer");
        }
        ClientMessage::IceCandidate { candidate, .. } => {
            let _ = serde_json::from_value::<crate::protocol::IceCandidate>(candidate.clone());
        }
        // What is stored and repeated to others stays within the limits.
        ClientMessage::Join { name: Some(n), .. } => {
            assert!(crate::protocol::check_name(n).is_ok());
        }
        ClientMessage::MediaState { tracks, .. } => {
            assert!(tracks.len() <= crate::protocol::MAX_TRACKS);
            assert!(tracks
                .iter()
                .all(|t| t.id.len() <= crate::protocol::MAX_ID_BYTES));
        }
        _ => {}
    }
}
