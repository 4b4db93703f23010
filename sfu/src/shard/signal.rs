//! Offer/answer with each participant, and what follows from it.
//!
//! The server is the impolite peer of perfect negotiation: an offer from
//! the client that collides with the server's own pending offer is ignored;
//! the client (polite) rolls its own back, answers ours, and offers again.

use std::time::Instant;

use rtc::peer_connection::event::RTCTrackEventInit;
use rtc::peer_connection::sdp::RTCSessionDescription;
use signaling::error::ErrorCode;
use signaling::ids::ParticipantId;
use signaling::media::MediaEvent;
use signaling::protocol::IceCandidate;

use super::track::Published;
use super::Shard;
use crate::core::ids::PeerKey;
use crate::core::offer_check::{
    check_offer, MAX_NEW_SECTIONS_PER_OFFER, OFFERS_PER_SECOND, OFFER_BURST,
};
use crate::core::sdp;
use crate::core::simulcast_sdp::{hide_running, restore_recv, Running};

/// The client's media section (in its latest description, `remote`) of
/// the transceiver a receiver belongs to.
fn receiver_section(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    remote: &str,
    receiver: rtc::rtp_transceiver::RTCRtpReceiverId,
) -> Option<sdp::Media> {
    let ids: Vec<_> = pc.get_transceivers().collect();
    let mid = ids.into_iter().find_map(|t| {
        let tr = pc.rtp_transceiver(t)?;
        (tr.receiver()? == receiver).then(|| tr.mid().clone())?
    })?;
    sdp::media_sections(remote)
        .into_iter()
        .find(|m| m.mid.as_deref() == Some(mid.as_str()))
}

/// The local description as the client gets it: no RTCP-component
/// candidates, and header-extension ids as the client numbers them.
fn outgoing_sdp(pc: &rtc::peer_connection::RTCPeerConnection) -> String {
    let Some(local) = pc.local_description() else {
        return String::new();
    };
    let sdp = sdp::drop_rtcp_candidates(&local.sdp);
    match pc.remote_description() {
        Some(remote) => sdp::align_extmaps(&sdp, &remote.sdp),
        None => sdp,
    }
}

impl Shard {
    /// The simulcast sections a connection already receives, which the
    /// library must not set up again (see `core::simulcast_sdp`).
    fn running_simulcast(&self, key: PeerKey) -> Vec<Running> {
        let Some(peer) = self.peers.get(&key) else {
            return Vec::new();
        };
        peer.inbound
            .iter()
            .filter_map(|(track_id, t)| {
                let p = self.tracks.get(t)?;
                (!p.rids.is_empty()).then(|| Running {
                    mid: p.mid.clone(),
                    track_id: track_id.clone(),
                    rids: p.rids.clone(),
                })
            })
            .collect()
    }

    /// Sends our host candidates as `ice-candidate` messages, then the end
    /// of candidates, once per connection. They are in the SDP as well (an
    /// ICE-lite server knows them up front); trickling them too serves
    /// clients that gather from trickled candidates only.
    fn trickle_candidates(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.candidates_sent {
            return;
        }
        let Some(sdp) = peer.pc.local_description().map(|d| d.sdp) else {
            return;
        };
        peer.candidates_sent = true;
        let mid = sdp
            .lines()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .map(|m| m.trim().to_owned());
        for line in sdp.lines().filter_map(|l| l.strip_prefix("a=candidate:")) {
            self.events.push(MediaEvent::Candidate {
                participant: peer.participant.clone(),
                candidate: Some(IceCandidate {
                    candidate: format!("candidate:{}", line.trim()),
                    sdp_mid: mid.clone(),
                    sdp_m_line_index: Some(0),
                    username_fragment: Some(peer.ufrag.clone()),
                }),
            });
        }
        if self.cfg.tcp {
            for (i, addr) in self.cfg.advertise.iter().enumerate() {
                self.events.push(MediaEvent::Candidate {
                    participant: peer.participant.clone(),
                    candidate: Some(IceCandidate {
                        candidate: tcp_candidate(i, *addr),
                        sdp_mid: mid.clone(),
                        sdp_m_line_index: Some(0),
                        username_fragment: Some(peer.ufrag.clone()),
                    }),
                });
            }
        }
        self.events.push(MediaEvent::Candidate {
            participant: peer.participant.clone(),
            candidate: None,
        });
    }

    pub(super) fn on_offer(&mut self, participant: &ParticipantId, sdp: String, now: Instant) {
        let Some(&key) = self.by_participant.get(participant) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        // Sections the connection has (a client's offer carries the ones
        // the server added for the room's tracks) plus a few new ones of
        // its own: the server never offers more than it accepts.
        // A relay to another node of the cluster carries the room's tracks
        // in one offer, and is not a participant: it has no such limits.
        let relay = peer.relay.is_some();
        let max_sections = if relay {
            usize::MAX
        } else {
            peer.pc.get_transceivers().count() + MAX_NEW_SECTIONS_PER_OFFER
        };
        if let Err(e) = check_offer(&sdp, max_sections) {
            return self.error(participant, format!("offer rejected: {e}"));
        }
        // Only offers that would be applied count: a refused one cost a
        // scan of its text.
        if !relay && !peer.offer_rate.take(now) {
            return self.error(
                participant,
                format!(
                    "offer refused: more than {OFFER_BURST} offers, or {OFFERS_PER_SECOND} a \
                     second; roll it back and offer again later"
                ),
            );
        }
        let offer_text = sdp.clone();
        let running = self.running_simulcast(key);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let offer = match RTCSessionDescription::offer(hide_running(&sdp, &running)) {
            Ok(o) => o,
            Err(e) => return self.error(participant, format!("invalid offer: {e}")),
        };
        let polite = peer
            .relay
            .as_ref()
            .is_some_and(|r| r.end == signaling::media::RelayEnd::Full);
        if polite && peer.pc.pending_local_description().is_some() {
            // The full end of a relay is the polite one: it rolls its offer
            // back, answers, and offers again after the round.
            match RTCSessionDescription::rollback(None)
                .and_then(|r| peer.pc.set_local_description(now, r))
            {
                Ok(()) => peer.needs_offer = true,
                Err(e) => tracing::debug!(%participant, "relay rollback: {e}"),
            }
        }
        if peer.pc.pending_local_description().is_some() {
            // A polite client rolls its offer back when ours arrives; one that
            // cannot roll back learns here that it must answer ours first.
            tracing::debug!(%participant, "offer collides with ours: ignored");
            self.events.push(MediaEvent::Error {
                participant: participant.clone(),
                code: ErrorCode::OfferIgnored,
                message: "your offer crossed the server's pending offer and was ignored: \
                          answer the server's offer, then offer again"
                    .into(),
            });
            return;
        }
        let answered = peer
            .pc
            .set_remote_description(now, offer)
            .map_err(|e| format!("offer rejected: {e}"))
            .and_then(|()| {
                let answer = peer
                    .pc
                    .create_answer(None)
                    .map_err(|e| format!("cannot answer the offer: {e}"))?;
                peer.pc
                    .set_local_description(now, answer)
                    .map_err(|e| format!("cannot answer the offer: {e}"))
            });
        if let Err(message) = answered {
            // An offer the library refused half-way must not leave the
            // connection waiting for an answer that never comes: back to
            // the last stable state, so the next offer applies.
            if peer.pc.pending_remote_description().is_some() {
                if let Err(e) = RTCSessionDescription::rollback(None)
                    .and_then(|r| peer.pc.set_remote_description(now, r))
                {
                    tracing::warn!(%participant, "cannot roll back a refused offer: {e}");
                }
            }
            return self.error(participant, message);
        }
        peer.first_offer_at = None;
        peer.remote_pwd = sdp::ice_pwd(&offer_text);
        let sdp = restore_recv(
            &sdp::follow_offer(&outgoing_sdp(&peer.pc), &offer_text),
            &running,
        );
        peer.set_remote_sdp(offer_text);
        self.events.push(MediaEvent::Answer {
            participant: participant.clone(),
            sdp,
        });
        // An offer with new ICE credentials restarted ICE: the answer
        // carries new ones of ours too.
        self.sync_ufrag(key);
        self.trickle_candidates(key);
        self.mark(key);
        self.after_negotiation(key, now);
    }

    pub(super) fn on_answer(&mut self, participant: &ParticipantId, sdp: String, now: Instant) {
        let Some(&key) = self.by_participant.get(participant) else {
            return;
        };
        let answer_text = sdp.clone();
        let running = self.running_simulcast(key);
        let answer = match RTCSessionDescription::answer(hide_running(&sdp, &running)) {
            Ok(a) => a,
            Err(e) => return self.error(participant, format!("invalid answer: {e}")),
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.pc.pending_local_description().is_none() {
            return self.error(
                participant,
                "an answer without an offer from the server".into(),
            );
        }
        if let Err(e) = peer.pc.set_remote_description(now, answer) {
            return self.error(participant, format!("answer rejected: {e}"));
        }
        peer.remote_pwd = sdp::ice_pwd(&answer_text);
        peer.set_remote_sdp(answer_text);
        self.mark(key);
        self.after_negotiation(key, now);
    }

    pub(super) fn on_candidate(
        &mut self,
        participant: &ParticipantId,
        candidate: Option<IceCandidate>,
    ) {
        let Some(c) = candidate else { return };
        let Some(&key) = self.by_participant.get(participant) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        // ICE-lite: the server never checks the client's candidates; it
        // learns the client's address from the client's own checks. So a
        // candidate is only validated, for a clear error, and never handed
        // to the connection: that would keep every candidate a client sends
        // and resolve `.local` names with multicast DNS queries onto the
        // server's network, with names the client chose.
        if peer.pc.remote_description().is_none() && peer.pc.pending_remote_description().is_none()
        {
            return self.error(
                participant,
                "candidate before any offer or answer: send it after the description".into(),
            );
        }
        let text = c.candidate.trim();
        let line = text.strip_prefix("a=").unwrap_or(text);
        if line.is_empty() {
            // End of candidates.
            return;
        }
        if let Err(e) = rtc::ice::candidate::unmarshal_candidate(line) {
            self.error(participant, format!("candidate rejected: {e}"));
        }
    }

    /// A round completed: legs that became usable get a keyframe, and a
    /// change that waited for the round is offered now.
    fn after_negotiation(&mut self, key: PeerKey, now: Instant) {
        self.process_peer(key, now);
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        // The publisher may have renumbered its own tracks' sections.
        let mut renumbered = Vec::new();
        {
            let remote = sdp::media_sections(&peer.remote_sdp);
            for t in peer.inbound.values() {
                let Some(p) = self.tracks.get_mut(t) else {
                    continue;
                };
                let Some(m) = remote
                    .iter()
                    .find(|m| m.mid.as_deref() == Some(p.mid.as_str()))
                else {
                    continue;
                };
                if p.renumber(m) {
                    renumbered.push(*t);
                }
            }
        }
        let mut subscribers: Vec<PeerKey> = renumbered
            .iter()
            .flat_map(|t| self.routing.subscribers(*t).iter().copied())
            .collect();
        subscribers.push(key);
        subscribers.sort();
        subscribers.dedup();
        for k in subscribers {
            let Some(peer) = self.peers.get_mut(&k) else {
                continue;
            };
            let ready = peer.refresh_legs(&self.tracks);
            for t in ready {
                self.request_keyframes(t, now);
            }
        }
        self.maybe_offer(key, now);
    }

    /// Offers the subscriber its current set of tracks, unless a round is
    /// in progress (then after it).
    pub(super) fn maybe_offer(&mut self, key: PeerKey, now: Instant) {
        let running = self.running_simulcast(key);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.remote_description_is_none_and_waiting() {
            return;
        }
        if !peer.needs_offer
            || peer.pc.pending_local_description().is_some()
            || peer.pc.pending_remote_description().is_some()
        {
            return;
        }
        peer.unpark_transceivers();
        let offer = match peer.pc.create_offer(None) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(peer = %key, "cannot create an offer: {e}");
                return;
            }
        };
        if let Err(e) = peer.pc.set_local_description(now, offer) {
            tracing::warn!(peer = %key, "cannot apply our offer: {e}");
            return;
        }
        peer.needs_offer = false;
        let sdp = restore_recv(&outgoing_sdp(&peer.pc), &running);
        self.events.push(MediaEvent::Offer {
            participant: peer.participant.clone(),
            sdp,
        });
        self.sync_ufrag(key);
        self.trickle_candidates(key);
        self.mark(key);
    }

    /// The client's connection started sending a track.
    pub(super) fn on_track_open(&mut self, key: PeerKey, init: RTCTrackEventInit, now: Instant) {
        let throttle = self.keyframe_throttle();
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let rid = init.rid.clone().filter(|r| !r.is_empty());
        if let Some(&t) = peer.inbound.get(&init.track_id) {
            // Another simulcast stream of a track already open (or the
            // same stream on a new SSRC).
            if let Some(p) = self.tracks.get_mut(&t) {
                if let Some(old) = p.streams.iter().find(|s| s.rid == rid).map(|s| s.ssrc) {
                    peer.inbound_ssrc.remove(&old);
                }
                p.add_stream(rid, init.ssrc, throttle);
                peer.inbound_ssrc.insert(init.ssrc, t);
            }
            self.request_keyframes(t, now);
            return;
        }
        let Some(receiver) = peer.pc.rtp_receiver(init.receiver_id) else {
            return;
        };
        let kind = receiver.track().kind();
        let Some(section) = receiver_section(&mut peer.pc, &peer.remote_sdp, init.receiver_id)
        else {
            tracing::debug!(peer = %key, track = %init.track_id, "a track with no media section: ignored");
            return;
        };
        // A relay brings other nodes' tracks: they keep their publisher's ids.
        let (stream_id, track_id) = match (&peer.relay, &section.msid) {
            (Some(_), Some((stream, _))) => (
                stream.clone(),
                super::relay::original_track_id(stream, &init.track_id).to_owned(),
            ),
            _ => (peer.participant.to_string(), init.track_id.clone()),
        };
        let track_no = self.new_track_no();
        let Some(changes) = self.routing.publish(key, track_no) else {
            tracing::debug!(peer = %key, track = %init.track_id, "not allowed to publish: ignored");
            return;
        };
        let mut published =
            Published::new(key, init.receiver_id, stream_id, track_id, kind, section);
        published.add_stream(rid, init.ssrc, throttle);
        self.tracks.insert(track_no, published);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.inbound.insert(init.track_id.clone(), track_no);
            peer.inbound_ssrc.insert(init.ssrc, track_no);
        }
        tracing::debug!(peer = %key, track = %init.track_id, %track_no, ?kind, "track published");
        self.apply_routes(changes, now);
    }

    /// The client stopped a track (renegotiated it away).
    pub(super) fn on_track_close(&mut self, key: PeerKey, track_id: &str, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(t) = peer.inbound.remove(track_id) else {
            return;
        };
        peer.inbound_ssrc.retain(|_, x| *x != t);
        self.tracks.remove(&t);
        let changes = self.routing.unpublish(t);
        self.apply_routes(changes, now);
    }
}

/// A passive TCP host candidate (RFC 6544) for the media port at `addr`.
/// Its priority is below any UDP host candidate's (type preference 126,
/// direction preference 4 for passive): a client that can reach the port
/// over UDP keeps using UDP.
fn tcp_candidate(i: usize, addr: std::net::SocketAddr) -> String {
    const PRIORITY: u32 = (126 << 24) | ((4 << 13 | 8191) << 8) | 255;
    format!(
        "candidate:tcp{i} 1 tcp {PRIORITY} {} {} typ host tcptype passive",
        addr.ip(),
        addr.port()
    )
}
