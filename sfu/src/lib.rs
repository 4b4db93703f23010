//! The SFU media plane: one UDP port, one peer connection per participant,
//! RTP forwarding and RTCP feedback between the members of a room.

pub mod config;

pub use config::MediaConfig;
