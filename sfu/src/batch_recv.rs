//! Receiving datagrams in batches.
//!
//! The receiving shard reads what is ready in chunks (see
//! `runtime::ShardCtx::drain_socket`). On Linux a chunk is one `recvmmsg`
//! system call instead of one `recvfrom` per datagram: the system-call
//! entry and exit are paid once per chunk. Elsewhere each datagram is one
//! `recv_from`.
//!
//! Each slot has room for [`SLOT`] bytes. A larger datagram arrives
//! truncated; it is marked so the caller can count and drop it rather than
//! hand a partial packet on (`recvfrom` into a buffer of the same size
//! truncates silently).
//!
//! On a socket set up with [`enable_arrival_info`], each datagram also
//! carries when the kernel queued it and how many datagrams the socket
//! had dropped by then for want of buffer: what a server past its
//! capacity needs to see how far behind it reads, and what it lost before
//! reading (see `core::input_lag`).

use std::io;
use std::net::SocketAddr;
use std::time::SystemTime;

/// Bytes per datagram slot: above any datagram a WebRTC peer sends (they
/// keep under the path MTU, about 1,200 to 1,500 bytes).
pub const SLOT: usize = 2048;

/// One received datagram in a [`RecvBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub from: SocketAddr,
    /// Bytes in the slot (at most [`SLOT`]).
    pub len: usize,
    /// The datagram was longer than the slot and was cut.
    pub truncated: bool,
    /// When the kernel queued it (the system clock), on a socket with
    /// [`enable_arrival_info`].
    pub arrived: Option<SystemTime>,
    /// The socket's running count of datagrams dropped for want of
    /// receive buffer, as of this one (wraps at 2^32), on a socket with
    /// [`enable_arrival_info`].
    pub overflow: Option<u32>,
}

/// Asks the kernel to stamp each datagram `socket` receives with its
/// arrival time (`SO_TIMESTAMPNS`) and the socket's drop count
/// (`SO_RXQ_OVFL`). Elsewhere than on Linux, nothing.
pub fn enable_arrival_info(socket: &std::net::UdpSocket) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        for opt in [libc::SO_TIMESTAMPNS, libc::SO_RXQ_OVFL] {
            let on: libc::c_int = 1;
            // SAFETY: a valid descriptor, and a c_int the call only reads.
            let r = unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    &on as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
    Ok(())
}

/// Buffers for up to `capacity` datagrams, reused from one read to the
/// next.
pub struct RecvBatch {
    data: Vec<u8>,
    got: Vec<Received>,
    capacity: usize,
    /// The system call's headers, allocated once (their pointers are set
    /// on each read: the batch may have moved since).
    #[cfg(target_os = "linux")]
    headers: linux::Headers,
}

impl RecvBatch {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            data: vec![0; capacity * SLOT],
            got: Vec::with_capacity(capacity),
            capacity,
            #[cfg(target_os = "linux")]
            headers: linux::Headers::new(capacity),
        }
    }

    /// Datagrams the last read returned, in arrival order.
    pub fn len(&self) -> usize {
        self.got.len()
    }

    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }

    /// Datagrams one read takes at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the last read filled every slot (more may be waiting).
    pub fn is_full(&self) -> bool {
        self.got.len() == self.capacity
    }

    /// The `i`-th datagram of the last read and its bytes.
    pub fn get(&self, i: usize) -> (Received, &[u8]) {
        let r = self.got[i];
        (r, &self.data[i * SLOT..i * SLOT + r.len])
    }

    /// Reads what is ready on `socket`, up to the batch's capacity, without
    /// blocking. `Err(WouldBlock)` when nothing was ready.
    pub fn recv(&mut self, socket: &std::net::UdpSocket) -> io::Result<usize> {
        self.got.clear();
        #[cfg(target_os = "linux")]
        {
            self.headers.recv(socket, &mut self.data, &mut self.got)
        }
        #[cfg(not(target_os = "linux"))]
        {
            while self.got.len() < self.capacity {
                let i = self.got.len();
                match socket.recv_from(&mut self.data[i * SLOT..(i + 1) * SLOT]) {
                    Ok((len, from)) => self.got.push(Received {
                        from,
                        len,
                        truncated: false,
                        arrived: None,
                        overflow: None,
                    }),
                    Err(e) if self.got.is_empty() => return Err(e),
                    Err(_) => break,
                }
            }
            Ok(self.got.len())
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::mem::zeroed;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime};

    use super::{Received, SLOT};

    /// Room for a header's control messages: a timestamp (16 bytes of
    /// data) and a drop count (4), each behind its own `cmsghdr`.
    const CONTROL: usize = 64;

    /// The source address the kernel wrote, if it is one we know.
    fn read_addr(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(a.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin = unsafe { &*(a as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*(a as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    u32::from_be(sin6.sin6_flowinfo),
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// The C structures `recvmmsg` reads and writes, one per slot.
    pub(super) struct Headers {
        addrs: Vec<libc::sockaddr_storage>,
        iovs: Vec<libc::iovec>,
        hdrs: Vec<libc::mmsghdr>,
        /// Control data per header, aligned as `cmsghdr` needs.
        controls: Vec<[u64; CONTROL / 8]>,
    }

    // SAFETY: the pointers in `iovs` and `hdrs` are written afresh before
    // each `recvmmsg` and not read after it, so nothing refers across
    // threads: the buffers may move to another thread with the batch (a
    // load-test bot's task, which Tokio may resume on another worker).
    unsafe impl Send for Headers {}

    /// The arrival time and drop count among a received header's control
    /// messages.
    fn read_control(h: &libc::msghdr) -> (Option<SystemTime>, Option<u32>) {
        let (mut arrived, mut overflow) = (None, None);
        if h.msg_flags & libc::MSG_CTRUNC != 0 {
            return (None, None);
        }
        // SAFETY: the kernel filled `msg_controllen` bytes of the control
        // buffer with well-formed control messages; the CMSG macros walk
        // within it, and each message's data is as long as its type says
        // (read unaligned: the data need not be aligned for the type).
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET {
                    if (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                        let ts =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                        if ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec) {
                            arrived = Some(
                                SystemTime::UNIX_EPOCH
                                    + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
                            );
                        }
                    } else if (*c).cmsg_type == libc::SO_RXQ_OVFL {
                        overflow = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const u32));
                    }
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        (arrived, overflow)
    }

    impl Headers {
        pub(super) fn new(slots: usize) -> Self {
            // SAFETY: all-zero is a valid value of these plain C structs.
            Headers {
                addrs: (0..slots).map(|_| unsafe { zeroed() }).collect(),
                iovs: (0..slots).map(|_| unsafe { zeroed() }).collect(),
                hdrs: (0..slots).map(|_| unsafe { zeroed() }).collect(),
                controls: vec![[0; CONTROL / 8]; slots],
            }
        }

        pub(super) fn recv(
            &mut self,
            socket: &UdpSocket,
            data: &mut [u8],
            got: &mut Vec<Received>,
        ) -> io::Result<usize> {
            let n = self.hdrs.len().min(data.len() / SLOT);
            for k in 0..n {
                self.iovs[k] = libc::iovec {
                    iov_base: data[k * SLOT..].as_mut_ptr() as *mut libc::c_void,
                    iov_len: SLOT,
                };
                let h = &mut self.hdrs[k].msg_hdr;
                h.msg_name = &mut self.addrs[k] as *mut _ as *mut libc::c_void;
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_iov = &mut self.iovs[k];
                h.msg_iovlen = 1;
                h.msg_flags = 0;
                h.msg_control = self.controls[k].as_mut_ptr() as *mut libc::c_void;
                h.msg_controllen = CONTROL as _;
            }
            let got_n = loop {
                // SAFETY: the first `n` headers point at address storage
                // and `SLOT`-byte slots of `data` that live until the call
                // returns; the kernel writes within them (and msg_len,
                // msg_flags).
                let r = unsafe {
                    libc::recvmmsg(
                        socket.as_raw_fd(),
                        self.hdrs.as_mut_ptr(),
                        n as u32,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                if r >= 0 {
                    break r as usize;
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            };
            for k in 0..got_n {
                let h = &self.hdrs[k];
                // A source the kernel did not name (not seen on UDP) is kept
                // as unspecified: the router refuses it as an unknown source.
                let from = read_addr(&self.addrs[k])
                    .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
                let (arrived, overflow) = read_control(&h.msg_hdr);
                got.push(Received {
                    from,
                    len: (h.msg_len as usize).min(SLOT),
                    truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                    arrived,
                    overflow,
                });
            }
            Ok(got_n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::{Duration, Instant, SystemTime};

    fn bound() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").unwrap()
    }

    /// Reads until `n` datagrams arrived (or a generous bound passed).
    fn read_n(rx: &UdpSocket, batch: &mut RecvBatch, n: usize) -> Vec<(Received, Vec<u8>)> {
        rx.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < until {
            match batch.recv(rx) {
                Ok(_) => {
                    for i in 0..batch.len() {
                        let (r, d) = batch.get(i);
                        out.push((r, d.to_vec()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("receive failed: {e}"),
            }
        }
        out
    }

    #[test]
    fn datagrams_from_several_sources_arrive_whole_in_order_and_in_batches() {
        let rx = bound();
        let to = rx.local_addr().unwrap();
        let tx: Vec<UdpSocket> = (0..2).map(|_| bound()).collect();
        // 100 datagrams, alternating sources, sizes 1 to 1400.
        let sent: Vec<(SocketAddr, Vec<u8>)> = (0..100u32)
            .map(|i| {
                let len = 1 + (i as usize * 53) % 1400;
                let mut d = vec![(i % 251) as u8; len];
                d[0] = i as u8;
                let s = &tx[i as usize % 2];
                s.send_to(&d, to).unwrap();
                (s.local_addr().unwrap(), d)
            })
            .collect();
        let mut batch = RecvBatch::new(32);
        let got = read_n(&rx, &mut batch, sent.len());
        assert_eq!(got.len(), sent.len());
        for ((r, d), (from, want)) in got.iter().zip(&sent) {
            assert_eq!(r.from, *from);
            assert_eq!(d, want);
            assert!(!r.truncated);
        }
    }

    #[test]
    fn a_full_read_says_so_and_the_rest_follows() {
        let rx = bound();
        let to = rx.local_addr().unwrap();
        let tx = bound();
        for i in 0..10u8 {
            tx.send_to(&[i; 20], to).unwrap();
        }
        rx.set_nonblocking(true).unwrap();
        let mut batch = RecvBatch::new(4);
        // Loopback delivers synchronously: all ten are queued by now.
        batch.recv(&rx).unwrap();
        assert!(batch.is_full());
        assert_eq!(batch.get(0).1, &[0u8; 20][..]);
        let rest = read_n(&rx, &mut batch, 6);
        assert_eq!(rest.len(), 6);
        assert_eq!(rest[5].1, vec![9u8; 20]);
        assert!(matches!(batch.recv(&rx), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
    }

    /// With arrival information asked for, each datagram says when it was
    /// queued (no later than it was read), and the socket's drop count
    /// shows what a full receive buffer turned away.
    #[cfg(target_os = "linux")]
    #[test]
    fn arrival_times_and_the_sockets_drops_come_with_the_datagrams() {
        let rx = bound();
        // A small buffer (the kernel's minimum): most of a burst of 400 is
        // dropped before anything reads.
        socket2::SockRef::from(&rx).set_recv_buffer_size(1).unwrap();
        enable_arrival_info(&rx).unwrap();
        let to = rx.local_addr().unwrap();
        let tx = bound();
        let before = SystemTime::now();
        for i in 0..400u32 {
            tx.send_to(&i.to_be_bytes(), to).unwrap();
        }
        rx.set_nonblocking(true).unwrap();
        let mut batch = RecvBatch::new(64);
        let mut got = Vec::new();
        while let Ok(n) = batch.recv(&rx) {
            got.extend((0..n).map(|i| batch.get(i).0));
        }
        let read_at = SystemTime::now();
        assert!(
            !got.is_empty() && got.len() < 400,
            "{} of 400 queued",
            got.len()
        );
        for r in &got {
            let at = r.arrived.expect("an arrival time");
            assert!(at >= before - Duration::from_secs(1) && at <= read_at);
        }
        // A datagram carries the count as of its own queueing: the drops
        // after the last one queued show on the next one.
        tx.send_to(b"next", to).unwrap();
        let next = read_n(&rx, &mut batch, 1);
        let dropped = next[0].0.overflow.expect("a drop count");
        assert_eq!(u64::from(dropped) + got.len() as u64, 400);
    }

    /// Without asking, a datagram carries neither.
    #[test]
    fn without_arrival_info_nothing_is_claimed() {
        let rx = bound();
        let to = rx.local_addr().unwrap();
        bound().send_to(b"x", to).unwrap();
        let mut batch = RecvBatch::new(4);
        let got = read_n(&rx, &mut batch, 1);
        assert_eq!((got[0].0.arrived, got[0].0.overflow), (None, None));
    }

    #[test]
    fn a_datagram_larger_than_a_slot_is_marked_truncated() {
        let rx = bound();
        let to = rx.local_addr().unwrap();
        let tx = bound();
        tx.send_to(&vec![7u8; SLOT + 100], to).unwrap();
        tx.send_to(&[1u8; 10], to).unwrap();
        let mut batch = RecvBatch::new(8);
        let got = read_n(&rx, &mut batch, 2);
        assert_eq!(got.len(), 2);
        assert!(got[0].0.truncated);
        assert!(!got[1].0.truncated);
        assert_eq!(got[1].1, vec![1u8; 10]);
    }
}
