//! What an SVC stream offers the allocator, from packets read the way the
//! shard reads them, and how the allocator's choice becomes the SVC
//! selector's target.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::RTCRtpReceiverId;

use super::*;
use crate::core::codec::vp9::tests::vp9_payload;
use crate::core::ids::PeerKey;
use crate::core::keyframe::KeyframeThrottle;
use crate::core::sdp;

const SSRC: u32 = 7;

/// A published VP9 track with its one stream open, no simulcast.
fn vp9_track() -> Published {
    let section = sdp::Media {
        kind: "video".into(),
        mid: Some("0".into()),
        codecs: vec![sdp::Codec {
            pt: 98,
            name: "vp9".into(),
            clock_rate: 90_000,
            channels: 0,
            fmtp: String::new(),
        }],
        ..Default::default()
    };
    let mut p = Published::new(
        PeerKey(1),
        RTCRtpReceiverId::default(),
        "pub".into(),
        "cam".into(),
        RtpCodecKind::Video,
        section,
    );
    p.add_stream(
        None,
        SSRC,
        KeyframeThrottle::new(Duration::from_millis(500)),
    );
    p
}

/// Sends `secs` seconds at 30 pictures a second through `read`: per
/// picture one packet per spatial layer below `layers`, of `sizes[s]`
/// payload bytes, a keyframe first. Returns the time after the last.
fn send(p: &mut Published, t0: Instant, secs: u32, layers: u8, seq: &mut u16) -> Instant {
    let sizes = [188usize, 588, 1188];
    let mut now = t0;
    for pic in 0..secs * 30 {
        now = t0 + Duration::from_millis(pic as u64 * 1000 / 30);
        let temporal = [0u8, 2, 1, 2][pic as usize % 4];
        for sid in 0..layers {
            let mut payload = vp9_payload(pic as u16, sid, temporal, true, true, pic > 0);
            payload.resize(sizes[sid as usize], 0);
            let pkt = Packet {
                header: Header {
                    ssrc: SSRC,
                    payload_type: 98,
                    sequence_number: *seq,
                    timestamp: pic * 3000,
                    marker: sid + 1 == layers,
                    ..Default::default()
                },
                payload: Bytes::from(payload),
            };
            *seq = seq.wrapping_add(1);
            assert!(p.read(&pkt, now).is_ok());
        }
    }
    now
}

#[test]
fn an_svc_stream_offers_each_spatial_layer_at_the_rate_forwarded_for_it() {
    let t0 = Instant::now();
    let mut p = vp9_track();
    let mut seq = 1;
    // The pictures tell the layers; within the first second nothing is
    // measured yet: the expected rates, as for simulcast.
    let now = send(&mut p, t0, 1, 3, &mut seq);
    assert!(p.svc());
    let rates = layer_rates(&p, now);
    let expected: Vec<u64> = rates.iter().map(|l| l.bitrate.as_bps()).collect();
    assert_eq!(expected, EXPECTED.to_vec());
    assert!(rates.iter().all(|l| l.available));
    // Two seconds in: measured, each layer with those below it (12 bytes
    // of RTP header each, 30 pictures a second), and with fewer temporal
    // layers on the lowest spatial layer (a quarter of the pictures are on
    // t0, half on t0 and t1).
    let now = send(&mut p, now + Duration::from_millis(33), 2, 3, &mut seq);
    let rates = layer_rates(&p, now);
    let layers: Vec<ALayer> = rates.iter().map(|l| l.layer).collect();
    let all = ALL_TEMPORAL;
    assert_eq!(
        layers,
        vec![
            ALayer::new(0, 0),
            ALayer::new(0, 1),
            ALayer::new(0, all),
            ALayer::new(1, all),
            ALayer::new(2, all),
        ]
    );
    let kbit: Vec<u64> = rates.iter().map(|l| l.bitrate.as_bps() / 1000).collect();
    let full = [200u64, 200 + 600, 200 + 600 + 1200].map(|b| b * 8 * 30 / 1000);
    let want = [full[0] / 4, full[0] / 2, full[0], full[1], full[2]];
    for (got, want) in kbit.iter().zip(want) {
        assert!(got.abs_diff(want) <= want / 10, "{kbit:?} against {want:?}");
    }
    assert!(rates.iter().all(|l| l.available));
    let tops = |r: &[LayerRate]| -> Vec<LayerRate> {
        r.iter()
            .filter(|l| l.layer.temporal == all)
            .copied()
            .collect()
    };
    // The encoder drops its top layer (its own uplink is short): once a
    // window has passed without it, the top layer is not offered.
    let now = send(&mut p, now + Duration::from_millis(33), 2, 2, &mut seq);
    let rates = tops(&layer_rates(&p, now));
    assert!(rates[0].available && rates[1].available);
    assert!(!rates[2].available, "{rates:?}");
    // Long silent (stopped): the expected rates again, none available
    // unless dynacast paused it.
    let later = now + Duration::from_secs(5);
    let rates = layer_rates(&p, later);
    assert_eq!(rates.len(), 3, "fewer temporal layers only once measured");
    assert_eq!(rates[2].bitrate.as_bps(), EXPECTED[2]);
    assert!(rates.iter().all(|l| !l.available));
    p.encodings_told = vec![false];
    assert!(layer_rates(&p, later).iter().all(|l| l.available));
}

#[test]
fn a_single_layer_stream_is_one_layer() {
    let t0 = Instant::now();
    let mut p = vp9_track();
    let mut seq = 1;
    let now = send(&mut p, t0, 2, 1, &mut seq);
    assert!(!p.svc());
    let rates = layer_rates(&p, now);
    assert_eq!(rates.len(), 1);
    assert_eq!(max_layer(&p, Layer::TOP), ALayer::new(0, ALL_TEMPORAL));
}

#[test]
fn the_allocated_spatial_layer_becomes_the_svc_target_within_the_cap() {
    let t0 = Instant::now();
    let mut p = vp9_track();
    let mut seq = 1;
    send(&mut p, t0, 1, 3, &mut seq);
    let tile_720 = Some(Layer::new(2, u8::MAX));
    let tile_360 = Some(Layer::new(1, u8::MAX));
    assert_eq!(max_layer(&p, Layer::TOP), ALayer::new(2, ALL_TEMPORAL));
    assert_eq!(max_layer(&p, Layer::new(1, 2)), ALayer::new(1, 2));
    let layer = |s| Target::Layer(ALayer::new(s, ALL_TEMPORAL));
    let fwd = |cap, t| forwarder_target(Some(&p), cap, t);
    // The allocator's layer, within the cap's.
    assert_eq!(fwd(tile_720, layer(1)), Some(Layer::new(1, u8::MAX)));
    assert_eq!(fwd(tile_720, layer(2)), Some(Layer::new(2, u8::MAX)));
    assert_eq!(
        fwd(tile_720, Target::Layer(ALayer::new(2, 1))),
        Some(Layer::new(2, 1))
    );
    assert_eq!(
        fwd(Some(Layer::new(2, 1)), layer(0)),
        Some(Layer::new(0, 1))
    );
    // Never above the cap.
    assert_eq!(fwd(tile_360, layer(2)), Some(Layer::new(1, u8::MAX)));
    assert_eq!(fwd(tile_720, Target::Paused(PauseReason::Bandwidth)), None);
    assert_eq!(fwd(None, layer(0)), None, "hidden");
}
