//! Starts everything: the media plane, signaling, and the HTTP(S) listener.

use std::sync::Arc;

use axum::Router;
use signaling::media::{MediaEventReceiver, MediaPlane};
use signaling::server::Signaling;

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

/// The whole HTTP surface.
pub fn app(cfg: &Config, sig: Signaling) -> Router {
    let policy = FramePolicy::new(&cfg.web.frame_ancestors, sig.auth().is_development());
    signaling::http::router(sig.clone())
        .merge(super::metrics::router(sig))
        .merge(web::router(policy))
}

/// Runs the server until it is stopped.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let media = media_plane(&cfg);
    let sig = Signaling::start(cfg.signaling(), media);
    if sig.auth().is_development() {
        tracing::warn!("DEVELOPMENT MODE: no API keys configured, so anyone may join any room without a token and POST /api/token mints tokens. Configure [auth] keys before exposing this server.");
    }
    let app = app(&cfg, sig);
    let addr = cfg.server.listen;
    match (&cfg.server.tls_cert, &cfg.server.tls_key) {
        (Some(cert), Some(key)) => {
            // Two crypto back-ends are linked (ring for DTLS, and whatever
            // other crates enable), so rustls needs to be told which to use.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            tracing::info!("listening on https://{}", listener.local_addr()?);
            axum_server::from_tcp_rustls(listener, tls)
                .serve(app.into_make_service())
                .await?;
        }
        _ => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tracing::info!("listening on http://{}", listener.local_addr()?);
            axum::serve(listener, app).await?;
        }
    }
    Ok(())
}
