//! lblc and lblcr: locality-based least-connection. A destination address keeps the real
//! (lblc) or the set of reals (lblcr) that served it, until that real is overloaded; then
//! the service's wlc pick takes over, replacing the real (lblc) or joining the set (lblcr).
//! A set of several that has not changed for [`SHRINK_AFTER_NS`] loses its most loaded
//! member, so replication fades when demand does.

use crate::Addr;

/// Key of `LOCALITY`: a service and a destination address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalityKey {
    pub service: u32,
    pub dst: Addr,
}

/// Value of `LOCALITY`: the reals that serve a destination, as bits of positions in the
/// service's selection table (the lc family's tables list at most 64 reals).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Locality {
    pub reals: u64,
    /// When the set last changed (the kernel's monotonic clock, ns).
    pub changed: u64,
}

/// IPVS's `lblcr_expiration`: a day.
pub const SHRINK_AFTER_NS: u64 = 24 * 60 * 60 * 1_000_000_000;

impl Locality {
    /// A set of the one real at `position`, formed at `now`.
    #[inline(always)]
    pub const fn of(position: u32, now: u64) -> Self {
        Self {
            reals: 1 << (position & 63),
            changed: now,
        }
    }

    /// The set with the real at `position` added at `now`.
    #[inline(always)]
    pub const fn with(self, position: u32, now: u64) -> Self {
        Self {
            reals: self.reals | 1 << (position & 63),
            changed: now,
        }
    }

    /// The set without the real at `position`, as changed at `now`.
    #[inline(always)]
    pub const fn without(self, position: u32, now: u64) -> Self {
        Self {
            reals: self.reals & !(1 << (position & 63)),
            changed: now,
        }
    }

    /// Whether the set should lose its most loaded member at `now`.
    #[inline(always)]
    pub const fn shrinks(&self, now: u64) -> bool {
        self.reals.count_ones() > 1 && now.saturating_sub(self.changed) > SHRINK_AFTER_NS
    }

    #[inline(always)]
    pub const fn contains(&self, position: u32) -> bool {
        position < 64 && self.reals & 1 << position != 0
    }
}

map_layout!(LocalityKey = 4 + 16, Locality = 8 + 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_grow_and_shrink_by_position() {
        let set = Locality::of(3, 10).with(5, 20);
        assert!(set.contains(3) && set.contains(5) && !set.contains(4));
        assert_eq!(set.changed, 20);
        let set = set.without(3, 30);
        assert!(!set.contains(3) && set.contains(5));
        assert!(!set.contains(64));
    }

    #[test]
    fn only_a_set_of_several_left_alone_for_a_day_shrinks() {
        let two = Locality::of(0, 0).with(1, 0);
        assert!(!two.shrinks(SHRINK_AFTER_NS));
        assert!(two.shrinks(SHRINK_AFTER_NS + 1));
        assert!(!Locality::of(0, 0).shrinks(SHRINK_AFTER_NS + 1));
    }
}
