//! Scenario tests of estimation, probing, pacing and allocation together,
//! on the simulated links of [`super::sim`], in fake time, seeded.
//!
//! Every scenario models the sender as the shard will run it: sources of
//! 30 frames a second (simulcast layers chosen by the allocator, or an
//! encoder following the estimate), the pacer, the prober, the estimator
//! fed by transport-cc feedback the receiver sends every 50 ms. Times
//! asserted are simulated time, never wall-clock time. Run with
//! `--nocapture` to see each scenario's figures.

use std::time::Duration;

use super::sim::LinkConfig;
use super::testbed::flow::FlowSpec;
use super::testbed::{Bed, MediaSpec, Sample};
use super::Bitrate;

mod acceptance;
mod rfc8867;

pub(super) const MS: Duration = Duration::from_millis(1);
pub(super) const S: Duration = Duration::from_secs(1);

pub(super) fn kbps(k: u64) -> Bitrate {
    Bitrate::kbps(k)
}

/// RFC 8867's default path: one-way delay 50 ms each way, a bottleneck
/// queue of 300 ms at its initial rate. Link 0 carries the media, link 1
/// the feedback.
pub(super) fn path(capacity_kbps: u64) -> Vec<LinkConfig> {
    vec![
        LinkConfig::bottleneck(kbps(capacity_kbps), 300 * MS, 50 * MS),
        LinkConfig::wire(50 * MS),
    ]
}

/// Two simulcast cameras (150/500/1500 kbit/s) and two audio tracks.
pub(super) fn two_cameras() -> MediaSpec {
    MediaSpec::Layered {
        cameras: vec![vec![150, 500, 1500], vec![150, 500, 1500]],
        audio: 2,
    }
}

/// One simulcast camera and one audio track.
pub(super) fn one_camera() -> MediaSpec {
    MediaSpec::Layered {
        cameras: vec![vec![150, 500, 1500]],
        audio: 1,
    }
}

/// An encoder following the estimate (what RFC 8867 assumes).
pub(super) fn elastic() -> MediaSpec {
    MediaSpec::Elastic {
        min_kbps: 50,
        max_kbps: 5000,
    }
}

/// One flow over `links` (media on link 0, feedback on link 1).
pub(super) fn single(media: MediaSpec, links: Vec<LinkConfig>) -> Bed {
    Bed::new(links, vec![FlowSpec::new(media, vec![0], vec![1])])
}

/// The first sample at or after `from` where `ok` holds.
pub(super) fn first_time(
    samples: &[Sample],
    from: Duration,
    ok: impl Fn(&Sample) -> bool,
) -> Option<Duration> {
    samples
        .iter()
        .filter(|s| s.t >= from)
        .find(|s| ok(s))
        .map(|s| s.t)
}

/// The last sample in `[from, to)` where `ok` fails, if any.
pub(super) fn last_failure(
    samples: &[Sample],
    from: Duration,
    to: Duration,
    ok: impl Fn(&Sample) -> bool,
) -> Option<Duration> {
    samples
        .iter()
        .filter(|s| s.t >= from && s.t < to && !ok(s))
        .map(|s| s.t)
        .last()
}
