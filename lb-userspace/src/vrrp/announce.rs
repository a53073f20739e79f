//! When a master announces its virtual addresses (gratuitous ARP / unsolicited NA),
//! following keepalived's knobs, free of I/O: the engine asks what is due and sends.

use std::time::{Duration, Instant};

/// keepalived's `garp_*` settings for one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarpSettings {
    /// `garp_master_repeat`: announcements on becoming master, and again after the delay.
    pub master_repeat: u32,
    /// `garp_master_delay`: when the second round follows; zero for none.
    pub master_delay: Duration,
    /// `garp_master_refresh`: periodic announcements while master.
    pub master_refresh: Option<Duration>,
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_repeat` / `garp_lower_prio_delay`: after a lower-priority advert
    /// reached this master.
    pub lower_prio_repeat: u32,
    pub lower_prio_delay: Duration,
    /// `garp_interval` / `gna_interval`: spacing between announcements.
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
        self.add_round(s, s.master_repeat, now);
        if !s.master_delay.is_zero() {
            self.add_round(s, s.master_repeat, now + s.master_delay);
        }
        self.next_refresh = s.master_refresh.map(|r| now + r);
    }

    /// As master, it saw a lower-priority advert: another router believes it is master
    /// too, and the network must learn again where the addresses are.
    pub fn lower_priority_seen(&mut self, s: &GarpSettings, now: Instant) {
        if s.lower_prio_repeat == 0 {
            return;
        }
        self.add_round(s, s.lower_prio_repeat, now);
        if !s.lower_prio_delay.is_zero() {
            self.add_round(s, s.lower_prio_repeat, now + s.lower_prio_delay);
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
        if let (Some(at), Some(period)) = (self.next_refresh, s.master_refresh)
            && at <= now
        {
            n += s.master_refresh_repeat;
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
            master_repeat: 5,
            master_delay: Duration::from_secs(5),
            master_refresh: None,
            master_refresh_repeat: 1,
            lower_prio_repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
            interval: Duration::ZERO,
        }
    }

    #[test]
    fn becoming_master_announces_twice_a_round() {
        let s = settings();
        let t0 = Instant::now();
        let mut a = Announcer::default();
        a.became_master(&s, t0);
        assert_eq!(a.take_due(&s, t0), 5);
        assert_eq!(a.deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(a.take_due(&s, t0 + Duration::from_secs(4)), 0);
        assert_eq!(a.take_due(&s, t0 + Duration::from_secs(5)), 5);
        assert_eq!(a.deadline(), None);
    }

    #[test]
    fn garp_interval_spaces_announcements() {
        let s = GarpSettings {
            master_repeat: 3,
            master_delay: Duration::ZERO,
            interval: Duration::from_millis(100),
            ..settings()
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
            master_delay: Duration::ZERO,
            master_refresh: Some(Duration::from_secs(60)),
            master_refresh_repeat: 2,
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
            lower_prio_repeat: 0,
            ..s
        };
        a.lower_priority_seen(&off, t0);
        assert_eq!(a.deadline(), None);
    }
}
