//! Runs the [`Hub`] on one task: the only owner of signaling state.
//!
//! Sockets talk to it through a channel; it answers through one bounded
//! channel per connection. A connection that does not drain its channel
//! (a stalled client) is dropped rather than allowed to hold memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::auth::Auth;
use crate::cluster::{ClusterError, ClusterHandle, ClusterNode};
use crate::config::{AuthConfig, LimitsConfig, SignalingConfig};
use crate::hub::{ClusterIn, ClusterOut, Effects, Hub, HubStats, Input};
use crate::ids::ClientId;
use crate::media::{MediaEventReceiver, MediaPlane, MediaStats};
use crate::protocol::{ClientMessage, Incoming};

/// Frames queued per connection before it counts as stalled.
pub(crate) const OUTBOX: usize = 512;

/// What the hub task sends a session.
#[derive(Debug)]
pub(crate) enum SessionOut {
    Frame(String),
    /// Close the socket (the participant was taken over by a resumed connection).
    Close,
}

pub(crate) enum Command {
    Connect {
        conn: ClientId,
        token: Option<String>,
        out: mpsc::Sender<SessionOut>,
    },
    Message {
        conn: ClientId,
        incoming: Incoming,
    },
    Disconnect {
        conn: ClientId,
        hold: bool,
    },
    Stats(oneshot::Sender<HubStats>),
}

struct Shared {
    tx: mpsc::UnboundedSender<Command>,
    auth: Auth,
    access: AuthConfig,
    limits: LimitsConfig,
    media: Option<Arc<dyn MediaPlane>>,
    /// WebSocket sessions whose task is still alive.
    sessions: AtomicUsize,
    cluster: Option<ClusterHandle>,
}

/// The hub task's link with the cluster task.
struct ClusterLink {
    from: mpsc::UnboundedReceiver<ClusterIn>,
    to: mpsc::UnboundedSender<ClusterOut>,
}

/// A handle to the running signaling service. Cheap to clone.
#[derive(Clone)]
pub struct Signaling {
    shared: Arc<Shared>,
}

impl Signaling {
    /// Starts the hub task. `media` serves SFU rooms; without it only P2P
    /// rooms can be joined. Must be called inside a Tokio runtime.
    pub fn start(
        cfg: SignalingConfig,
        media: Option<(Arc<dyn MediaPlane>, MediaEventReceiver)>,
    ) -> Self {
        let (plane, events) = match media {
            Some((p, e)) => (Some(p), Some(e)),
            None => (None, None),
        };
        let auth = Auth::new(cfg.auth.keys.clone());
        let hub = Self::hub(&cfg, &auth, plane.is_some());
        Self::spawn(cfg, auth, hub, plane, events, None)
    }

    /// Starts the hub task as a node of a cluster (see [`crate::cluster`]).
    pub async fn start_clustered(
        cfg: SignalingConfig,
        media: Option<(Arc<dyn MediaPlane>, MediaEventReceiver)>,
        node: ClusterNode,
    ) -> Result<Self, ClusterError> {
        let (plane, events) = match media {
            Some((p, e)) => (Some(p), Some(e)),
            None => (None, None),
        };
        let auth = Auth::new(cfg.auth.keys.clone());
        let hub = Self::hub(&cfg, &auth, plane.is_some()).in_cluster(node.id().clone());
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let (out_tx, handle) = node.start(in_tx, plane.clone()).await?;
        let link = ClusterLink {
            from: in_rx,
            to: out_tx,
        };
        Ok(Self::spawn(
            cfg,
            auth,
            hub,
            plane,
            events,
            Some((link, handle)),
        ))
    }

    /// One `Auth` for the hub and the HTTP side: in development mode its
    /// secret is made at start-up, and tokens minted over HTTP must verify
    /// in the hub.
    fn hub(cfg: &SignalingConfig, auth: &Auth, media_available: bool) -> Hub {
        Hub::new(
            auth.clone(),
            cfg.rooms.clone(),
            cfg.ice.clone(),
            media_available,
        )
        .with_classic_protocol(cfg.auth.classic_protocol)
    }

    fn spawn(
        cfg: SignalingConfig,
        auth: Auth,
        hub: Hub,
        plane: Option<Arc<dyn MediaPlane>>,
        events: Option<MediaEventReceiver>,
        cluster: Option<(ClusterLink, ClusterHandle)>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (link, handle) = match cluster {
            Some((l, h)) => (Some(l), Some(h)),
            None => (None, None),
        };
        tokio::spawn(drive(hub, rx, events, plane.clone(), link));
        Signaling {
            shared: Arc::new(Shared {
                tx,
                auth,
                access: cfg.auth,
                limits: cfg.limits,
                media: plane,
                sessions: AtomicUsize::new(0),
                cluster: handle,
            }),
        }
    }

    /// The cluster this node belongs to, when `[cluster] redis` is set.
    pub fn cluster(&self) -> Option<&ClusterHandle> {
        self.shared.cluster.as_ref()
    }

    pub fn auth(&self) -> &Auth {
        &self.shared.auth
    }

    /// The `[auth]` section: allowed origins, the stats token.
    pub fn access(&self) -> &AuthConfig {
        &self.shared.access
    }

    pub fn limits(&self) -> &LimitsConfig {
        &self.shared.limits
    }

    pub(crate) fn session_started(&self) -> Signaling {
        self.shared.sessions.fetch_add(1, Ordering::Relaxed);
        self.clone()
    }

    pub(crate) fn session_ended(&self) {
        self.shared.sessions.fetch_sub(1, Ordering::Relaxed);
    }

    /// WebSocket sessions still holding a socket and a queue.
    pub fn open_sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::Relaxed)
    }

    pub(crate) fn send(&self, cmd: Command) {
        // Fails only when the hub task is gone, i.e. at shutdown.
        let _ = self.shared.tx.send(cmd);
    }

    /// Connection, participant and room counts.
    pub async fn stats(&self) -> HubStats {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(tx));
        rx.await.unwrap_or_default()
    }

    /// The media plane's counters, when there is one.
    pub fn media_stats(&self) -> Option<MediaStats> {
        self.shared.media.as_ref().map(|m| m.stats())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn drive(
    mut hub: Hub,
    mut rx: mpsc::UnboundedReceiver<Command>,
    mut events: Option<MediaEventReceiver>,
    media: Option<Arc<dyn MediaPlane>>,
    mut cluster: Option<ClusterLink>,
) {
    let mut outboxes: HashMap<ClientId, mpsc::Sender<SessionOut>> = HashMap::new();
    loop {
        let wait = hub
            .poll_timeout()
            .map(|t| Duration::from_millis(t.saturating_sub(now_ms())))
            .unwrap_or(Duration::from_secs(3600));
        let input = tokio::select! {
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Command::Connect { conn, token, out }) => {
                    outboxes.insert(conn.clone(), out);
                    Input::Connected { conn, token }
                }
                Some(Command::Message { conn, incoming }) => Input::Message { conn, incoming },
                Some(Command::Disconnect { conn, hold }) => {
                    outboxes.remove(&conn);
                    Input::Disconnected { conn, hold }
                }
                Some(Command::Stats(reply)) => {
                    let _ = reply.send(hub.stats());
                    continue;
                }
            },
            Some(ev) = async { match events.as_mut() { Some(e) => e.recv().await, None => None } } => Input::Media(ev),
            Some(c) = async { match cluster.as_mut() { Some(l) => l.from.recv().await, None => None } } => Input::Cluster(c),
            _ = tokio::time::sleep(wait) => Input::Timeout,
        };
        // Only a join is refused for it: read the plane's state for those.
        if let Input::Message { incoming, .. } = &input {
            if matches!(incoming.message, ClientMessage::Join { .. }) {
                hub.set_media_at_capacity(media.as_ref().is_some_and(|m| m.at_capacity()));
            }
        }
        let mut fx = hub.handle(input, now_ms());
        if let Some(link) = &cluster {
            for c in fx.cluster.drain(..) {
                let _ = link.to.send(c);
            }
        }
        apply(fx, &mut outboxes, media.as_deref());
    }
}

fn apply(
    fx: Effects,
    outboxes: &mut HashMap<ClientId, mpsc::Sender<SessionOut>>,
    media: Option<&dyn MediaPlane>,
) {
    for (conn, msg) in fx.sends {
        let Some(out) = outboxes.get(&conn) else {
            continue;
        };
        if out.try_send(SessionOut::Frame(msg.to_json())).is_err() {
            tracing::warn!(%conn, "client is not reading its messages; closing its socket");
            // Dropping the sender ends the session (at once, or when its
            // write in progress times out): it closes the socket with 1008,
            // frees the queue and reports the disconnect, so the
            // participant leaves its room.
            outboxes.remove(&conn);
        }
    }
    if let Some(media) = media {
        for cmd in fx.media {
            media.handle(cmd);
        }
    }
    for conn in fx.closes {
        if let Some(out) = outboxes.remove(&conn) {
            let _ = out.try_send(SessionOut::Close);
        }
    }
}
