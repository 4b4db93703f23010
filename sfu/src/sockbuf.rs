//! The media socket's kernel buffers.
//!
//! Every subscriber's packets leave through the one media socket, and the
//! kernel charges a datagram to that socket's send buffer until the
//! network device has sent it. A queue that builds below the server (a
//! traffic shaper on its host, a slow virtual link) therefore holds send
//! buffer for as long as its packets wait. With the usual default of
//! about 200 KiB, one subscriber whose packets wait in such a queue fills
//! it, and then the kernel refuses datagrams to everyone: the other
//! subscribers see loss that is not on their paths, and their estimates
//! fall with the slow one's (a video paused at one viewer took the other
//! viewers of the room down to its lowest layer). A buffer of a few MiB
//! leaves the queue's own limit (the device's queue length) to drop the
//! slow subscriber's packets, as a router on its path would.
//!
//! The receive buffer holds what arrives while the receiving shard is
//! busy; a larger one rides out a longer stall without loss.
//!
//! The kernel caps both at `net.core.wmem_max` and `net.core.rmem_max`,
//! unless the process may administer the network (then it forces them);
//! the server logs what it got and warns when that is less than asked
//! (docs/deployment.md says how to raise the limits).

use std::net::UdpSocket;

/// What the kernel gave the socket, in bytes (as the kernel reports it:
/// Linux doubles the size asked for, to leave room for its bookkeeping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffers {
    pub send: usize,
    pub recv: usize,
}

/// Asks for `bytes` of send and of receive buffer. Returns what the socket
/// has afterwards; the sizes are hints, so failing to set them is not an
/// error (what the socket has is returned all the same).
pub fn enlarge(socket: &UdpSocket, bytes: usize) -> Buffers {
    let s = socket2::SockRef::from(socket);
    if bytes > 0 {
        if let Err(e) = s.set_send_buffer_size(bytes) {
            tracing::debug!("cannot set the media socket's send buffer: {e}");
        }
        if let Err(e) = s.set_recv_buffer_size(bytes) {
            tracing::debug!("cannot set the media socket's receive buffer: {e}");
        }
    }
    let mut got = Buffers {
        send: s.send_buffer_size().unwrap_or(0),
        recv: s.recv_buffer_size().unwrap_or(0),
    };
    // Over the kernel's cap: a process allowed to administer the network
    // (root, or CAP_NET_ADMIN) may go past it.
    #[cfg(target_os = "linux")]
    if bytes > 0 && (got.send < bytes || got.recv < bytes) {
        force(socket, bytes);
        got = Buffers {
            send: s.send_buffer_size().unwrap_or(0),
            recv: s.recv_buffer_size().unwrap_or(0),
        };
    }
    got
}

/// `SO_SNDBUFFORCE` and `SO_RCVBUFFORCE`: as the plain options, without
/// the cap, for a process with CAP_NET_ADMIN. Refused otherwise, which
/// leaves the sizes as they were.
#[cfg(target_os = "linux")]
fn force(socket: &UdpSocket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for opt in [libc::SO_SNDBUFFORCE, libc::SO_RCVBUFFORCE] {
        // SAFETY: a valid socket and a c_int the call only reads.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Logs the buffers the media socket got, with a warning when the kernel
/// gave less than `wanted` bytes (Linux reports double the usable size).
pub fn report(got: Buffers, wanted: usize) {
    let short = |have: usize| wanted > 0 && have < wanted;
    if short(got.send) || short(got.recv) {
        tracing::warn!(
            send_kib = got.send / 1024,
            recv_kib = got.recv / 1024,
            wanted_kib = wanted / 1024,
            "the media socket's buffers are smaller than [media] socket_buffer_kb: the kernel caps \
             them at net.core.wmem_max and net.core.rmem_max (docs/deployment.md). With a small \
             send buffer, one subscriber whose packets queue below the server can make the kernel \
             refuse packets to all the others"
        );
    } else {
        tracing::info!(
            send_kib = got.send / 1024,
            recv_kib = got.recv / 1024,
            "media socket buffers"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_what_it_is_asked_for_within_the_kernel_cap() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let default = enlarge(&sock, 0);
        // Smaller than any default, then larger than the usual default
        // and within the usual cap (208 KiB): both take effect.
        let small = enlarge(&sock, 8 * 1024);
        assert!(
            small.send < default.send && small.recv < default.recv,
            "{small:?} after {default:?}"
        );
        let asked = 200 * 1024;
        let large = enlarge(&sock, asked);
        assert!(
            large.send >= asked && large.recv >= asked,
            "{large:?} for {asked} asked"
        );
    }

    /// With CAP_NET_ADMIN (the tests run as root) the size goes past
    /// `net.core.wmem_max`; without it, the cap holds.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_process_that_administers_the_network_goes_past_the_cap() {
        let read = |f: &str| -> usize {
            std::fs::read_to_string(format!("/proc/sys/net/core/{f}"))
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(212_992)
        };
        let cap = read("wmem_max").max(read("rmem_max"));
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Linux reports double what it keeps, so the plain option ends at
        // twice the cap: ask for more than that.
        let asked = 4 * cap;
        let got = enlarge(&sock, asked);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert!(
                got.send >= asked && got.recv >= asked,
                "{got:?} for {asked} asked as root"
            );
        } else {
            assert!(
                got.send <= 2 * cap,
                "{got:?} past the cap {cap} without the right to"
            );
        }
    }
}
