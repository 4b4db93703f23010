//! Per-client connected UDP sockets on the media port, so that the shard
//! that owns a connection receives its datagrams itself.
//!
//! The shared socket is read by shard 0, which hands other shards their
//! datagrams (one channel message per wake-up). Once a client's address is
//! bound to a connection (an authenticated STUN request, `core::bind`), the
//! owning shard opens a UDP socket on the same local address and port and
//! `connect()`s it to the client's address. Linux delivers a datagram to the
//! socket whose binding matches it most closely, a connected one before
//! the shared one, so from then on the client's datagrams arrive on its
//! own socket, in the shard that owns it, with no hand-off; the advertised
//! address and port stay the same. Both sockets have `SO_REUSEPORT` (the
//! shared one after its bind, so a second server on the same port still
//! fails to start); connected sockets of a reuseport group take no share
//! of the other traffic (Linux 5.3 and later). One gap remains: between
//! its `bind()` and its `connect()` (two system calls), a new socket is an
//! unconnected member like the shared one, and Linux then gives it what
//! no connected socket takes (measured on 6.18: every such datagram, not a
//! share). Only clients with no connected socket yet send any (a joiner's
//! first checks), so at most a check is lost now and then, which ICE
//! repeats; one that is read is handled by this shard, or counted as from
//! an unknown source. Sends stay on the shared socket: one `sendmmsg` for
//! every destination of a wake-up.
//!
//! A shard waits on all its connected sockets through one epoll instance,
//! itself registered with the shard's runtime: one readiness for any
//! number of sockets. A socket that cannot be opened (the process's file
//! limit, an address family the bind does not allow) leaves that client on
//! the shared socket, counted; nothing is lost either way.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::batch_recv::{enable_arrival_info, Received, RecvBatch};
use crate::core::input_lag::OverflowCount;

/// Raises the process's soft limit of open files to its hard limit: one
/// descriptor per client address. Logged when that leaves it low.
pub fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the one struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return;
        }
        if l.rlim_cur < l.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                l = raised;
            }
        }
    }
    if l.rlim_cur < 4096 {
        tracing::warn!(
            limit = l.rlim_cur,
            "few open files allowed: clients past it stay on the shared media socket (raise `ulimit -n`)"
        );
    }
}

/// Events taken from the epoll instance per call.
const EVENTS: usize = 64;

/// One shard's connected sockets.
pub struct ConnectedSockets {
    epoll: AsyncFd<OwnedFd>,
    local: SocketAddr,
    by_addr: HashMap<SocketAddr, u64>,
    by_token: HashMap<u64, (SocketAddr, UdpSocket, OverflowCount)>,
    next_token: u64,
    /// The shard's address-table version last synced with.
    synced: Option<u64>,
    /// Sockets that could not be opened.
    failed: u64,
}

impl ConnectedSockets {
    /// For the shared socket bound at `local`. Must run inside the shard's
    /// runtime (the epoll instance is registered with it).
    pub fn new(local: SocketAddr) -> io::Result<Self> {
        // SAFETY: epoll_create1 takes a flag and returns a new descriptor
        // or -1; the descriptor is owned from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let epoll = crate::read_only::register(owned)?;
        Ok(ConnectedSockets {
            epoll,
            local,
            by_addr: HashMap::new(),
            by_token: HashMap::new(),
            next_token: 1,
            synced: None,
            failed: 0,
        })
    }

    /// Open sockets.
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// Brings the sockets in line with the addresses bound in the shard
    /// (`version` changes whenever they do; nothing is done otherwise).
    /// `skip`: addresses that are not UDP (ICE over TCP).
    pub fn sync<'a>(
        &mut self,
        version: u64,
        bound: impl Iterator<Item = &'a SocketAddr>,
        skip: impl Fn(&SocketAddr) -> bool,
    ) {
        if self.synced == Some(version) {
            return;
        }
        self.synced = Some(version);
        let want: HashSet<SocketAddr> = bound
            .filter(|a| !skip(a) && a.is_ipv4() == self.local.is_ipv4())
            .copied()
            .collect();
        let gone: Vec<SocketAddr> = self
            .by_addr
            .keys()
            .filter(|a| !want.contains(a))
            .copied()
            .collect();
        for a in gone {
            if let Some(t) = self.by_addr.remove(&a) {
                // Closing the descriptor takes it out of the epoll set.
                self.by_token.remove(&t);
            }
        }
        for a in &want {
            if self.by_addr.contains_key(a) {
                continue;
            }
            match self.open(*a) {
                Ok(()) => {}
                Err(e) => {
                    self.failed += 1;
                    if self.failed == 1 || self.failed.is_power_of_two() {
                        tracing::warn!(
                            client = %a,
                            failed = self.failed,
                            "cannot open a connected socket ({e}): the client stays on the shared socket"
                        );
                    }
                }
            }
        }
    }

    fn open(&mut self, remote: SocketAddr) -> io::Result<()> {
        let s = Socket::new(
            Domain::for_address(self.local),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.set_cloexec(true)?;
        s.bind(&self.local.into())?;
        s.connect(&remote.into())?;
        let socket: UdpSocket = s.into();
        if let Err(e) = enable_arrival_info(&socket) {
            tracing::debug!(client = %remote, "no arrival times on a connected socket: {e}");
        }
        let token = self.next_token;
        self.next_token += 1;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open; `ev` lives through the call.
        let r = unsafe {
            libc::epoll_ctl(
                self.epoll.get_ref().as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                socket.as_raw_fd(),
                &mut ev,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.by_addr.insert(remote, token);
        self.by_token
            .insert(token, (remote, socket, OverflowCount::default()));
        Ok(())
    }

    /// Waits until a connected socket may have datagrams; forever with
    /// none open.
    pub async fn readable(&self) {
        if self.by_addr.is_empty() {
            return std::future::pending().await;
        }
        if let Ok(mut g) = self.epoll.readable().await {
            // Cleared here; `drain` reads until the set reports nothing,
            // and the next epoll_wait re-arms it.
            g.clear_ready();
        }
    }

    /// Reads what is ready on the ready sockets, up to a batch from each
    /// and about a batch in all, and hands each datagram to `each` (what
    /// the kernel said of it, its bytes, and how many datagrams its socket
    /// dropped for want of buffer since the last one read). Returns true
    /// when more may wait: call again after writing the output.
    pub fn drain(
        &mut self,
        batch: &mut RecvBatch,
        mut each: impl FnMut(&Received, &[u8], u32),
    ) -> bool {
        let fd: RawFd = self.epoll.get_ref().as_raw_fd();
        let mut events: [libc::epoll_event; EVENTS] =
            [libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        // SAFETY: `events` has room for EVENTS entries; timeout 0 never blocks.
        let n = unsafe { libc::epoll_wait(fd, events.as_mut_ptr(), EVENTS as i32, 0) };
        if n <= 0 {
            return false;
        }
        let mut more = n as usize == EVENTS;
        // About one batch per call across sockets, as from the shared
        // socket: the caller writes the output between calls, and sockets
        // left over are reported ready again.
        let mut taken = 0;
        for ev in &events[..n as usize] {
            if taken >= batch.capacity() {
                more = true;
                break;
            }
            // A copy: the kernel's struct is packed.
            let token = ev.u64;
            let Some((remote, socket, overflow)) = self.by_token.get_mut(&token) else {
                continue;
            };
            match batch.recv(socket) {
                Ok(_) => {
                    for i in 0..batch.len() {
                        let (got, data) = batch.get(i);
                        let dropped = got.overflow.map_or(0, |v| overflow.observe(v));
                        each(&got, data, dropped);
                    }
                    taken += batch.len();
                    more |= batch.is_full();
                }
                // An ICMP error for something sent to the client (it went
                // away): reported once on the connected socket, in place of
                // a read; what waits behind it is read on the next call.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => more = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => tracing::debug!(client = %remote, "connected socket receive error: {e}"),
            }
        }
        more
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&s).set_reuse_port(true).unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    #[tokio::test]
    async fn a_bound_client_arrives_on_its_own_socket_and_others_on_the_shared_one() {
        let main = shared();
        let local = main.local_addr().unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut c = ConnectedSockets::new(local).unwrap();
        let bound = [a.local_addr().unwrap()];
        c.sync(1, bound.iter(), |_| false);
        assert_eq!(c.len(), 1);
        a.send_to(b"from a", local).unwrap();
        b.send_to(b"from b", local).unwrap();
        let mut batch = RecvBatch::new(8);
        let mut got = Vec::new();
        for _ in 0..100 {
            c.drain(&mut batch, |r, data, _| got.push((r.from, data.to_vec())));
            if !got.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(got, vec![(a.local_addr().unwrap(), b"from a".to_vec())]);
        let mut buf = [0u8; 64];
        let (n, from) = main.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"from b"[..], b.local_addr().unwrap()));
        // Unbound again: back on the shared socket.
        c.sync(2, [].iter(), |_| false);
        assert!(c.is_empty());
        a.send_to(b"again", local).unwrap();
        let mut seen = None;
        for _ in 0..100 {
            if let Ok((n, from)) = main.recv_from(&mut buf) {
                seen = Some((buf[..n].to_vec(), from));
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(seen, Some((b"again".to_vec(), a.local_addr().unwrap())));
    }

    #[tokio::test]
    async fn skipped_and_unchanged_tables_open_nothing() {
        let main = shared();
        let mut c = ConnectedSockets::new(main.local_addr().unwrap()).unwrap();
        let tcp_peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        c.sync(1, [tcp_peer].iter(), |a| *a == tcp_peer);
        assert!(c.is_empty());
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        c.sync(2, [v6].iter(), |_| false);
        assert!(c.is_empty(), "another family than the shared socket's");
        let udp: SocketAddr = "127.0.0.1:10".parse().unwrap();
        c.sync(2, [udp].iter(), |_| false);
        assert!(c.is_empty(), "same version: nothing to do");
    }
}
