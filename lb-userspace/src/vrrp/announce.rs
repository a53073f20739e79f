//! When a master announces its virtual addresses (gratuitous ARP / unsolicited NA),
//! following keepalived's knobs, free of I/O: the engine asks what is due and sends.

use std::time::{Duration, Instant};

use crate::config::Garp;

/// keepalived's `garp_*` settings for one instance, and the spacing between
/// announcements (`vrrp_garp_interval` / `vrrp_gna_interval`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarpSettings {
    pub rules: Garp,
    pub interval: Duration,
}

/// The announcements an instance owes, by time.
#[derive(Debug, Default)]
pub struct Announcer {
    due: Vec<Instant>,
    next_refresh: Option<Instant>,
}

impl Announcer {
    /// The instance became master.
    pub fn became_master(&mut self, s: &GarpSettings, now: Instant) {
        self.due.clear();
        self.add_round(s, s.rules.master_repeat, now);
        if !s.rules.master_delay.is_zero() {
            self.add_round(s, s.rules.master_repeat, now + s.rules.master_delay);
        }
        self.next_refresh = s.rules.master_refresh.map(|r| now + r);
    }

    /// As master, a reload gave it addresses: one round announces them (and the others,
    /// as keepalived does), and the refresh period starts over.
    pub fn addresses_added(&mut self, s: &GarpSettings, now: Instant) {
        self.add_round(s, s.rules.master_repeat, now);
        self.next_refresh = s.rules.master_refresh.map(|r| now + r);
    }

    /// As master, it saw a lower-priority advert: another router believes it is master
    /// too, and the network must learn again where the addresses are.
    pub fn lower_priority_seen(&mut self, s: &GarpSettings, now: Instant) {
        if s.rules.lower_prio_repeat == 0 {
            return;
        }
        self.add_round(s, s.rules.lower_prio_repeat, now);
        if !s.rules.lower_prio_delay.is_zero() {
            self.add_round(s, s.rules.lower_prio_repeat, now + s.rules.lower_prio_delay);
        }
    }

    /// The instance is no longer master.
    pub fn stop(&mut self) {
        self.due.clear();
        self.next_refresh = None;
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.due.iter().copied().chain(self.next_refresh).min()
    }

    /// How many announcements of every address are due at `now`.
    pub fn take_due(&mut self, s: &GarpSettings, now: Instant) -> u32 {
        let before = self.due.len();
        self.due.retain(|t| *t > now);
        let mut n = (before - self.due.len()) as u32;
        if let (Some(at), Some(period)) = (self.next_refresh, s.rules.master_refresh)
            && at <= now
        {
            n += s.rules.master_refresh_repeat;
            self.next_refresh = Some(now + period);
        }
        n
    }

    fn add_round(&mut self, s: &GarpSettings, repeat: u32, start: Instant) {
        self.due.extend((0..repeat).map(|k| start + s.interval * k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GarpSettings {
        GarpSettings {
            rules: Garp::default(),
            interval: Duration::ZERO,
        }
    }

    #[test]
    fn becoming_master_announces_twice_a_round_and_gaining_addresses_once() {
        let s = settings();
        let t0 = Instant::now();
        let mut a = Announcer::default();
        a.became_master(&s, t0);
        assert_eq!(a.take_due(&s, t0), 5);
        assert_eq!(a.deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(a.take_due(&s, t0 + Duration::from_secs(4)), 0);
        assert_eq!(a.take_due(&s, t0 + Duration::from_secs(5)), 5);
        assert_eq!(a.deadline(), None);
        a.addresses_added(&s, t0);
        assert_eq!(a.take_due(&s, t0), 5);
        assert_eq!(a.deadline(), None, "no second round after master_delay");
    }

    #[test]
    fn garp_interval_spaces_announcements() {
        let s = GarpSettings {
            rules: Garp {
                master_repeat: 3,
                master_delay: Duration::ZERO,
                ..Garp::default()
            },
            interval: Duration::from_millis(100),
        };
        let t0 = Instant::now();
        let mut a = Announcer::default();
        a.became_master(&s, t0);
        assert_eq!(a.take_due(&s, t0), 1);
        assert_eq!(a.deadline(), Some(t0 + Duration::from_millis(100)));
        assert_eq!(a.take_due(&s, t0 + Duration::from_millis(250)), 2);
    }

    #[test]
    fn refresh_repeats_while_master_and_stops_after() {
        let s = GarpSettings {
            rules: Garp {
                master_delay: Duration::ZERO,
                master_refresh: Some(Duration::from_secs(60)),
                master_refresh_repeat: 2,
                ..Garp::default()
            },
            ..settings()
        };
        let t0 = Instant::now();
        let mut a = Announcer::default();
        a.became_master(&s, t0);
        a.take_due(&s, t0);
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(a.deadline(), Some(t1));
        assert_eq!(a.take_due(&s, t1), 2);
        assert_eq!(a.deadline(), Some(t1 + Duration::from_secs(60)));
        a.stop();
        assert_eq!(a.deadline(), None);
    }

    #[test]
    fn a_lower_priority_advert_triggers_announcements_unless_disabled() {
        let s = settings();
        let t0 = Instant::now();
        let mut a = Announcer::default();
        a.lower_priority_seen(&s, t0);
        assert_eq!(a.take_due(&s, t0), 5);
        assert_eq!(a.take_due(&s, t0 + Duration::from_secs(5)), 5);
        let off = GarpSettings {
            rules: Garp {
                lower_prio_repeat: 0,
                ..Garp::default()
            },
            ..s
        };
        a.lower_priority_seen(&off, t0);
        assert_eq!(a.deadline(), None);
    }
}
