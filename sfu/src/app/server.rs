//! Starts everything: the media plane, signaling, and the HTTP(S) listener.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use signaling::listen::{self, ConnCounter};
use signaling::media::{MediaEventReceiver, MediaPlane};
use signaling::server::Signaling;
use tokio_rustls::TlsAcceptor;

use super::config::Config;
use super::web::{self, FramePolicy};

/// The SFU media plane for SFU rooms, or `None` when it cannot start.
fn media_plane(cfg: &Config) -> Option<(Arc<dyn MediaPlane>, MediaEventReceiver)> {
    match sfu::SfuPlane::start(&cfg.media) {
        Ok((plane, events)) => Some((plane as Arc<dyn MediaPlane>, events)),
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

/// `/api/stats` and `/metrics`.
pub fn stats_app(sig: Signaling) -> Router {
    signaling::http::stats_router(sig.clone()).merge(super::metrics::router(sig))
}

/// Runs the server until it is stopped.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let media = media_plane(&cfg);
    let sig = Signaling::start(cfg.signaling(), media);
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
    let app = app(&cfg, sig);
    let listener = tokio::net::TcpListener::bind(cfg.server.listen).await?;
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
