//! ICE over TCP on the media port (RFC 6544, passive candidates), for
//! clients whose networks drop UDP.
//!
//! A client connects to the media port over TCP and sends its datagrams
//! framed as RFC 4571 says: a 16-bit big-endian length, then the datagram.
//! Each frame goes through the same path as a UDP datagram from the
//! connection's remote address (STUN routing, then the owning shard), and
//! what a shard sends to that address goes back on the connection, framed
//! the same way. To the media library the connection is one more remote
//! address; the candidates it is reached by are added by the shard.
//!
//! Nothing is trusted before a binding request signed with a connection's
//! password arrives on it: until then a connection is closed after
//! [`AUTH_WINDOW`], and there are at most [`MAX_CONNECTIONS`], and
//! [`MAX_PER_IP`] from one address. A connection
//! that carries nothing for [`IDLE_TIMEOUT`] (consent checks come every few
//! seconds) is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Connections held at most; more are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections held at most from one IP address (a browser opens one per
/// peer connection; a few tabs behind one NAT stay well under it).
pub const MAX_PER_IP: usize = 32;
/// How long a connection may go without an authenticated binding request.
pub const AUTH_WINDOW: Duration = Duration::from_secs(10);
/// How long an authenticated connection may carry nothing.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(40);
/// Frames queued toward one connection; more are dropped (and counted).
const QUEUE: usize = 512;
/// Frames queued from all connections toward the receiving shard.
pub const INBOUND_QUEUE: usize = 4096;
/// The largest frame taken: a datagram the UDP path would take.
const MAX_FRAME: usize = 1500;

/// The open TCP connections, by remote address, shared by every shard.
#[derive(Default)]
pub struct Connections {
    by_addr: Mutex<HashMap<SocketAddr, Conn>>,
    /// `by_addr.len()`, read without the lock on every send.
    count: AtomicUsize,
}

struct Conn {
    tx: mpsc::Sender<BytesMut>,
    authenticated: Arc<AtomicBool>,
}

/// Why a datagram for a TCP connection was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendRefused {
    /// Its queue is full: the client does not read fast enough.
    Full,
    /// It closed.
    Closed,
}

impl Connections {
    /// Whether any connection is open (no lock).
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Takes out of `out` every datagram addressed to a TCP connection
    /// and queues it there; returns how many could not be queued.
    pub fn divert(&self, out: &mut Vec<(SocketAddr, BytesMut)>) -> usize {
        if !self.any() {
            return 0;
        }
        let map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let mut refused = 0;
        out.retain_mut(|(to, data)| match map.get(to) {
            Some(c) => {
                if c.tx.try_send(std::mem::take(data)).is_err() {
                    refused += 1;
                }
                false
            }
            None => true,
        });
        refused
    }

    /// Whether `addr` is an open TCP connection's remote address.
    pub fn contains(&self, addr: &SocketAddr) -> bool {
        if !self.any() {
            return false;
        }
        let map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        map.contains_key(addr)
    }

    /// Marks the connection from `addr` authenticated (a signed binding
    /// request arrived on it); no-op for a UDP address.
    pub fn authenticated(&self, addr: SocketAddr) {
        if !self.any() {
            return;
        }
        let map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(&addr) {
            c.authenticated.store(true, Ordering::Relaxed);
        }
    }

    fn add(&self, addr: SocketAddr, tx: mpsc::Sender<BytesMut>) -> Option<Arc<AtomicBool>> {
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let from_ip = map.keys().filter(|a| a.ip() == addr.ip()).count();
        if map.len() >= MAX_CONNECTIONS || from_ip >= MAX_PER_IP || map.contains_key(&addr) {
            return None;
        }
        let authenticated = Arc::new(AtomicBool::new(false));
        map.insert(
            addr,
            Conn {
                tx,
                authenticated: authenticated.clone(),
            },
        );
        self.count.store(map.len(), Ordering::Relaxed);
        Some(authenticated)
    }

    fn remove(&self, addr: SocketAddr) {
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&addr);
        self.count.store(map.len(), Ordering::Relaxed);
    }
}

/// Accepts connections on `listener` for as long as the task runs; each
/// frame received is sent to `inbound` with the connection's address.
/// Runs on the receiving shard's runtime. `refused` counts connections
/// turned away and frames dropped because `inbound` was full.
pub async fn accept(
    listener: TcpListener,
    conns: Arc<Connections>,
    inbound: mpsc::Sender<(SocketAddr, BytesMut)>,
    refused: Arc<AtomicUsize>,
) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::debug!("media TCP accept error: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let Some(authenticated) = conns.add(addr, tx) else {
            refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conns = conns.clone();
        let inbound = inbound.clone();
        let refused = refused.clone();
        tokio::spawn(async move {
            serve(stream, rx, &inbound, &authenticated, &refused).await;
            conns.remove(addr);
        });
    }
}

/// One connection: frames in go to `inbound`, queued datagrams go out,
/// until either side ends, a frame is malformed, or a timeout passes.
async fn serve(
    stream: TcpStream,
    mut rx: mpsc::Receiver<BytesMut>,
    inbound: &mpsc::Sender<(SocketAddr, BytesMut)>,
    authenticated: &AtomicBool,
    refused: &AtomicUsize,
) {
    let Ok(addr) = stream.peer_addr() else {
        return;
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = async move {
        while let Some(data) = rx.recv().await {
            let Ok(len) = u16::try_from(data.len()) else {
                continue;
            };
            let mut frame = Vec::with_capacity(2 + data.len());
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(&data);
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    let reader = async move {
        let start = tokio::time::Instant::now();
        let mut buf = vec![0u8; MAX_FRAME];
        loop {
            let limit = if authenticated.load(Ordering::Relaxed) {
                IDLE_TIMEOUT
            } else {
                AUTH_WINDOW.saturating_sub(start.elapsed())
            };
            let mut len = [0u8; 2];
            let frame = tokio::time::timeout(limit, async {
                rd.read_exact(&mut len).await?;
                let n = u16::from_be_bytes(len) as usize;
                if n == 0 || n > MAX_FRAME {
                    return Err(std::io::Error::other("frame length out of range"));
                }
                rd.read_exact(&mut buf[..n]).await?;
                Ok(n)
            })
            .await;
            let n = match frame {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::debug!(%addr, "media TCP connection ends: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%addr, "media TCP connection timed out");
                    return;
                }
            };
            if inbound.try_send((addr, BytesMut::from(&buf[..n]))).is_err() {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    // Whichever ends first ends the connection.
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_for_tcp_connections_are_diverted_and_the_rest_stay() {
        let conns = Connections::default();
        let tcp: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let udp: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        conns.add(tcp, tx).unwrap();
        assert!(
            conns.add(tcp, mpsc::channel(1).0).is_none(),
            "one per address"
        );
        let mut out = vec![
            (udp, BytesMut::from(&b"a"[..])),
            (tcp, BytesMut::from(&b"b"[..])),
            (tcp, BytesMut::from(&b"c"[..])),
        ];
        // The second datagram for the connection finds its queue full.
        assert_eq!(conns.divert(&mut out), 1);
        assert_eq!(out, vec![(udp, BytesMut::from(&b"a"[..]))]);
        assert_eq!(rx.try_recv().unwrap(), BytesMut::from(&b"b"[..]));
        conns.remove(tcp);
        assert!(!conns.any());
        for port in 0..MAX_PER_IP as u16 {
            let a = SocketAddr::new(tcp.ip(), 6000 + port);
            assert!(conns.add(a, mpsc::channel(1).0).is_some());
        }
        let one_more = SocketAddr::new(tcp.ip(), 7000);
        assert!(
            conns.add(one_more, mpsc::channel(1).0).is_none(),
            "per-address cap"
        );
        assert!(
            conns.add(udp, mpsc::channel(1).0).is_some(),
            "others still get in"
        );
        for port in 0..MAX_PER_IP as u16 {
            conns.remove(SocketAddr::new(tcp.ip(), 6000 + port));
        }
        conns.remove(udp);
        let mut out = vec![(tcp, BytesMut::from(&b"d"[..]))];
        assert_eq!(conns.divert(&mut out), 0);
        assert_eq!(out.len(), 1, "a closed connection's address is UDP again");
    }
}
