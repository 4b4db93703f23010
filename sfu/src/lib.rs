//! The SFU media plane: one UDP port, one peer connection per participant,
//! RTP forwarding and RTCP feedback between the members of a room.

pub mod batch_recv;
pub mod batch_send;
pub mod config;
#[cfg(target_os = "linux")]
pub mod connected;
pub mod core;
pub mod demux;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod heap;
pub mod media_port;
pub mod read_only;
pub mod relay_io;
pub mod runtime;
pub mod shard;
pub mod sockbuf;
pub mod stats;
pub mod tcp;

/// Log directives that hold the media library to errors where it would
/// write a line per packet a stranger can send: a bad SRTP packet or
/// record from a client's address (`handle_read got error`), STUN it
/// discards, candidates it will not resolve. The server counts each such
/// packet by reason and logs at most one line per reason per interval
/// (see `core::loglimit`); the DTLS layer also warns about an empty
/// remote address on every connection, which is harmless.
pub const LIBRARY_LOG_DIRECTIVES: &str =
    "rtc_dtls=error,rtc::peer_connection::handler=error,rtc_ice=error,rtc_srtp=error";

pub use config::MediaConfig;
pub use runtime::SfuPlane;
