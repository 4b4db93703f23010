//! Allocation of one subscriber's estimate across its tracks.
//!
//! Two phases, as in LiveKit's stream allocator:
//!
//! 1. **Provisional** ([`Allocator::provisional`]): what the estimate allows
//!    now, from scratch. Audio is always kept and counted first. Video
//!    tracks are ranked: screen shares, then the active speaker, then the
//!    others (in input order). Every visible, unpaused video gets its lowest
//!    layer, in rank order; the first that does not fit is paused with all
//!    ranked below it (the least important go first). Then layers step up
//!    one at a time, round-robin within a rank, higher ranks first, while
//!    the budget allows.
//! 2. **Commit** ([`Allocator::commit`]): the provisional result against
//!    what is committed, with hysteresis. Changes the subscriber asked for
//!    (hidden, paused, lower max quality) and a layer that disappeared apply
//!    at once. When the committed set no longer fits the estimate, tracks
//!    move down at once, least important first (a flowing video is paused
//!    only after `pause_hold` over the estimate, and not within
//!    `pause_after_up` of a move up), and the spatial layer they left (not
//!    a temporal layer within one) is blocked
//!    for a while (longer each time the same track is pushed down again
//!    after moving up; a probe that proves the blocked layer at 1.25 times
//!    the total that did not fit lifts the block, unless the block followed
//!    such a lift within `block_initial`). A move up must fit `up_headroom` of the
//!    estimate and needs either a probe that just proved the rate, or the
//!    provisional result asking for it continuously for `up_hold` to a
//!    total the path has already delivered lately; none happens while the
//!    leg is congested. A video paused for bandwidth while others take
//!    more than their lowest layer is not left waiting for such a move:
//!    the rate already sent (or just proven) is shared again as phase 1
//!    would share it, so every video flows before any climbs.
//!
//! The output says, per track, the target layer or why it is paused, the
//! layer the subscriber would want the publisher to send (for dynacast, see
//! [`DynacastNeeds`]), the events to forward to the subscriber, and the
//! rates to probe for: the next move up, and everything wanted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Bitrate;
use crate::core::ids::TrackNo;

mod dynacast;
mod select;
mod types;

pub use dynacast::DynacastNeeds;
pub use types::*;

#[derive(Clone, Copy, Debug)]
struct TrackState {
    target: Target,
    up_since: Option<Instant>,
    /// This layer and above are blocked until then.
    block: Option<(Layer, Instant)>,
    /// The total that did not fit when the block was set.
    block_total: Bitrate,
    /// When a probe last lifted a block of this track.
    lifted_at: Option<Instant>,
    /// The block was set soon after a lift: no probe lifts it (a shaper
    /// that lets a short burst through can pass probes it cannot carry).
    block_firm: bool,
    backoff: Duration,
    moved_up_since_shed: bool,
    last_shed: Option<Instant>,
    /// Not allocated before: starts at the provisional target, no event
    /// but a pause.
    fresh: bool,
    /// The layer the track had when its publisher stopped sending it, and
    /// when: once it flows again the track goes back to it at once.
    restore: Option<(Layer, Instant)>,
}

/// How long a track pushed down by a vanished layer may go back to it at
/// once when it returns. A publisher's encoder that drops its top layer
/// for a moment (Chromium does when its CPU or uplink is short) has not
/// narrowed the subscriber's path: the layer was carried just before.
const RESTORE_WITHIN: Duration = Duration::from_secs(10);

/// Allocates for one subscriber. Holds the committed state between calls.
#[derive(Debug)]
pub struct Allocator {
    cfg: AllocatorConfig,
    state: HashMap<TrackNo, TrackState>,
    /// Since when the committed set has been over the estimate.
    short_since: Option<Instant>,
    /// When a track last moved up.
    last_up: Option<Instant>,
}

impl Allocator {
    pub fn new(cfg: AllocatorConfig) -> Self {
        Allocator {
            cfg,
            state: HashMap::new(),
            short_since: None,
            last_up: None,
        }
    }

    /// The committed target of a track.
    pub fn target(&self, track: TrackNo) -> Option<Target> {
        self.state.get(&track).map(|s| s.target)
    }

    /// Phase 1: what `estimate` allows at `now`, ignoring hysteresis (but
    /// not the layers blocked after congestion).
    pub fn provisional(
        &self,
        tracks: &[TrackInput],
        estimate: Bitrate,
        now: Instant,
    ) -> Provisional {
        let blocks = self.blocks(tracks, now);
        let sel = select::select(tracks, estimate, select::Layers::Available, Some(&blocks));
        let up = select::select(
            tracks,
            estimate.scale(self.cfg.up_headroom),
            select::Layers::Available,
            Some(&blocks),
        );
        Provisional {
            estimate,
            total: sel.iter().map(|a| a.bitrate).sum(),
            tracks: sel,
            up_tracks: up,
        }
    }

    /// Both phases in one call.
    pub fn allocate(
        &mut self,
        tracks: &[TrackInput],
        estimate: Bitrate,
        signal: Signal,
        now: Instant,
    ) -> Allocation {
        let p = self.provisional(tracks, estimate, now);
        self.commit(tracks, &p, signal, now)
    }

    /// Phase 2: commits `provisional` with hysteresis.
    pub fn commit(
        &mut self,
        tracks: &[TrackInput],
        provisional: &Provisional,
        signal: Signal,
        now: Instant,
    ) -> Allocation {
        self.state
            .retain(|k, _| tracks.iter().any(|t| t.track == *k));
        let budget = provisional.estimate;
        let cfg = self.cfg.clone();
        // Start from what is committed, with the subscriber's own changes
        // and vanished layers applied at once.
        let mut next: Vec<Target> = tracks
            .iter()
            .zip(&provisional.tracks)
            .map(|(t, p)| {
                let st = self.state.entry(t.track).or_insert(TrackState {
                    target: Target::Paused(PauseReason::Bandwidth),
                    up_since: None,
                    block: None,
                    block_total: Bitrate::ZERO,
                    lifted_at: None,
                    block_firm: false,
                    backoff: cfg.block_initial,
                    moved_up_since_shed: false,
                    last_shed: None,
                    fresh: true,
                    restore: None,
                });
                if st
                    .last_shed
                    .is_some_and(|s| now.saturating_duration_since(s) >= cfg.block_reset)
                {
                    st.backoff = cfg.block_initial;
                    st.last_shed = None;
                }
                if st.block.is_some_and(|(_, until)| now >= until) {
                    st.block = None;
                }
                if st
                    .restore
                    .is_some_and(|(_, at)| now.saturating_duration_since(at) >= RESTORE_WITHIN)
                {
                    st.restore = None;
                }
                if st.fresh {
                    return p.target;
                }
                let f = forced(t, st.target, p.target);
                if let Target::Layer(l) = st.target {
                    if rank(f) < rank(st.target) && !select::is_available(t, l) {
                        st.restore = Some((l, now));
                    }
                }
                f
            })
            .collect();
        // What the committed set must fit: the estimate, or what the path
        // allows whatever was sent in the last second, if more (a publisher
        // that sent little for a moment has not narrowed the path).
        let keep = signal.sustained.map_or(budget, |s| s.max(budget));

        // Moves up, most important first: proven by a probe, or held long
        // enough to a total the path has already delivered; never while
        // congested, and never past the headroom of the estimate.
        let up_budget = budget.scale(cfg.up_headroom);
        // A probe proves a total: every move up to within it is proven.
        let proven_by_probe = |total: Bitrate| {
            signal
                .probe_success
                .is_some_and(|r| r.scale(cfg.up_headroom) >= total)
        };
        // None of the subscriber's video flows: there is no rate to hold
        // to and nothing a probe could repeat. The most important track's
        // lowest layer is tried as it is; the try is the probe (if it does
        // not fit, shedding blocks it, longer each time).
        let mut idle_try = tracks.iter().zip(&next).all(|(t, g)| {
            matches!(t.kind, TrackKind::Audio { .. }) || !matches!(g, Target::Layer(_))
        });
        for &i in &select::rank_order(tracks) {
            let (t, p) = (&tracks[i], &provisional.up_tracks[i]);
            let st = self.state.get_mut(&t.track).expect("inserted above");
            // A probe that proves the total with a blocked layer, and well
            // above the total that did not fit, lifts the block: the block
            // keeps unproven moves up from repeating a shed, but a path
            // that has room again (a cap lifted, a paused video's lowest
            // layer) must not wait it out. A probe that barely passes on a
            // capped path (delay noise) would lead into the same shed.
            let changed = signal
                .probe_success
                .is_some_and(|r| r.as_f64() >= BLOCK_LIFT * st.block_total.as_f64());
            let lifted = st.block.map(|(b, _)| b).filter(|&b| {
                changed
                    && !st.block_firm
                    && rank(Target::Layer(b)) > rank(next[i])
                    && select::is_available(t, b)
                    && {
                        let mut with = next.clone();
                        with[i] = Target::Layer(b);
                        proven_by_probe(total(tracks, &with))
                    }
            });
            // A layer that vanished and flows again: back to it.
            let back = st.restore.map(|(l, _)| l).filter(|&l| {
                select::is_available(t, l)
                    && select::allowed(t, l)
                    && rank(Target::Layer(l)) > rank(p.target)
            });
            let want = match (lifted, back) {
                (Some(b), _) => Target::Layer(b),
                (None, Some(l)) => cap_below_block(t, Target::Layer(l), st.block),
                (None, None) => cap_below_block(t, p.target, st.block),
            };
            if rank(want) <= rank(next[i]) {
                st.up_since = None;
                continue;
            }
            let since = *st.up_since.get_or_insert(now);
            let held = now.saturating_duration_since(since) >= cfg.up_hold;
            let before = next[i];
            next[i] = want;
            let new_total = total(tracks, &next);
            let known = signal.delivered.is_some_and(|d| new_total <= d);
            let first_layer = matches!(before, Target::Paused(PauseReason::Bandwidth))
                && matches!(want, Target::Layer(l) if select::lowest(t) == Some(l));
            let tried = idle_try && first_layer;
            let probed = proven_by_probe(new_total);
            let restored = back.is_some_and(|l| Target::Layer(l) == want) && new_total <= keep;
            let proven = new_total <= up_budget && (probed || (held && known) || tried);
            if signal.congested || !(restored || proven) {
                next[i] = before;
                continue;
            }
            if restored {
                st.restore = None;
            }
            idle_try = false;
            self.last_up = Some(now);
            if lifted.is_some() {
                st.block = None;
                st.lifted_at = Some(now);
            }
            st.up_since = None;
            st.moved_up_since_shed = true;
        }

        self.rebalance(tracks, &mut next, up_budget, signal, now);

        // Over budget: down at once, least important first. Without standing
        // congestion a single back-off of the estimate moves nothing: the
        // committed set is kept down to `down_tolerance` of it.
        let base_total = total(tracks, &self.committed_targets(tracks));
        let shortfall = base_total > keep;
        let short_since = if shortfall {
            *self.short_since.get_or_insert(now)
        } else {
            self.short_since = None;
            now
        };
        // Nor soon after a move up: the set before it fitted, and the
        // estimate's fall while the queue the move built drains is no
        // reason to freeze a video that flowed before it.
        // Nor while the path delivers every flowing video's lowest layer
        // (then the layers above are what does not fit), or carries them
        // with no queue standing and no loss while nothing above them is
        // sent: an overuse verdict alone is no reason to freeze a video
        // when the lowest layers are all that is left to send. (Unless a
        // long queue stands: then even they do not fit.)
        let lowest: Vec<Target> = tracks
            .iter()
            .zip(&next)
            .map(|(t, g)| match g {
                Target::Layer(_) => select::lowest(t).map_or(*g, Target::Layer),
                _ => *g,
            })
            .collect();
        let at_lowest = lowest == next;
        let lowest_carried = !signal.backlog
            && (signal.carried.is_some_and(|c| total(tracks, &lowest) <= c)
                || (at_lowest && !signal.standing));
        let may_pause = now.saturating_duration_since(short_since) >= cfg.pause_hold
            && self
                .last_up
                .is_none_or(|t| now.saturating_duration_since(t) >= cfg.pause_after_up)
            && !lowest_carried;
        let order = select::rank_order(tracks);
        let mut sum = total(tracks, &next);
        // And with no congestion on the path at all (no overuse, loss or
        // standing queue), the set is kept whatever the sum says: the
        // estimate and the layer rates are measured over a second, and a
        // keyframe burst that raised a layer's measured rate, or a
        // publisher that sent little, is not the path narrowing. If the
        // set does not fit, congestion shows within a round trip or two.
        let clear = !signal.congested && !signal.standing;
        let tolerated =
            clear || (!signal.standing && keep.as_f64() >= cfg.down_tolerance * sum.as_f64());
        for &i in order.iter().rev() {
            if sum <= keep || tolerated {
                break;
            }
            let mut p = provisional.tracks[i].target;
            // A flowing video goes down to its lowest layer at once, but
            // is paused only once the shortfall has lasted `pause_hold`.
            if matches!(p, Target::Paused(PauseReason::Bandwidth))
                && matches!(next[i], Target::Layer(_))
                && !may_pause
            {
                match select::lowest(&tracks[i]) {
                    Some(l) => p = Target::Layer(l),
                    None => continue,
                }
            }
            if rank(p) < rank(next[i]) {
                let from = next[i];
                next[i] = p;
                sum = total(tracks, &next);
                // Fewer frames of the same picture size block nothing: the
                // move costs no keyframe either way, and a block there
                // would hold every larger layer too (a track pushed to and
                // fro between temporal layers under a tight cap would end
                // up blocked for minutes after the cap went away).
                if shortfall && !same_spatial(from, p) {
                    self.block(tracks[i].track, from, base_total, now);
                }
            }
        }

        self.finish(tracks, next, provisional)
    }

    /// A video paused for bandwidth while others take more than their
    /// lowest layer: the rate is shared again, as a fresh allocation would
    /// share it. Every video flowing beats one of them in high quality, and
    /// a paused video could otherwise wait for good: its way back is a move
    /// up, which needs a probe proving the higher total.
    ///
    /// The total stays within what is sent now, or what a probe just proved
    /// or the path delivered lately, and within the headroom of the
    /// estimate; while congested, within what is sent now. A block on a
    /// track's lowest layer does not hold it paused here, since the total
    /// does not grow; blocks on higher layers still apply.
    fn rebalance(
        &self,
        tracks: &[TrackInput],
        next: &mut [Target],
        up_budget: Bitrate,
        signal: Signal,
        now: Instant,
    ) {
        let paused = |ts: &[Target]| {
            ts.iter()
                .filter(|t| matches!(t, Target::Paused(PauseReason::Bandwidth)))
                .count()
        };
        let before = paused(next);
        if before == 0 {
            return;
        }
        let sent = total(tracks, next);
        // What may be shared: what is sent now, or as much as a probe just
        // proved or the path delivered lately, within the headroom.
        let proven = [signal.probe_success, signal.delivered]
            .into_iter()
            .flatten()
            .max()
            .filter(|_| !signal.congested);
        let budget = proven.map_or(sent, |p| sent.max(p.min(up_budget)));
        let blocks: Vec<Option<Layer>> = self
            .blocks(tracks, now)
            .into_iter()
            .zip(tracks)
            .map(|(b, t)| b.filter(|&b| select::lowest(t) != Some(b)))
            .collect();
        let shared: Vec<Target> =
            select::select(tracks, budget, select::Layers::Available, Some(&blocks))
                .iter()
                .map(|a| a.target)
                .collect();
        if paused(&shared) < before {
            next.copy_from_slice(&shared);
        }
    }

    /// Per track, the layer blocked at `now` after congestion.
    fn blocks(&self, tracks: &[TrackInput], now: Instant) -> Vec<Option<Layer>> {
        tracks
            .iter()
            .map(|t| {
                self.state
                    .get(&t.track)
                    .and_then(|s| s.block)
                    .filter(|(_, until)| now < *until)
                    .map(|(l, _)| l)
            })
            .collect()
    }

    fn committed_targets(&self, tracks: &[TrackInput]) -> Vec<Target> {
        tracks
            .iter()
            .map(|t| {
                self.state
                    .get(&t.track)
                    .map_or(Target::Paused(PauseReason::Bandwidth), |s| s.target)
            })
            .collect()
    }

    fn block(&mut self, track: TrackNo, left: Target, total: Bitrate, now: Instant) {
        let Some(st) = self.state.get_mut(&track) else {
            return;
        };
        let Target::Layer(layer) = left else { return };
        if st.moved_up_since_shed && st.last_shed.is_some() {
            st.backoff = (st.backoff * 2).min(self.cfg.block_max);
        }
        st.block = Some((layer, now + st.backoff));
        st.block_total = total;
        st.block_firm = st
            .lifted_at
            .is_some_and(|t| now.saturating_duration_since(t) < self.cfg.block_initial);
        st.moved_up_since_shed = false;
        st.last_shed = Some(now);
        st.restore = None;
    }

    fn finish(
        &mut self,
        tracks: &[TrackInput],
        next: Vec<Target>,
        provisional: &Provisional,
    ) -> Allocation {
        let mut events = Vec::new();
        let mut out = Vec::with_capacity(tracks.len());
        for ((t, target), p) in tracks.iter().zip(next).zip(&provisional.tracks) {
            let st = self.state.get_mut(&t.track).expect("inserted in commit");
            let prev = (!st.fresh).then_some(st.target);
            st.fresh = false;
            if let Some(e) = event(t.track, prev, target) {
                events.push(e);
            }
            st.target = target;
            out.push(TrackAllocation {
                track: t.track,
                target,
                bitrate: select::bitrate_of(t, target),
                wanted: wanted(t, target, p.wanted),
            });
        }
        let total: Bitrate = out.iter().map(|a| a.bitrate).sum();
        let best = select::select(tracks, Bitrate::MAX, select::Layers::All, None);
        let desired: Bitrate = best.iter().map(|a| a.bitrate).sum();
        let targets: Vec<Target> = out.iter().map(|a| a.target).collect();
        // Probes go for blocked layers too: a probe that proves one lifts
        // its block (the prober's backoff keeps failed tries rare).
        let next = select::next_step(tracks, &targets, &[]);
        let reach: Bitrate = select::select(tracks, Bitrate::MAX, select::Layers::Available, None)
            .iter()
            .map(|a| a.bitrate)
            .sum();
        let over_headroom = |b: Bitrate| b.scale(1.0 / self.cfg.up_headroom);
        Allocation {
            tracks: out,
            total,
            events,
            probe_target: next.map(over_headroom),
            probe_goal: next.map(|n| over_headroom(reach.max(n))),
            desired,
        }
    }
}

/// The event for a change of target (`prev` is `None` for a new track:
/// only a pause is worth telling).
fn event(track: TrackNo, prev: Option<Target>, next: Target) -> Option<AllocationEvent> {
    match (prev, next) {
        (None, Target::Paused(reason @ PauseReason::Bandwidth)) => {
            Some(AllocationEvent::Paused { track, reason })
        }
        (Some(Target::Layer(from)), Target::Layer(to)) if from != to => {
            Some(AllocationEvent::LayerChanged { track, from, to })
        }
        (Some(Target::Layer(_)), Target::Paused(reason)) => {
            Some(AllocationEvent::Paused { track, reason })
        }
        (Some(Target::Paused(a)), Target::Paused(b)) if a != b => {
            Some(AllocationEvent::Paused { track, reason: b })
        }
        (Some(Target::Paused(_)), Target::Layer(layer)) => {
            Some(AllocationEvent::Resumed { track, layer })
        }
        _ => None,
    }
}

/// A probe lifts a block when it proves this many times the total that
/// did not fit when the block was set.
const BLOCK_LIFT: f64 = 1.25;

/// Ordering of targets by how much they take: paused < any layer.
fn rank(t: Target) -> (u8, Option<Layer>) {
    match t {
        Target::Paused(_) => (0, None),
        Target::Audio => (1, None),
        Target::Layer(l) => (2, Some(l)),
    }
}

/// Both are layers of the same spatial layer.
fn same_spatial(a: Target, b: Target) -> bool {
    matches!((a, b), (Target::Layer(x), Target::Layer(y)) if x.spatial == y.spatial)
}

fn total(tracks: &[TrackInput], targets: &[Target]) -> Bitrate {
    tracks
        .iter()
        .zip(targets)
        .map(|(t, g)| select::bitrate_of(t, *g))
        .sum()
}

/// The committed target with the subscriber's own choices and vanished
/// layers applied.
fn forced(t: &TrackInput, committed: Target, provisional: Target) -> Target {
    match (&t.kind, provisional) {
        (TrackKind::Audio { .. }, _) => Target::Audio,
        // Not the estimate's doing: follow at once.
        (
            _,
            Target::Paused(
                r @ (PauseReason::NotVisible
                | PauseReason::PausedBySubscriber
                | PauseReason::NoLayers),
            ),
        ) => Target::Paused(r),
        (_, _) => match committed {
            Target::Layer(l) => {
                if select::allowed(t, l) && select::is_available(t, l) {
                    committed
                } else {
                    // Down to the best allowed layer not above it; for
                    // fewer temporal layers that are no longer offered
                    // (the stream's count changed, or went unmeasured),
                    // the same stream with all of them.
                    select::best_at_most(t, l)
                        .or_else(|| select::lowest_of_spatial(t, l.spatial))
                        .map_or(Target::Paused(PauseReason::NoLayers), Target::Layer)
                }
            }
            // Paused by the subscriber (hidden, paused) or for want of
            // layers, and that is over: back as a new track starts, at what
            // fits the estimate now. Held like a move up, it would wait for
            // a probe or for a delivered rate the pause itself brought down.
            Target::Paused(
                PauseReason::NotVisible | PauseReason::PausedBySubscriber | PauseReason::NoLayers,
            ) => provisional,
            // Paused for bandwidth: stays paused until a move up is allowed.
            _ => Target::Paused(PauseReason::Bandwidth),
        },
    }
}

/// `want` lowered below a blocked layer.
fn cap_below_block(t: &TrackInput, want: Target, block: Option<(Layer, Instant)>) -> Target {
    match (want, block) {
        (Target::Layer(l), Some((b, _))) if l >= b => {
            select::best_below(t, b).map_or(Target::Paused(PauseReason::Bandwidth), Target::Layer)
        }
        _ => want,
    }
}

/// The layer to ask the publisher for: one spatial step above the target
/// when bandwidth limits it (so the next step is encoded once the estimate
/// allows it), never above what the subscriber wants.
fn wanted(t: &TrackInput, target: Target, best: Option<Layer>) -> Option<Layer> {
    let best = best?;
    match target {
        Target::Layer(l) if l < best => Some(select::next_spatial(t, l).unwrap_or(best).min(best)),
        Target::Layer(_) => Some(best),
        Target::Paused(PauseReason::Bandwidth) => select::lowest(t),
        _ => None,
    }
}

#[cfg(test)]
mod svc_tests;
#[cfg(test)]
mod tests;
