//! Which reals the checkers consider up, and what weight they give them.

use std::collections::{BTreeMap, HashMap};

use crate::{
    check::{CheckId, Transition, Verdict},
    config::{Config, RealKey, Weight},
};

/// The last verdict of every checker, per real. A real is up while none of its checkers
/// says down, as in keepalived, and its weight is its configured one plus what its
/// checkers add, within what IPVS accepts.
#[derive(Debug, Default)]
pub struct Health {
    verdicts: HashMap<RealKey, BTreeMap<usize, Verdict>>,
}

impl Health {
    pub fn is_up(&self, real: &RealKey) -> bool {
        self.verdicts
            .get(real)
            .is_none_or(|verdicts| verdicts.values().all(|v| v.is_up()))
    }

    /// `configured` with every checker's adjustment.
    pub fn weight(&self, real: &RealKey, configured: Weight) -> Weight {
        let delta: i64 = self
            .verdicts
            .get(real)
            .into_iter()
            .flat_map(|verdicts| verdicts.values())
            .map(|v| match v {
                Verdict::Up { weight_delta } => *weight_delta,
                Verdict::Down => 0,
            })
            .sum();
        let weight = (i64::from(configured.get()) + delta).clamp(0, i64::from(Weight::MAX));
        Weight::new(weight as u32).unwrap_or(configured)
    }

    pub fn verdict(&self, id: &CheckId) -> Option<Verdict> {
        self.verdicts
            .get(&id.real)
            .and_then(|verdicts| verdicts.get(&id.index))
            .copied()
    }

    /// Records a checker's verdict; returns the real's new state when it changed.
    pub fn record(&mut self, transition: Transition) -> Option<bool> {
        let CheckId { real, index } = transition.id;
        let was_up = self.is_up(&real);
        self.verdicts
            .entry(real)
            .or_default()
            .insert(index, transition.verdict);
        let is_up = self.is_up(&real);
        (was_up != is_up).then_some(is_up)
    }

    /// Forgets verdicts of checkers `config` no longer has.
    pub fn retain(&mut self, config: &Config) {
        let present: HashMap<RealKey, usize> = config
            .virtual_servers
            .iter()
            .filter_map(|vs| Some((vs.key()?, vs)))
            .flat_map(|(key, vs)| {
                vs.real_servers
                    .iter()
                    .map(move |rs| (key.real(rs.addr), rs.checks.len()))
            })
            .collect();
        self.verdicts.retain(|real, verdicts| {
            let checks = present.get(real).copied().unwrap_or(0);
            verdicts.retain(|index, _| *index < checks);
            !verdicts.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Protocol, ServiceKey, parse_str};

    fn id(index: usize) -> CheckId {
        let service = ServiceKey {
            addr: "203.0.113.10:80".parse().unwrap(),
            protocol: Protocol::Tcp,
        };
        CheckId {
            real: service.real("192.0.2.11:80".parse().unwrap()),
            index,
        }
    }

    /// Checker `index` says `verdict`.
    fn says(index: usize, verdict: Verdict) -> Transition {
        Transition {
            id: id(index),
            verdict,
        }
    }

    fn up_by(weight_delta: i64) -> Verdict {
        Verdict::Up { weight_delta }
    }

    #[test]
    fn a_real_is_down_while_any_checker_fails() {
        let mut health = Health::default();
        assert_eq!(health.record(says(0, Verdict::Down)), Some(false));
        assert_eq!(health.record(says(1, Verdict::Down)), None);
        assert_eq!(health.record(says(0, Verdict::UP)), None);
        assert_eq!(health.record(says(1, Verdict::UP)), Some(true));
        assert!(health.is_up(&id(0).real));
    }

    #[test]
    fn reload_forgets_checkers_that_are_gone() {
        let mut health = Health::default();
        health.record(says(0, Verdict::Down));
        health.record(says(1, Verdict::Down));
        let config = parse_str(
            "t.conf",
            "virtual_server 203.0.113.10 80 {\n real_server 192.0.2.11 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
        )
        .unwrap()
        .config;
        health.retain(&config);
        assert_eq!(health.verdict(&id(0)), Some(Verdict::Down));
        assert_eq!(health.verdict(&id(1)), None);
    }

    #[test]
    fn checkers_adjust_the_weight_within_bounds() {
        let mut health = Health::default();
        let weight = |health: &Health| health.weight(&id(0).real, Weight::new(5).unwrap()).get();
        assert_eq!(weight(&health), 5);
        health.record(says(0, up_by(5)));
        health.record(says(1, up_by(-2)));
        assert_eq!(weight(&health), 8);
        health.record(says(1, up_by(-100)));
        assert_eq!(weight(&health), 0);
        health.record(says(1, up_by(i64::from(i32::MAX))));
        assert_eq!(weight(&health), Weight::MAX);
        assert_eq!(health.record(says(0, Verdict::Down)), Some(false));
        assert_eq!(
            weight(&health),
            Weight::MAX,
            "a checker that is down adds nothing"
        );
    }
}
