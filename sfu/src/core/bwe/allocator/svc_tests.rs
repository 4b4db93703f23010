//! The allocator with an SVC track: one stream whose spatial layers are
//! offered as layers, each at the rate of everything forwarded for it (the
//! layers below included), so a subscriber on a weak link gets a lower
//! spatial layer rather than all or nothing.

use super::tests::{camera, proved};
use super::*;

const MS: Duration = Duration::from_millis(1);

fn kbps(k: u64) -> Bitrate {
    Bitrate::kbps(k)
}

fn l(s: u8) -> Layer {
    Layer::new(s, 0)
}

/// A VP9 L3T3_KEY camera: spatial layers at 320x180, 640x360, 1280x720,
/// whose cumulative rates are 120, 420 and 1300 kbit/s; `seen[i]`: the
/// encoder sends layer i now.
fn svc(id: u64, seen: [bool; 3], max: Option<u8>) -> TrackInput {
    TrackInput {
        track: TrackNo(id),
        kind: TrackKind::Video {
            layers: [120, 420, 1300]
                .iter()
                .zip(seen)
                .enumerate()
                .map(|(s, (k, available))| LayerRate {
                    layer: l(s as u8),
                    bitrate: kbps(*k),
                    available,
                })
                .collect(),
        },
        screen_share: false,
        active_speaker: false,
        visible: true,
        paused_by_subscriber: false,
        max_layer: max.map(l),
    }
}

fn mic(id: u64) -> TrackInput {
    TrackInput {
        track: TrackNo(id),
        kind: TrackKind::Audio { bitrate: kbps(50) },
        screen_share: false,
        active_speaker: false,
        visible: true,
        paused_by_subscriber: false,
        max_layer: None,
    }
}

#[test]
fn a_weak_link_gets_the_spatial_layer_that_fits_rather_than_nothing() {
    let a = Allocator::new(AllocatorConfig::default());
    let full = [true; 3];
    let at =
        |tracks: &[TrackInput], k| a.provisional(tracks, kbps(k), Instant::now()).tracks[1].target;
    let tracks = [mic(1), svc(2, full, Some(2))];
    assert_eq!(at(&tracks, 2000), Target::Layer(l(2)));
    assert_eq!(at(&tracks, 500), Target::Layer(l(1)), "420 + 50 fit in 500");
    assert_eq!(at(&tracks, 400), Target::Layer(l(0)));
    assert_eq!(
        at(&tracks, 150),
        Target::Paused(PauseReason::Bandwidth),
        "not even the base layer with the audio"
    );
    // The tile's cap holds it below the top whatever the estimate.
    let small = [mic(1), svc(2, full, Some(0))];
    assert_eq!(at(&small, 5000), Target::Layer(l(0)));
    // A layer the encoder stopped sending is not chosen.
    let short = [mic(1), svc(2, [true, true, false], Some(2))];
    assert_eq!(at(&short, 5000), Target::Layer(l(1)));
}

#[test]
fn an_svc_stream_shares_the_estimate_with_simulcast_cameras_layer_by_layer() {
    let a = Allocator::new(AllocatorConfig::default());
    let tracks = [mic(1), svc(2, [true; 3], None), camera(3)];
    // 50 + 120 + 150 for the lowest layers, then round-robin steps: the
    // SVC stream to 420 (+300) fits in 900, the camera's +350 does not.
    let p = a.provisional(&tracks, kbps(900), Instant::now());
    let t: Vec<_> = p.tracks.iter().map(|t| t.target).collect();
    assert_eq!(
        t,
        vec![Target::Audio, Target::Layer(l(1)), Target::Layer(l(0))]
    );
    assert_eq!(p.total, kbps(620));
}

#[test]
fn down_a_spatial_layer_at_once_under_congestion_paused_and_resumed_with_events() {
    let t0 = Instant::now();
    let mut a = Allocator::new(AllocatorConfig::default());
    let tracks = [mic(1), svc(2, [true; 3], Some(2))];
    let out = a.allocate(&tracks, kbps(2000), Signal::default(), t0);
    assert_eq!(out.tracks[1].target, Target::Layer(l(2)));
    // A cap at 500: standing congestion, down to the layer that fits in
    // the same call, never the whole stream at once.
    let congested = Signal {
        congested: true,
        standing: true,
        ..Default::default()
    };
    let out = a.allocate(&tracks, kbps(500), congested, t0 + 100 * MS);
    assert_eq!(out.tracks[1].target, Target::Layer(l(1)));
    assert_eq!(
        out.events,
        vec![AllocationEvent::LayerChanged {
            track: TrackNo(2),
            from: l(2),
            to: l(1)
        }]
    );
    // Far below even the base layer for longer than `pause_hold`: down to
    // the base layer at once, paused (and said so) only after the hold.
    let mut t = t0 + 100 * MS;
    let mut paused_after = None;
    for _ in 0..40 {
        t += 100 * MS;
        let out = a.allocate(&tracks, kbps(100), congested, t);
        if out.tracks[1].target == Target::Paused(PauseReason::Bandwidth) {
            assert_eq!(
                out.events,
                vec![AllocationEvent::Paused {
                    track: TrackNo(2),
                    reason: PauseReason::Bandwidth
                }]
            );
            paused_after = Some(t);
            break;
        }
        assert_eq!(out.tracks[1].target, Target::Layer(l(0)));
    }
    let paused_at = paused_after.expect("paused once the shortfall held");
    assert!(paused_at - t0 >= AllocatorConfig::default().pause_hold);
    // A probe proves room for the base layer again: resumed on it.
    let out = a.allocate(&tracks, kbps(300), proved(300), paused_at + 100 * MS);
    assert_eq!(out.tracks[1].target, Target::Layer(l(0)));
    assert_eq!(
        out.events,
        vec![AllocationEvent::Resumed {
            track: TrackNo(2),
            layer: l(0)
        }]
    );
}
