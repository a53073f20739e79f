//! lblc and lblcr: locality-based least-connection. A destination address keeps the real
//! (lblc) or the set of reals (lblcr) that served it, until that real is overloaded; then
//! the service's wlc pick takes over, replacing the real (lblc) or joining the set (lblcr).
//!
//! IPVS also shrinks an lblcr set that has not changed for a day by its most loaded member;
//! xlb does not yet, so a set keeps the reals it gained until the LRU map forgets the
//! destination.

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
}

impl Locality {
    /// A set of the one real at `position`.
    #[inline(always)]
    pub const fn of(position: u32) -> Self {
        Self {
            reals: 1 << (position & 63),
        }
    }

    /// The set with the real at `position` added.
    #[inline(always)]
    pub const fn with(self, position: u32) -> Self {
        Self {
            reals: self.reals | 1 << (position & 63),
        }
    }

    #[inline(always)]
    pub const fn contains(&self, position: u32) -> bool {
        position < 64 && self.reals & 1 << position != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_grow_by_position() {
        let set = Locality::of(3).with(5);
        assert!(set.contains(3) && set.contains(5) && !set.contains(4));
        assert!(!set.contains(64));
    }
}
