//! Sending a wake-up's datagrams in batches.
//!
//! A shard writes everything one wake-up produced (a packet forwarded to
//! every subscriber, retransmissions, RTCP) at once. On Linux that is one
//! `sendmmsg` system call per [`BATCH`] datagrams instead of one `sendto`
//! each: the system-call entry and exit, most of the per-packet kernel
//! time the forwarding profile shows, are paid once per batch
//! (docs/benchmarks.md). Datagrams leave in the order given, so the order
//! per destination is kept. Elsewhere each datagram is one `send_to`.
//!
//! A datagram the kernel refuses (a full socket buffer, an unreachable
//! address family) is counted and skipped, and the rest are still sent: as
//! before, one refusal never holds back the others.

use std::net::{SocketAddr, UdpSocket};

/// Datagrams per system call.
pub const BATCH: usize = 64;

/// Sends every `(destination, payload)` in order on `socket`; returns how
/// many could not be sent.
pub fn send_all<B: AsRef<[u8]>>(socket: &UdpSocket, out: &[(SocketAddr, B)]) -> usize {
    #[cfg(target_os = "linux")]
    {
        linux::send_all(socket, out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        out.iter()
            .filter(|(to, data)| socket.send_to(data.as_ref(), to).is_err())
            .count()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    use super::BATCH;

    /// The destination in the C layout `sendmmsg` reads; returns its length.
    fn write_addr(to: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match to {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is large and aligned enough for
                // any socket address, sockaddr_in included.
                let sin = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_flowinfo = a.flowinfo().to_be();
                sin6.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                sin6.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }

    pub(super) fn send_all<B: AsRef<[u8]>>(socket: &UdpSocket, out: &[(SocketAddr, B)]) -> usize {
        let fd = socket.as_raw_fd();
        let mut failed = 0;
        let mut next = 0;
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        while next < out.len() {
            let chunk = &out[next..out.len().min(next + BATCH)];
            for (k, (to, data)) in chunk.iter().enumerate() {
                let data = data.as_ref();
                let len = write_addr(to, &mut addrs[k]);
                iovs[k] = libc::iovec {
                    iov_base: data.as_ptr() as *mut libc::c_void,
                    iov_len: data.len(),
                };
                let h = &mut hdrs[k];
                // SAFETY: all-zero is a valid msghdr (no control data).
                h.msg_hdr = unsafe { zeroed() };
                h.msg_hdr.msg_name = &mut addrs[k] as *mut _ as *mut libc::c_void;
                h.msg_hdr.msg_namelen = len;
                h.msg_hdr.msg_iov = &mut iovs[k];
                h.msg_hdr.msg_iovlen = 1;
                h.msg_len = 0;
            }
            // SAFETY: the first `chunk.len()` headers point at addresses
            // and payloads that live until the call returns; the kernel
            // only reads them (and writes msg_len).
            let sent = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), chunk.len() as u32, 0) };
            if sent > 0 {
                next += sent as usize;
            } else if sent < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            } else {
                // The first datagram of the chunk was refused: count it and
                // go on with the next.
                failed += 1;
                next += 1;
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Room for every datagram of the test before it reads.
        s
    }

    fn recv_all(s: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 2048];
        (0..n)
            .map(|_| {
                let (len, _) = s.recv_from(&mut buf).expect("a datagram");
                buf[..len].to_vec()
            })
            .collect()
    }

    #[test]
    fn more_than_a_batch_to_several_destinations_arrives_whole_and_in_order() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx: Vec<UdpSocket> = (0..3).map(|_| receiver()).collect();
        let addrs: Vec<SocketAddr> = rx.iter().map(|s| s.local_addr().unwrap()).collect();
        // 150 datagrams, round-robin over three destinations, sizes 1 to 1200.
        let out: Vec<(SocketAddr, Vec<u8>)> = (0..150u32)
            .map(|i| {
                let len = 1 + (i as usize * 37) % 1200;
                let mut d = vec![(i % 251) as u8; len];
                d[..4.min(len)].copy_from_slice(&i.to_be_bytes()[..4.min(len)]);
                (addrs[i as usize % 3], d)
            })
            .collect();
        assert_eq!(send_all(&tx, &out), 0);
        for (k, s) in rx.iter().enumerate() {
            let want: Vec<Vec<u8>> = out
                .iter()
                .filter(|(to, _)| *to == addrs[k])
                .map(|(_, d)| d.clone())
                .collect();
            assert_eq!(recv_all(s, want.len()), want, "destination {k}");
        }
    }

    #[test]
    fn a_refused_datagram_is_counted_and_the_rest_still_go() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = receiver();
        let to = rx.local_addr().unwrap();
        // An IPv6 destination from an IPv4 socket is refused by the kernel.
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let out = vec![
            (to, b"one".to_vec()),
            (v6, b"refused".to_vec()),
            (to, b"two".to_vec()),
            (v6, b"refused".to_vec()),
            (to, b"three".to_vec()),
        ];
        assert_eq!(send_all(&tx, &out), 2);
        assert_eq!(
            recv_all(&rx, 3),
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }
}
