//! The send queue of one leg, paced at a multiple of the estimate.
//!
//! Packets wait in four FIFO queues by priority: audio, retransmissions,
//! video, padding. [`Pacer::poll`] hands out the first packet of the most
//! urgent non-empty queue whenever the pacing budget allows (audio goes out
//! at once by default, but is counted). Within a priority the order is
//! kept, so the packets of one stream's frames leave in order and never
//! interleave with another frame of that stream.
//!
//! The queue is bounded: a new frame is admitted only while the queue has
//! `frame_reserve` places left (so a frame already started can finish), and
//! nothing is queued beyond `max_packets`. A full queue evicts lower
//! priorities first (padding, then the newest video frame, whole); what
//! cannot be queued is returned through [`Pacer::pop_dropped`] with a
//! reason, never silently lost. When part of a frame is dropped, the rest
//! of that frame is dropped too, so the receiver sees a clean gap rather
//! than a torn frame (the shard then asks for a keyframe). To keep latency
//! bounded the pacer sends faster than the target when the queue would take
//! longer than `max_queue_time` to drain.
//!
//! A packet that would leave as soon as it was queued (audio, or anything
//! while nothing waits and the budget allows) may skip the queue through
//! [`Pacer::pass`], with the same accounting.
//!
//! Generic over the queued item: the shard queues its own packet handles.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Bitrate;
use crate::core::ids::IdMap;

/// Send order: lower first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Audio = 0,
    Retransmission = 1,
    Video = 2,
    Padding = 3,
}

/// Parameters of the pacer (`[bwe.pacer]` in the config).
#[derive(Clone, Debug, PartialEq)]
pub struct PacerConfig {
    /// Pacing rate = this x the estimate.
    pub rate_multiplier: f64,
    /// Hard bound of queued packets.
    pub max_packets: usize,
    /// A new frame is admitted only while this many places are free.
    pub frame_reserve: usize,
    /// Above this much queued time, the rate rises to drain it in this time.
    pub max_queue_time: Duration,
    /// After idle time, up to this much of the rate may go at once. While
    /// packets wait, the budget runs on: a poll that comes late sends what
    /// was due since, so the mean rate holds whatever the timer's grain.
    pub burst: Duration,
    /// Audio leaves at once instead of waiting for the budget.
    pub audio_unpaced: bool,
}

impl Default for PacerConfig {
    fn default() -> Self {
        PacerConfig {
            rate_multiplier: 2.5,
            max_packets: 2048,
            frame_reserve: 128,
            max_queue_time: Duration::from_millis(500),
            burst: Duration::from_millis(5),
            audio_unpaced: true,
        }
    }
}

/// What a queued packet is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    /// Bytes on the wire.
    pub size: usize,
    pub priority: Priority,
    /// The stream (e.g. the leg's SSRC for the track) and the frame (e.g.
    /// the RTP timestamp) the packet belongs to.
    pub stream: u32,
    pub frame: u32,
}

/// Why a packet was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The queue was full and nothing less important could make room.
    QueueFull,
    /// Removed to make room for a more important packet.
    Evicted,
    /// Another part of its frame was dropped.
    FrameIncomplete,
    /// Its stream was removed from the queue.
    StreamRemoved,
}

#[derive(Debug)]
pub struct Dropped<T> {
    pub item: T,
    pub meta: PacketMeta,
    pub reason: DropReason,
}

/// A packet to send now.
#[derive(Debug)]
pub struct Paced<T> {
    pub item: T,
    pub meta: PacketMeta,
    /// How long it waited.
    pub waited: Duration,
}

/// Counters of one pacer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacerStats {
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub queue_full: u64,
    pub evicted: u64,
    pub frame_incomplete: u64,
    pub stream_removed: u64,
    /// Longest wait of a sent packet.
    pub max_wait_us: u64,
}

#[derive(Debug)]
struct Entry<T> {
    item: T,
    meta: PacketMeta,
    queued_at: Instant,
}

#[derive(Debug, Default, Clone, Copy)]
struct StreamState {
    last_frame: Option<u32>,
    dropping: Option<u32>,
}

#[derive(Debug)]
pub struct Pacer<T> {
    cfg: PacerConfig,
    queues: [VecDeque<Entry<T>>; 4],
    queued_bytes: u64,
    rate: Bitrate,
    next_send: Option<Instant>,
    streams: IdMap<u32, StreamState>,
    dropped: VecDeque<Dropped<T>>,
    stats: PacerStats,
}

/// Pacing never goes below this, so a tiny estimate cannot stall the queue.
const MIN_RATE: Bitrate = Bitrate::kbps(10);

impl<T> Pacer<T> {
    pub fn new(cfg: PacerConfig, estimate: Bitrate) -> Self {
        let mut p = Pacer {
            cfg,
            queues: Default::default(),
            queued_bytes: 0,
            rate: MIN_RATE,
            next_send: None,
            streams: IdMap::default(),
            dropped: VecDeque::new(),
            stats: PacerStats::default(),
        };
        p.set_estimate(estimate);
        p
    }

    /// The leg's estimate changed: pace at `multiplier x estimate`.
    pub fn set_estimate(&mut self, estimate: Bitrate) {
        self.rate = estimate.scale(self.cfg.rate_multiplier).max(MIN_RATE);
    }

    pub fn stats(&self) -> PacerStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// How long the oldest queued packet has waited.
    pub fn queue_delay(&self, now: Instant) -> Duration {
        self.queues
            .iter()
            .filter_map(|q| q.front())
            .map(|e| now.saturating_duration_since(e.queued_at))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Queues a packet. What cannot be queued (this packet or evicted
    /// ones) comes out of [`Self::pop_dropped`].
    pub fn push(&mut self, item: T, meta: PacketMeta, now: Instant) {
        if self.is_empty() {
            self.restart_budget(now);
        }
        // Frames are tracked for video only: retransmissions belong to old
        // frames and audio frames are single packets.
        let video = meta.priority == Priority::Video;
        let mut new_frame = false;
        if video {
            let st = self.streams.entry(meta.stream).or_default();
            if st.dropping == Some(meta.frame) {
                self.push_dropped(item, meta, DropReason::FrameIncomplete);
                return;
            }
            new_frame = st.last_frame != Some(meta.frame);
            if new_frame {
                st.dropping = None;
            }
        }
        let limit = if new_frame {
            self.cfg.max_packets.saturating_sub(self.cfg.frame_reserve)
        } else {
            self.cfg.max_packets
        };
        while self.len() >= limit {
            if !self.evict_below(meta.priority) {
                self.mark_dropping(meta.stream, meta.frame, meta.priority);
                self.push_dropped(item, meta, DropReason::QueueFull);
                return;
            }
        }
        if video {
            self.streams.entry(meta.stream).or_default().last_frame = Some(meta.frame);
        }
        self.queued_bytes += meta.size as u64;
        self.queues[meta.priority as usize].push_back(Entry {
            item,
            meta,
            queued_at: now,
        });
    }

    fn mark_dropping(&mut self, stream: u32, frame: u32, priority: Priority) {
        if priority == Priority::Video {
            let st = self.streams.entry(stream).or_default();
            st.dropping = Some(frame);
            st.last_frame = Some(frame);
        }
    }

    /// Makes room by evicting from a priority below `prio`: one padding
    /// packet, or the newest video frame whole. `false` if nothing is
    /// below.
    fn evict_below(&mut self, prio: Priority) -> bool {
        for p in [Priority::Padding, Priority::Video] {
            if p <= prio || self.queues[p as usize].is_empty() {
                continue;
            }
            let q = &mut self.queues[p as usize];
            let Some(last) = q.pop_back() else { continue };
            let (stream, frame) = (last.meta.stream, last.meta.frame);
            self.queued_bytes -= last.meta.size as u64;
            self.push_dropped(last.item, last.meta, DropReason::Evicted);
            if p == Priority::Video {
                while self.queues[p as usize]
                    .back()
                    .is_some_and(|e| e.meta.stream == stream && e.meta.frame == frame)
                {
                    if let Some(e) = self.queues[p as usize].pop_back() {
                        self.queued_bytes -= e.meta.size as u64;
                        self.push_dropped(e.item, e.meta, DropReason::Evicted);
                    }
                }
                self.mark_dropping(stream, frame, p);
            }
            return true;
        }
        false
    }

    fn push_dropped(&mut self, item: T, meta: PacketMeta, reason: DropReason) {
        match reason {
            DropReason::QueueFull => self.stats.queue_full += 1,
            DropReason::Evicted => self.stats.evicted += 1,
            DropReason::FrameIncomplete => self.stats.frame_incomplete += 1,
            DropReason::StreamRemoved => self.stats.stream_removed += 1,
        }
        self.dropped.push_back(Dropped { item, meta, reason });
    }

    /// A packet that will not be sent, with the reason.
    pub fn pop_dropped(&mut self) -> Option<Dropped<T>> {
        self.dropped.pop_front()
    }

    /// Removes every queued packet of `stream` (a track that stopped).
    pub fn remove_stream(&mut self, stream: u32) {
        for p in 0..self.queues.len() {
            let q = std::mem::take(&mut self.queues[p]);
            for e in q {
                if e.meta.stream == stream {
                    self.queued_bytes -= e.meta.size as u64;
                    self.push_dropped(e.item, e.meta, DropReason::StreamRemoved);
                } else {
                    self.queues[p].push_back(e);
                }
            }
        }
        self.streams.remove(&stream);
    }

    /// The rate in force: the pacing rate, or faster when the queue would
    /// otherwise take longer than `max_queue_time` to drain.
    pub fn effective_rate(&self) -> Bitrate {
        let drain = Bitrate::from_bytes(self.queued_bytes, self.cfg.max_queue_time);
        self.rate.max(drain)
    }

    /// The next packet to send at `now`, if the budget allows.
    pub fn poll(&mut self, now: Instant) -> Option<Paced<T>> {
        let audio_now = self.cfg.audio_unpaced && !self.queues[0].is_empty();
        if !audio_now && self.next_send.is_some_and(|t| t > now) {
            return None;
        }
        let p = self.queues.iter().position(|q| !q.is_empty())?;
        let e = self.queues[p].pop_front()?;
        self.queued_bytes -= e.meta.size as u64;
        let waited = now.saturating_duration_since(e.queued_at);
        self.charge(e.meta.size, waited, now);
        Some(Paced {
            item: e.item,
            meta: e.meta,
            waited,
        })
    }

    /// Sends a packet without queueing it when [`Self::push`] followed by
    /// [`Self::poll`] would hand it straight back: audio while no audio
    /// waits (with `audio_unpaced`), anything while nothing waits and the
    /// budget allows. It is counted and charged to the budget as if it had
    /// passed through the queue. `false`: queue it with [`Self::push`].
    ///
    /// This is the common case, a subscriber under its estimate, and
    /// saves moving every such packet in and out of the queue. One
    /// difference: audio passing a full queue evicts nothing, where queued
    /// it would have evicted video to make room for an instant.
    pub fn pass(&mut self, meta: PacketMeta, now: Instant) -> bool {
        let idle = self.is_empty();
        let audio =
            self.cfg.audio_unpaced && meta.priority == Priority::Audio && self.queues[0].is_empty();
        let budget = idle && self.next_send.is_none_or(|t| t <= now);
        if !(audio || budget) {
            return false;
        }
        if self.cfg.max_packets <= self.cfg.frame_reserve {
            // A queue this small may refuse even a first packet.
            return false;
        }
        if meta.priority == Priority::Video {
            let st = self.streams.entry(meta.stream).or_default();
            if st.dropping == Some(meta.frame) {
                // The rest of a dropped frame: `push` drops it.
                return false;
            }
            if st.last_frame != Some(meta.frame) {
                st.dropping = None;
            }
            st.last_frame = Some(meta.frame);
        }
        if idle {
            self.restart_budget(now);
        }
        self.charge(meta.size, Duration::ZERO, now);
        true
    }

    /// After idle time, at most the burst allowance may go at once; while
    /// packets wait, the budget runs on, so a late poll catches up and the
    /// mean rate holds.
    fn restart_budget(&mut self, now: Instant) {
        let floor = now.checked_sub(self.cfg.burst).unwrap_or(now);
        self.next_send = Some(self.next_send.map_or(floor, |t| t.max(floor)));
    }

    /// Takes a sent packet of `size` bytes from the budget, and counts it.
    fn charge(&mut self, size: usize, waited: Duration, now: Instant) {
        let rate = self.effective_rate().max(MIN_RATE);
        let start = self
            .next_send
            .unwrap_or_else(|| now.checked_sub(self.cfg.burst).unwrap_or(now));
        let cost = rate.time_for(size as u64).min(Duration::from_secs(1));
        self.next_send = Some(start + cost);
        self.stats.sent_packets += 1;
        self.stats.sent_bytes += size as u64;
        self.stats.max_wait_us = self.stats.max_wait_us.max(waited.as_micros() as u64);
    }

    /// When [`Self::poll`] next has a packet (`None`: the queue is empty).
    /// A time in the past means now.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.cfg.audio_unpaced {
            if let Some(e) = self.queues[0].front() {
                return Some(e.queued_at);
            }
        }
        let first = self
            .queues
            .iter()
            .filter_map(|q| q.front())
            .map(|e| e.queued_at)
            .min()?;
        Some(self.next_send.map_or(first, |t| t.max(first)))
    }
}

#[cfg(test)]
mod tests;
