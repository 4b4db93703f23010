//! One bot: a WebSocket session speaking the server's protocol, and its
//! peer connections (one to the server in an SFU room, one per other member
//! in a P2P room).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use signaling::auth::{Auth, Claims, Grants};
use signaling::protocol::RoomMode;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::http;
use crate::outcome::{BotReport, PeerReport};
use crate::peer::{self, PeerCommand, PeerSetup, PeerSignal, Publish};
use crate::plan::{Shared, Target, ViewSize};
use crate::shaper::LinkSpec;
use loadtest::server_msg::{self, ServerMsg};

/// Who the bot is and what it does.
#[derive(Clone)]
pub struct BotSpec {
    pub room: String,
    pub name: String,
    pub mode: RoomMode,
    pub publish: Option<Publish>,
    /// The node to connect to (several nodes of a cluster); `None`: the target's.
    pub node: Option<std::net::SocketAddr>,
    /// The size it shows remote video at: sent as `track-settings` for
    /// every video track the server offers it (SFU rooms).
    pub view: Option<ViewSize>,
    /// Its downlink cap.
    pub downlink: Option<LinkSpec>,
    /// It counts received RTP from clear headers (`--receive count`).
    pub counting: bool,
}

/// Server errors kept per bot for the report.
const MAX_SERVER_ERRORS: usize = 3;

struct PeerHandle {
    tx: mpsc::UnboundedSender<PeerCommand>,
    task: JoinHandle<PeerReport>,
}

/// Gets a token: signed with the configured API key, or minted by the
/// server's development-mode endpoint.
async fn token(target: &Target, spec: &BotSpec, identity: &str) -> anyhow::Result<String> {
    if let Some((key, secret)) = &target.api_key {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: identity.to_owned(),
            room: Some(spec.room.clone()),
            name: Some(spec.name.clone()),
            grants: Grants {
                join: true,
                publish: spec.publish.is_some(),
                subscribe: true,
                admin: false,
            },
            mode: Some(spec.mode),
            exp: now + 3600,
            iat: now,
        };
        let keys = [(key.clone(), secret.clone())].into_iter().collect();
        return Ok(Auth::new(keys).sign(&claims, Some(key))?);
    }
    // Subscribers ask for no publish grant, like a webinar viewer's token:
    // the server then offers them the room's tracks at once.
    let grants = json!({"join": true, "publish": spec.publish.is_some(), "subscribe": true});
    let body = json!({"room": spec.room, "identity": identity, "name": spec.name,
        "mode": spec.mode, "grants": grants});
    let (status, text) =
        http::request(target.http, "POST", "/api/token", Some(&body.to_string())).await?;
    if status != 200 {
        anyhow::bail!("POST /api/token answered {status}: {text}");
    }
    let v: Value = serde_json::from_str(&text)?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("POST /api/token gave no token"))
}

/// Runs a bot until the scenario stops it.
pub async fn run(spec: BotSpec, target: Arc<Target>, shared: Arc<Shared>) -> BotReport {
    let mut report = BotReport {
        name: spec.name.clone(),
        room: spec.room.clone(),
        publisher: spec.publish.is_some(),
        capped: spec.downlink.is_some(),
        view: spec.view,
        ..Default::default()
    };
    let mut peers: HashMap<String, PeerHandle> = HashMap::new();
    let result = session(&spec, &target, &shared, &mut report, &mut peers).await;
    if let Err(e) = result {
        report.error = Some(format!("{e:#}"));
        shared.count_failed();
    }
    for (_, p) in peers.drain() {
        let _ = p.tx.send(PeerCommand::Stop);
        if let Ok(r) = p.task.await {
            report.peers.push(r);
        }
    }
    if debug() {
        let tracks: Vec<String> = report
            .peers
            .iter()
            .flat_map(|p| p.tracks.iter())
            .map(|t| {
                format!(
                    "{}:{}:{}{}",
                    &t.stream[..t.stream.len().min(6)],
                    if t.video { "v" } else { "a" },
                    t.stats.packets,
                    t.layer.current.map(|l| format!("@{l}")).unwrap_or_default()
                )
            })
            .collect();
        let connected: Vec<String> = report
            .peers
            .iter()
            .map(|p| format!("{:?}/{:?}", p.connected_after, p.failed))
            .collect();
        eprintln!(
            "[{} {}] connected {} tracks {}",
            spec.room,
            spec.name,
            connected.join(","),
            tracks.join(" ")
        );
    }
    report
}

async fn session(
    spec: &BotSpec,
    target: &Target,
    shared: &Arc<Shared>,
    report: &mut BotReport,
    peers: &mut HashMap<String, PeerHandle>,
) -> anyhow::Result<()> {
    let identity = format!("{}-{:08x}", spec.name, rand::random::<u32>());
    let token = token(target, spec, &identity).await?;
    let url = format!("ws://{}/ws", spec.node.unwrap_or(target.http));
    // Join time counts from the WebSocket opening (through any redirect).
    let started = Instant::now();
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let (mut ws_tx, mut ws_rx) = ws.split();
    let mut join = json!({"type": "join", "room": spec.room, "token": token, "name": spec.name,
        "mode": spec.mode, "redirect": target.follow_redirects});
    ws_tx.send(Message::text(join.to_string())).await?;

    let (sig_tx, mut sig_rx) = mpsc::unbounded_channel::<(String, PeerSignal)>();
    let mut mode = spec.mode;
    let mut joined = false;
    let mut stop = shared.stop_rx();
    // Tracks `track-settings` went out for: (publisher, track).
    let mut settings_sent: HashSet<(String, String)> = HashSet::new();
    let setup = PeerSetup {
        publish: spec.publish.clone(),
        downlink: spec.downlink,
        counting: spec.counting,
    };
    let ping_every = Duration::from_secs(15);
    let mut next_ping = Instant::now() + ping_every;

    loop {
        tokio::select! {
            frame = ws_rx.next() => {
                let text = match frame {
                    None => anyhow::bail!("the server closed the WebSocket"),
                    Some(Err(e)) => anyhow::bail!("WebSocket error: {e}"),
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) => anyhow::bail!("the server closed the WebSocket"),
                    Some(Ok(_)) => continue,
                };
                let Some(msg) = server_msg::parse(&text) else { continue };
                if debug() {
                    eprintln!("[{} {}] <- {msg:?}", spec.room, spec.name);
                }
                match msg {
                    ServerMsg::Joined { client_id, mode: m, participants } => {
                        joined = true;
                        report.participant = client_id;
                        report.joined_after = Some(started.elapsed());
                        shared.count_joined();
                        mode = m.unwrap_or(spec.mode);
                        if spec.publish.is_some() {
                            let media = json!({"type": "media-state",
                                "microphone": spec.publish.as_ref().is_some_and(|p| p.audio.is_some()),
                                "camera": spec.publish.as_ref().is_some_and(|p| !p.video.is_empty())});
                            ws_tx.send(Message::text(media.to_string())).await?;
                        }
                        match mode {
                            RoomMode::Sfu => {
                                let p = spawn_peer("server", &setup, shared, &sig_tx, started);
                                if spec.publish.is_some() {
                                    let _ = p.tx.send(PeerCommand::MakeOffer);
                                }
                                peers.insert("server".into(), p);
                            }
                            RoomMode::P2p => {
                                // The newcomer offers to everyone already there.
                                for id in participants {
                                    let p = spawn_peer(&id, &setup, shared, &sig_tx, started);
                                    let _ = p.tx.send(PeerCommand::MakeOffer);
                                    peers.insert(id, p);
                                }
                            }
                        }
                    }
                    ServerMsg::Offer { from, sdp } => {
                        if let (RoomMode::Sfu, Some(view)) = (mode, spec.view) {
                            // As the SDK does on `ontrack`: say how each
                            // offered video is shown before any of it arrives.
                            for (publisher, track) in server_msg::offered_video_tracks(&sdp) {
                                if settings_sent.insert((publisher.clone(), track.clone())) {
                                    let m = json!({"type": "track-settings",
                                        "participant": publisher, "track": track,
                                        "visible": true, "width": view.width, "height": view.height});
                                    ws_tx.send(Message::text(m.to_string())).await?;
                                    report.track_settings_sent += 1;
                                }
                            }
                        }
                        let key = peer_key(mode, from);
                        let p = peers.entry(key.clone()).or_insert_with(|| {
                            spawn_peer(&key, &setup, shared, &sig_tx, started)
                        });
                        let _ = p.tx.send(PeerCommand::RemoteOffer(sdp));
                    }
                    ServerMsg::PublisherEncodings { track, encodings } => {
                        if let Some(p) = peers.get("server") {
                            let _ = p.tx.send(PeerCommand::Encodings { track, states: encodings });
                        }
                    }
                    ServerMsg::ActiveSpeakers { .. } => report.active_speaker_events += 1,
                    ServerMsg::Answer { from, sdp } => {
                        if let Some(p) = peers.get(&peer_key(mode, from)) {
                            let _ = p.tx.send(PeerCommand::RemoteAnswer(sdp));
                        }
                    }
                    ServerMsg::Candidate { from, candidate } => {
                        if let Some(p) = peers.get(&peer_key(mode, from)) {
                            let _ = p.tx.send(PeerCommand::RemoteCandidate(candidate));
                        }
                    }
                    ServerMsg::Redirect { addr } if !joined => {
                        // Loopback only, like every address the bots use.
                        if !addr.ip().is_loopback() {
                            anyhow::bail!("redirected to {addr}, which is not a loopback address");
                        }
                        let _ = ws_tx.close().await;
                        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
                        (ws_tx, ws_rx) = ws.split();
                        report.redirected_to = Some(addr);
                        join["redirect"] = Value::Bool(false);
                        ws_tx.send(Message::text(join.to_string())).await?;
                    }
                    ServerMsg::ParticipantLeft { id } if mode == RoomMode::P2p => {
                        if let Some(p) = peers.get(&id) {
                            let _ = p.tx.send(PeerCommand::Stop);
                        }
                    }
                    ServerMsg::Error { code, message, .. } if !joined || code == "media_unavailable" => {
                        anyhow::bail!("server error {code}: {message}");
                    }
                    ServerMsg::Error { code, message, request }
                        if report.server_errors.len() < MAX_SERVER_ERRORS =>
                    {
                        let on = request.map(|r| format!(" (to {r})")).unwrap_or_default();
                        report.server_errors.push(format!("{code}{on}: {message}"));
                    }
                    _ => {}
                }
            }
            Some((peer, signal)) = sig_rx.recv() => {
                let mut frame = match signal {
                    PeerSignal::Offer(sdp) => json!({"type": "offer", "sdp": sdp}),
                    PeerSignal::Answer(sdp) => json!({"type": "answer", "sdp": sdp}),
                    PeerSignal::Error(e) => anyhow::bail!("peer connection: {e}"),
                };
                if mode == RoomMode::P2p {
                    frame["target"] = Value::String(peer);
                }
                if debug() {
                    eprintln!("[{} {}] -> {}", spec.room, spec.name, frame["type"]);
                }
                ws_tx.send(Message::text(frame.to_string())).await?;
            }
            // Keep-alive pings at a fixed interval.
            _ = tokio::time::sleep_until(next_ping.into()) => {
                next_ping = Instant::now() + ping_every;
                ws_tx.send(Message::text(r#"{"type":"ping"}"#)).await?;
            }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    let _ = ws_tx.send(Message::text(r#"{"type":"leave"}"#)).await;
    let _ = ws_tx.close().await;
    Ok(())
}

fn peer_key(mode: RoomMode, from: Option<String>) -> String {
    match mode {
        RoomMode::Sfu => "server".into(),
        RoomMode::P2p => from.unwrap_or_default(),
    }
}

fn spawn_peer(
    key: &str,
    setup: &PeerSetup,
    shared: &Arc<Shared>,
    sig_tx: &mpsc::UnboundedSender<(String, PeerSignal)>,
    started: Instant,
) -> PeerHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let task = tokio::spawn(peer::run(setup.clone(), shared.clone(), rx, ptx, started));
    // Tag the peer's signals with its key for the session loop.
    let key = key.to_owned();
    let out = sig_tx.clone();
    tokio::spawn(async move {
        while let Some(s) = prx.recv().await {
            if out.send((key.clone(), s)).is_err() {
                break;
            }
        }
    });
    PeerHandle { tx, task }
}

/// `LOADTEST_DEBUG=1` traces each bot's signaling on stderr.
fn debug() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LOADTEST_DEBUG").is_some_and(|v| v == "1"))
}
