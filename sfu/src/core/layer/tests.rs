//! Table-driven tests of the selectors: a sequence of packets (stream,
//! layer, keyframe, ...) and the verdict each one must get.

use super::*;
use crate::core::codec::FrameInfo;

/// One row: the packet, then the verdict expected.
struct Row {
    stream: u8,
    spatial: u8,
    temporal: u8,
    start: bool,
    key: bool,
    sync: bool,
    end: bool,
    retx: bool,
    want: Verdict,
}

#[allow(clippy::too_many_arguments)]
fn row(
    stream: u8,
    spatial: u8,
    temporal: u8,
    start: bool,
    key: bool,
    sync: bool,
    end: bool,
    want: Verdict,
) -> Row {
    Row {
        stream,
        spatial,
        temporal,
        start,
        key,
        sync,
        end,
        retx: false,
        want,
    }
}

const FWD: Verdict = Verdict::Forward {
    switched: false,
    marker: false,
};
const SWITCH: Verdict = Verdict::Forward {
    switched: true,
    marker: false,
};
const END: Verdict = Verdict::Forward {
    switched: false,
    marker: true,
};

fn run(sel: &mut Selector, rows: &[Row]) {
    for (i, r) in rows.iter().enumerate() {
        let info = FrameInfo {
            picture_start: r.start,
            keyframe: r.key,
            spatial: r.spatial,
            temporal: r.temporal,
            switch_up_to: if r.sync { r.temporal } else { 0 },
            layer_end: r.end,
            ..Default::default()
        };
        let got = sel.on_packet(&LayerPacket {
            stream: r.stream,
            info: &info,
            marker: false,
            retransmission: r.retx,
        });
        assert_eq!(got, r.want, "row {i}");
    }
}

#[test]
fn simulcast_switches_only_at_a_keyframe_of_the_target_stream() {
    let mut s = Selector::Simulcast(Simulcast::new(Some(Layer::new(0, 2))));
    use Verdict::*;
    run(
        &mut s,
        &[
            // Nothing forwarded before a keyframe of the target stream.
            row(0, 0, 0, true, false, false, false, WaitingKeyframe(0)),
            row(1, 0, 0, true, true, false, false, OtherStream),
            row(0, 0, 0, true, true, false, false, SWITCH),
            row(0, 0, 0, false, false, false, false, FWD),
            row(1, 0, 0, true, false, false, false, OtherStream),
        ],
    );
    // Up to stream 1: stream 0 goes on until stream 1's keyframe.
    assert_eq!(s.set_target(Some(Layer::new(1, 2))), Some(1));
    run(
        &mut s,
        &[
            row(0, 0, 0, true, false, false, false, FWD),
            row(1, 0, 0, true, false, false, false, WaitingKeyframe(1)),
            row(0, 0, 0, true, false, false, false, FWD),
            row(1, 0, 0, true, true, false, false, SWITCH),
            row(0, 0, 0, true, false, false, false, OtherStream),
            row(1, 0, 0, false, false, false, false, FWD),
        ],
    );
    assert_eq!(s.current(), Some(Layer::new(1, 2)));
    // Paused: nothing; resumed: a keyframe again.
    assert_eq!(s.set_target(None), None);
    run(&mut s, &[row(1, 0, 0, true, false, false, false, Paused)]);
    assert_eq!(s.set_target(Some(Layer::new(1, 2))), Some(1));
    run(
        &mut s,
        &[
            row(1, 0, 0, true, false, false, false, WaitingKeyframe(1)),
            row(1, 0, 0, true, true, false, false, SWITCH),
        ],
    );
}

/// A relay's copy of one stream: every packet of that stream from the
/// first (the far node's subscribers wait for keyframes themselves), with
/// every temporal layer, and nothing of the others.
#[test]
fn a_stream_selector_carries_its_stream_whole_and_nothing_else() {
    let mut s = Selector::Stream {
        index: 1,
        paused: false,
    };
    use Verdict::*;
    run(
        &mut s,
        &[
            row(1, 0, 0, false, false, false, false, FWD),
            row(0, 0, 0, true, true, false, false, OtherStream),
            row(1, 0, 2, true, false, false, false, FWD),
            row(2, 0, 0, true, true, false, false, OtherStream),
            row(1, 0, 1, true, false, false, false, FWD),
        ],
    );
    assert_eq!(s.current(), Some(Layer::new(1, u8::MAX)));
    assert_eq!(s.set_target(None), None);
    run(&mut s, &[row(1, 0, 0, true, true, false, false, Paused)]);
    assert_eq!(s.current(), None);
    assert_eq!(s.set_target(Some(Layer::TOP)), None);
    run(&mut s, &[row(1, 0, 0, false, false, false, false, FWD)]);
}

#[test]
fn a_retransmitted_keyframe_is_never_a_switch_point() {
    let mut s = Selector::Simulcast(Simulcast::new(Some(Layer::new(1, 0))));
    let mut rows = vec![row(
        1,
        0,
        0,
        true,
        true,
        false,
        false,
        Verdict::WaitingKeyframe(1),
    )];
    rows[0].retx = true;
    rows.push(row(1, 0, 0, true, true, false, false, SWITCH));
    run(&mut s, &rows);
    // SVC too.
    let mut v = Selector::Svc(Svc::new(Some(Layer::new(1, 0))));
    let mut rows = vec![row(
        0,
        0,
        0,
        true,
        true,
        false,
        false,
        Verdict::WaitingKeyframe(0),
    )];
    rows[0].retx = true;
    run(&mut v, &rows);
}

#[test]
fn temporal_layers_drop_at_once_and_come_back_at_a_switching_point() {
    let mut s = Selector::Simulcast(Simulcast::new(Some(Layer::new(0, 2))));
    use Verdict::*;
    // L1T3 pattern: 0 2 1 2 0 2 1 2, the first 1 and 2 after each 0 sync.
    run(
        &mut s,
        &[
            row(0, 0, 0, true, true, false, false, SWITCH),
            row(0, 0, 2, true, false, true, false, FWD),
            row(0, 0, 1, true, false, true, false, FWD),
        ],
    );
    s.set_target(Some(Layer::new(0, 0)));
    run(
        &mut s,
        &[
            row(0, 0, 2, true, false, false, false, Filtered),
            row(0, 0, 2, false, false, false, false, Filtered),
            row(0, 0, 0, true, false, false, false, FWD),
            row(0, 0, 2, true, false, true, false, Filtered),
            row(0, 0, 1, true, false, true, false, Filtered),
        ],
    );
    s.set_target(Some(Layer::new(0, 1)));
    run(
        &mut s,
        &[
            // Not a switching point: still left out.
            row(0, 0, 1, true, false, false, false, Filtered),
            row(0, 0, 0, true, false, false, false, FWD),
            row(0, 0, 2, true, false, true, false, Filtered),
            row(0, 0, 1, true, false, true, false, FWD),
            row(0, 0, 1, false, false, false, false, FWD),
        ],
    );
    assert_eq!(s.current(), Some(Layer::new(0, 1)));
}

/// A picture as the dependency descriptor describes it (`frame_info`'s
/// rule: a base-layer frame is a switching point for every layer).
fn dd_picture(temporal: u8, key: bool) -> FrameInfo {
    let f = crate::core::codec::dd::DdFrame {
        start_of_frame: true,
        end_of_frame: true,
        temporal,
        independent: key,
        ..Default::default()
    };
    let ext = crate::core::codec::vp8::tests::vp8_payload(true, 0, 0, 0, false, key);
    // The payload descriptor without its TID, as Chromium sends it once
    // the dependency descriptor is negotiated: the first byte only.
    let payload: Vec<u8> = [0x10].into_iter().chain(ext[6..].iter().copied()).collect();
    crate::core::codec::frame_info(crate::core::codec::CodecKind::Vp8, &payload, Some(&f))
}

#[test]
fn with_the_dependency_descriptor_every_temporal_layer_comes_back_at_a_base_layer_frame() {
    let mut s = Selector::Simulcast(Simulcast::new(Some(Layer::new(0, 0))));
    let verdict = |s: &mut Selector, info: &FrameInfo| {
        s.on_packet(&LayerPacket {
            stream: 0,
            info,
            marker: true,
            retransmission: false,
        })
    };
    let key = dd_picture(0, true);
    assert!(key.keyframe && key.picture_start);
    assert!(matches!(
        verdict(&mut s, &key),
        Verdict::Forward { switched: true, .. }
    ));
    // L1T3: 0 2 1 2. Only the base layer while the target is t0.
    for t in [2, 1, 2] {
        assert_eq!(verdict(&mut s, &dd_picture(t, false)), Verdict::Filtered);
    }
    s.set_target(Some(Layer::new(0, u8::MAX)));
    // A t2 and a t1 picture refer to pictures left out: not yet.
    for t in [2, 1] {
        assert_eq!(verdict(&mut s, &dd_picture(t, false)), Verdict::Filtered);
    }
    // The next base-layer picture: everything from there on.
    for t in [0, 2, 1, 2] {
        assert!(matches!(
            verdict(&mut s, &dd_picture(t, false)),
            Verdict::Forward { .. }
        ));
    }
    assert_eq!(s.current(), Some(Layer::new(0, u8::MAX)));
    // Down to t1 at once.
    s.set_target(Some(Layer::new(0, 1)));
    assert_eq!(verdict(&mut s, &dd_picture(2, false)), Verdict::Filtered);
    assert!(matches!(
        verdict(&mut s, &dd_picture(0, false)),
        Verdict::Forward { .. }
    ));
    assert!(matches!(
        verdict(&mut s, &dd_picture(1, false)),
        Verdict::Forward { .. }
    ));
}

#[test]
fn svc_drops_higher_spatial_layers_and_ends_pictures_where_the_subscriber_stops() {
    let mut v = Selector::Svc(Svc::new(Some(Layer::new(1, 2))));
    use Verdict::*;
    run(
        &mut v,
        &[
            // Keyframe picture: S0, S1, S2.
            row(
                0,
                0,
                0,
                true,
                true,
                false,
                true,
                Verdict::Forward {
                    switched: true,
                    marker: false,
                },
            ),
            row(0, 1, 0, false, false, false, true, END),
            row(0, 2, 0, false, false, false, true, Filtered),
            // Delta picture.
            row(0, 0, 1, true, false, true, false, FWD),
            row(0, 0, 1, false, false, false, true, FWD),
            row(0, 1, 1, false, false, false, true, END),
            row(0, 2, 1, false, false, false, true, Filtered),
        ],
    );
    // Down to S0: at the next picture start.
    v.set_target(Some(Layer::new(0, 2)));
    run(
        &mut v,
        &[
            row(0, 1, 1, false, false, false, true, END),
            row(0, 0, 0, true, false, false, true, END),
            row(0, 1, 0, false, false, false, true, Filtered),
        ],
    );
    // Up to S2: only from a keyframe; meanwhile S0 goes on and S1/S2
    // packets ask for a keyframe.
    assert_eq!(v.set_target(Some(Layer::new(2, 2))), Some(0));
    run(
        &mut v,
        &[
            row(0, 0, 2, true, false, true, true, END),
            row(0, 1, 2, false, false, false, true, WaitingKeyframe(0)),
            row(0, 0, 0, true, true, false, true, FWD),
            row(0, 1, 0, false, false, false, true, FWD),
            row(0, 2, 0, false, false, false, true, END),
        ],
    );
    assert_eq!(v.current(), Some(Layer::new(2, 2)));
}
