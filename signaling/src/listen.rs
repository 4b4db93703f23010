//! The HTTP listener: accepts TCP connections and serves the router on
//! them, with the protections a public server needs before any request is
//! read: a cap on open connections per IP address, a deadline for the TLS
//! handshake and the request headers, and nothing kept for a connection
//! that is gone.
//!
//! `axum::serve` has none of these knobs, so connections are served with
//! hyper's HTTP/1 server directly (WebSocket upgrades included).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::config::LimitsConfig;

/// Open connections per IP address. Shared by the accept loop and every
/// connection's guard; touched once when a connection opens and once when
/// it closes.
#[derive(Clone, Default)]
pub struct ConnCounter {
    inner: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnCounter {
    /// Counts a new connection from `ip`, or refuses it when `ip` already
    /// has `max` open (0: no limit).
    pub fn admit(&self, ip: IpAddr, max: usize) -> Option<ConnGuard> {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(ConnGuard {
            ip,
            counter: self.clone(),
        })
    }

    /// Open connections from `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&ip).copied().unwrap_or(0)
    }
}

/// Releases its connection's place when dropped.
pub struct ConnGuard {
    ip: IpAddr,
    counter: ConnCounter,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut m = self.counter.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A connection's stream carrying its guard, so the place is held as long
/// as the socket lives, through a WebSocket upgrade too.
struct Guarded<S> {
    inner: S,
    _guard: ConnGuard,
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves `app` on plain TCP until the listener fails.
pub async fn serve(listener: TcpListener, app: Router, limits: LimitsConfig) -> io::Result<()> {
    serve_with(listener, app, limits, ConnCounter::default(), |s| async {
        Ok(s)
    })
    .await
}

/// Serves `app` on every connection `handshake` turns the accepted TCP
/// stream into (TLS, or the stream itself). The handshake and the request
/// headers share `limits.header_read_timeout`.
pub async fn serve_with<H, F, S>(
    listener: TcpListener,
    app: Router,
    limits: LimitsConfig,
    counter: ConnCounter,
    handshake: H,
) -> io::Result<()>
where
    H: Fn(TcpStream) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = io::Result<S>> + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather
                // than spin, and keep serving the connections already open.
                tracing::warn!("accept error: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(guard) = counter.admit(peer.ip(), limits.max_connections_per_ip) else {
            refused(peer);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let handshake = handshake.clone();
        let timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(timeout, handshake(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "handshake timed out");
                    return;
                }
            };
            let io = TokioIo::new(Guarded {
                inner: stream,
                _guard: guard,
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(io, TowerToHyperService::new(app))
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

/// Logs refused connections at most once a minute (an attacker opening
/// connections must not fill the log).
fn refused(peer: SocketAddr) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static LAST_LOG: Mutex<Option<std::time::Instant>> = Mutex::new(None);
    let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    let mut last = LAST_LOG.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::Instant::now();
    if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
        *last = Some(now);
        tracing::warn!(%peer, refused_so_far = n, "too many connections from one address: refused");
    }
}
