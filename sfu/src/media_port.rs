//! Binding the media port: UDP, and with `[media] tcp` the same port
//! number over TCP (ICE over TCP, RFC 6544: clients are told one port).
//!
//! With a fixed `udp_port` the TCP port is that one or none (logged). With
//! `udp_port = 0` the kernel picks a free UDP port, but that number may be
//! taken over TCP by another program's connection (ephemeral ports are
//! shared by both protocols' clients). Then a new UDP port is drawn, a few
//! times, rather than starting without ICE over TCP.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

/// How many UDP ports an ephemeral bind tries before giving up on TCP.
const ATTEMPTS: usize = 16;

/// Binds UDP at `addr` and, if `tcp`, TCP on the port UDP got (`listen`
/// makes the TCP listener, in the runtime bound and non-blocking). The TCP
/// listener is `None` if `tcp` is off or no port could be shared; the
/// error says why.
pub fn bind(
    addr: SocketAddr,
    tcp: bool,
    listen: impl Fn(SocketAddr) -> io::Result<TcpListener>,
) -> io::Result<(UdpSocket, Result<Option<TcpListener>, io::Error>)> {
    let mut attempts = if addr.port() == 0 { ATTEMPTS } else { 1 };
    loop {
        let udp = UdpSocket::bind(addr)?;
        if !tcp {
            return Ok((udp, Ok(None)));
        }
        let local = udp.local_addr()?;
        match listen(local) {
            Ok(l) => return Ok((udp, Ok(Some(l)))),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts > 1 => {
                tracing::debug!(
                    "media port {}: taken over TCP, drawing another",
                    local.port()
                );
                attempts -= 1;
            }
            Err(e) => return Ok((udp, Err(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn any_port() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn tcp_gets_the_port_udp_got() {
        let (udp, tcp) = bind(any_port(), true, TcpListener::bind).unwrap();
        let tcp = tcp.unwrap().expect("a TCP listener");
        assert_eq!(tcp.local_addr().unwrap(), udp.local_addr().unwrap());
        let (_, none) = bind(any_port(), false, TcpListener::bind).unwrap();
        assert!(none.unwrap().is_none());
    }

    /// The port the kernel picked for UDP is taken over TCP: another one
    /// is drawn, and TCP shares that one.
    #[test]
    fn an_ephemeral_port_taken_over_tcp_is_drawn_again() {
        let refused = Cell::new(0);
        let tried = std::cell::RefCell::new(Vec::new());
        let listen = |at: SocketAddr| {
            tried.borrow_mut().push(at.port());
            if refused.get() < 2 {
                refused.set(refused.get() + 1);
                return Err(io::Error::from(io::ErrorKind::AddrInUse));
            }
            TcpListener::bind(at)
        };
        let (udp, tcp) = bind(any_port(), true, listen).unwrap();
        let tcp = tcp.unwrap().expect("a TCP listener after two refusals");
        assert_eq!(
            tcp.local_addr().unwrap().port(),
            udp.local_addr().unwrap().port()
        );
        assert_eq!(tried.borrow().len(), 3);
    }

    /// A configured port is the port: taken over TCP, UDP still starts
    /// there and the error is returned for the log.
    #[test]
    fn a_fixed_port_is_not_changed_for_tcp() {
        let probe = UdpSocket::bind(any_port()).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let addr = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
        let calls = Cell::new(0);
        let listen = |_| {
            calls.set(calls.get() + 1);
            Err(io::Error::from(io::ErrorKind::AddrInUse))
        };
        let (udp, tcp) = bind(addr, true, listen).unwrap();
        assert_eq!(udp.local_addr().unwrap().port(), port);
        assert_eq!(tcp.unwrap_err().kind(), io::ErrorKind::AddrInUse);
        assert_eq!(calls.get(), 1);
    }
}
