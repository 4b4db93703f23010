//! One WebRTC peer connection of a bot, on its own UDP socket, driven by one
//! task: the `rtc` Sans-I/O connection, the clip players of a publisher,
//! the bot's downlink cap, and the measurements of what arrives.
//!
//! The bot's signaling task talks to it through [`PeerCommand`]s (remote
//! SDP and candidates, dynacast, stop) and gets [`PeerSignal`]s back (local
//! SDP).

mod arrival;
mod connection;
pub mod counting;
mod publish;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::header::PacketType;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::sansio::Protocol;
use signaling::protocol::IceCandidate;
use tokio::sync::mpsc;

use crate::abs_time;
use crate::outcome::{CapReport, PeerReport, ReceivedTrack};
use crate::plan::Shared;
use crate::playout::{KeyframeRequests, PacketInfo};
use crate::shaper::{is_rtp, Bottleneck, LinkSpec, Offer};
use arrival::{count, measure, Arrivals, Arrived};
use counting::Counting;
use publish::OutTrack;
pub use publish::{Encoding, Publish};
use sfu::batch_recv::RecvBatch;

/// What the signaling side tells a peer.
#[derive(Debug)]
pub enum PeerCommand {
    RemoteOffer(String),
    RemoteAnswer(String),
    RemoteCandidate(IceCandidate),
    /// Send our own offer (we publish, or we are the P2P newcomer).
    MakeOffer,
    /// Dynacast: which encodings of our track `track` to send (rid, active).
    Encodings {
        track: String,
        states: Vec<(Option<String>, bool)>,
    },
    Stop,
}

/// What a peer wants sent over signaling.
#[derive(Debug)]
pub enum PeerSignal {
    Offer(String),
    Answer(String),
    Error(String),
}

/// How a peer is set up.
#[derive(Clone)]
pub struct PeerSetup {
    pub publish: Option<Publish>,
    /// The bot's downlink cap.
    pub downlink: Option<LinkSpec>,
    /// Count received RTP from its clear header (`--receive count`, see
    /// [`counting`]) instead of reading it through the library.
    pub counting: bool,
}

/// A received track, with what the bot needs to read its packets.
struct Incoming {
    track: ReceivedTrack,
    abs_time_ext: Option<u8>,
    twcc_ext: Option<u8>,
    receiver: RTCRtpReceiverId,
    keyframes: KeyframeRequests,
}

/// A datagram waiting in the downlink cap's queue.
type CapItem = (BytesMut, SocketAddr, bool);

/// The bot's downlink cap and what it did in the window.
struct Cap {
    link: Bottleneck<CapItem>,
    report: CapReport,
}

/// Runs one peer connection until told to stop, the shared deadline passes,
/// or the connection fails.
pub async fn run(
    setup: PeerSetup,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<PeerCommand>,
    signals: mpsc::UnboundedSender<PeerSignal>,
    started: Instant,
) -> PeerReport {
    let mut report = PeerReport::default();
    if let Err(e) = drive(
        setup,
        &shared,
        &mut commands,
        &signals,
        started,
        &mut report,
    )
    .await
    {
        report.failed = Some(e.to_string());
        let _ = signals.send(PeerSignal::Error(e.to_string()));
    }
    report
}

async fn drive(
    setup: PeerSetup,
    shared: &Shared,
    commands: &mut mpsc::UnboundedReceiver<PeerCommand>,
    signals: &mpsc::UnboundedSender<PeerSignal>,
    started: Instant,
    report: &mut PeerReport,
) -> anyhow::Result<()> {
    let socket = connection::bind_socket()?;
    let local_addr = socket.get_ref().local_addr()?;
    let mut pc = connection::build()?;

    let mut outgoing: Vec<OutTrack> = Vec::new();
    if let Some(p) = &setup.publish {
        let stream_id = format!("bot-{}", rand::random::<u32>());
        if let Some(clip) = &p.audio {
            let audio = vec![Encoding {
                rid: None,
                clip: clip.clone(),
            }];
            outgoing.push(OutTrack::add(&mut pc, &stream_id, false, audio)?);
        }
        if !p.video.is_empty() {
            outgoing.push(OutTrack::add(&mut pc, &stream_id, true, p.video.clone())?);
        }
    }
    let mut cap = setup.downlink.map(|spec| Cap {
        link: Bottleneck::new(spec, Instant::now()),
        report: CapReport::default(),
    });

    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: local_addr.ip().to_string(),
            port: local_addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)?;

    let mut incoming: HashMap<String, Incoming> = HashMap::new();
    let mut have_local_offer = false;
    let mut recv_transceivers = false;
    let mut connected = false;
    let mut batch = RecvBatch::new(RECV_BATCH);
    // RTP handed to the library, with its arrival at the socket, until the
    // library hands it back (see `Arrivals`).
    let mut arrivals = Arrivals::default();
    let mut counting = setup.counting.then(Counting::default);
    // Something reached the connection since it was last polled.
    let mut touched = true;
    let mut library_deadline = None;

    loop {
        let now = Instant::now();
        let measuring = shared.measuring.load(Ordering::Relaxed);
        // What crossed the downlink cap by now.
        if let Some(cap) = cap.as_mut() {
            while let Some(((data, from, rtp), waited)) = cap.link.poll(now) {
                if measuring && rtp {
                    cap.report.queue_delay.record(waited);
                }
                connection::feed(&mut pc, local_addr, from, data, now);
                touched = true;
            }
        }
        // Media due now.
        if connected {
            for out in outgoing.iter_mut() {
                touched |= out.poll_timeout().is_some_and(|t| t <= now);
                out.send_due(&mut pc, now, measuring)?;
            }
        }
        if let Some(c) = counting.as_mut() {
            let feedback = c.feedback(now);
            if !feedback.is_empty() {
                // Any receiver of the connection carries RTCP for all of it.
                if let Some(mut r) = incoming
                    .values()
                    .next()
                    .and_then(|i| pc.rtp_receiver(i.receiver))
                {
                    let _ = r.write_rtcp(now, feedback);
                    touched = true;
                }
            }
        }
        // The connection is polled only when something reached it since
        // it was last polled: a counting receiver's wake-ups mostly bring
        // packets it counts itself, and polling the library's pipeline
        // for each would cost more than the counting.
        if touched {
            touched = false;
            while let Some(msg) = pc.poll_write() {
                // A full send buffer on loopback is a lost packet, which the
                // receivers count; it does not end the bot.
                let _ = socket
                    .get_ref()
                    .send_to(&msg.message, msg.transport.peer_addr);
            }
            while let Some(event) = pc.poll_event() {
                touched = true;
                match event {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                        RTCPeerConnectionState::Connected if !connected => {
                            connected = true;
                            report.connected_after = Some(started.elapsed());
                            let now = Instant::now();
                            for out in outgoing.iter_mut() {
                                out.start(&mut pc, now)?;
                            }
                        }
                        RTCPeerConnectionState::Failed => {
                            anyhow::bail!("peer connection failed");
                        }
                        _ => {}
                    },
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        if let Some(mut r) = pc.rtp_receiver(init.receiver_id) {
                            let video = r.track().kind() == RtpCodecKind::Video;
                            let exts = &r.get_parameters().rtp_parameters.header_extensions;
                            let ext_id = |uri: &str| {
                                exts.iter()
                                    .find(|e| e.uri == uri)
                                    .and_then(|e| u8::try_from(e.id).ok())
                            };
                            let abs_time_ext = ext_id(abs_time::URI);
                            let twcc_ext = ext_id(sfu::core::extmap::TRANSPORT_CC);
                            let stream = init.stream_ids.first().cloned().unwrap_or_default();
                            incoming.insert(
                                init.track_id.clone(),
                                Incoming {
                                    track: ReceivedTrack::new(stream, video, counting.is_none()),
                                    abs_time_ext,
                                    twcc_ext,
                                    receiver: init.receiver_id,
                                    keyframes: KeyframeRequests::default(),
                                },
                            );
                        }
                    }
                    _ => {}
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = pc.poll_read() {
                touched = true;
                match message {
                    RTCMessage::RtpPacket(track_id, packet) => {
                        let now = Instant::now();
                        if report.first_media_after.is_none() {
                            report.first_media_after = Some(started.elapsed());
                        }
                        let Some(inc) = incoming.get_mut(&track_id) else {
                            continue;
                        };
                        let h = &packet.header;
                        if let Some(c) = counting.as_mut() {
                            c.learn(h.ssrc, &track_id, inc.twcc_ext);
                        }
                        if inc.track.video && counting.is_none() {
                            // Followed outside the window too, so the window
                            // starts knowing the layer and the decoder's state.
                            inc.track.layer.on_packet(&packet.payload, measuring);
                            let info =
                                PacketInfo::vp8(h.sequence_number, h.marker, &packet.payload);
                            let frames = inc.track.playout.on_packet(info);
                            if measuring {
                                inc.track.stats.freeze.on_frames(now, u64::from(frames));
                            }
                            if inc.keyframes.poll(now, inc.track.playout.broken()) {
                                if measuring {
                                    inc.track.keyframe_requests += 1;
                                }
                                let pli = PictureLossIndication {
                                    sender_ssrc: 0,
                                    media_ssrc: h.ssrc,
                                };
                                if let Some(mut r) = pc.rtp_receiver(inc.receiver) {
                                    // A refused PLI is a lost one; the next is due soon.
                                    let _ = r.write_rtcp(now, vec![Box::new(pli)]);
                                }
                            }
                        }
                        if measuring {
                            let abs_time = inc.abs_time_ext.and_then(|id| h.get_extension(id));
                            let arrived = Arrived {
                                seq: h.sequence_number,
                                timestamp: h.timestamp,
                                size: packet.payload.len() + 12,
                                abs_time: abs_time.as_deref(),
                                at_socket: arrivals.take(h.ssrc, h.sequence_number),
                            };
                            measure(inc, report, shared, arrived, now);
                        }
                    }
                    RTCMessage::RtcpPacket(_, packets) => {
                        for p in &packets {
                            let h = p.header();
                            // Payload-specific feedback: FMT 1 is PLI, 4 is FIR.
                            if h.packet_type != PacketType::PayloadSpecificFeedback
                                || (h.count != 1 && h.count != 4)
                            {
                                continue;
                            }
                            for ssrc in p.destination_ssrc() {
                                let mut hit = false;
                                for out in outgoing.iter_mut() {
                                    hit |= out.request_keyframe(ssrc);
                                }
                                if !hit {
                                    outgoing.iter_mut().for_each(OutTrack::request_keyframe_all);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }

            library_deadline = pc.poll_timeout();
        }

        if shared.deadline_passed() {
            break;
        }

        let mut deadline = library_deadline
            .unwrap_or(now + Duration::from_secs(1))
            .min(now + Duration::from_secs(1));
        for out in &outgoing {
            if let Some(t) = out.poll_timeout() {
                deadline = deadline.min(t);
            }
        }
        if let Some(t) = cap.as_ref().and_then(|c| c.link.poll_timeout()) {
            deadline = deadline.min(t);
        }
        if let Some(t) = counting.as_mut().and_then(Counting::poll_timeout) {
            deadline = deadline.min(t);
        }
        // Until the next timer of the connection or the shaped link is due
        // (input on the channels and the socket wakes the loop first).
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::select! {
            biased;
            cmd = commands.recv() => {
                touched = true;
                match cmd {
                    None | Some(PeerCommand::Stop) => break,
                    Some(PeerCommand::MakeOffer) => {
                        if outgoing.is_empty() && !recv_transceivers {
                            // A receive-only offerer (a P2P subscriber) asks for media.
                            recv_transceivers = true;
                            pc.add_transceiver_from_kind(RtpCodecKind::Audio, None)?;
                            pc.add_transceiver_from_kind(RtpCodecKind::Video, None)?;
                        }
                        let offer = pc.create_offer(None)?;
                        pc.set_local_description(Instant::now(), offer.clone())?;
                        have_local_offer = true;
                        let _ = signals.send(PeerSignal::Offer(offer.sdp));
                    }
                    Some(PeerCommand::RemoteOffer(sdp)) => {
                        if have_local_offer {
                            // Glare. The server is the impolite side and ignores
                            // our offer, so we roll ours back, answer its offer,
                            // then offer again (our tracks stay added).
                            pc.set_local_description(Instant::now(), RTCSessionDescription::rollback(None)?)?;
                            answer(&mut pc, sdp, signals)?;
                            let offer = pc.create_offer(None)?;
                            pc.set_local_description(Instant::now(), offer.clone())?;
                            let _ = signals.send(PeerSignal::Offer(offer.sdp));
                        } else {
                            answer(&mut pc, sdp, signals)?;
                        }
                    }
                    Some(PeerCommand::RemoteAnswer(sdp)) => {
                        pc.set_remote_description(Instant::now(), RTCSessionDescription::answer(sdp)?)?;
                        have_local_offer = false;
                    }
                    Some(PeerCommand::RemoteCandidate(c)) => {
                        // A candidate for an m-line we do not have yet is harmless to drop.
                        let _ = pc.add_remote_candidate(RTCIceCandidateInit {
                            candidate: c.candidate,
                            sdp_mid: c.sdp_mid,
                            sdp_mline_index: c.sdp_m_line_index,
                            username_fragment: c.username_fragment,
                            ..Default::default()
                        });
                    }
                    Some(PeerCommand::Encodings { track, states }) => {
                        for out in outgoing.iter_mut() {
                            report.encoding_changes += out.set_active(&track, &states);
                        }
                    }
                }
            }
            ready = socket.readable() => {
                let mut ready = ready?;
                let now = Instant::now();
                // What is ready, a batch per system call and a few batches
                // per wake-up at most, so a busy bot pays one wake-up per
                // batch rather than per packet.
                for _ in 0..RECV_ROUNDS {
                    match ready.try_io(|s| batch.recv(s.get_ref())) {
                        Ok(got) => {
                            got?;
                        }
                        Err(_would_block) => break,
                    }
                    for i in 0..batch.len() {
                        let (r, data) = batch.get(i);
                        if r.truncated {
                            continue;
                        }
                        let counted = counting.as_mut().and_then(|c| {
                            let (inc, arrived) = count(c, &mut incoming, data, r.arrived, now)?;
                            if measuring {
                                c.counted += 1;
                                measure(inc, report, shared, arrived, now);
                            }
                            Some(())
                        });
                        if counted.is_none() {
                            if measuring && cap.is_none() {
                                arrivals.note(data, r.arrived);
                            }
                            receive(&mut pc, cap.as_mut(), local_addr, r.from, data, now, measuring);
                            touched = true;
                        }
                    }
                    if !batch.is_full() {
                        break;
                    }
                }
            }
            _ = sleep => {
                pc.handle_timeout(Instant::now())?;
                touched = true;
            }
        }
    }

    let end = Instant::now();
    report.counted = counting.map_or(0, |c| c.counted);
    for (_, mut inc) in incoming {
        inc.track.stats.freeze.finish(end);
        report.tracks.push(inc.track);
    }
    for out in &outgoing {
        report.sent_by_encoding.extend(out.sent());
    }
    report.cap = cap.map(|c| c.report);
    let _ = pc.close();
    Ok(())
}

/// Datagrams read per system call.
const RECV_BATCH: usize = 32;
/// System calls per wake-up at most.
const RECV_ROUNDS: usize = 4;

/// A datagram arrived from the network: through the downlink cap when the
/// bot has one, else straight to the connection.
fn receive(
    pc: &mut RTCPeerConnection,
    cap: Option<&mut Cap>,
    local_addr: SocketAddr,
    from: SocketAddr,
    data: &[u8],
    now: Instant,
    measuring: bool,
) {
    let message = BytesMut::from(data);
    let Some(cap) = cap else {
        connection::feed(pc, local_addr, from, message, now);
        return;
    };
    let rtp = is_rtp(data);
    let offer = cap.link.offer(now, data.len(), (message, from, rtp));
    if !measuring {
        return;
    }
    match (rtp, offer) {
        (true, Offer::Queued) => cap.report.rtp_arrived += 1,
        (true, Offer::Dropped) => {
            cap.report.rtp_arrived += 1;
            cap.report.rtp_dropped += 1;
        }
        (false, Offer::Dropped) => cap.report.other_dropped += 1,
        (false, Offer::Queued) => {}
    }
}

fn answer(
    pc: &mut RTCPeerConnection,
    sdp: String,
    signals: &mpsc::UnboundedSender<PeerSignal>,
) -> anyhow::Result<()> {
    pc.set_remote_description(Instant::now(), RTCSessionDescription::offer(sdp)?)?;
    let answer = pc.create_answer(None)?;
    pc.set_local_description(Instant::now(), answer.clone())?;
    let _ = signals.send(PeerSignal::Answer(answer.sdp));
    Ok(())
}
