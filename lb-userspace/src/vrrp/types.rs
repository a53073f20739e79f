//! The small values VRRP is made of (the configuration's [`Vrid`] and version, and the
//! priority and interval as the wire carries them), each checked once when it is made so the rest of the
//! engine never meets a VRID of 0 or an advert interval the wire cannot carry.

use std::{fmt, time::Duration};

use serde::Serialize;

pub use crate::config::{Vrid, VrrpVersion as Version};

/// A router's priority on the wire: 0 says "I am leaving", 255 "I own the addresses".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Priority(u8);

impl Priority {
    /// Sent by a master that stops, so backups take over without waiting.
    pub const RELEASE: Self = Self(0);
    /// The address owner's priority: it always wins and preempts.
    pub const OWNER: Self = Self(255);
    /// The highest priority a router that does not own the addresses may have.
    pub const MAX_BACKUP: u8 = 254;

    pub const fn new(priority: u8) -> Self {
        Self(priority)
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    pub const fn is_owner(self) -> bool {
        self.0 == 255
    }

    /// The priority after tracking adds `delta`: keepalived keeps a non-owner within
    /// 1..=254 whatever the weights say, and never moves an owner.
    pub fn adjusted(self, delta: i32) -> Self {
        if self.is_owner() {
            return self;
        }
        let p = (i32::from(self.0) + delta).clamp(1, i32::from(Self::MAX_BACKUP));
        Self(p as u8)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How often a master advertises, in the centiseconds VRRPv3 carries (v2 carries whole
/// seconds, and an interval that is not one cannot be sent as v2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AdvertInterval(u16);

impl AdvertInterval {
    /// The largest value of VRRPv3's 12-bit field: 40.95 s.
    pub const MAX_CENTIS: u16 = 0x0fff;

    pub const fn from_centis(centis: u16) -> Option<Self> {
        if centis == 0 || centis > Self::MAX_CENTIS {
            None
        } else {
            Some(Self(centis))
        }
    }

    /// The interval for `d`, rounded down to a centisecond as keepalived does; `None`
    /// for intervals the wire cannot carry.
    pub fn from_duration(d: Duration) -> Option<Self> {
        u16::try_from(d.as_millis() / 10)
            .ok()
            .and_then(Self::from_centis)
    }

    pub const fn centis(self) -> u16 {
        self.0
    }

    /// Whole seconds for a VRRPv2 header, or `None` when the interval is not one.
    pub const fn whole_seconds(self) -> Option<u8> {
        if self.0.is_multiple_of(100) && self.0 / 100 <= 255 {
            Some((self.0 / 100) as u8)
        } else {
            None
        }
    }

    pub fn duration(self) -> Duration {
        Duration::from_millis(u64::from(self.0) * 10)
    }
}

impl fmt::Display for AdvertInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} milli-sec", u32::from(self.0) * 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_keeps_priority_in_range_and_owners_fixed() {
        assert_eq!(Priority::new(100).adjusted(-200), Priority::new(1));
        assert_eq!(Priority::new(200).adjusted(100), Priority::new(254));
        assert_eq!(Priority::new(100).adjusted(-10), Priority::new(90));
        assert_eq!(Priority::OWNER.adjusted(-50), Priority::OWNER);
    }

    #[test]
    fn intervals_fit_the_wire() {
        assert_eq!(AdvertInterval::from_centis(0), None);
        assert_eq!(AdvertInterval::from_centis(4096), None);
        let i = AdvertInterval::from_duration(Duration::from_millis(100)).unwrap();
        assert_eq!(i.centis(), 10);
        assert_eq!(i.whole_seconds(), None);
        let i = AdvertInterval::from_duration(Duration::from_secs(3)).unwrap();
        assert_eq!(i.whole_seconds(), Some(3));
        assert_eq!(i.duration(), Duration::from_secs(3));
    }
}
