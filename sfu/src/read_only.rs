//! Descriptors a shard's runtime polls for reading only.
//!
//! Tokio's own UDP socket registers for writability as well, edge-triggered,
//! and Linux signals a UDP socket writable each time a datagram it sent is
//! freed (when the client reads it on loopback, when the device has sent it
//! on a NIC): polled that way, a busy media port wakes its thread for every
//! datagram any shard sends. Nothing here waits for room to send: sends are
//! non-blocking and what cannot be sent is counted.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Registers `owned` with the current runtime for readability alone.
/// `owned` owns its descriptor (it converts into an [`OwnedFd`]). Must run
/// inside a runtime.
pub fn register<T: AsRawFd + Into<OwnedFd>>(owned: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T` owns its descriptor, which therefore stays open and names
    // the same file for as long as the `AsyncFd` that owns `T`.
    unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }.map_err(io::Error::from)
}
