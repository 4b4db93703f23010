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
    /// Also take ICE over TCP on the media port (the same port number as
    /// UDP), for clients whose networks drop UDP; advertised as passive
    /// TCP candidates.
    pub tcp: bool,
    /// Worker shards. Zero: one per core.
    pub shards: usize,
    /// With more than one shard, each client's datagrams reach the shard
    /// that owns its connection on a socket of its own (same port,
    /// `connect()`ed to the client once ICE has bound its address),
    /// instead of through shard 0.
    pub connected_sockets: bool,
    /// Forwarded RTP is encrypted by the shard itself, straight into the
    /// datagram that leaves, with the connection's SRTP keys (AES-128-GCM
    /// and AES-CM-128 with HMAC-SHA1-80 connections; others stay on the
    /// library's write path). Off: every packet goes through the library's
    /// write path.
    pub own_srtp: bool,
    /// Publishers' RTP of the streams the shard forwards is decrypted by
    /// the shard itself with the connection's remote SRTP keys and handed
    /// to the connection's receive interceptors directly (same two
    /// profiles). Off: every packet goes through the library's receive
    /// pipeline.
    pub own_srtp_in: bool,
    /// On connections whose RTP the shard decrypts, their RTCP
    /// (subscribers' feedback, publishers' sender reports) is decrypted by
    /// the shard too, with the connection's RTCP session keys, and handed
    /// to the same interceptors and feedback handling. Off: RTCP goes
    /// through the library's receive pipeline.
    pub own_srtcp_in: bool,
    /// RTP that waited longer than this in the kernel's receive queue (a
    /// shard behind, past the server's capacity) is dropped unread, so
    /// what is forwarded stays fresh; milliseconds, 0: never. See
    /// `sfu::core::input_lag`.
    pub max_input_lag_ms: u64,
    /// New SFU participants are refused (`server_busy`) while a shard
    /// reads late for seconds on end (see `sfu::core::input_lag::Backlog`).
    pub refuse_joins_when_behind: bool,
    /// Send and receive buffer asked of the kernel for the media socket,
    /// KiB (capped by `net.core.wmem_max` and `rmem_max`; see
    /// `sfu::sockbuf`). Zero: the kernel's default.
    pub socket_buffer_kb: usize,
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
    /// `[media.bwe]`: bandwidth estimation and allocation per subscriber.
    pub bwe: BweConfig,
}

/// `[media.bwe]` section: how the server measures each subscriber's
/// downlink and shares it between the tracks it receives. See
/// `docs/architecture.md` ("Bandwidth estimation, probing, pacing,
/// allocation") for what each part does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BweConfig {
    /// Estimate each subscriber's downlink from its transport-cc feedback
    /// and allocate it across its tracks. Off: every subscriber gets the
    /// layers its track settings ask for, whatever its link.
    pub enabled: bool,
    /// Send probe padding to find headroom before moving a subscriber up.
    pub probing: bool,
    /// Estimate before any feedback, kbit/s.
    pub initial_kbps: u64,
    /// Bounds of the estimate, kbit/s.
    pub min_kbps: u64,
    pub max_kbps: u64,
    /// Share of a subscriber's estimate retransmissions may use, percent.
    pub retransmit_percent: u8,
    /// While a subscriber is congested, its keyframe requests reach the
    /// publisher at most this often, milliseconds.
    pub congested_keyframe_interval_ms: u64,
    /// A move up needs the estimate to allow it this long (or a probe), ms.
    pub up_hold_ms: u64,
    /// A move up must fit in this percentage of the estimate.
    pub up_headroom_percent: u8,
    /// A layer left for lack of bandwidth is blocked this long at first, ms
    /// (doubling, up to 120 s, when the same track is pushed down again).
    pub block_initial_ms: u64,
    /// Media to an estimating subscriber leaves through a pacer.
    pub pacing: bool,
    /// The pacer's rate, percent of the estimate.
    pub pacing_percent: u16,
}

impl Default for BweConfig {
    fn default() -> Self {
        BweConfig {
            enabled: true,
            probing: true,
            initial_kbps: 300,
            min_kbps: 30,
            max_kbps: 20_000,
            retransmit_percent: 20,
            congested_keyframe_interval_ms: 2000,
            up_hold_ms: 3000,
            up_headroom_percent: 90,
            block_initial_ms: 8000,
            pacing: true,
            pacing_percent: 250,
        }
    }
}

impl BweConfig {
    /// The shard's settings from this section.
    pub fn settings(&self) -> crate::shard::bwe::BweSettings {
        use crate::core::bwe::Bitrate;
        use std::time::Duration;
        let mut s = crate::shard::bwe::BweSettings {
            enabled: self.enabled,
            probing: self.probing,
            retransmit_share: f64::from(self.retransmit_percent.min(100)) / 100.0,
            congested_keyframe_interval: Duration::from_millis(self.congested_keyframe_interval_ms),
            ..Default::default()
        };
        let e = &mut s.leg.estimator;
        e.min = Bitrate::kbps(self.min_kbps.max(10));
        e.max = Bitrate::kbps(self.max_kbps.max(self.min_kbps.max(10)));
        e.initial = Bitrate::kbps(self.initial_kbps).clamp(e.min, e.max);
        s.alloc.up_hold = Duration::from_millis(self.up_hold_ms);
        s.alloc.up_headroom = f64::from(self.up_headroom_percent.clamp(50, 100)) / 100.0;
        s.alloc.block_initial = Duration::from_millis(self.block_initial_ms);
        s.pacing = self.pacing;
        s.pacer.rate_multiplier = f64::from(self.pacing_percent.clamp(100, 1000)) / 100.0;
        s
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            udp_port: 7882,
            advertise: Vec::new(),
            tcp: true,
            shards: 0,
            connected_sockets: true,
            own_srtp: true,
            own_srtp_in: true,
            own_srtcp_in: true,
            max_input_lag_ms: 300,
            refuse_joins_when_behind: true,
            socket_buffer_kb: 4096,
            codecs: ["opus", "vp8", "h264", "vp9", "av1"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            keyframe_min_interval_ms: 500,
            nack_cache_packets: 1024,
            bwe: BweConfig::default(),
        }
    }
}
