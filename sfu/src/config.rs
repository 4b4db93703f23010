//! `[media]`: the SFU media plane's configuration section.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// `[media]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Address the media UDP socket binds to.
    pub bind: IpAddr,
    /// The one UDP port every peer connection shares. Zero: an ephemeral
    /// port, logged as `media UDP listening on ADDR:PORT`.
    pub udp_port: u16,
    /// Addresses advertised in ICE candidates (a public IP for a host behind
    /// 1:1 NAT). Empty: the bind address.
    pub advertise: Vec<IpAddr>,
    /// Worker shards. Zero: one per core.
    pub shards: usize,
    /// Codecs offered and accepted, by name, in order of preference:
    /// any of `opus`, `vp8`, `h264`, `vp9`, `av1`. Unknown names are
    /// ignored with a warning.
    pub codecs: Vec<String>,
    /// Minimum interval between two keyframe requests (PLI) sent to the
    /// publisher of one track, in milliseconds. Requests from subscribers
    /// inside the interval are merged into one sent when it ends.
    pub keyframe_min_interval_ms: u64,
    /// Packets kept per outgoing video stream to answer NACKs from
    /// subscribers (rounded up to a power of two).
    pub nack_cache_packets: u16,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            udp_port: 7882,
            advertise: Vec::new(),
            shards: 0,
            codecs: ["opus", "vp8", "h264", "vp9", "av1"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            keyframe_min_interval_ms: 500,
            nack_cache_packets: 1024,
        }
    }
}
