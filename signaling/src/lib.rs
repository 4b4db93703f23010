//! Signaling for the media server: the wire protocol, rooms and membership,
//! access tokens, the WebSocket session, the HTTP API and the P2P relay.
//!
//! The crate knows nothing about RTP. Rooms in SFU mode are served by a
//! [`media::MediaPlane`] that the server binary plugs in; P2P rooms only
//! need the relay.
//!
//! The core is `hub::Hub`, a state machine with no I/O: it takes inputs
//! (a socket opened, a message, a socket closed, a media event, a timeout)
//! and returns effects (frames to send, media commands). `server` runs it
//! on one task and `http` serves the sockets.
//!
//! # Features
//!
//! - `server` (default): the hub, the WebSocket and HTTP service and access
//!   tokens (axum, jsonwebtoken). A media plane builds this crate without
//!   it and gets only the boundary: [`media`] (commands, events, counters,
//!   the [`media::MediaPlane`] trait and the few wire types they carry),
//!   [`ids`], [`error`], plus [`protocol`] and [`config`], which need
//!   nothing but serde.

#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod cluster;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod hub;
pub mod ids;
#[cfg(feature = "server")]
pub mod listen;
pub mod media;
pub mod protocol;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
mod session;

pub use error::ErrorCode;
pub use ids::{ClientId, NodeId, ParticipantId, RoomName};
