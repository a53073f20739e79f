//! One virtual router's protocol state machine (RFC 5798 §6.4, with keepalived's
//! choices where the RFC leaves room), free of I/O: callers feed it received adverts,
//! timer expiries and tracking changes with the time they happened, and carry out the
//! [`Action`]s it returns. Tests drive it with made-up instants.

use std::{
    fmt,
    net::IpAddr,
    time::{Duration, Instant},
};

use serde::Serialize;
use tracing::info;

use super::types::{AdvertInterval, Priority, Version};

/// Where an instance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// What the machine needs from an instance's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The instance name, as logs show it: `(VI_1) ...`.
    pub name: String,
    pub version: Version,
    pub interval: AdvertInterval,
    /// The address adverts are sent from; the higher one wins between equal priorities.
    pub primary: IpAddr,
    pub election: Election,
}

/// How an instance takes part in elections: the part of its settings a reload changes
/// while it runs ([`Machine::reconfigure`]). The rest names the virtual router on the wire,
/// and changing it means another router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Election {
    /// The configured priority, before tracking weights.
    pub priority: Priority,
    /// False for `nopreempt`. An address owner preempts regardless.
    pub preempt: bool,
    /// How long after entering BACKUP a higher-priority backup waits before preempting.
    pub preempt_delay: Duration,
    /// `state MASTER`: only a hint, as in keepalived; the election decides.
    pub want_master: bool,
}

/// What the caller must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority.
    Advertise(Priority),
    /// The instance changed state: add the VIPs and announce them on entering MASTER,
    /// remove them on leaving it, and notify.
    Transition { from: State, to: State },
    /// As master, another router's lower-priority advert was seen (a split brain
    /// healing): announce the VIPs again so the network converges on this router.
    ReannounceAfterLowerPriority,
}

/// A received advertisement's facts that the state machine acts on.
#[derive(Clone, Copy, Debug)]
pub struct Heard {
    pub from: IpAddr,
    pub priority: Priority,
    pub interval: AdvertInterval,
}

/// One instance's state machine.
#[derive(Debug)]
pub struct Machine {
    settings: Settings,
    state: State,
    /// Tracking's sum of weights, added to the configured priority.
    priority_delta: i32,
    /// Faults reported by tracking; the instance is in FAULT while there are any.
    faulted: bool,
    /// The interval the master advertises at: learned from adverts in VRRPv3.
    master_interval: AdvertInterval,
    /// When the advert timer (MASTER) or the master-down timer (BACKUP) fires.
    deadline: Option<Instant>,
    /// Until when a BACKUP accepts lower-priority adverts (`preempt_delay`).
    preempt_hold_until: Option<Instant>,
}

impl Machine {
    pub fn new(settings: Settings) -> Self {
        let master_interval = settings.interval;
        Self {
            settings,
            state: State::Initialize,
            priority_delta: 0,
            faulted: false,
            master_interval,
            deadline: None,
            preempt_hold_until: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The priority adverts carry now.
    pub fn priority(&self) -> Priority {
        self.settings
            .election
            .priority
            .adjusted(self.priority_delta)
    }

    /// When [`Machine::on_timer`] must next be called.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Skew_Time: lower priorities wait longer, so the best backup takes over first.
    pub fn skew_time(&self) -> Duration {
        let inverse = 256 - u32::from(self.priority().get());
        match self.settings.version {
            Version::V2 => Duration::from_micros(u64::from(inverse) * 1_000_000 / 256),
            Version::V3 => self.master_interval.duration() * inverse / 256,
        }
    }

    /// Master_Down_Interval: how long a backup waits without adverts.
    pub fn master_down_interval(&self) -> Duration {
        self.master_interval.duration() * 3 + self.skew_time()
    }

    /// Leaves Initialize: an owner wanting MASTER takes over at once, everyone else
    /// listens for Master_Down_Interval first.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.faulted {
            self.enter(State::Fault, now, &mut actions);
        } else if self.priority().is_owner() && self.settings.election.want_master {
            self.enter(State::Master, now, &mut actions);
        } else {
            self.enter(State::Backup, now, &mut actions);
        }
        actions
    }

    /// The timer set by the last action expired.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.deadline.is_none_or(|d| now < d) {
            return actions;
        }
        match self.state {
            State::Master => {
                actions.push(Action::Advertise(self.priority()));
                self.deadline = Some(now + self.settings.interval.duration());
            }
            State::Backup => {
                info!("({}) Receive advertisement timeout", self.name());
                self.enter(State::Master, now, &mut actions);
            }
            State::Initialize | State::Fault => self.deadline = None,
        }
        actions
    }

    /// An advert that passed every check for this instance arrived.
    pub fn on_advert(&mut self, heard: Heard, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.state {
            State::Backup => self.backup_heard(heard, now),
            State::Master => self.master_heard(heard, now, &mut actions),
            State::Initialize | State::Fault => {}
        }
        actions
    }

    fn backup_heard(&mut self, heard: Heard, now: Instant) {
        if heard.priority == Priority::RELEASE {
            info!("({}) Backup received priority 0 advertisement", self.name());
            self.deadline = Some(now + self.skew_time());
            return;
        }
        let holding = self.preempt_hold_until.is_some_and(|t| now < t);
        let election = &self.settings.election;
        let may_preempt = election.preempt || election.priority.is_owner();
        if !may_preempt || holding || heard.priority >= self.priority() {
            if self.settings.version == Version::V3 && heard.interval != self.master_interval {
                info!(
                    "({}) advertisement interval changed: mine={}, rcved={}",
                    self.name(),
                    self.master_interval,
                    heard.interval
                );
                self.master_interval = heard.interval;
            }
            self.deadline = Some(now + self.master_down_interval());
        } else {
            info!(
                "({}) received lower priority ({}) advert from {} - discarding",
                self.name(),
                heard.priority,
                heard.from
            );
        }
    }

    fn master_heard(&mut self, heard: Heard, now: Instant, actions: &mut Vec<Action>) {
        let ours = self.priority();
        if heard.priority == Priority::RELEASE {
            actions.push(Action::Advertise(ours));
            self.deadline = Some(now + self.settings.interval.duration());
        } else if heard.priority > ours
            || (heard.priority == ours && heard.from > self.settings.primary)
        {
            info!(
                "({}) Master received advert from {} with higher priority {}, ours {}",
                self.name(),
                heard.from,
                heard.priority,
                ours
            );
            if self.settings.version == Version::V3 {
                self.master_interval = heard.interval;
            }
            self.enter(State::Backup, now, actions);
        } else {
            info!(
                "({}) Received advert from {} with lower priority {}, ours {}, forcing new election",
                self.name(),
                heard.from,
                heard.priority,
                ours
            );
            actions.push(Action::Advertise(ours));
            actions.push(Action::ReannounceAfterLowerPriority);
            self.deadline = Some(now + self.settings.interval.duration());
        }
    }

    /// Tracking changed the sum of weights applied to the priority.
    pub fn set_priority_delta(&mut self, delta: i32, now: Instant) -> Vec<Action> {
        let before = self.priority();
        self.priority_delta = delta;
        self.priority_moved(before, now)
            .map(Action::Advertise)
            .into_iter()
            .collect()
    }

    /// A reload changed how this instance takes part in elections. The state, its timers
    /// and the interval learned from the master carry over, so an unchanged election sends
    /// nothing; a changed priority acts as tracking's weights do (a master advertises it at
    /// once: the priority returned), and a new `preempt` or `preempt_delay` applies from
    /// the next advert or BACKUP entry.
    pub fn reconfigure(&mut self, election: Election, now: Instant) -> Option<Priority> {
        let before = self.priority();
        self.settings.election = election;
        self.priority_moved(before, now)
    }

    /// The priority adverts carry was `before`. A master tells the backups of a change at
    /// once, so that one that now outranks it preempts without waiting: the priority to
    /// advertise, with the advert timer restarted.
    fn priority_moved(&mut self, before: Priority, now: Instant) -> Option<Priority> {
        let after = self.priority();
        if before == after {
            return None;
        }
        info!(
            "({}) Changing effective priority from {before} to {after}",
            self.name()
        );
        (self.state == State::Master).then(|| {
            self.deadline = Some(now + self.settings.interval.duration());
            after
        })
    }

    /// Tracking reports a fault (an interface down, a script failing with no weight)
    /// or its end.
    pub fn set_fault(&mut self, faulted: bool, now: Instant) -> Vec<Action> {
        self.faulted = faulted;
        let mut actions = Vec::new();
        match (faulted, self.state) {
            (true, State::Backup | State::Master) => self.enter(State::Fault, now, &mut actions),
            (false, State::Fault) => self.enter(State::Backup, now, &mut actions),
            _ => {}
        }
        actions
    }

    /// Follows another member of a sync group into `to`, as keepalived's groups move
    /// together. A faulted member stays in FAULT.
    pub fn follow(&mut self, to: State, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state == to || self.state == State::Initialize {
            return actions;
        }
        if to == State::Fault || !self.faulted {
            self.enter(to, now, &mut actions);
        }
        actions
    }

    /// Stops the instance: a master says so with priority 0 so that a backup takes over
    /// within Skew_Time instead of Master_Down_Interval.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state == State::Master {
            info!("({}) sent 0 priority", self.name());
            actions.push(Action::Advertise(Priority::RELEASE));
        }
        let from = std::mem::replace(&mut self.state, State::Initialize);
        self.deadline = None;
        actions.push(Action::Transition {
            from,
            to: State::Initialize,
        });
        actions
    }

    fn enter(&mut self, to: State, now: Instant, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        match to {
            State::Master => {
                info!("({}) Entering MASTER STATE", self.name());
                self.master_interval = self.settings.interval;
                self.preempt_hold_until = None;
                actions.push(Action::Transition { from, to });
                actions.push(Action::Advertise(self.priority()));
                self.deadline = Some(now + self.settings.interval.duration());
            }
            State::Backup => {
                info!("({}) Entering BACKUP STATE", self.name());
                if from != State::Master {
                    self.master_interval = self.settings.interval;
                }
                let delay = self.settings.election.preempt_delay;
                self.preempt_hold_until = Some(now + delay).filter(|_| !delay.is_zero());
                actions.push(Action::Transition { from, to });
                self.deadline = Some(now + self.master_down_interval());
            }
            State::Fault => {
                info!("({}) Entering FAULT STATE", self.name());
                if from == State::Master {
                    // As keepalived: resign at once rather than leave backups waiting
                    // for Master_Down_Interval.
                    actions.push(Action::Advertise(Priority::RELEASE));
                }
                actions.push(Action::Transition { from, to });
                self.deadline = None;
            }
            State::Initialize => unreachable!("only shutdown returns to Initialize"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn election(priority: u8) -> Election {
        Election {
            priority: Priority::new(priority),
            preempt: true,
            preempt_delay: Duration::ZERO,
            want_master: false,
        }
    }

    /// A v3 instance at 1 s adverts that takes part in elections as `election` says.
    fn electing(election: Election) -> Settings {
        Settings {
            name: "VI_1".into(),
            version: Version::V3,
            interval: AdvertInterval::from_centis(100).unwrap(),
            primary: "192.0.2.1".parse().unwrap(),
            election,
        }
    }

    fn settings(priority: u8) -> Settings {
        electing(election(priority))
    }

    fn heard(from: &str, priority: u8) -> Heard {
        Heard {
            from: from.parse().unwrap(),
            priority: Priority::new(priority),
            interval: AdvertInterval::from_centis(100).unwrap(),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn transition(from: State, to: State) -> Action {
        Action::Transition { from, to }
    }

    /// A lone machine started at `t0` that became master when its timer fired, and when.
    fn elected(priority: u8, t0: Instant) -> (Machine, Instant) {
        let mut m = Machine::new(settings(priority));
        m.start(t0);
        let (at, _) = fire(&mut m);
        (m, at)
    }

    /// Runs the timer at its deadline and returns what happened.
    fn fire(m: &mut Machine) -> (Instant, Vec<Action>) {
        let at = m.deadline().expect("a timer is armed");
        (at, m.on_timer(at))
    }

    #[test]
    fn timers_follow_the_rfc_per_version() {
        let m = Machine::new(settings(100));
        // v3: skew = (256-100) * 1 s / 256.
        assert_eq!(m.skew_time(), Duration::from_secs(1) * 156 / 256);
        assert_eq!(m.master_down_interval(), ms(3000) + m.skew_time());
        let v2 = Machine::new(Settings {
            version: Version::V2,
            interval: AdvertInterval::from_centis(300).unwrap(),
            ..settings(100)
        });
        // v2: skew is in seconds whatever the interval.
        assert_eq!(v2.skew_time(), Duration::from_micros(156 * 1_000_000 / 256));
        assert_eq!(v2.master_down_interval(), ms(9000) + v2.skew_time());
        let fast = Machine::new(Settings {
            interval: AdvertInterval::from_centis(10).unwrap(),
            ..settings(100)
        });
        assert_eq!(fast.master_down_interval(), ms(300) + ms(100) * 156 / 256);
    }

    #[test]
    fn a_lone_backup_becomes_master_after_master_down_interval() {
        let t0 = Instant::now();
        let mut m = Machine::new(electing(Election {
            want_master: true,
            ..election(100)
        }));
        assert_eq!(m.start(t0), [transition(State::Initialize, State::Backup)]);
        assert_eq!(m.deadline(), Some(t0 + m.master_down_interval()));
        assert!(m.on_timer(t0 + ms(10)).is_empty(), "not due yet");
        let (at, actions) = fire(&mut m);
        assert_eq!(
            actions,
            [
                transition(State::Backup, State::Master),
                Action::Advertise(Priority::new(100))
            ]
        );
        assert_eq!(m.deadline(), Some(at + ms(1000)));
        let (_, actions) = fire(&mut m);
        assert_eq!(actions, [Action::Advertise(Priority::new(100))]);
    }

    #[test]
    fn the_owner_takes_over_at_once_and_cannot_be_preempted() {
        let t0 = Instant::now();
        let mut m = Machine::new(electing(Election {
            want_master: true,
            preempt: false,
            ..election(255)
        }));
        assert_eq!(
            m.start(t0),
            [
                transition(State::Initialize, State::Master),
                Action::Advertise(Priority::OWNER)
            ]
        );
        let actions = m.on_advert(heard("192.0.2.200", 254), t0);
        assert_eq!(m.state(), State::Master);
        assert_eq!(actions[1], Action::ReannounceAfterLowerPriority);
    }

    #[test]
    fn adverts_from_a_better_master_keep_a_backup_backup() {
        let t0 = Instant::now();
        let mut m = Machine::new(settings(100));
        m.start(t0);
        for i in 1..=10 {
            let now = t0 + ms(1000 * i);
            assert!(m.on_advert(heard("192.0.2.2", 150), now).is_empty());
            assert_eq!(m.deadline(), Some(now + m.master_down_interval()));
        }
        assert_eq!(m.state(), State::Backup);
    }

    #[test]
    fn priority_zero_makes_the_backup_take_over_after_skew_time() {
        let t0 = Instant::now();
        let mut m = Machine::new(settings(100));
        m.start(t0);
        m.on_advert(heard("192.0.2.2", 150), t0);
        m.on_advert(heard("192.0.2.2", 0), t0 + ms(500));
        assert_eq!(m.deadline(), Some(t0 + ms(500) + m.skew_time()));
        let (_, actions) = fire(&mut m);
        assert_eq!(actions[0], transition(State::Backup, State::Master));
    }

    #[test]
    fn a_master_yields_to_higher_priority_and_to_a_higher_address_at_equal_priority() {
        let t0 = Instant::now();
        let (mut m, _) = elected(100, t0);
        assert_eq!(m.state(), State::Master);
        // Equal priority from a lower address: we stay and force a new election.
        let actions = m.on_advert(heard("192.0.2.0", 100), t0);
        assert_eq!(
            actions,
            [
                Action::Advertise(Priority::new(100)),
                Action::ReannounceAfterLowerPriority
            ]
        );
        // Equal priority from a higher address wins.
        let actions = m.on_advert(heard("192.0.2.9", 100), t0);
        assert_eq!(actions, [transition(State::Master, State::Backup)]);

        let (mut m, _) = elected(100, t0);
        let actions = m.on_advert(heard("192.0.2.0", 101), t0);
        assert_eq!(actions, [transition(State::Master, State::Backup)]);
    }

    #[test]
    fn a_master_answers_priority_zero_with_an_advert() {
        let t0 = Instant::now();
        let (mut m, at) = elected(100, t0);
        let actions = m.on_advert(heard("192.0.2.2", 0), at + ms(10));
        assert_eq!(actions, [Action::Advertise(Priority::new(100))]);
        assert_eq!(m.deadline(), Some(at + ms(1010)));
    }

    #[test]
    fn preempt_discards_lower_adverts_and_nopreempt_does_not() {
        let t0 = Instant::now();
        let mut m = Machine::new(settings(200));
        m.start(t0);
        let first_deadline = m.deadline();
        m.on_advert(heard("192.0.2.2", 100), t0 + ms(500));
        assert_eq!(m.deadline(), first_deadline, "lower advert ignored");
        fire(&mut m);
        assert_eq!(m.state(), State::Master);

        let mut m = Machine::new(electing(Election {
            preempt: false,
            ..election(200)
        }));
        m.start(t0);
        stays_backup_under_a_lower_master(&mut m, t0);
    }

    /// Feeds `m` ten seconds of adverts from a master of priority 100, and checks that it
    /// stayed backup throughout, as a router that may not preempt does.
    fn stays_backup_under_a_lower_master(m: &mut Machine, t0: Instant) {
        for i in 1..=10 {
            m.on_advert(heard("192.0.2.2", 100), t0 + ms(1000 * i));
        }
        assert!(m.on_timer(t0 + ms(11_000)).is_empty());
        assert_eq!(m.state(), State::Backup);
    }

    #[test]
    fn preempt_delay_holds_a_better_backup_back_for_a_while() {
        let t0 = Instant::now();
        let mut m = Machine::new(electing(Election {
            preempt_delay: ms(5000),
            ..election(200)
        }));
        m.start(t0);
        for i in 1..=4 {
            m.on_advert(heard("192.0.2.2", 100), t0 + ms(1000 * i));
        }
        assert_eq!(m.deadline(), Some(t0 + ms(4000) + m.master_down_interval()));
        m.on_advert(heard("192.0.2.2", 100), t0 + ms(5000));
        let (at, _) = fire(&mut m);
        assert_eq!(at, t0 + ms(4000) + m.master_down_interval());
        assert_eq!(m.state(), State::Master);
    }

    #[test]
    fn v3_backups_learn_the_masters_interval() {
        let t0 = Instant::now();
        let mut m = Machine::new(settings(100));
        m.start(t0);
        let fast = Heard {
            interval: AdvertInterval::from_centis(10).unwrap(),
            ..heard("192.0.2.2", 150)
        };
        m.on_advert(fast, t0);
        assert_eq!(m.master_down_interval(), ms(300) + ms(100) * 156 / 256);
        assert_eq!(m.deadline(), Some(t0 + m.master_down_interval()));
        // As master it advertises at its own interval again.
        let (at, _) = fire(&mut m);
        assert_eq!(m.deadline(), Some(at + ms(1000)));
    }

    #[test]
    fn faults_leave_and_return_through_backup() {
        let t0 = Instant::now();
        let (mut m, _) = elected(100, t0);
        assert_eq!(
            m.set_fault(true, t0),
            [
                Action::Advertise(Priority::RELEASE),
                transition(State::Master, State::Fault)
            ]
        );
        assert_eq!(m.deadline(), None);
        assert!(m.on_advert(heard("192.0.2.2", 50), t0).is_empty());
        assert_eq!(
            m.set_fault(false, t0 + ms(1)),
            [transition(State::Fault, State::Backup)]
        );
        let mut m = Machine::new(settings(100));
        m.set_fault(true, t0);
        assert_eq!(m.start(t0), [transition(State::Initialize, State::Fault)]);
    }

    #[test]
    fn weights_change_the_advertised_priority_at_once() {
        let t0 = Instant::now();
        let (mut m, _) = elected(100, t0);
        assert_eq!(
            m.set_priority_delta(-60, t0),
            [Action::Advertise(Priority::new(40))]
        );
        let actions = m.on_advert(heard("192.0.2.0", 90), t0);
        assert_eq!(actions, [transition(State::Master, State::Backup)]);
        assert!(m.set_priority_delta(-60, t0).is_empty(), "no change");
    }

    #[test]
    fn an_unchanged_election_leaves_state_and_timers_alone() {
        let t0 = Instant::now();
        let (mut m, at) = elected(100, t0);
        let deadline = m.deadline();
        assert_eq!(m.reconfigure(election(100), at + ms(300)), None);
        assert_eq!((m.state(), m.deadline()), (State::Master, deadline));

        let mut b = Machine::new(settings(100));
        b.start(t0);
        b.on_advert(heard("192.0.2.2", 150), t0 + ms(500));
        let deadline = b.deadline();
        assert_eq!(b.reconfigure(election(100), t0 + ms(700)), None);
        assert_eq!((b.state(), b.deadline()), (State::Backup, deadline));
    }

    #[test]
    fn a_master_reloaded_below_its_backup_tells_it_at_once_and_yields() {
        let t0 = Instant::now();
        let (mut m, at) = elected(200, t0);
        let now = at + ms(300);
        assert_eq!(m.reconfigure(election(50), now), Some(Priority::new(50)));
        assert_eq!(
            m.state(),
            State::Master,
            "the backup decides when it takes over"
        );
        assert_eq!(
            m.deadline(),
            Some(now + ms(1000)),
            "the advert timer restarts"
        );
        // The backup (100) preempts: its advert makes us backup.
        let actions = m.on_advert(heard("192.0.2.2", 100), now + ms(3000));
        assert_eq!(actions, [transition(State::Master, State::Backup)]);
    }

    #[test]
    fn a_backup_reloaded_above_its_master_preempts_after_master_down_interval() {
        let t0 = Instant::now();
        let mut m = Machine::new(settings(100));
        m.start(t0);
        m.on_advert(heard("192.0.2.2", 150), t0 + ms(500));
        let last_heard = t0 + ms(1500);
        m.on_advert(heard("192.0.2.2", 150), last_heard);
        let deadline = m.deadline();
        assert_eq!(m.reconfigure(election(200), last_heard + ms(100)), None);
        // The master's adverts are now lower: discarded, they no longer hold the timer.
        m.on_advert(heard("192.0.2.2", 150), last_heard + ms(1000));
        let (at, actions) = fire(&mut m);
        assert_eq!(Some(at), deadline);
        assert_eq!(actions[0], transition(State::Backup, State::Master));
        assert_eq!(actions[1], Action::Advertise(Priority::new(200)));
    }

    #[test]
    fn a_reload_to_nopreempt_keeps_a_better_backup_waiting() {
        let t0 = Instant::now();
        let mut m = Machine::new(settings(200));
        m.start(t0);
        m.reconfigure(
            Election {
                preempt: false,
                ..election(200)
            },
            t0,
        );
        stays_backup_under_a_lower_master(&mut m, t0);
    }

    #[test]
    fn a_reload_keeps_tracking_weights_on_the_new_priority() {
        let t0 = Instant::now();
        let (mut m, _) = elected(100, t0);
        m.set_priority_delta(-20, t0);
        assert_eq!(m.reconfigure(election(150), t0), Some(Priority::new(130)));
        assert_eq!(m.priority(), Priority::new(130));
    }

    #[test]
    fn shutdown_releases_mastership_with_priority_zero() {
        let t0 = Instant::now();
        let (mut m, _) = elected(100, t0);
        assert_eq!(
            m.shutdown(),
            [
                Action::Advertise(Priority::RELEASE),
                transition(State::Master, State::Initialize)
            ]
        );
        let mut m = Machine::new(settings(100));
        m.start(t0);
        assert_eq!(m.shutdown(), [transition(State::Backup, State::Initialize)]);
    }

    #[test]
    fn sync_group_members_follow_except_into_mastership_while_faulted() {
        let t0 = Instant::now();
        let mut m = Machine::new(settings(100));
        m.start(t0);
        assert_eq!(
            m.follow(State::Master, t0)[0],
            transition(State::Backup, State::Master)
        );
        assert_eq!(
            m.follow(State::Fault, t0)[1],
            transition(State::Master, State::Fault)
        );
        m.set_fault(true, t0);
        assert!(m.follow(State::Master, t0).is_empty());
    }
}
