//! Stable slot numbers in the data plane's arrays.

use std::{collections::HashMap, collections::VecDeque, hash::Hash};

/// Hands out array indices to keys and takes them back. A key keeps its index for as long
/// as it exists; freed indices are reused oldest first, so a stale flow is unlikely to
/// meet a recycled slot (and generations catch it when it does).
#[derive(Debug)]
pub struct Slots<K> {
    assigned: HashMap<K, u32>,
    free: VecDeque<u32>,
    next: u32,
    capacity: u32,
}

/// Every slot is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full {
    pub capacity: u32,
}

impl<K: Eq + Hash + Clone> Slots<K> {
    /// Slots of which `taken` are already held, as a previous agent left them (slots out
    /// of range are ignored); the others are free.
    pub fn with_taken(capacity: u32, taken: impl IntoIterator<Item = (K, u32)>) -> Self {
        let assigned: HashMap<K, u32> = taken
            .into_iter()
            .filter(|(_, slot)| *slot < capacity)
            .collect();
        let next = assigned.values().max().map_or(0, |slot| slot + 1);
        let held: std::collections::HashSet<u32> = assigned.values().copied().collect();
        let free = (0..next).filter(|slot| !held.contains(slot)).collect();
        Self {
            assigned,
            free,
            next,
            capacity,
        }
    }

    pub fn get(&self, key: &K) -> Option<u32> {
        self.assigned.get(key).copied()
    }

    /// The key's slot, assigning one if it has none; `true` when newly assigned.
    pub fn assign(&mut self, key: &K) -> Result<(u32, bool), Full> {
        if let Some(slot) = self.get(key) {
            return Ok((slot, false));
        }
        let slot = match self.free.pop_front() {
            Some(slot) => slot,
            None if self.next < self.capacity => {
                self.next += 1;
                self.next - 1
            }
            None => {
                return Err(Full {
                    capacity: self.capacity,
                });
            }
        };
        self.assigned.insert(key.clone(), slot);
        Ok((slot, true))
    }

    pub fn release(&mut self, key: &K) -> Option<u32> {
        let slot = self.assigned.remove(key)?;
        self.free.push_back(slot);
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_slot() {
        let mut slots = Slots::<&str>::with_taken(4, []);
        assert_eq!(slots.assign(&"a"), Ok((0, true)));
        assert_eq!(slots.assign(&"b"), Ok((1, true)));
        assert_eq!(slots.assign(&"a"), Ok((0, false)));
    }

    #[test]
    fn freed_slots_are_reused_oldest_first() {
        let mut slots = Slots::<&str>::with_taken(3, []);
        for k in ["a", "b", "c"] {
            slots.assign(&k).unwrap();
        }
        slots.release(&"b");
        slots.release(&"a");
        assert_eq!(slots.assign(&"d"), Ok((1, true)));
        assert_eq!(slots.assign(&"e"), Ok((0, true)));
    }

    #[test]
    fn taken_slots_stay_and_the_gaps_are_free() {
        let mut slots = Slots::with_taken(8, [("a", 3), ("b", 1)]);
        assert_eq!(slots.assign(&"a"), Ok((3, false)));
        assert_eq!(slots.assign(&"c"), Ok((0, true)));
        assert_eq!(slots.assign(&"d"), Ok((2, true)));
        assert_eq!(slots.assign(&"e"), Ok((4, true)));
    }

    #[test]
    fn full_is_an_error_not_a_panic() {
        let mut slots = Slots::<&str>::with_taken(1, []);
        slots.assign(&"a").unwrap();
        assert_eq!(slots.assign(&"b"), Err(Full { capacity: 1 }));
    }
}
