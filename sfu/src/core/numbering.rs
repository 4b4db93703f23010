//! Continuous numbering across drops: an input sequence (RTP sequence
//! numbers, VP8/VP9 PictureIDs) mapped to an output sequence with no holes
//! where the forwarder dropped something on purpose (a temporal layer the
//! subscriber does not get), so the subscriber never waits for, or NACKs,
//! what was never meant for it. Works modulo any power of two.

use std::collections::VecDeque;

/// How many deliberate drops are remembered one by one. Older ones are
/// folded into the offset; a packet older than the oldest remembered drop
/// is then numbered as if it came after it (it would be far too late to
/// matter).
const MAX_DROPS: usize = 128;

/// An input-to-output map modulo `modulus` with deliberate drops.
#[derive(Clone, Debug)]
pub struct DropMap {
    mask: u32,
    offset: u32,
    /// Dropped inputs, oldest first.
    drops: VecDeque<u32>,
}

impl DropMap {
    /// `modulus` must be a power of two (2^7, 2^15, 2^16).
    pub fn new(modulus: u32, offset: u32) -> Self {
        debug_assert!(modulus.is_power_of_two());
        DropMap {
            mask: modulus - 1,
            offset: offset & (modulus - 1),
            drops: VecDeque::new(),
        }
    }

    /// `a` is after `b`.
    pub fn newer(&self, a: u32, b: u32) -> bool {
        let d = a.wrapping_sub(b) & self.mask;
        d != 0 && d <= self.mask / 2
    }

    /// The output number of `input`, or `None` if `input` was dropped.
    pub fn map(&self, input: u32) -> Option<u32> {
        let input = input & self.mask;
        let mut before = 0u32;
        for &d in &self.drops {
            if d == input {
                return None;
            }
            if self.newer(input, d) {
                before += 1;
            }
        }
        Some(input.wrapping_add(self.offset).wrapping_sub(before) & self.mask)
    }

    /// Leaves `input` out of the output numbering.
    pub fn drop_input(&mut self, input: u32) {
        let input = input & self.mask;
        if self.drops.contains(&input) {
            return;
        }
        let at = self
            .drops
            .iter()
            .rposition(|&d| self.newer(input, d))
            .map_or(0, |i| i + 1);
        self.drops.insert(at, input);
        if self.drops.len() > MAX_DROPS {
            self.drops.pop_front();
            self.offset = self.offset.wrapping_sub(1) & self.mask;
        }
    }

    /// Whether any drop is remembered (fast path: none for audio).
    pub fn has_drops(&self) -> bool {
        !self.drops.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_leave_no_hole() {
        let mut m = DropMap::new(1 << 16, 100);
        assert_eq!(m.map(1), Some(101));
        m.drop_input(2);
        m.drop_input(3);
        assert_eq!(
            m.map(2),
            None,
            "a dropped input stays dropped (a repair of it too)"
        );
        assert_eq!(m.map(4), Some(102));
        assert_eq!(m.map(5), Some(103));
        // A late packet from before the drops keeps its number.
        assert_eq!(m.map(1), Some(101));
    }

    #[test]
    fn out_of_order_drops_and_wrap_around() {
        let mut m = DropMap::new(1 << 16, 0);
        m.drop_input(65535);
        m.drop_input(65533);
        assert_eq!(m.map(65534), Some(65533));
        assert_eq!(m.map(0), Some(65534));
        assert_eq!(m.map(1), Some(65535));
        assert_eq!(m.map(2), Some(0));
    }

    #[test]
    fn small_moduli_wrap_like_picture_ids() {
        let mut m = DropMap::new(1 << 7, 120);
        assert_eq!(m.map(10), Some(2));
        m.drop_input(11);
        assert_eq!(m.map(12), Some(3));
        assert_eq!(m.map(60), Some((60 + 120 - 1) & 127));
        // Half the circle behind: from before the drop.
        assert_eq!(m.map(127), Some((127 + 120) & 127));
    }

    #[test]
    fn old_drops_fold_into_the_offset() {
        let mut m = DropMap::new(1 << 16, 0);
        for i in 0..(MAX_DROPS as u32 + 10) {
            m.drop_input(2 * i + 1);
        }
        // Every odd input dropped: even inputs map to consecutive outputs.
        for i in 20..(MAX_DROPS as u32 + 10) {
            assert_eq!(m.map(2 * i), Some(i), "{i}");
        }
        assert!(m.drops.len() <= MAX_DROPS);
    }
}
