//! The cluster task: joins the hub to Redis.
//!
//! One task per node owns the Redis side. It carries out the hub's
//! [`ClusterOut`] requests in order (placing joins, recording leaves and
//! media state, relaying to other nodes), turns pub/sub messages into
//! [`ClusterIn`] events for the hub, and every `heartbeat` refreshes this
//! node's registry entry with its load, reads the other nodes, and reaps
//! the ones whose entry expired.
//!
//! Room events carry the room's version; an event not newer than what this
//! node already saw (in the snapshot a join brought back, say) is dropped,
//! so a member is never announced twice.
//!
//! When Redis goes away the node keeps serving the rooms it has: members
//! here still talk to each other, joins that need the room directory are
//! refused with an error, and the task still answers `stop`. Commands
//! connect again by themselves ([`Store`]); the pub/sub connection comes
//! back with a backoff ([`Feed`]). Once it is back the node subscribes to
//! its channels again, refreshes its entry (a Redis restarted without its
//! data has forgotten it: the node then enters its members again, which
//! also puts back the rooms it hosts), accepts room events whatever their
//! version (a restarted Redis counts versions from zero again), and a
//! `node_ttl` later, when the other nodes have put their members back too,
//! reads its rooms again so the hub learns what it missed meanwhile
//! ([`ClusterIn::Snapshot`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{mpsc, oneshot};

use super::feed::{Feed, FeedEvent};
use super::select::{select, Limits};
use super::store::{ClusterError, EnterArgs, EnterOutcome, RoomView, Store};
use super::wire::{relay_mac, streams_mac, MemberRecord, NodeMessage, RoomEvent};
use super::{Load, NodeInfo};
use crate::config::{ClusterConfig, RoomsConfig};
use crate::error::ErrorCode;
use crate::hub::{ClusterIn, ClusterOut, EnterRequest, Member, TakenPlace};
use crate::ids::{NodeId, ParticipantId, RoomName};
use crate::media::MediaPlane;
use crate::protocol::RoomMode;

/// Cumulative CPU seconds of the server process (user + system), for the
/// load a node reports; `None` where the platform cannot tell.
pub type CpuProbe = Box<dyn Fn() -> Option<f64> + Send + Sync>;

/// A node connected to the cluster's Redis, not yet serving.
pub struct ClusterNode {
    cfg: ClusterConfig,
    rooms: RoomsConfig,
    me: NodeInfo,
    client: redis::Client,
    store: Store,
    cpu: Option<CpuProbe>,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode").field("me", &self.me).finish()
    }
}

impl ClusterNode {
    /// Connects to `[cluster] redis` and registers this node. `url`: the
    /// WebSocket URL clients of other nodes are sent to; `media`: this
    /// node's media address, shown in the registry.
    pub async fn connect(
        cfg: &ClusterConfig,
        rooms: &RoomsConfig,
        url: String,
        media: String,
        cpu: Option<CpuProbe>,
    ) -> Result<ClusterNode, ClusterError> {
        let client = redis::Client::open(cfg.redis.as_str())?;
        let store = Store::with_client(&client, &cfg.prefix).await?;
        let id = if cfg.node_id.trim().is_empty() {
            let n: u32 = rand::rng().random();
            NodeId::new(format!("node-{n:08x}"))
        } else {
            NodeId::new(cfg.node_id.trim())
        };
        let me = NodeInfo {
            id,
            url,
            media,
            region: cfg.region.clone(),
            draining: false,
            load: Load::default(),
        };
        if store.register(&me, cfg.node_ttl).await? {
            // The entry outlived the node's previous run (killed, and
            // started again within `node_ttl`). This run serves none of
            // the members Redis lists under the id, and no other node
            // would remove them: the entry, refreshed by this run, never
            // expires. So they leave their rooms now.
            tracing::warn!(node = %me.id, "cluster: this node id is still registered (its previous run was killed, or another live node has it: [cluster] node_id must be unique); removing the members listed under it");
            let stale = store.reap(&me.id).await?;
            tracing::info!(node = %me.id, participants = stale, "cluster: members of this node's previous run left their rooms");
            store.register(&me, cfg.node_ttl).await?;
        }
        Ok(ClusterNode {
            cfg: cfg.clone(),
            rooms: rooms.clone(),
            me,
            client,
            store,
            cpu,
        })
    }

    pub fn id(&self) -> &NodeId {
        &self.me.id
    }

    /// Starts the cluster task. `to_hub` delivers what the cluster has for
    /// the hub; the returned sender takes the hub's requests.
    pub(crate) async fn start(
        self,
        to_hub: mpsc::UnboundedSender<ClusterIn>,
        media: Option<Arc<dyn MediaPlane>>,
    ) -> Result<(mpsc::UnboundedSender<ClusterOut>, ClusterHandle), ClusterError> {
        let feed = Feed::connect(self.client, self.store.node_channel(&self.me.id)).await?;
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let limits = Limits {
            max_participants: self.cfg.max_participants,
            max_tracks: self.cfg.max_tracks,
            max_cpu_percent: self.cfg.max_cpu_percent,
        };
        let counters = Arc::new(Counters {
            connected: AtomicBool::new(true),
            reconnects: AtomicU64::new(0),
        });
        let shell = Shell {
            store: self.store,
            me: self.me,
            cfg: self.cfg,
            rooms_cfg: self.rooms,
            limits,
            to_hub,
            feed,
            counters: counters.clone(),
            resync_at: None,
            unsent_leaves: Vec::new(),
            subs: HashMap::new(),
            local: HashMap::new(),
            nodes: Vec::new(),
            media,
            cpu: self.cpu,
            last_sample: None,
        };
        tokio::spawn(shell.run(req_rx, ctl_rx));
        let handle = ClusterHandle {
            control: ctl_tx,
            counters,
        };
        Ok((req_tx, handle))
    }
}

/// The cluster as the rest of the server sees it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClusterHandle {
    control: mpsc::UnboundedSender<Control>,
    counters: Arc<Counters>,
}

/// The node's link with Redis, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStats {
    /// The pub/sub connection to Redis is up.
    pub redis_connected: bool,
    /// Times the pub/sub connection came back after it was lost.
    pub redis_reconnects: u64,
}

/// Written by the cluster task, read by [`ClusterHandle::stats`].
#[derive(Debug)]
struct Counters {
    connected: AtomicBool,
    reconnects: AtomicU64,
}

/// The nodes and rooms of the cluster, for `/api/cluster`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterView {
    /// The node answering.
    pub node: NodeId,
    pub nodes: Vec<NodeInfo>,
    pub rooms: Vec<RoomView>,
}

enum Control {
    Drain,
    Stop(oneshot::Sender<()>),
    View(oneshot::Sender<Option<ClusterView>>),
}

impl ClusterHandle {
    /// Stops taking participants and tells the ones here to move.
    pub fn drain(&self) {
        let _ = self.control.send(Control::Drain);
    }

    /// Leaves the cluster: this node's members still here are removed from
    /// their rooms (the rooms are told) and its entry is deleted.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The node's link with Redis.
    pub fn stats(&self) -> ClusterStats {
        ClusterStats {
            redis_connected: self.counters.connected.load(Ordering::Relaxed),
            redis_reconnects: self.counters.reconnects.load(Ordering::Relaxed),
        }
    }

    /// Nodes and rooms, or `None` when Redis cannot be read.
    pub async fn view(&self) -> Option<ClusterView> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::View(tx)).ok()?;
        rx.await.ok().flatten()
    }
}

/// A room with members here: this node listens to its events.
struct Sub {
    /// The newest room version seen.
    ver: u64,
    /// Members served here.
    local: usize,
}

/// A leave Redis did not take (it was down): tried again after the next
/// heartbeat that reaches it, so the member does not stay listed.
struct UnsentLeave {
    room: RoomName,
    id: ParticipantId,
    resume_token: String,
}

/// A member this node serves, as recorded in Redis.
struct Local {
    room: RoomName,
    record: MemberRecord,
    resume_token: String,
}

struct Shell {
    store: Store,
    me: NodeInfo,
    cfg: ClusterConfig,
    rooms_cfg: RoomsConfig,
    limits: Limits,
    to_hub: mpsc::UnboundedSender<ClusterIn>,
    feed: Feed,
    counters: Arc<Counters>,
    /// When to read this node's rooms again, after the feed came back.
    resync_at: Option<tokio::time::Instant>,
    unsent_leaves: Vec<UnsentLeave>,
    subs: HashMap<RoomName, Sub>,
    local: HashMap<ParticipantId, Local>,
    /// Live nodes as of the last heartbeat.
    nodes: Vec<NodeInfo>,
    media: Option<Arc<dyn MediaPlane>>,
    cpu: Option<CpuProbe>,
    /// (when, CPU seconds, packets forwarded) at the last heartbeat.
    last_sample: Option<(Instant, f64, u64)>,
}

impl Shell {
    async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<ClusterOut>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut tick = tokio::time::interval(self.cfg.heartbeat.max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let resync_at = self.resync_at;
            let resync = async move {
                match resync_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                req = requests.recv() => match req {
                    Some(r) => self.on_request(r).await,
                    None => break,
                },
                ev = self.feed.next() => match ev {
                    FeedEvent::Message(m) => self.on_pubsub(&m),
                    FeedEvent::Lost => self.counters.connected.store(false, Ordering::Relaxed),
                    FeedEvent::Retry => self.reconnect().await,
                },
                () = resync => self.resync().await,
                ctl = control.recv() => match ctl {
                    Some(Control::Drain) => self.drain().await,
                    Some(Control::Stop(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(Control::View(reply)) => {
                        let view = self.view().await;
                        let _ = reply.send(view);
                    }
                    None => {}
                },
                _ = tick.tick() => self.heartbeat().await,
            }
        }
    }

    fn tell(&self, msg: ClusterIn) {
        let _ = self.to_hub.send(msg);
    }

    async fn on_request(&mut self, req: ClusterOut) {
        let result = match req {
            ClusterOut::Enter(req) => {
                let conn = req.conn.clone();
                let room = req.room.clone();
                match self.enter(&req).await {
                    Ok(msg) => {
                        self.tell(msg);
                        Ok(())
                    }
                    Err(e) => {
                        self.release(&room).await;
                        self.tell(ClusterIn::Refused {
                            conn,
                            code: ErrorCode::Internal,
                            message: "the cluster's state cannot be reached; try again".into(),
                        });
                        Err(e)
                    }
                }
            }
            ClusterOut::Left {
                room,
                id,
                resume_token,
            } => {
                let token = match self.local.remove(&id) {
                    Some(l) => {
                        if let Some(s) = self.subs.get_mut(&l.room) {
                            s.local = s.local.saturating_sub(1);
                        }
                        l.resume_token
                    }
                    None => resume_token,
                };
                let r = self.store.leave(&self.me.id, &room, &id, &token).await;
                self.release(&room).await;
                if r.is_err() {
                    self.unsent_leaves.push(UnsentLeave {
                        room,
                        id,
                        resume_token: token,
                    });
                }
                r.map(|_| ())
            }
            ClusterOut::Media { room, id, media } => match self.local.get_mut(&id) {
                Some(l) => {
                    l.record.info.media = media.clone();
                    let record = l.record.clone();
                    self.store
                        .set_media(&self.me.id, &room, &record, &media)
                        .await
                        .map(|_| ())
                }
                None => Ok(()),
            },
            ClusterOut::Relay { node, to, message } => {
                self.store
                    .send_to(&node, &NodeMessage::Relay { to, message })
                    .await
            }
            ClusterOut::RelaySdp {
                node,
                room,
                kind,
                sdp,
            } => {
                let mac = relay_mac(
                    &self.cfg.secret,
                    room.as_str(),
                    &self.me.id,
                    &node,
                    kind,
                    &sdp,
                );
                let msg = NodeMessage::RelaySdp {
                    room: room.to_string(),
                    from: self.me.id.clone(),
                    kind,
                    sdp,
                    mac,
                };
                self.store.send_to(&node, &msg).await
            }
            ClusterOut::RelayStreams {
                node,
                room,
                publisher,
                track,
                active,
            } => {
                let mac = streams_mac(
                    &self.cfg.secret,
                    room.as_str(),
                    &self.me.id,
                    &node,
                    &publisher,
                    &track,
                    &active,
                );
                let msg = NodeMessage::RelayStreams {
                    room: room.to_string(),
                    from: self.me.id.clone(),
                    publisher,
                    track,
                    active,
                    mac,
                };
                self.store.send_to(&node, &msg).await
            }
        };
        if let Err(e) = result {
            tracing::warn!("cluster: {e}");
        }
    }

    /// Listens to a room's events before entering a member in it, so no
    /// event after the snapshot is missed.
    async fn listen(&mut self, room: &RoomName) -> Result<(), ClusterError> {
        if !self.subs.contains_key(room) {
            self.feed
                .subscribe(self.store.events_channel(room.as_str()))
                .await?;
            self.subs.insert(room.clone(), Sub { ver: 0, local: 0 });
        }
        Ok(())
    }

    /// Stops listening to a room with no member here.
    async fn release(&mut self, room: &RoomName) {
        if self.subs.get(room).is_some_and(|s| s.local == 0) {
            self.subs.remove(room);
            self.feed
                .unsubscribe(&self.store.events_channel(room.as_str()))
                .await;
        }
    }

    /// This node's entry with its latest load, for placement.
    fn candidates(&self) -> Vec<NodeInfo> {
        let mut nodes: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| n.id != self.me.id)
            .cloned()
            .collect();
        let mut me = self.me.clone();
        me.load.participants = self.local.len() as u32;
        nodes.push(me);
        nodes
    }

    /// Places a join: redirect, take a place over, or enter it here.
    async fn enter(&mut self, req: &EnterRequest) -> Result<ClusterIn, ClusterError> {
        let room = &req.room;
        self.listen(room).await?;
        for attempt in 0..4 {
            let rec = self.store.room(room).await?;
            let mode = rec.mode.or(req.mode).unwrap_or(req.default_mode);
            let last = attempt == 3;
            if req.redirect && !last {
                let nodes = self.candidates();
                let serving: &[(NodeId, u32)] = if mode == RoomMode::Sfu {
                    &rec.nodes
                } else {
                    // A P2P member costs a node only signaling, and
                    // members on different nodes are relayed: it stays
                    // where it arrived unless this node should not take it.
                    &[]
                };
                let stay = mode == RoomMode::P2p
                    && !self.me.draining
                    && self.limits.has_headroom(nodes.last().unwrap_or(&self.me));
                if !stay {
                    let target = select(
                        serving,
                        rec.home.as_ref(),
                        &nodes,
                        &self.limits,
                        &self.me.region,
                    );
                    if let Some(t) = target.filter(|t| t.id != self.me.id) {
                        self.release(room).await;
                        return Ok(ClusterIn::Redirect {
                            conn: req.conn.clone(),
                            room: room.clone(),
                            url: t.url.clone(),
                            node: t.id.clone(),
                        });
                    }
                }
            }
            if let Some(token) = &req.resume {
                if let Some(t) = self.store.take_over(&self.me.id, room, token).await? {
                    let id = t.member.info.id.clone();
                    self.adopt(room, id, t.member.clone(), token.clone(), t.ver);
                    return Ok(ClusterIn::Entered {
                        conn: req.conn.clone(),
                        room: room.clone(),
                        mode: t.mode,
                        members: self.members(t.members),
                        taken: Some(TakenPlace {
                            info: t.member.info,
                            identity: t.member.identity,
                            resume_token: token.clone(),
                        }),
                    });
                }
            }
            let record = MemberRecord {
                info: req.member.clone(),
                identity: req.identity.clone(),
            };
            let args = EnterArgs {
                me: &self.me.id,
                room,
                mode: req.mode,
                default_mode: req.default_mode,
                max_p2p: self.rooms_cfg.max_p2p_participants,
                max_sfu: self.rooms_cfg.max_sfu_participants,
                member: &record,
                guard: req.redirect && rec.mode.is_none() && !last,
                resume_token: &req.resume_token,
            };
            let refuse = |code, message: String| ClusterIn::Refused {
                conn: req.conn.clone(),
                code,
                message,
            };
            match self.store.enter(&args).await? {
                EnterOutcome::Entered { mode, ver, members } => {
                    let id = req.member.id.clone();
                    self.adopt(room, id, record, req.resume_token.clone(), ver);
                    return Ok(ClusterIn::Entered {
                        conn: req.conn.clone(),
                        room: room.clone(),
                        mode,
                        members: self.members(members),
                        taken: None,
                    });
                }
                EnterOutcome::ModeMismatch(m) => {
                    self.release(room).await;
                    return Ok(refuse(
                        ErrorCode::ModeMismatch,
                        format!("room `{room}` is a {} room", m.as_str()),
                    ));
                }
                EnterOutcome::RoomFull(m) => {
                    self.release(room).await;
                    let msg = match m {
                        RoomMode::P2p => format!(
                            "P2P room `{room}` is full ({} participants, a full mesh); use an SFU room for more",
                            self.rooms_cfg.max_p2p_participants
                        ),
                        RoomMode::Sfu => format!(
                            "room `{room}` is full ({} participants)",
                            self.rooms_cfg.max_sfu_participants
                        ),
                    };
                    return Ok(refuse(ErrorCode::RoomFull, msg));
                }
                EnterOutcome::Elsewhere => continue,
            }
        }
        Err(ClusterError::Reply("placement did not settle".into()))
    }

    /// Records a member now served here.
    fn adopt(
        &mut self,
        room: &RoomName,
        id: ParticipantId,
        record: MemberRecord,
        token: String,
        ver: u64,
    ) {
        if let Some(s) = self.subs.get_mut(room) {
            s.ver = s.ver.max(ver);
            if !self.local.contains_key(&id) {
                s.local += 1;
            }
        }
        self.local.insert(
            id,
            Local {
                room: room.clone(),
                record,
                resume_token: token,
            },
        );
    }

    /// A snapshot for the hub: this node's members with `node: None`.
    fn members(&self, list: Vec<(MemberRecord, NodeId)>) -> Vec<Member> {
        list.into_iter()
            .map(|(m, node)| Member {
                info: m.info,
                node: (node != self.me.id).then_some(node),
            })
            .collect()
    }

    fn on_pubsub(&mut self, msg: &redis::Msg) {
        let Ok(payload) = msg.get_payload::<String>() else {
            return;
        };
        if msg.get_channel_name() == self.store.node_channel(&self.me.id) {
            match serde_json::from_str::<NodeMessage>(&payload) {
                Ok(NodeMessage::Relay { to, message }) => {
                    self.tell(ClusterIn::Relayed { to, message })
                }
                Ok(NodeMessage::RelaySdp {
                    room,
                    from,
                    kind,
                    sdp,
                    mac,
                }) => {
                    let want = relay_mac(&self.cfg.secret, &room, &from, &self.me.id, kind, &sdp);
                    let Some(room) = RoomName::parse(&room) else {
                        return;
                    };
                    if !super::store::constant_time_eq(&want, &mac) {
                        tracing::warn!(%from, %room, "cluster: a relay offer or answer with a wrong MAC (another [cluster] secret?): dropped");
                        return;
                    }
                    self.tell(ClusterIn::RelaySdp {
                        room,
                        node: from,
                        kind,
                        sdp,
                    })
                }
                Ok(NodeMessage::RelayStreams {
                    room,
                    from,
                    publisher,
                    track,
                    active,
                    mac,
                }) => {
                    let want = streams_mac(
                        &self.cfg.secret,
                        &room,
                        &from,
                        &self.me.id,
                        &publisher,
                        &track,
                        &active,
                    );
                    let Some(room) = RoomName::parse(&room) else {
                        return;
                    };
                    if !super::store::constant_time_eq(&want, &mac) {
                        tracing::warn!(%from, %room, "cluster: relay stream needs with a wrong MAC (another [cluster] secret?): dropped");
                        return;
                    }
                    self.tell(ClusterIn::RelayStreams {
                        room,
                        node: from,
                        publisher,
                        track,
                        active,
                    })
                }
                Err(e) => tracing::debug!("cluster: unreadable node message: {e}"),
            }
            return;
        }
        let event = match serde_json::from_str::<RoomEvent>(&payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("cluster: unreadable room event: {e}");
                return;
            }
        };
        let room_name = match &event {
            RoomEvent::Joined { room, .. }
            | RoomEvent::Left { room, .. }
            | RoomEvent::Media { room, .. }
            | RoomEvent::Moved { room, .. } => room.clone(),
        };
        let Some(room) = RoomName::parse(&room_name) else {
            return;
        };
        let Some(sub) = self.subs.get_mut(&room) else {
            return;
        };
        if event.ver() <= sub.ver {
            return;
        }
        sub.ver = event.ver();
        if event.node() == &self.me.id {
            return;
        }
        let msg = match event {
            RoomEvent::Joined { node, member, .. } => ClusterIn::Joined {
                room,
                member: Member {
                    info: member.info,
                    node: Some(node),
                },
            },
            RoomEvent::Left { id, .. } => ClusterIn::Left { room, id },
            RoomEvent::Media { id, media, .. } => ClusterIn::Media { room, id, media },
            RoomEvent::Moved { id, node, .. } => {
                if self.local.remove(&id).is_some() {
                    sub.local = sub.local.saturating_sub(1);
                }
                ClusterIn::Moved { room, id, node }
            }
        };
        self.tell(msg);
    }

    /// Refreshes this node's entry, reads the others, reaps the dead.
    async fn heartbeat(&mut self) {
        self.me.load = self.sample();
        match self.store.register(&self.me, self.cfg.node_ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(node = %self.me.id, "cluster: this node's entry was gone (taken for dead, or Redis restarted without its data); entering its members again");
                self.reenter().await;
            }
            Err(e) => {
                tracing::warn!("cluster: heartbeat failed: {e}");
                return;
            }
        }
        self.send_unsent_leaves().await;
        match self.store.nodes().await {
            Ok((live, dead)) => {
                self.nodes = live;
                for node in dead {
                    match self.store.reap(&node).await {
                        Ok(n) => {
                            tracing::info!(%node, participants = n, "cluster: node gone; its participants left their rooms")
                        }
                        Err(e) => tracing::warn!(%node, "cluster: cannot reap a dead node: {e}"),
                    }
                }
            }
            Err(e) => tracing::warn!("cluster: cannot read the nodes: {e}"),
        }
    }

    /// Records the leaves Redis missed while it was down.
    async fn send_unsent_leaves(&mut self) {
        while let Some(l) = self.unsent_leaves.pop() {
            let r = self
                .store
                .leave(&self.me.id, &l.room, &l.id, &l.resume_token)
                .await;
            if let Err(e) = r {
                tracing::warn!("cluster: cannot record a leave: {e}");
                self.unsent_leaves.push(l);
                return;
            }
        }
    }

    /// The pub/sub connection's next attempt to come back is due.
    async fn reconnect(&mut self) {
        if self.feed.reconnect().await.is_err() {
            return;
        }
        self.counters.connected.store(true, Ordering::Relaxed);
        self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        // Events published while the feed was down are lost, and a Redis
        // that restarted counts room versions from zero again: accept every
        // event from now on.
        for s in self.subs.values_mut() {
            s.ver = 0;
        }
        self.heartbeat().await;
        self.resync_at = Some(tokio::time::Instant::now() + self.cfg.node_ttl);
    }

    /// Hands the hub every room with members here as Redis holds it now,
    /// for what it missed while the feed was down. Called a `node_ttl`
    /// after the feed came back: by then every live node has refreshed its
    /// entry and, after a restart of Redis, put its members back.
    async fn resync(&mut self) {
        self.resync_at = None;
        let rooms: Vec<RoomName> = self.subs.keys().cloned().collect();
        for room in rooms {
            match self.store.room_members(&room).await {
                Ok((ver, list)) => {
                    if let Some(s) = self.subs.get_mut(&room) {
                        s.ver = s.ver.max(ver);
                    }
                    let members = self.members(list);
                    self.tell(ClusterIn::Snapshot { room, members });
                }
                Err(e) => {
                    tracing::warn!(%room, "cluster: cannot read a room again: {e}");
                    let retry = self.cfg.heartbeat.max(Duration::from_millis(50));
                    self.resync_at = Some(tokio::time::Instant::now() + retry);
                    return;
                }
            }
        }
    }

    /// This node's load now.
    fn sample(&mut self) -> Load {
        let now = Instant::now();
        let cpu = self.cpu.as_ref().and_then(|p| p());
        let media = self.media.as_ref().map(|m| m.stats());
        let packets = media.as_ref().map_or(0, |m| m.packets_out);
        let mut load = Load {
            cpu_percent: 0.0,
            participants: self.local.len() as u32,
            tracks: media.as_ref().map_or(0, |m| m.tracks as u32),
            packets_per_second: 0,
        };
        if let Some((then, cpu_then, packets_then)) = self.last_sample {
            let dt = now.duration_since(then).as_secs_f64();
            if dt > 0.0 {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                if let Some(c) = cpu {
                    load.cpu_percent = ((c - cpu_then) / dt / cores * 100.0).clamp(0.0, 100.0);
                }
                load.packets_per_second = (packets.saturating_sub(packets_then) as f64 / dt) as u64;
            }
        }
        self.last_sample = Some((now, cpu.unwrap_or(0.0), packets));
        load
    }

    /// After this node was taken for dead: its members were removed from
    /// their rooms, so they go back in (the rooms see them return).
    async fn reenter(&mut self) {
        let members: Vec<(RoomName, MemberRecord, String)> = self
            .local
            .values()
            .map(|l| (l.room.clone(), l.record.clone(), l.resume_token.clone()))
            .collect();
        for (room, record, token) in members {
            let args = EnterArgs {
                me: &self.me.id,
                room: &room,
                mode: None,
                default_mode: self.rooms_cfg.default_mode,
                max_p2p: usize::MAX,
                max_sfu: usize::MAX,
                member: &record,
                guard: false,
                resume_token: &token,
            };
            if let Err(e) = self.store.enter(&args).await {
                tracing::warn!("cluster: cannot enter a member again: {e}");
            }
        }
    }

    async fn drain(&mut self) {
        self.me.draining = true;
        if let Err(e) = self.store.register(&self.me, self.cfg.node_ttl).await {
            tracing::warn!("cluster: cannot mark this node draining: {e}");
        }
        let rooms: Vec<RoomName> = self
            .subs
            .iter()
            .filter(|(_, s)| s.local > 0)
            .map(|(r, _)| r.clone())
            .collect();
        let others: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| n.id != self.me.id)
            .cloned()
            .collect();
        for room in rooms {
            let rec = match self.store.room(&room).await {
                Ok(r) => r,
                Err(e @ ClusterError::Reply(_)) => {
                    tracing::warn!(%room, "cluster: {e}");
                    continue;
                }
                Err(e) => {
                    // Redis is unreachable: the other rooms cannot be
                    // read either, and each try would hold up `stop`.
                    tracing::warn!("cluster: cannot move participants to other nodes: {e}");
                    break;
                }
            };
            let serving: Vec<(NodeId, u32)> = rec
                .nodes
                .into_iter()
                .filter(|(n, _)| *n != self.me.id)
                .collect();
            match select(
                &serving,
                rec.home.as_ref(),
                &others,
                &self.limits,
                &self.me.region,
            ) {
                Some(t) => self.tell(ClusterIn::Move {
                    room,
                    url: t.url.clone(),
                    node: t.id.clone(),
                }),
                None => {
                    tracing::warn!(%room, "cluster: no other node to move this room's participants to")
                }
            }
        }
    }

    async fn stop(&mut self) {
        match self.store.reap(&self.me.id).await {
            Ok(n) => tracing::info!(participants = n, "cluster: left the cluster"),
            Err(e) => tracing::warn!("cluster: cannot leave the cluster cleanly: {e}"),
        }
    }

    async fn view(&self) -> Option<ClusterView> {
        let (nodes, _) = self.store.nodes().await.ok()?;
        let rooms = self.store.rooms().await.ok()?;
        Some(ClusterView {
            node: self.me.id.clone(),
            nodes,
            rooms,
        })
    }
}
