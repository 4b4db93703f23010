//! The SFU media plane: one UDP port, one peer connection per participant,
//! RTP forwarding and RTCP feedback between the members of a room.

pub mod config;
pub mod core;
pub mod demux;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod relay_io;
pub mod runtime;
pub mod shard;
pub mod stats;

pub use config::MediaConfig;
pub use runtime::SfuPlane;
