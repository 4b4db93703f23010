//! What a run is: its shape ([`Scenario`]), the server it targets, and the
//! state its bot and peer tasks share while it runs. Plain data that every
//! other part reads and none of them owns, so the parts depend on this
//! module and not on each other.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use signaling::protocol::RoomMode;
use tokio::sync::{watch, Notify};

use crate::shaper::LinkSpec;

/// The server the bots talk to.
#[derive(Debug, Clone)]
pub struct Target {
    /// HTTP address (loopback).
    pub http: SocketAddr,
    /// `name:secret` to sign tokens with; `None`: the development-mode endpoint.
    pub api_key: Option<(String, String)>,
    /// Bots join with `redirect: true` and follow a cluster's `redirect`.
    pub follow_redirects: bool,
    /// Further nodes of a cluster (HTTP, loopback): subscribers are spread
    /// over `http` and these; publishers join `http`.
    pub nodes: Vec<SocketAddr>,
}

/// State every bot and peer task shares with the run.
#[derive(Debug)]
pub struct Shared {
    /// Packets count toward the figures only while this is set.
    pub measuring: AtomicBool,
    pub joined: AtomicU64,
    pub failed: AtomicU64,
    pub packets_received: AtomicU64,
    /// Woken when a bot joins or fails.
    arrivals: Notify,
    stop: watch::Sender<bool>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            measuring: AtomicBool::new(false),
            joined: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            packets_received: AtomicU64::new(0),
            arrivals: Notify::new(),
            stop: watch::channel(false).0,
        }
    }
}

impl Shared {
    /// A bot joined its room.
    pub fn count_joined(&self) {
        self.joined.fetch_add(1, Ordering::Relaxed);
        self.arrivals.notify_waiters();
    }

    /// A bot gave up (its session ended in an error).
    pub fn count_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.arrivals.notify_waiters();
    }

    /// Waits until `total` bots have joined or failed, or `bound` passes.
    pub async fn all_arrived(&self, total: u64, bound: Duration) {
        let end = tokio::time::Instant::now() + bound;
        loop {
            // Made before the check, so a bot counted after it still wakes us.
            let arrival = self.arrivals.notified();
            let arrived = self.joined.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed);
            if arrived >= total || tokio::time::timeout_at(end, arrival).await.is_err() {
                return;
            }
        }
    }

    pub fn deadline_passed(&self) -> bool {
        *self.stop.borrow()
    }
    pub fn stop_rx(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

/// The size a receiving bot says it shows a remote video at (adaptive
/// stream), sent as `track-settings` for every video track it is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSize {
    pub width: u32,
    pub height: u32,
}

impl fmt::Display for ViewSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl FromStr for ViewSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a size like 640x360");
        let (w, h) = s.trim().split_once('x').ok_or_else(bad)?;
        let width: u32 = w.parse().map_err(|_| bad())?;
        let height: u32 = h.parse().map_err(|_| bad())?;
        if width == 0 || height == 0 || width > 7680 || height > 4320 {
            return Err(format!("`{s}`: sizes run from 1x1 to 7680x4320"));
        }
        Ok(ViewSize { width, height })
    }
}

/// The shape of a run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub rooms: usize,
    pub publishers: usize,
    pub subscribers: usize,
    pub audio_only: bool,
    /// 150, 500 or 1500 (kbps): picks the clip (without simulcast).
    pub video_bitrate: u32,
    /// Publishers send three simulcast encodings (rids q, h, f: 320x180,
    /// 640x360, 1280x720) instead of one.
    pub simulcast: bool,
    pub duration: Duration,
    /// Bots started per second.
    pub join_rate: f64,
    pub mode: RoomMode,
    /// Settling time between the last join and the measured window.
    pub warmup: Duration,
    /// Room names are `<prefix>-<n>`.
    pub room_prefix: String,
    /// Sizes receive-only bots ask for, taken in turn by the subscribers of
    /// each room (subscriber `i` takes entry `i % len`); empty: they send no
    /// `track-settings`.
    pub subscriber_sizes: Vec<ViewSize>,
    /// The size publishers ask for the others' video at; `None`: no
    /// `track-settings`.
    pub publisher_view: Option<ViewSize>,
    /// A downlink cap on subscribers (`--downlink-kbps`).
    pub downlink: Option<LinkSpec>,
    /// The share of each room's subscribers that is capped (the first ones).
    pub capped_share: f64,
    /// Every bot counts what it receives from the clear RTP headers
    /// instead of decrypting and decoding it (`--receive count`, see
    /// `peer::counting`).
    pub counting: bool,
}

impl Scenario {
    pub fn bots(&self) -> usize {
        self.rooms * (self.publishers + self.subscribers)
    }

    /// Tracks each bot should receive, summed: every receiver gets every
    /// other publisher's tracks in its room.
    pub fn tracks_expected(&self) -> u64 {
        let per_pub = if self.audio_only { 1 } else { 2 };
        let per_room = self.publishers * self.publishers.saturating_sub(1)
            + self.subscribers * self.publishers;
        (self.rooms * per_room * per_pub) as u64
    }

    /// Capped subscribers per room: the share, rounded to the nearest bot.
    pub fn capped_per_room(&self) -> usize {
        if self.downlink.is_none() {
            return 0;
        }
        ((self.subscribers as f64 * self.capped_share.clamp(0.0, 1.0)).round() as usize)
            .min(self.subscribers)
    }

    /// The view size subscriber `i` of a room asks for.
    pub fn subscriber_size(&self, i: usize) -> Option<ViewSize> {
        (!self.subscriber_sizes.is_empty())
            .then(|| self.subscriber_sizes[i % self.subscriber_sizes.len()])
    }

    /// The downlink cap of subscriber `i` of a room.
    pub fn subscriber_downlink(&self, i: usize) -> Option<LinkSpec> {
        self.downlink.filter(|_| i < self.capped_per_room())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn scenario() -> Scenario {
        Scenario {
            rooms: 2,
            publishers: 3,
            subscribers: 6,
            audio_only: false,
            video_bitrate: 500,
            simulcast: true,
            duration: Duration::from_secs(10),
            join_rate: 10.0,
            mode: RoomMode::Sfu,
            warmup: Duration::ZERO,
            room_prefix: "t".into(),
            subscriber_sizes: vec![],
            publisher_view: None,
            downlink: None,
            capped_share: 1.0,
            counting: false,
        }
    }

    #[test]
    fn sizes_parse_and_are_bounded() {
        assert_eq!(
            "320x180".parse::<ViewSize>(),
            Ok(ViewSize {
                width: 320,
                height: 180
            })
        );
        for bad in [
            "", "320", "x180", "320x", "0x180", "99999x1", "axb", "320*180",
        ] {
            assert!(bad.parse::<ViewSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_caps_are_dealt_to_subscribers() {
        let mut s = scenario();
        assert_eq!(s.subscriber_size(0), None);
        assert_eq!(s.capped_per_room(), 0);
        assert_eq!(s.subscriber_downlink(0), None);
        let small: ViewSize = "320x180".parse().unwrap();
        let large: ViewSize = "1280x720".parse().unwrap();
        s.subscriber_sizes = vec![small, small, large];
        let sizes: Vec<_> = (0..6).filter_map(|i| s.subscriber_size(i)).collect();
        assert_eq!(sizes, vec![small, small, large, small, small, large]);
        let cap = LinkSpec {
            rate_bps: 800_000,
            queue: Duration::from_millis(200),
        };
        s.downlink = Some(cap);
        assert_eq!(s.capped_per_room(), 6);
        s.capped_share = 0.33;
        assert_eq!(s.capped_per_room(), 2);
        assert_eq!(
            (0..6)
                .map(|i| s.subscriber_downlink(i).is_some())
                .collect::<Vec<_>>(),
            vec![true, true, false, false, false, false]
        );
        s.capped_share = 7.0;
        assert_eq!(s.capped_per_room(), 6);
        assert_eq!(s.tracks_expected(), 2 * (3 * 2 + 6 * 3) * 2);
    }
}
