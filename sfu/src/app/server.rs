//! Starts everything: the media plane, signaling, and the HTTP(S) listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use signaling::cluster::ClusterNode;
use signaling::listen::{self, ConnCounter};
use signaling::media::{MediaEventReceiver, MediaPlane};
use signaling::server::Signaling;
use tokio_rustls::TlsAcceptor;

use super::config::Config;
use super::web::{self, FramePolicy};

/// The SFU media plane for SFU rooms and its media address, or `None`
/// when it cannot start.
fn media_plane(cfg: &Config) -> Option<(Arc<dyn MediaPlane>, MediaEventReceiver, SocketAddr)> {
    match sfu::SfuPlane::start(&cfg.media) {
        Ok((plane, events)) => {
            let addr = plane.local_addr();
            let ip = cfg.media.advertise.first().copied().unwrap_or(addr.ip());
            Some((
                plane as Arc<dyn MediaPlane>,
                events,
                SocketAddr::new(ip, addr.port()),
            ))
        }
        Err(e) => {
            tracing::error!(
                "media plane unavailable (cannot bind UDP {}:{}): {e}; serving P2P rooms only",
                cfg.media.bind,
                cfg.media.udp_port
            );
            None
        }
    }
}

/// The whole HTTP surface: with `[server] stats_listen` set, the
/// statistics (`/api/stats`, `/metrics`) are left out of it and served only
/// there (see [`stats_app`]).
pub fn app(cfg: &Config, sig: Signaling) -> Router {
    let policy = FramePolicy::new(&cfg.web.frame_ancestors, sig.auth().is_development());
    let public = signaling::http::public_router(sig.clone()).merge(web::router(policy));
    if cfg.server.stats_listen.is_some() {
        public
    } else {
        public.merge(stats_app(sig))
    }
}

/// `/api/stats`, `/api/cluster` and `/metrics`.
pub fn stats_app(sig: Signaling) -> Router {
    signaling::http::stats_router(sig.clone())
        .merge(signaling::cluster::view::router(sig.clone()))
        .merge(super::metrics::router(sig))
}

/// The URL clients of other nodes are sent to: `[cluster] url`, or this
/// server's listen address.
fn node_url(cfg: &Config, listen: SocketAddr) -> String {
    if !cfg.cluster.url.trim().is_empty() {
        return cfg.cluster.url.trim().to_owned();
    }
    let scheme = if cfg.server.tls_cert.is_some() {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{listen}/ws")
}

/// Signaling, joined to the cluster when `[cluster] redis` is set.
async fn signaling(
    cfg: &Config,
    media: Option<(Arc<dyn MediaPlane>, MediaEventReceiver)>,
    media_addr: String,
    listen: SocketAddr,
) -> anyhow::Result<Signaling> {
    if !cfg.cluster.enabled() {
        return Ok(Signaling::start(cfg.signaling(), media));
    }
    let cpu: signaling::cluster::CpuProbe =
        Box::new(|| super::metrics::ProcessStats::read().map(|p| p.cpu_seconds));
    let url = node_url(cfg, listen);
    let node = ClusterNode::connect(&cfg.cluster, &cfg.rooms, url.clone(), media_addr, Some(cpu))
        .await
        .map_err(|e| anyhow::anyhow!("cannot join the cluster at {}: {e}", cfg.cluster.redis))?;
    tracing::info!(node = %node.id(), %url, "joined the cluster");
    if cfg.cluster.secret.trim().is_empty() {
        // Relays still work (every node uses the same empty key), but any
        // client of the Redis could then offer a node a relay.
        tracing::warn!(
            "[cluster] secret is empty: media relays between nodes are not authenticated"
        );
    }
    Ok(Signaling::start_clustered(cfg.signaling(), media, node).await?)
}

/// SIGTERM and SIGINT, caught from the server's first moment: a signal
/// that arrives while it starts stops it cleanly too, instead of killing it
/// by the default action.
struct StopSignals {
    term: std::io::Result<tokio::signal::unix::Signal>,
    int: std::io::Result<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn catch() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        StopSignals {
            term: signal(SignalKind::terminate()),
            int: signal(SignalKind::interrupt()),
        }
    }
}

/// In a cluster, SIGTERM drains the node: no new participants, the ones
/// here are told to move, and the node leaves once they have (or after
/// `[cluster] drain_timeout`). Without a cluster, SIGTERM or SIGINT stops
/// the server at once. Either way the signal is caught rather than left to
/// its default action: as a container's first process (PID 1) the server
/// would otherwise never see it, and `docker stop` would wait its 10 s and
/// kill it.
async fn drained(sig: Signaling, timeout: std::time::Duration, signals: StopSignals) {
    let Some(cluster) = sig.cluster().cloned() else {
        return stop_signal(signals).await;
    };
    let mut term = match signals.term {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot catch SIGTERM ({e}); the node will not drain");
            return std::future::pending().await;
        }
    };
    term.recv().await;
    tracing::info!("SIGTERM: draining (moving participants to other nodes)");
    cluster.drain();
    let end = tokio::time::Instant::now() + timeout;
    loop {
        let left = sig.stats().await.participants;
        if left == 0 {
            tracing::info!("drained: every participant moved");
            break;
        }
        if tokio::time::Instant::now() >= end {
            tracing::warn!(
                participants = left,
                "drain timeout: leaving with participants still here"
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    cluster.stop().await;
}

/// Resolves on SIGTERM or SIGINT (never, if neither can be caught).
async fn stop_signal(signals: StopSignals) {
    let (mut term, mut int) = match (signals.term, signals.int) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(
                "cannot catch SIGTERM and SIGINT ({e}); they end the process unannounced"
            );
            return std::future::pending().await;
        }
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!("{name}: stopping");
}

/// Runs the server until it is stopped.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let signals = StopSignals::catch();
    let listener = tokio::net::TcpListener::bind(cfg.server.listen).await?;
    let (media, media_addr) = match media_plane(&cfg) {
        Some((plane, events, addr)) => (Some((plane, events)), addr.to_string()),
        None => (None, String::new()),
    };
    let sig = signaling(&cfg, media, media_addr, listener.local_addr()?).await?;
    if sig.auth().is_development() {
        tracing::warn!("DEVELOPMENT MODE: no API keys configured, so anyone may join any room without a token and POST /api/token mints tokens. Configure [auth] keys before exposing this server.");
    }
    let limits = cfg.limits.clone();
    let counter = ConnCounter::default();
    if let Some(addr) = cfg.server.stats_listen {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!("statistics on http://{}", listener.local_addr()?);
        let stats = stats_app(sig.clone());
        let (limits, counter) = (limits.clone(), counter.clone());
        tokio::spawn(async move {
            if let Err(e) =
                listen::serve_with(listener, stats, limits, counter, |s| async { Ok(s) }).await
            {
                tracing::error!("statistics listener failed: {e}");
            }
        });
    }
    let app = app(&cfg, sig.clone());
    let drain = drained(sig, cfg.cluster.drain_timeout, signals);
    tokio::select! {
        r = serve(&cfg, listener, app, limits, counter) => r,
        () = drain => Ok(()),
    }
}

async fn serve(
    cfg: &Config,
    listener: tokio::net::TcpListener,
    app: Router,
    limits: signaling::config::LimitsConfig,
    counter: ConnCounter,
) -> anyhow::Result<()> {
    match (&cfg.server.tls_cert, &cfg.server.tls_key) {
        (Some(cert), Some(key)) => {
            let acceptor = tls_acceptor(cert, key)?;
            tracing::info!("listening on https://{}", listener.local_addr()?);
            listen::serve_with(listener, app, limits, counter, move |s| {
                let acceptor = acceptor.clone();
                async move { acceptor.accept(s).await }
            })
            .await?;
        }
        _ => {
            tracing::info!("listening on http://{}", listener.local_addr()?);
            listen::serve_with(listener, app, limits, counter, |s| async { Ok(s) }).await?;
        }
    }
    Ok(())
}

/// TLS for HTTPS and WSS from PEM files. HTTP/1.1 only: the WebSocket
/// upgrade needs it.
fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(tls)))
}
