//! The Sans-I/O core: plain structs that take `now` and return decisions.
//!
//! Nothing here touches a socket, a thread or the clock, and nothing here
//! knows the WebRTC library: the shard (see [`crate::shard`]) feeds these
//! parts and carries out what they decide.

pub mod bind;
pub mod bwe;
pub mod codec;
pub mod extmap;
pub mod forwarder;
pub mod ids;
pub mod input_lag;
pub mod keyframe;
pub mod layer;
pub mod loglimit;
pub mod nack_cache;
pub mod numbering;
pub mod offer_check;
pub mod renomination;
pub mod repair;
pub mod routing;
pub mod sdp;
pub mod seq;
pub mod simulcast_sdp;
pub mod srtcp_in;
pub mod srtp_in;
pub mod srtp_out;
