//! The retransmission cache of one downstream video leg.
//!
//! Every packet sent to a subscriber is kept, indexed by its (rewritten)
//! sequence number, in a ring of a power-of-two size. A NACK from the
//! subscriber is answered from here: the server repairs the loss on its own
//! leg without asking the publisher again.

/// A ring of the last `capacity` packets by sequence number.
#[derive(Debug)]
pub struct NackCache<T> {
    slots: Vec<Option<(u16, T)>>,
    mask: usize,
}

impl<T: Clone> NackCache<T> {
    /// `capacity` is rounded up to a power of two, at least 16, at most 32768.
    pub fn new(capacity: u16) -> Self {
        let cap = (capacity as usize).clamp(16, 32768).next_power_of_two();
        NackCache {
            slots: (0..cap).map(|_| None).collect(),
            mask: cap - 1,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Keeps a sent packet, evicting the one `capacity` numbers older.
    pub fn insert(&mut self, seq: u16, packet: T) {
        self.slots[seq as usize & self.mask] = Some((seq, packet));
    }

    /// The packet sent with `seq`, if it is still held. A slot reused by a
    /// newer packet (wrap-around) is a miss, not a wrong answer.
    pub fn get(&self, seq: u16) -> Option<&T> {
        match &self.slots[seq as usize & self.mask] {
            Some((s, p)) if *s == seq => Some(p),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_packet_is_a_hit() {
        let mut c = NackCache::new(64);
        c.insert(10, "ten");
        c.insert(11, "eleven");
        assert_eq!(c.get(10), Some(&"ten"));
        assert_eq!(c.get(11), Some(&"eleven"));
    }

    #[test]
    fn a_never_sent_packet_is_a_miss() {
        let mut c = NackCache::new(64);
        c.insert(10, 1);
        assert_eq!(c.get(9), None);
        assert_eq!(c.get(12), None);
    }

    #[test]
    fn an_evicted_packet_is_a_miss_not_the_newer_one() {
        let mut c = NackCache::new(64);
        assert_eq!(c.capacity(), 64);
        c.insert(5, 5u32);
        c.insert(5 + 64, 69u32);
        assert_eq!(c.get(5), None);
        assert_eq!(c.get(69), Some(&69));
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut c = NackCache::new(100); // rounds to 128
        assert_eq!(c.capacity(), 128);
        for i in 0..200u32 {
            let seq = 65500u16.wrapping_add(i as u16);
            c.insert(seq, i);
        }
        // Last 128 inserted are held across the wrap: 65500+72 .. 65500+199.
        // 65535 (i = 35) and 0 (i = 36) were evicted; 50 (i = 86) is held.
        assert_eq!(c.get(65535), None);
        assert_eq!(c.get(0), None);
        assert_eq!(c.get(50), Some(&86));
        assert_eq!(c.get(65500u16.wrapping_add(199)), Some(&199));
        assert_eq!(c.get(65500u16.wrapping_add(72)), Some(&72));
        assert_eq!(c.get(65500u16.wrapping_add(71)), None);
    }
}
