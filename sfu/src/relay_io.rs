//! The sockets of this node's full ends of node-to-node relays.
//!
//! A relay's full end (see `shard::relay`) is a full ICE agent, and two
//! relays between the same two nodes must not share a 4-tuple (nothing in
//! DTLS or SRTP tells two connections apart), so each full end gets a UDP
//! socket of its own, bound beside the shared media port. A small task per
//! socket reads it and hands the datagrams to its shard's loop on the same
//! thread; sends go straight out of the shard's loop.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A datagram on a relay socket: (the socket's advertised address, sender, data).
pub type RelayDatagram = (SocketAddr, SocketAddr, BytesMut);

/// One shard's relay sockets. Must live on the shard's Tokio runtime.
pub struct RelaySockets {
    bind: IpAddr,
    advertise: IpAddr,
    /// Polled for reading only (see `crate::read_only`).
    socks: HashMap<SocketAddr, (Arc<AsyncFd<std::net::UdpSocket>>, JoinHandle<()>)>,
    tx: mpsc::UnboundedSender<RelayDatagram>,
    rx: mpsc::UnboundedReceiver<RelayDatagram>,
}

impl RelaySockets {
    pub fn new(bind: IpAddr, advertise: IpAddr) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        RelaySockets {
            bind,
            advertise,
            socks: HashMap::new(),
            tx,
            rx,
        }
    }

    /// Binds a socket on an ephemeral port; returns the address its
    /// connection advertises (and its datagrams are tagged with).
    pub fn open(&mut self) -> io::Result<SocketAddr> {
        let std = std::net::UdpSocket::bind(SocketAddr::new(self.bind, 0))?;
        std.set_nonblocking(true)?;
        let port = std.local_addr()?.port();
        let sock = Arc::new(crate::read_only::register(std)?);
        let local = SocketAddr::new(self.advertise, port);
        let reader = sock.clone();
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let mut ready = match reader.readable().await {
                    Ok(r) => r,
                    // The runtime is going away.
                    Err(_) => return,
                };
                let Ok(got) = ready.try_io(|s| s.get_ref().recv_from(&mut buf)) else {
                    // Read dry: wait again.
                    continue;
                };
                match got {
                    Ok((n, from)) => {
                        if tx.send((local, from, BytesMut::from(&buf[..n]))).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::debug!(%local, "relay socket receive error: {e}"),
                }
            }
        });
        self.socks.insert(local, (sock, task));
        Ok(local)
    }

    pub fn release(&mut self, local: SocketAddr) {
        if let Some((_, task)) = self.socks.remove(&local) {
            task.abort();
        }
    }

    /// Sends without blocking; false when it could not.
    pub fn send(&self, local: SocketAddr, to: SocketAddr, data: &[u8]) -> bool {
        self.socks
            .get(&local)
            .is_some_and(|(s, _)| s.get_ref().send_to(data, to).is_ok())
    }

    /// The next datagram on any relay socket (pending forever without any).
    pub async fn recv(&mut self) -> Option<RelayDatagram> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Option<RelayDatagram> {
        self.rx.try_recv().ok()
    }
}
