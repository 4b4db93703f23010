//! Phase 1 of the allocation: the best set of layers a budget allows, from
//! scratch (no hysteresis), and helpers over a track's layers.

use super::{Layer, PauseReason, Target, TrackAllocation, TrackInput, TrackKind};
use crate::core::bwe::Bitrate;

/// Which layers count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layers {
    /// Only layers the server receives now.
    Available,
    /// Every layer, with its expected bitrate (what the subscriber would
    /// take if the publisher sent everything).
    All,
}

/// Importance tier: screen shares, the active speaker, the rest.
fn tier(t: &TrackInput) -> u8 {
    match t {
        _ if matches!(t.kind, TrackKind::Audio { .. }) => 0,
        _ if t.screen_share => 1,
        _ if t.active_speaker => 2,
        _ => 3,
    }
}

/// Track indices, most important first (stable within a tier).
pub(super) fn rank_order(tracks: &[TrackInput]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tracks.len()).collect();
    order.sort_by_key(|&i| tier(&tracks[i]));
    order
}

/// Whether the subscriber's requested maximum allows layer `l`.
pub(super) fn allowed(t: &TrackInput, l: Layer) -> bool {
    t.max_layer
        .is_none_or(|m| l.spatial <= m.spatial && l.temporal <= m.temporal)
}

/// The track's layers the subscriber may take, sorted by quality.
fn candidates(t: &TrackInput, which: Layers) -> Vec<(Layer, Bitrate)> {
    candidates_below(t, which, None)
}

/// Same, without `block` and the layers above it.
fn candidates_below(t: &TrackInput, which: Layers, block: Option<Layer>) -> Vec<(Layer, Bitrate)> {
    let TrackKind::Video { layers } = &t.kind else {
        return Vec::new();
    };
    let mut c: Vec<(Layer, Bitrate)> = layers
        .iter()
        .filter(|l| (which == Layers::All || l.available) && allowed(t, l.layer))
        .filter(|l| block.is_none_or(|b| l.layer < b))
        .map(|l| (l.layer, l.bitrate))
        .collect();
    c.sort_by_key(|(l, _)| *l);
    c.dedup_by_key(|(l, _)| *l);
    c
}

pub(super) fn is_available(t: &TrackInput, l: Layer) -> bool {
    candidates(t, Layers::Available)
        .iter()
        .any(|(c, _)| *c == l)
}

/// The best available layer at or below `l`.
pub(super) fn best_at_most(t: &TrackInput, l: Layer) -> Option<Layer> {
    candidates(t, Layers::Available)
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| *c <= l)
        .max()
}

/// The lowest available layer of spatial layer `spatial`.
pub(super) fn lowest_of_spatial(t: &TrackInput, spatial: u8) -> Option<Layer> {
    candidates(t, Layers::Available)
        .into_iter()
        .map(|(c, _)| c)
        .find(|c| c.spatial == spatial)
}

/// The best available layer strictly below `l`.
pub(super) fn best_below(t: &TrackInput, l: Layer) -> Option<Layer> {
    candidates(t, Layers::Available)
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| *c < l)
        .max()
}

/// The lowest layer of the next spatial layer above `l`'s (any
/// availability).
pub(super) fn next_spatial(t: &TrackInput, l: Layer) -> Option<Layer> {
    candidates(t, Layers::All)
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| c.spatial > l.spatial)
        .min()
}

/// The lowest layer the subscriber may take (any availability).
pub(super) fn lowest(t: &TrackInput) -> Option<Layer> {
    candidates(t, Layers::All).first().map(|(l, _)| *l)
}

pub(super) fn bitrate_of(t: &TrackInput, target: Target) -> Bitrate {
    match (&t.kind, target) {
        (TrackKind::Audio { bitrate }, _) => *bitrate,
        (TrackKind::Video { layers }, Target::Layer(l)) => layers
            .iter()
            .find(|x| x.layer == l)
            .map_or(Bitrate::ZERO, |x| x.bitrate),
        _ => Bitrate::ZERO,
    }
}

/// The allocation `budget` allows with the given layers, none at or above
/// a track's block (`blocks[i]`, when given). `wanted` is the best layer
/// the subscriber may take among all layers (any budget, any block).
pub(super) fn select(
    tracks: &[TrackInput],
    budget: Bitrate,
    which: Layers,
    blocks: Option<&[Option<Layer>]>,
) -> Vec<TrackAllocation> {
    let block_of = |i: usize| blocks.and_then(|b| b.get(i).copied().flatten());
    let cands: Vec<Vec<(Layer, Bitrate)>> = tracks
        .iter()
        .enumerate()
        .map(|(i, t)| candidates_below(t, which, block_of(i)))
        .collect();
    let mut out: Vec<TrackAllocation> = tracks
        .iter()
        .map(|t| TrackAllocation {
            track: t.track,
            target: Target::Audio,
            bitrate: Bitrate::ZERO,
            wanted: None,
        })
        .collect();
    let mut remaining = budget;
    // Audio always, counted first.
    for (i, t) in tracks.iter().enumerate() {
        if let TrackKind::Audio { bitrate } = t.kind {
            out[i].bitrate = bitrate;
            remaining = remaining - bitrate;
        }
    }
    // Lowest layers in rank order; the first that does not fit pauses
    // itself and everything ranked below.
    let order = rank_order(tracks);
    let mut index: Vec<Option<usize>> = vec![None; tracks.len()];
    let mut starved = false;
    for &i in &order {
        let t = &tracks[i];
        if matches!(t.kind, TrackKind::Audio { .. }) {
            continue;
        }
        let paused = if !t.visible {
            Some(PauseReason::NotVisible)
        } else if t.paused_by_subscriber {
            Some(PauseReason::PausedBySubscriber)
        } else if candidates(t, which).is_empty() {
            Some(PauseReason::NoLayers)
        } else {
            None
        };
        if let Some(r) = paused {
            out[i].target = Target::Paused(r);
            continue;
        }
        out[i].wanted = candidates(t, Layers::All).last().map(|(l, _)| *l);
        let Some(&(layer, rate)) = cands[i].first() else {
            // Every layer it may take is blocked after congestion.
            out[i].target = Target::Paused(PauseReason::Bandwidth);
            continue;
        };
        if starved || rate > remaining {
            starved = true;
            out[i].target = Target::Paused(PauseReason::Bandwidth);
            continue;
        }
        remaining = remaining - rate;
        index[i] = Some(0);
        out[i].target = Target::Layer(layer);
        out[i].bitrate = rate;
    }
    // Step up one layer at a time: round-robin within a tier, higher tiers
    // first, while the budget allows.
    let mut t = 0;
    while t < order.len() {
        let tier_of = tier(&tracks[order[t]]);
        let end = order[t..]
            .iter()
            .position(|&i| tier(&tracks[i]) != tier_of)
            .map_or(order.len(), |p| t + p);
        loop {
            let mut moved = false;
            for &i in &order[t..end] {
                let Some(k) = index[i] else { continue };
                let Some(&(layer, rate)) = cands[i].get(k + 1) else {
                    continue;
                };
                let delta = rate - cands[i][k].1;
                if delta <= remaining {
                    remaining = remaining - delta;
                    index[i] = Some(k + 1);
                    out[i].target = Target::Layer(layer);
                    out[i].bitrate = rate;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        t = end;
    }
    out
}

/// The total after the smallest single move up from `targets` (a paused
/// track resuming at its lowest layer, or a track one layer up), skipping
/// blocked layers; `None` when nothing can move up.
pub(super) fn next_step(
    tracks: &[TrackInput],
    targets: &[Target],
    blocks: &[Option<Layer>],
) -> Option<Bitrate> {
    let total: Bitrate = tracks
        .iter()
        .zip(targets)
        .map(|(t, g)| bitrate_of(t, *g))
        .sum();
    let mut best: Option<Bitrate> = None;
    for &i in &rank_order(tracks) {
        let t = &tracks[i];
        let cands = candidates_below(t, Layers::Available, blocks.get(i).copied().flatten());
        let step = match targets[i] {
            Target::Paused(PauseReason::Bandwidth) => cands.first().map(|(_, r)| *r),
            Target::Layer(l) => {
                let now = bitrate_of(t, targets[i]);
                cands.iter().find(|(c, _)| *c > l).map(|(_, r)| *r - now)
            }
            _ => None,
        };
        if let Some(d) = step {
            if best.is_none_or(|b| d < b) {
                best = Some(d);
            }
        }
    }
    best.map(|d| total + d)
}
