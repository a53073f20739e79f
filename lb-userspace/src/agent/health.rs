//! Which reals the checkers consider up.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
};

use crate::{
    check::{CheckId, Transition},
    config::{Config, ServiceTarget},
    dataplane::ServiceKey,
};

/// The checkers currently failing, per real. A real is up while none of its checkers fails,
/// as in keepalived.
#[derive(Debug, Default)]
pub struct Health {
    failing: HashMap<(ServiceKey, SocketAddr), HashSet<usize>>,
}

impl Health {
    pub fn is_up(&self, service: &ServiceKey, real: SocketAddr) -> bool {
        !self.failing.contains_key(&(*service, real))
    }

    pub fn is_down(&self, id: &CheckId) -> bool {
        self.failing
            .get(&(id.service, id.real))
            .is_some_and(|f| f.contains(&id.index))
    }

    /// Records a checker's verdict; returns the real's new state when it changed.
    pub fn record(&mut self, transition: Transition) -> Option<bool> {
        let CheckId {
            service,
            real,
            index,
        } = transition.id;
        let was_up = self.is_up(&service, real);
        if transition.up {
            if let Some(failing) = self.failing.get_mut(&(service, real)) {
                failing.remove(&index);
                if failing.is_empty() {
                    self.failing.remove(&(service, real));
                }
            }
        } else {
            self.failing
                .entry((service, real))
                .or_default()
                .insert(index);
        }
        let is_up = self.is_up(&service, real);
        (was_up != is_up).then_some(is_up)
    }

    /// Forgets verdicts of checkers `config` no longer has.
    pub fn retain(&mut self, config: &Config) {
        let present: HashMap<(ServiceKey, SocketAddr), usize> = config
            .virtual_servers
            .iter()
            .filter_map(|vs| match vs.target {
                ServiceTarget::Addr(addr) => Some((
                    ServiceKey {
                        addr,
                        protocol: vs.protocol,
                    },
                    vs,
                )),
                _ => None,
            })
            .flat_map(|(key, vs)| {
                vs.real_servers
                    .iter()
                    .map(move |rs| ((key, rs.addr), rs.checks.len()))
            })
            .collect();
        self.failing.retain(|real, failing| {
            let checks = present.get(real).copied().unwrap_or(0);
            failing.retain(|index| *index < checks);
            !failing.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Protocol, parse_str};

    fn id(index: usize) -> CheckId {
        CheckId {
            service: ServiceKey {
                addr: "203.0.113.10:80".parse().unwrap(),
                protocol: Protocol::Tcp,
            },
            real: "192.0.2.11:80".parse().unwrap(),
            index,
        }
    }

    #[test]
    fn a_real_is_down_while_any_checker_fails() {
        let mut health = Health::default();
        assert_eq!(
            health.record(Transition {
                id: id(0),
                up: false
            }),
            Some(false)
        );
        assert_eq!(
            health.record(Transition {
                id: id(1),
                up: false
            }),
            None
        );
        assert_eq!(
            health.record(Transition {
                id: id(0),
                up: true
            }),
            None
        );
        assert_eq!(
            health.record(Transition {
                id: id(1),
                up: true
            }),
            Some(true)
        );
        assert!(health.is_up(&id(0).service, id(0).real));
    }

    #[test]
    fn reload_forgets_checkers_that_are_gone() {
        let mut health = Health::default();
        health.record(Transition {
            id: id(0),
            up: false,
        });
        health.record(Transition {
            id: id(1),
            up: false,
        });
        let config = parse_str(
            "t.conf",
            "virtual_server 203.0.113.10 80 {\n real_server 192.0.2.11 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
        )
        .unwrap()
        .config;
        health.retain(&config);
        assert!(health.is_down(&id(0)));
        assert!(!health.is_down(&id(1)));
    }
}
