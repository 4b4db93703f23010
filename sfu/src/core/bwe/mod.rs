//! Send-side bandwidth estimation, probing, pacing and allocation for one
//! subscriber leg.
//!
//! Every part here is Sans-I/O: it takes `now` and returns values, reads no
//! clock, owns no socket and knows no WebRTC library type. The shard owns
//! one set per subscriber leg and wires them like this:
//!
//! ```text
//!   allocator ----- target layer per track ------> forwarders
//!       ^                                              |
//!       | estimate, probe goal                         | packets
//!       |                                              v
//!   LegBwe <-- on_packet_sent (size, kind) ------- Pacer<T>  (paced at a
//!   (history,        returns the transport-wide        ^      multiple of
//!    estimator,      sequence number to stamp          |      the estimate)
//!    prober)    --- poll_probe: padding to send -------+
//!       ^
//!       | TransportFeedback (filled from the subscriber's transport-cc RTCP)
//! ```
//!
//! - [`history`]: transport-wide sequence numbers and what was sent when.
//! - [`feedback`]: the plain feedback type the shard fills from RTCP.
//! - [`estimator`]: delay-based (trendline), loss-based, bounded by what was
//!   actually sent and received.
//! - [`prober`]: probe clusters at the rate of the next allocation step.
//! - [`confirm`]: a probe that passed right after a failure at or below its
//!   rate counts only once the next one passes too.
//! - [`pacer`]: the per-leg send queue with priorities and a visible bound.
//! - [`allocator`]: the estimate turned into a layer per track, with
//!   hysteresis and pause events.
//! - [`leg`]: history, estimator and prober bundled for one leg.
//!
//! `docs/architecture.md` ("Bandwidth estimation, probing, pacing,
//! allocation") describes the parameters and the proposed config keys.

pub mod allocator;
mod arrival;
mod bitrate;
pub mod confirm;
pub mod estimator;
pub mod feedback;
pub mod history;
mod jitter;
pub mod leg;
mod loss;
pub mod pacer;
mod probe_measure;
pub mod prober;
mod rate;
mod rate_control;

pub use bitrate::Bitrate;

#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod testbed;
