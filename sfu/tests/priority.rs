//! When a subscriber's estimate does not carry every video, allocation
//! keeps the most important ones flowing and pauses the others: a screen
//! share (named in its publisher's `media-state`) before cameras, and the
//! camera of whoever is speaking before the silent ones.
//!
//! The viewer's estimate is held at 420 kbit/s by the estimator's
//! ceiling: room for the audio and one video's lowest layer (about 250
//! kbit/s), not two.

mod common;

use bytes::Bytes;
use common::camera::{sized, Camera, FRAME};
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::core::bwe::Bitrate;
use signaling::ids::ParticipantId;
use signaling::media::MediaCommand;

/// Two publishers ("first", "second"), each with a simulcast video and a
/// microphone, and a viewer of both whose estimate cannot carry two videos.
fn room(seed: u64) -> (SimNet, [usize; 3]) {
    let mut net = SimNet::with_config(seed, |c| {
        c.bwe.leg.estimator.max = Bitrate::kbps(420);
    });
    let first = net.join("first", true, false);
    net.clients[first].add_simulcast_track("first-video", &["q", "h", "f"]);
    net.clients[first].add_track("first-mic", RtpCodecKind::Audio);
    let second = net.join("second", true, false);
    net.clients[second].add_simulcast_track("second-video", &["q", "h", "f"]);
    net.clients[second].add_track("second-mic", RtpCodecKind::Audio);
    let viewer = net.join("viewer", false, true);
    net.track_settings(viewer, first, "first-video", sized(640, 360));
    net.track_settings(viewer, second, "second-video", sized(640, 360));
    (net, [first, second, viewer])
}

/// Sends `frames` frames of both cameras and 20 ms audio packets with the
/// given RFC 6464 levels (0 loudest, 127 silence).
fn run(net: &mut SimNet, cams: &mut [Camera; 2], who: [usize; 2], levels: [u8; 2], frames: u32) {
    for _ in 0..frames {
        for (i, cam) in cams.iter_mut().enumerate() {
            cam.send(net, who[i], false);
            let now = net.now;
            let seq = cam.frame as u16;
            let mic = Bytes::from(vec![0xfc; 80]);
            // The microphone is the publisher's fourth sender (after the
            // three simulcast streams).
            net.clients[who[i]].send_rtp_with(3, seq, cam.frame * 960, mic, now, Some(levels[i]));
        }
        net.step(FRAME);
    }
}

/// Video packets the viewer got of `track` during `frames` more frames.
fn received_during(
    net: &mut SimNet,
    cams: &mut [Camera; 2],
    who: [usize; 2],
    levels: [u8; 2],
    viewer: usize,
    frames: u32,
) -> [u64; 2] {
    let before = [
        net.clients[viewer].packets_of("first-video"),
        net.clients[viewer].packets_of("second-video"),
    ];
    run(net, cams, who, levels, frames);
    [
        net.clients[viewer].packets_of("first-video") - before[0],
        net.clients[viewer].packets_of("second-video") - before[1],
    ]
}

const NAMES: [&str; 2] = ["first", "second"];

/// Marks `publisher`'s video as a screen share, or (empty) clears it.
fn screen(net: &mut SimNet, publisher: usize, tracks: Vec<String>) {
    let cmd = MediaCommand::ScreenTracks {
        room: net.room.clone(),
        publisher: ParticipantId::from_string(NAMES[publisher]),
        tracks,
    };
    let now = net.now;
    net.shard.handle_command(cmd, now);
}

// An unranked allocation keeps one of the two videos, the same one every
// time (the subscriber's tracks in a fixed order, and a seeded call); each
// test makes each publisher in turn the important one, so whichever that
// is, only the rank keeps the other.

#[test]
fn a_screen_share_keeps_flowing_and_a_camera_is_paused() {
    for (important, seed) in [(0, 42), (1, 43)] {
        let other = 1 - important;
        let (mut net, [first, second, viewer]) = room(seed);
        let who = [first, second];
        screen(
            &mut net,
            important,
            vec![format!("{}-video", NAMES[important])],
        );
        let mut cams = [Camera::at_rates(), Camera::at_rates()];
        run(&mut net, &mut cams, who, [127, 127], 300);
        let got = received_during(&mut net, &mut cams, who, [127, 127], viewer, 150);
        assert!(
            got[important] > 100 && got[other] == 0,
            "{} shares its screen: kept, the camera paused: {got:?}",
            NAMES[important]
        );
        assert!(
            net.clients[viewer]
                .stream_states
                .iter()
                .any(|(p, t, paused)| p == NAMES[other]
                    && *t == format!("{}-video", NAMES[other])
                    && *paused),
            "the viewer is told the camera is paused: {:?}",
            net.clients[viewer].stream_states
        );
        // Sharing stops: nothing moves merely because the rank went
        // (hysteresis), the video that flows keeps flowing.
        screen(&mut net, important, vec![]);
        let got = received_during(&mut net, &mut cams, who, [127, 127], viewer, 60);
        assert!(got[important] > 0, "{got:?}");
    }
}

#[test]
fn the_speaker_s_camera_keeps_flowing_and_a_silent_one_is_paused() {
    for (important, seed) in [(0, 44), (1, 45)] {
        let other = 1 - important;
        let (mut net, [first, second, viewer]) = room(seed);
        let who = [first, second];
        let mut levels = [127u8; 2];
        levels[important] = 10;
        let mut cams = [Camera::at_rates(), Camera::at_rates()];
        run(&mut net, &mut cams, who, levels, 300);
        let got = received_during(&mut net, &mut cams, who, levels, viewer, 150);
        assert!(
            got[important] > 100 && got[other] == 0,
            "{} speaks: its camera kept, the silent one paused: {got:?}",
            NAMES[important]
        );
    }
}
