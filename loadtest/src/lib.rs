//! The parts of `loadtest` that read what the server sends, as a library so
//! the fuzz targets in `fuzz/` can reach them.

pub mod api_stats;
pub mod http;
pub mod server_msg;

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets and the tests that replay their
    //! corpora (`loadtest/tests/fuzz_corpus.rs`); see docs/testing.md.

    /// One frame or response from the server: the WebSocket message parser,
    /// the offer's track list, the HTTP response reader, and the metrics and
    /// statistics readers.
    pub fn server_message(data: &[u8]) {
        let _ = crate::http::parse_response(data);
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let _ = crate::server_msg::parse(text);
        let _ = crate::server_msg::offered_video_tracks(text);
        let _ = crate::api_stats::subscribers(text);
        let _ = crate::http::metric(text, "sfu_packets_out_total");
        let _ = crate::http::metric_by_label(text, "sfu_packets_dropped_total", "reason");
    }
}
