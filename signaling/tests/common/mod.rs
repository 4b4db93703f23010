//! A signaling server on loopback and a WebSocket test client.
#![allow(dead_code)]

pub mod redis;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use signaling::config::SignalingConfig;
use signaling::server::Signaling;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(5);

/// A generous bound for anything that must happen "eventually" on a
/// loaded machine; reaching it means it never happens.
pub const LONG: Duration = Duration::from_secs(30);

/// Polls `cond` until it holds or [`LONG`] passes; true if it held. Only
/// for state that sends no event to await (the server's counters, what
/// Redis holds, a listener with a free place): the pause between polls
/// is a polling interval, not a guess at how long the condition takes.
pub async fn eventually(mut cond: impl AsyncFnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + LONG;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub sig: Signaling,
}

pub async fn server(cfg: SignalingConfig) -> TestServer {
    let limits = cfg.limits.clone();
    let sig = Signaling::start(cfg, None);
    let app = signaling::http::router(sig.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(signaling::listen::serve(listener, app, limits));
    TestServer { addr, sig }
}

/// A node of a cluster on the Redis at `redis_url`: a P2P-only
/// development server (no media plane) named `node`.
pub async fn cluster_node(redis_url: &str, node: &str, mut cfg: SignalingConfig) -> TestServer {
    use signaling::cluster::ClusterNode;
    cfg.rooms.default_mode = signaling::protocol::RoomMode::P2p;
    cfg.cluster.redis = redis_url.to_string();
    cfg.cluster.node_id = node.to_string();
    cfg.cluster.prefix = "test:".into();
    cfg.cluster.heartbeat = Duration::from_millis(200);
    cfg.cluster.node_ttl = Duration::from_millis(1000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cn = ClusterNode::connect(
        &cfg.cluster,
        &cfg.rooms,
        format!("ws://{addr}/ws"),
        String::new(),
        None,
    )
    .await
    .expect("joins the cluster");
    let sig = Signaling::start_clustered(cfg, None, cn).await.unwrap();
    let app =
        signaling::http::router(sig.clone()).merge(signaling::cluster::view::router(sig.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestServer { addr, sig }
}

/// A P2P-only development server (no keys, no media plane).
pub async fn dev_server() -> TestServer {
    let mut cfg = SignalingConfig::default();
    cfg.rooms.default_mode = signaling::protocol::RoomMode::P2p;
    server(cfg).await
}

pub fn keyed(cfg: &mut SignalingConfig) {
    cfg.auth.keys = BTreeMap::from([("main".to_string(), "secret-main".to_string())]);
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Self::connect_url(&format!("ws://{addr}/ws")).await
    }

    pub async fn connect_url(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut c = Client {
            ws,
            id: String::new(),
        };
        let reg = c.recv().await;
        assert_eq!(reg["type"], "registered");
        c.id = reg["clientId"].as_str().unwrap().to_string();
        c
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, t: String) {
        self.ws.send(Message::Text(t.into())).await.unwrap();
    }

    /// The next text message.
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("socket ended")
                .expect("socket error");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                Message::Close(f) => panic!("socket closed: {f:?}"),
                _ => continue,
            }
        }
    }

    /// The next message of the given type, skipping others.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let m = self.recv().await;
            if m["type"] == ty {
                return m;
            }
        }
    }

    /// The next message of the given type, waiting up to `bound`: for what
    /// waits on the cluster noticing something (a node gone, Redis back).
    pub async fn recv_type_within(&mut self, ty: &str, bound: Duration) -> Value {
        let end = tokio::time::Instant::now() + bound;
        loop {
            let msg = tokio::time::timeout_at(end, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no `{ty}` arrived"))
                .expect("socket ended")
                .expect("socket error");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == ty {
                    return v;
                }
            }
        }
    }

    /// Sends and expects an `error` back; returns it.
    pub async fn expect_error(&mut self, v: Value, code: &str) -> Value {
        self.send(v).await;
        let e = self.recv_type("error").await;
        assert_eq!(e["code"], code, "{e}");
        e
    }

    pub async fn join(&mut self, room: &str, name: &str) -> Value {
        self.send(json!({"type":"join","room":room,"name":name}))
            .await;
        self.recv_type("joined").await
    }

    /// Waits for the close frame and returns its code and reason.
    pub async fn closed(&mut self) -> (CloseCode, String) {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for close");
            match msg {
                Some(Ok(Message::Close(Some(f)))) => return (f.code, f.reason.to_string()),
                Some(Ok(Message::Close(None))) | None => panic!("closed without a close frame"),
                Some(Err(e)) => panic!("socket error before close frame: {e}"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Asserts nothing arrives for a short while.
    pub async fn silent(&mut self) {
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(300), self.ws.next()).await
        {
            panic!("unexpected message: {t}");
        }
    }
}

/// A P2P development server with the given reconnect grace, and two clients
/// that joined room `r` (A first), with A's `participant-joined` consumed.
/// Returns B's `joined` too.
pub async fn pair_in_room(grace: Duration) -> (TestServer, Client, Client, Value) {
    let mut cfg = SignalingConfig::default();
    cfg.rooms.default_mode = signaling::protocol::RoomMode::P2p;
    cfg.rooms.reconnect_grace = grace;
    let s = server(cfg).await;
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    a.join("r", "A").await;
    let jb = b.join("r", "B").await;
    a.recv_type("participant-joined").await;
    (s, a, b, jb)
}
