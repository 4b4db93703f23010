//! Node-to-node relays: how a room spans the nodes of a cluster.
//!
//! A relay is a peer connection between two nodes' media planes, one per
//! room and pair of nodes, and on each side it is just another member of
//! the room in this shard: it subscribes to this node's own tracks (so
//! each crosses to the other node once) and publishes the other node's
//! tracks here, under their publisher's participant and track ids (from
//! the relay's `msid`, whose track id is `<participant>~<track>` so that
//! two publishers' tracks never share one), so local subscribers see no
//! difference. Forwarding,
//! keyframe requests, NACKs and their caches are the shard's usual path;
//! routing only keeps a track from going from one relay to another.
//!
//! The two ends differ only in how they connect. The `Lite` end is built
//! like a participant's connection (ICE-lite on the shared port, DTLS
//! server). The `Full` end is a full ICE agent, controlling, DTLS client,
//! on a UDP socket of its own that the runtime binds for it: its datagrams
//! carry that socket's address, and it is the one polite in perfect
//! negotiation (it rolls its offer back when the other end's crosses it).
//! Either end offers when it has tracks to send. Offers and answers leave
//! the shard as [`MediaEvent::RelaySdp`] and come back as
//! [`MediaCommand::RelaySdp`](signaling::media::MediaCommand::RelaySdp).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rand::distr::{Alphanumeric, SampleString};
use rtc::sansio::Protocol;
use signaling::ids::{NodeId, ParticipantId, RoomName};
use signaling::media::{MediaEvent, Permissions, RelayEnd, SdpKind};

use super::{Peer, Shard, UfragChange};
use crate::core::ids::PeerKey;
use crate::core::layer::Layer;
use crate::engine::{build_peer, PeerSetup};
use crate::stats::Drop;

/// What makes a connection a relay.
#[derive(Clone, Debug)]
pub struct RelayLink {
    pub node: NodeId,
    pub room: RoomName,
    pub end: RelayEnd,
    /// The `Full` end's own socket address.
    pub local: Option<SocketAddr>,
}

/// The shard's relays beyond their peers.
#[derive(Debug, Default)]
pub struct Relays {
    /// `Full` ends by their socket address.
    by_local: HashMap<SocketAddr, PeerKey>,
    /// Datagrams of `Full` ends: (their socket, destination, data).
    pub(super) out: Vec<(SocketAddr, SocketAddr, BytesMut)>,
    /// Sockets of closed `Full` ends, for the runtime to release.
    released: Vec<SocketAddr>,
}

/// The id a relay stands under in the shard. Client ids are hex, so it
/// is never a participant's.
fn relay_id(room: &RoomName, node: &NodeId) -> ParticipantId {
    ParticipantId::from_string(format!("relay~{room}~{node}"))
}

/// The track id a relay carries a track under: its publisher's id and its
/// own, so two publishers' tracks never share one.
pub(super) fn relayed_track_id(stream_id: &str, track_id: &str) -> String {
    format!("{stream_id}~{track_id}")
}

/// The publisher's own track id of a track a relay brought.
pub(super) fn original_track_id<'a>(stream_id: &str, relayed: &'a str) -> &'a str {
    relayed
        .strip_prefix(stream_id)
        .and_then(|t| t.strip_prefix('~'))
        .unwrap_or(relayed)
}

impl Shard {
    /// Opens this node's end of the room's relay with `node`. A `Full` end
    /// needs `local`, the socket the runtime bound for it.
    pub fn open_relay(
        &mut self,
        room: &RoomName,
        node: &NodeId,
        end: RelayEnd,
        local: Option<SocketAddr>,
        now: Instant,
    ) {
        let id = relay_id(room, node);
        if self.by_participant.contains_key(&id) {
            return;
        }
        let mut rng = rand::rng();
        let full = end == RelayEnd::Full;
        let advertise = match (full, local) {
            (true, Some(l)) => vec![l],
            (true, None) => {
                tracing::warn!(%room, %node, "a full relay end without a socket: not opened");
                return;
            }
            (false, _) => self.cfg.advertise.clone(),
        };
        let setup = PeerSetup {
            codecs: self.cfg.codecs.clone(),
            advertise,
            ufrag: Alphanumeric.sample_string(&mut rng, 16),
            pwd: Alphanumeric.sample_string(&mut rng, 32),
            unknown_ssrc: self.unknown_ssrc.clone(),
            unusable_repairs: self.unusable_repairs.clone(),
            relay_full: full,
            srtp_ok: self.srtp_ok.clone(),
            // Relays keep the library's write path (and its socket).
            keys: None,
        };
        let pc = match build_peer(&setup, now) {
            Ok((pc, _)) => pc,
            Err(e) => {
                tracing::error!(%room, %node, "cannot create a relay connection: {e}");
                return;
            }
        };
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        tracing::debug!(%room, %node, ?end, peer = %key, "relay opened");
        self.by_participant.insert(id.clone(), key);
        if full {
            if let Some(l) = local {
                self.relays.by_local.insert(l, key);
            }
        } else {
            self.by_ufrag.insert(setup.ufrag.clone(), key);
            self.ufrag_changes.push(UfragChange::Added {
                ufrag: setup.ufrag.clone(),
                pwd: setup.pwd.clone(),
            });
        }
        let perms = Permissions {
            publish: true,
            subscribe: true,
        };
        let mut peer = Peer::new(
            key,
            id,
            room.to_string(),
            perms,
            pc,
            &self.cfg.bwe,
            &mut self.rng,
        );
        peer.ufrag = setup.ufrag;
        peer.pwd = setup.pwd;
        peer.bwe.never_pace();
        peer.relay = Some(RelayLink {
            node: node.clone(),
            room: room.clone(),
            end,
            local,
        });
        self.peers.insert(key, peer);
        self.counts.relays += 1;
        let changes = self.routing.join_relay(key, room.as_str());
        self.apply_routes(changes, now);
        self.flush(now);
    }

    /// Closes this node's end of a relay; the tracks it brought end here.
    pub fn close_relay(&mut self, room: &RoomName, node: &NodeId, now: Instant) {
        let id = relay_id(room, node);
        let local = self
            .by_participant
            .get(&id)
            .and_then(|k| self.peers.get(k))
            .and_then(|p| p.relay.as_ref())
            .and_then(|r| r.local);
        if !self.by_participant.contains_key(&id) {
            return;
        }
        self.leave(&id, now);
        self.counts.relays = self.counts.relays.saturating_sub(1);
        if let Some(l) = local {
            self.relays.by_local.remove(&l);
            self.relays.released.push(l);
        }
        tracing::debug!(%room, %node, "relay closed");
    }

    /// An offer or answer from the other node's end.
    pub fn relay_sdp(
        &mut self,
        room: &RoomName,
        node: &NodeId,
        kind: SdpKind,
        sdp: String,
        now: Instant,
    ) {
        let id = relay_id(room, node);
        if !self.by_participant.contains_key(&id) {
            return;
        }
        match kind {
            SdpKind::Offer => self.on_offer(&id, sdp, now),
            SdpKind::Answer => self.on_answer(&id, sdp, now),
        }
    }

    /// The other node's subscribers need these streams of one of this
    /// node's simulcast tracks: the relay carries only those (and what no
    /// one needs here either, the publisher may stop encoding).
    pub fn relay_streams(
        &mut self,
        room: &RoomName,
        node: &NodeId,
        publisher: &ParticipantId,
        track_id: &str,
        active: Vec<bool>,
        now: Instant,
    ) {
        let Some(&relay) = self.by_participant.get(&relay_id(room, node)) else {
            return;
        };
        let Some(&own) = self.by_participant.get(publisher) else {
            return;
        };
        let Some(track) = self
            .peers
            .get(&own)
            .and_then(|p| p.inbound.get(track_id).copied())
        else {
            return;
        };
        let Some(leg) = self
            .peers
            .get_mut(&relay)
            .and_then(|p| p.legs.get_mut(&track))
        else {
            return;
        };
        // Only a leg carrying every stream, and one need per stream.
        if leg.upper.is_empty() || active.len() != leg.upper.len() + 1 {
            return;
        }
        let mut changed = false;
        for (f, &on) in leg.forwarders_mut().zip(&active) {
            if f.target().is_some() != on {
                f.set_target(on.then_some(Layer::TOP));
                changed = true;
            }
        }
        // Dynacast here sees the streams no longer needed.
        if changed {
            self.adapt(now);
        }
    }

    /// A datagram on a `Full` end's own socket.
    pub fn handle_relay_datagram(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        data: BytesMut,
        now: Instant,
    ) {
        self.counts.packets_in += 1;
        self.counts.bytes_in += data.len() as u64;
        let Some(&key) = self.relays.by_local.get(&local) else {
            self.counts.drop(Drop::UnknownSource);
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        // The far end is another node's shared port, named in its SDP: a
        // relay socket takes nothing from anywhere else (the library would
        // answer any STUN, and any source may send).
        if !peer.remote_candidates.contains(&from) {
            self.counts.drop(Drop::UnknownSource);
            return;
        }
        if crate::demux::classify(&data) != crate::demux::Kind::Stun {
            peer.active_at = Some(now);
        }
        if let Err(e) = peer
            .pc
            .handle_read(super::udp_message(local, from, data, now))
        {
            tracing::trace!(peer = %key, "relay datagram rejected: {e}");
            self.counts.drop(Drop::Rejected);
        }
        self.mark(key);
    }

    /// Datagrams of `Full` ends (their socket, destination, data), and
    /// sockets of closed ones to release.
    pub fn take_relay_output(
        &mut self,
    ) -> (
        &mut Vec<(SocketAddr, SocketAddr, BytesMut)>,
        &mut Vec<SocketAddr>,
    ) {
        (&mut self.relays.out, &mut self.relays.released)
    }

    /// Where a connection's datagram goes out: a `Full` relay end's own
    /// socket, or `None` for the shared port.
    pub(super) fn relay_socket(&self, key: PeerKey) -> Option<SocketAddr> {
        self.peers
            .get(&key)
            .and_then(|p| p.relay.as_ref())
            .and_then(|r| r.local)
    }

    /// Turns what the signaling code produced for relays (as for any
    /// participant) into relay offers and answers; candidates and errors
    /// stay here (an ICE-lite end needs no candidates, a full end's are in
    /// its SDP).
    pub(super) fn relay_events(&mut self) {
        if self.counts.relays == 0 {
            return;
        }
        let events = std::mem::take(&mut self.events);
        for ev in events {
            let link = ev
                .participant()
                .and_then(|p| self.by_participant.get(p))
                .and_then(|k| self.peers.get(k))
                .and_then(|p| p.relay.clone());
            let Some(link) = link else {
                self.events.push(ev);
                continue;
            };
            let (kind, sdp) = match ev {
                MediaEvent::Offer { sdp, .. } => (SdpKind::Offer, sdp),
                MediaEvent::Answer { sdp, .. } => (SdpKind::Answer, sdp),
                MediaEvent::Error { message, code, .. } => {
                    tracing::debug!(room = %link.room, node = %link.node, ?code, "relay: {message}");
                    continue;
                }
                // Candidates: a lite end needs none, a full end's are in
                // its SDP. Speakers and dynacast are for clients; the
                // other node tells its own.
                _ => continue,
            };
            self.events.push(MediaEvent::RelaySdp {
                room: link.room,
                node: link.node,
                kind,
                sdp,
            });
        }
    }
}
