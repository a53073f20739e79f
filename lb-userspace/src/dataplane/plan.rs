//! The desired forwarding state, as a value.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
};

use serde::Serialize;

use crate::config::{
    Config, ForwardMethod, LvsTimeouts, Persistence, RealKey, Scheduler, SchedulerFlags,
    ServiceKey, Weight,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    /// False while another director holds the VIP (this one is VRRP BACKUP): the service
    /// keeps its reals and flows but forwards nothing until it is active again.
    pub active: bool,
    pub scheduler: Scheduler,
    /// sh-/mh-fallback and sh-/mh-port.
    pub scheduler_flags: SchedulerFlags,
    pub persistence: Option<Persistence>,
    pub method: ForwardMethod,
    /// In configuration order, which is the order schedulers walk them; those not
    /// [`RealPlan::in_service`] too, for the status view.
    pub reals: Vec<RealPlan>,
}

impl ServicePlan {
    /// The service as a data plane programs it: with only its reals [`in_service`].
    ///
    /// [`in_service`]: RealPlan::in_service
    pub fn serving(&self) -> ServicePlan {
        ServicePlan {
            reals: self
                .reals
                .iter()
                .filter(|r| r.in_service())
                .cloned()
                .collect(),
            ..self.clone()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RealPlan {
    pub addr: SocketAddr,
    pub weight: Weight,
    /// False once its checkers declare it down.
    pub healthy: bool,
    /// `inhibit_on_failure`: while down, the real stays in the service at weight 0 and
    /// keeps its flows, rather than leaving it as keepalived removes a real from IPVS.
    pub inhibited_when_down: bool,
}

impl RealPlan {
    /// The weight schedulers see: a real that is down takes nothing new.
    pub fn effective_weight(&self) -> u32 {
        if self.healthy { self.weight.get() } else { 0 }
    }

    /// Whether the real is in the service at all: a real that is down is not, unless
    /// inhibited; its flows are then rescheduled or dropped (`expire_nodest_conn`).
    pub fn in_service(&self) -> bool {
        self.healthy || self.inhibited_when_down
    }
}

/// Every service the data plane should forward.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub services: BTreeMap<ServiceKey, ServicePlan>,
    /// How long idle NAT connections live.
    pub timeouts: LvsTimeouts,
}

/// What decides the plan besides the configuration: the agent's view of the world.
pub trait Conditions {
    /// Whether `real` of `service` passes its checkers.
    fn healthy(&self, real: &RealKey) -> bool;
    /// Whether this director serves `vip` now (VRRP MASTER for it, or no VRRP for it).
    fn serves(&self, vip: IpAddr) -> bool;
    /// The weight `real` of `service` has now, from its `configured` one (checkers such
    /// as MISC_CHECK's `misc_dynamic` adjust it).
    fn weight(&self, _real: &RealKey, configured: Weight) -> Weight {
        configured
    }
}

impl Plan {
    /// The plan for `config` under `conditions`.
    pub fn new(config: &Config, conditions: &impl Conditions) -> Plan {
        let services = config
            .virtual_servers
            .iter()
            .filter_map(|vs| {
                let key = vs.key()?;
                let reals = vs
                    .real_servers
                    .iter()
                    .map(|rs| {
                        let real = key.real(rs.addr);
                        RealPlan {
                            addr: rs.addr,
                            weight: conditions.weight(&real, rs.weight),
                            healthy: conditions.healthy(&real),
                            inhibited_when_down: rs.inhibit_on_failure,
                        }
                    })
                    .collect();
                Some((
                    key,
                    ServicePlan {
                        active: conditions.serves(key.addr.ip()),
                        scheduler: vs.scheduler,
                        scheduler_flags: vs.scheduler_flags,
                        persistence: vs.persistence.clone(),
                        method: vs.method,
                        reals,
                    },
                ))
            })
            .collect();
        Plan {
            services,
            timeouts: config.global.lvs_timeouts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Protocol, parse_str};

    #[test]
    fn down_reals_keep_their_weight_but_take_nothing_new() {
        let text = "virtual_server 203.0.113.10 80 {\n lb_algo wrr\n lb_kind DR\n \
                    real_server 192.0.2.11 80 { weight 3 }\n real_server 192.0.2.12 80 { weight 2 }\n}\n";
        let config = parse_str("t.conf", text).unwrap().config;
        struct OneDown(SocketAddr);
        impl Conditions for OneDown {
            fn healthy(&self, real: &RealKey) -> bool {
                real.addr != self.0
            }
            fn serves(&self, _: IpAddr) -> bool {
                true
            }
        }
        let plan = Plan::new(&config, &OneDown("192.0.2.12:80".parse().unwrap()));
        let key = ServiceKey {
            addr: "203.0.113.10:80".parse().unwrap(),
            protocol: Protocol::Tcp,
        };
        let service = &plan.services[&key];
        assert_eq!(service.reals[1].weight.get(), 2);
        assert_eq!(
            service
                .reals
                .iter()
                .map(RealPlan::effective_weight)
                .collect::<Vec<_>>(),
            vec![3, 0]
        );
    }
}
