//! `[media]`: the SFU media plane's configuration section.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// `[media]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Address the media UDP socket binds to.
    pub bind: IpAddr,
    /// The one UDP port every peer connection shares.
    pub udp_port: u16,
    /// Addresses advertised in ICE candidates (a public IP for a host behind
    /// 1:1 NAT). Empty: the bind address.
    pub advertise: Vec<IpAddr>,
    /// Worker shards. Zero: one per core.
    pub shards: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            udp_port: 7882,
            advertise: Vec::new(),
            shards: 0,
        }
    }
}
