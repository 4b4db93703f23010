//! The highest layer any subscriber needs, per published track: what the
//! publisher must encode (dynacast pauses the rest).

use std::collections::{BTreeMap, HashMap};

use super::{Allocation, Layer};
use crate::core::ids::{PeerKey, TrackNo};

/// Per published track, the layer each subscriber wants.
#[derive(Debug, Default)]
pub struct DynacastNeeds {
    by_track: HashMap<TrackNo, BTreeMap<PeerKey, Layer>>,
}

impl DynacastNeeds {
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest layer any subscriber wants of `track` (`None`: nobody
    /// wants video of it).
    pub fn needed(&self, track: TrackNo) -> Option<Layer> {
        self.by_track.get(&track)?.values().max().copied()
    }

    /// Records `subscriber`'s latest allocation. Returns the tracks whose
    /// highest needed layer changed, with the new value (for the
    /// publisher).
    pub fn update(
        &mut self,
        subscriber: PeerKey,
        alloc: &Allocation,
    ) -> Vec<(TrackNo, Option<Layer>)> {
        let mut touched: Vec<TrackNo> = self
            .by_track
            .iter()
            .filter(|(_, subs)| subs.contains_key(&subscriber))
            .map(|(t, _)| *t)
            .collect();
        touched.extend(alloc.tracks.iter().map(|a| a.track));
        touched.sort_unstable();
        touched.dedup();
        let before: Vec<Option<Layer>> = touched.iter().map(|t| self.needed(*t)).collect();
        for subs in self.by_track.values_mut() {
            subs.remove(&subscriber);
        }
        for a in &alloc.tracks {
            if let Some(l) = a.wanted {
                self.by_track
                    .entry(a.track)
                    .or_default()
                    .insert(subscriber, l);
            }
        }
        self.by_track.retain(|_, subs| !subs.is_empty());
        touched
            .into_iter()
            .zip(before)
            .filter_map(|(t, b)| {
                let now = self.needed(t);
                (now != b).then_some((t, now))
            })
            .collect()
    }

    /// `subscriber` left: returns the tracks whose need changed.
    pub fn remove_subscriber(&mut self, subscriber: PeerKey) -> Vec<(TrackNo, Option<Layer>)> {
        self.update(
            subscriber,
            &Allocation {
                tracks: Vec::new(),
                total: Default::default(),
                events: Vec::new(),
                probe_target: None,
                probe_goal: None,
                desired: Default::default(),
            },
        )
    }
}
