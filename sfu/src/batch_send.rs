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
//! Where the kernel takes UDP GSO (Linux 4.18 and later, asked once with
//! `getsockopt(UDP_SEGMENT)`), a wake-up's datagrams are grouped by
//! destination (each destination's still in the order given) and each run
//! of equal size to one destination (a keyframe's packets to one
//! subscriber; a shorter one may end the run) leaves as one message with
//! its segment size: the kernel walks its UDP and IP layers once for the
//! run and cuts it into the same datagrams at the device. Up to 64
//! segments and 65,000 bytes a run. A device that cannot segment (`EIO`)
//! turns it off for good.
//!
//! A datagram the kernel refuses (a full socket buffer, an unreachable
//! address family) is counted and skipped, and the rest are still sent: as
//! before, one refusal never holds back the others (a refused run counts
//! all its datagrams).

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
    use std::sync::atomic::{AtomicU8, Ordering};

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

    /// `UDP_SEGMENT` (linux/udp.h): the segment size of a GSO send.
    const UDP_SEGMENT: libc::c_int = 103;
    /// At most this many segments per GSO send (the kernel's limit).
    const MAX_SEGMENTS: usize = 64;
    /// And at most this many bytes (a UDP datagram's largest payload).
    const MAX_GSO_BYTES: usize = 65_000;

    /// Whether the kernel takes GSO sends: unknown until the first send
    /// asks it (`getsockopt`), and off for good if a device then cannot
    /// segment (`EIO`: no checksum offload).
    static GSO: AtomicU8 = AtomicU8::new(GSO_UNKNOWN);
    const GSO_UNKNOWN: u8 = 0;
    const GSO_ON: u8 = 1;
    const GSO_OFF: u8 = 2;

    /// Whether sends on `fd` may carry a segment size: asked once.
    fn gso(fd: libc::c_int) -> bool {
        match GSO.load(Ordering::Relaxed) {
            GSO_ON => true,
            GSO_OFF => false,
            _ => {
                let mut v: libc::c_int = 0;
                let mut len = size_of::<libc::c_int>() as libc::socklen_t;
                // SAFETY: reads an int option into `v`, `len` its size.
                let r = unsafe {
                    libc::getsockopt(
                        fd,
                        libc::SOL_UDP,
                        UDP_SEGMENT,
                        &mut v as *mut _ as *mut libc::c_void,
                        &mut len,
                    )
                };
                let on = r == 0;
                GSO.store(if on { GSO_ON } else { GSO_OFF }, Ordering::Relaxed);
                on
            }
        }
    }

    /// Datagrams to one destination sent as one message: `count` datagrams
    /// of `size` bytes each, the last perhaps shorter, from `first` on in
    /// the send order.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct Run {
        pub first: usize,
        pub count: usize,
        pub size: usize,
    }

    /// The send order and its runs: datagrams grouped by destination
    /// (each destination's in the order given; the destinations by
    /// address), then cut into runs of equal size (a shorter one ends a
    /// run). With `gso` off every datagram is its own run, in the order
    /// given.
    #[cfg(test)]
    pub(super) fn plan<B: AsRef<[u8]>>(
        out: &[(SocketAddr, B)],
        gso: bool,
    ) -> (Vec<usize>, Vec<Run>) {
        let (mut order, mut runs) = (Vec::new(), Vec::new());
        plan_into(out, gso, &mut order, &mut runs);
        (order, runs)
    }

    /// [`plan`] into lists kept between calls (their room is reused).
    fn plan_into<B: AsRef<[u8]>>(
        out: &[(SocketAddr, B)],
        gso: bool,
        order: &mut Vec<usize>,
        runs: &mut Vec<Run>,
    ) {
        order.clear();
        order.extend(0..out.len());
        if gso {
            // A destination's datagrams keep their order: the index breaks
            // ties (an unstable sort needs no buffer of its own).
            order.sort_unstable_by_key(|&i| (out[i].0, i));
        }
        runs.clear();
        for (at, &i) in order.iter().enumerate() {
            let (to, data) = (&out[i].0, out[i].1.as_ref().len());
            if let Some(r) = runs.last_mut().filter(|_| gso) {
                let prev = order[r.first + r.count - 1];
                let last_len = out[prev].1.as_ref().len();
                let fits = out[order[r.first]].0 == *to
                    && last_len == r.size
                    && data <= r.size
                    && r.count < MAX_SEGMENTS
                    && (r.count + 1) * r.size <= MAX_GSO_BYTES;
                if fits {
                    r.count += 1;
                    continue;
                }
            }
            runs.push(Run {
                first: at,
                count: 1,
                size: data,
            });
        }
    }

    /// The send order, its runs and their iovecs, kept per thread between
    /// calls: a shard sends after every wake-up.
    #[derive(Default)]
    struct Scratch {
        order: Vec<usize>,
        runs: Vec<Run>,
        iovs: Vec<libc::iovec>,
    }

    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
    }

    pub(super) fn send_all<B: AsRef<[u8]>>(socket: &UdpSocket, out: &[(SocketAddr, B)]) -> usize {
        // Taken out for the call (a nested call, after GSO was refused,
        // finds the slot empty and starts afresh).
        let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        let failed = send_with(socket, out, &mut scratch);
        scratch.iovs.clear();
        SCRATCH.with(|s| *s.borrow_mut() = scratch);
        failed
    }

    fn send_with<B: AsRef<[u8]>>(
        socket: &UdpSocket,
        out: &[(SocketAddr, B)],
        scratch: &mut Scratch,
    ) -> usize {
        let fd = socket.as_raw_fd();
        let Scratch { order, runs, iovs } = scratch;
        plan_into(out, gso(fd), order, runs);
        let (order, runs) = (&*order, &*runs);
        let mut failed = 0;
        let mut next = 0;
        iovs.clear();
        iovs.extend(order.iter().map(|&i| {
            let data = out[i].1.as_ref();
            libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            }
        }));
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        // One control message per header: the segment size (a u16),
        // aligned as `cmsghdr` needs.
        let mut controls: [[u64; 4]; BATCH] = [[0; 4]; BATCH];
        // SAFETY: CMSG_SPACE only computes a size.
        let control_len = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
        debug_assert!(control_len <= size_of::<[u64; 4]>());
        while next < runs.len() {
            let chunk = &runs[next..runs.len().min(next + BATCH)];
            for (k, run) in chunk.iter().enumerate() {
                let to = &out[order[run.first]].0;
                let len = write_addr(to, &mut addrs[k]);
                let h = &mut hdrs[k];
                // SAFETY: all-zero is a valid msghdr (no control data).
                h.msg_hdr = unsafe { zeroed() };
                h.msg_hdr.msg_name = &mut addrs[k] as *mut _ as *mut libc::c_void;
                h.msg_hdr.msg_namelen = len;
                // The kernel only reads the iovecs.
                h.msg_hdr.msg_iov = iovs[run.first..].as_ptr() as *mut libc::iovec;
                h.msg_hdr.msg_iovlen = run.count as _;
                h.msg_len = 0;
                if run.count > 1 {
                    h.msg_hdr.msg_control = controls[k].as_mut_ptr() as *mut libc::c_void;
                    h.msg_hdr.msg_controllen = control_len as _;
                    // SAFETY: the control buffer is `control_len` bytes,
                    // aligned for cmsghdr, and holds one header with a u16.
                    unsafe {
                        let c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
                        (*c).cmsg_level = libc::SOL_UDP;
                        (*c).cmsg_type = UDP_SEGMENT;
                        (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, run.size as u16);
                    }
                }
            }
            // SAFETY: the first `chunk.len()` headers point at addresses,
            // iovecs, payloads and control data that live until the call
            // returns; the kernel only reads them (and writes msg_len).
            let sent = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), chunk.len() as u32, 0) };
            if sent > 0 {
                next += sent as usize;
                continue;
            }
            let err = io::Error::last_os_error();
            if sent < 0 && err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let run = chunk[0];
            if run.count > 1 && err.raw_os_error() == Some(libc::EIO) {
                // The device cannot segment: everything not sent yet goes
                // again, a datagram per message, and so from now on.
                GSO.store(GSO_OFF, Ordering::Relaxed);
                tracing::info!("UDP GSO refused ({err}): sending each datagram on its own");
                let rest: Vec<(SocketAddr, &[u8])> = order[run.first..]
                    .iter()
                    .map(|&i| (out[i].0, out[i].1.as_ref()))
                    .collect();
                return failed + send_all(socket, &rest);
            }
            // The first message of the chunk was refused: count its
            // datagrams and go on with the next.
            failed += run.count;
            next += 1;
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

    /// Every receiver got the datagrams sent to it, whole and in order.
    fn each_got_its_own_in_order(rx: &[UdpSocket], out: &[(SocketAddr, Vec<u8>)]) {
        for (k, s) in rx.iter().enumerate() {
            let at = s.local_addr().unwrap();
            let want: Vec<Vec<u8>> = out
                .iter()
                .filter(|(to, _)| *to == at)
                .map(|(_, d)| d.clone())
                .collect();
            assert_eq!(recv_all(s, want.len()), want, "destination {k}");
        }
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
        each_got_its_own_in_order(&rx, &out);
    }

    /// A keyframe to several subscribers, as a wake-up produces it: each
    /// packet to every destination in turn. Sent grouped by destination,
    /// in runs of equal size, they arrive as the datagrams they were, each
    /// destination's in order.
    #[test]
    fn runs_of_equal_size_go_segmented_and_arrive_as_separate_datagrams_in_order() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx: Vec<UdpSocket> = (0..3).map(|_| receiver()).collect();
        let addrs: Vec<SocketAddr> = rx.iter().map(|s| s.local_addr().unwrap()).collect();
        let mut out: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        // 70 packets of 1,000 bytes (more than one GSO send holds: 64
        // segments), then a short one, then 1,000 again: to every
        // destination in turn.
        for p in 0..72u32 {
            let len = if p == 70 { 300 } else { 1000 };
            for to in &addrs {
                let mut d = vec![p as u8; len];
                d[..4].copy_from_slice(&p.to_be_bytes());
                out.push((*to, d));
            }
        }
        #[cfg(target_os = "linux")]
        {
            let (order, runs) = linux::plan(&out, true);
            assert_eq!(order.len(), out.len());
            // Per destination: 64 + 7 (the short one ends it) + 1.
            let counts: Vec<usize> = runs.iter().map(|r| r.count).collect();
            assert_eq!(counts, [64, 7, 1].repeat(3), "{runs:?}");
            let (_, plain) = linux::plan(&out, false);
            assert_eq!(plain.len(), out.len());
            // 65,000 bytes at most: 54 segments of 1,200.
            let big: Vec<(SocketAddr, Vec<u8>)> =
                (0..60).map(|_| (addrs[0], vec![0; 1200])).collect();
            let counts: Vec<usize> = linux::plan(&big, true).1.iter().map(|r| r.count).collect();
            assert_eq!(counts, [54, 6]);
        }
        assert_eq!(send_all(&tx, &out), 0);
        each_got_its_own_in_order(&rx, &out);
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
