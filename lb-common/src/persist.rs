//! Persistence (`persistence_timeout`, `persistence_granularity`): a client, or every
//! client of its network, sticks to the real its first connection went to, as IPVS's
//! persistence templates make it.

use crate::{Addr, Family};

/// Key of `PERSIST`: a service and a client address with the granularity applied.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PersistKey {
    pub service: u32,
    pub client: Addr,
}

impl PersistKey {
    /// The key of `client` for `service`, whose granularity is `mask`.
    #[inline(always)]
    pub fn new(service: u32, client: &Addr, mask: &Addr) -> Self {
        Self {
            service,
            client: Addr([
                client.0[0] & mask.0[0],
                client.0[1] & mask.0[1],
                client.0[2] & mask.0[2],
                client.0[3] & mask.0[3],
            ]),
        }
    }
}

/// Value of `PERSIST`: the real a client sticks to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    pub real: u32,
    /// The real's generation, so a client does not follow its real's slot to another real.
    pub generation: u32,
    /// When a connection last used it (the kernel's monotonic clock, ns).
    pub seen: u64,
}

/// How often a template in use is written back with a new `seen`: often enough next to any
/// timeout keepalived accepts (a second at least), rarely enough to keep writes off the
/// packet path.
pub const REFRESH_NS: u64 = 1_000_000_000;

impl Persist {
    /// Whether the template still holds at `now`, for a service whose timeout is
    /// `timeout_secs`.
    #[inline(always)]
    pub const fn holds(&self, now: u64, timeout_secs: u32) -> bool {
        now.saturating_sub(self.seen) < timeout_secs as u64 * 1_000_000_000
    }

    /// Whether a use at `now` should be written back.
    #[inline(always)]
    pub const fn stale(&self, now: u64) -> bool {
        now.saturating_sub(self.seen) >= REFRESH_NS
    }
}

/// The granularity of a service without `persistence_granularity`: the whole address.
pub const fn whole_address(family: Family) -> Addr {
    match family {
        Family::V4 => Addr([u32::MAX, 0, 0, 0]),
        Family::V6 => Addr([u32::MAX; 4]),
    }
}

map_layout!(PersistKey = 4 + 16, Persist = 16);

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
        Addr::from(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn clients_of_one_network_share_a_key() {
        let mask = v4(255, 255, 255, 0);
        let a = PersistKey::new(3, &v4(198, 51, 100, 7), &mask);
        let b = PersistKey::new(3, &v4(198, 51, 100, 200), &mask);
        let c = PersistKey::new(3, &v4(198, 51, 101, 7), &mask);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, PersistKey::new(4, &v4(198, 51, 100, 7), &mask));
    }

    #[test]
    fn without_granularity_each_address_is_its_own() {
        let mask = whole_address(Family::V4);
        assert_ne!(
            PersistKey::new(1, &v4(198, 51, 100, 7), &mask),
            PersistKey::new(1, &v4(198, 51, 100, 8), &mask)
        );
    }

    #[test]
    fn templates_hold_for_the_timeout() {
        let t = Persist {
            seen: 10_000_000_000,
            ..Persist::default()
        };
        assert!(t.holds(10_000_000_000 + 59_999_999_999, 60));
        assert!(!t.holds(10_000_000_000 + 60_000_000_000, 60));
        assert!(t.holds(0, 60), "a clock read before `seen` is no expiry");
    }

    #[test]
    fn uses_are_written_back_at_most_once_a_second() {
        let t = Persist {
            seen: 5_000_000_000,
            ..Persist::default()
        };
        assert!(!t.stale(5_999_999_999));
        assert!(t.stale(6_000_000_000));
    }
}
