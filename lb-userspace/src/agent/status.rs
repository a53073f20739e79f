//! The agent's answer to `xlb status`.

use std::collections::BTreeMap;

use crate::{
    ctl::{RealStatus, ServiceStatus, Status},
    dataplane::{Plan, Stats},
};

/// Joins what the agent wants (the plan) with what the data plane counted.
pub fn build(plan: &Plan, stats: &Stats, interfaces: &[String]) -> Status {
    let services = plan
        .services
        .iter()
        .map(|(key, service)| ServiceStatus {
            addr: key.addr,
            active: service.active,
            protocol: key.protocol,
            scheduler: service.scheduler,
            method: service.method,
            counters: stats.services.get(key).copied().unwrap_or_default(),
            reals: service
                .reals
                .iter()
                .map(|real| RealStatus {
                    addr: real.addr,
                    weight: real.weight.get(),
                    healthy: real.healthy,
                    counters: stats
                        .reals
                        .get(&key.real(real.addr))
                        .copied()
                        .unwrap_or_default(),
                    conns: stats
                        .conns
                        .get(&key.real(real.addr))
                        .copied()
                        .unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let events: BTreeMap<String, u64> = stats
        .events
        .iter()
        .map(|(event, count)| (event.name().to_string(), *count))
        .collect();
    Status {
        pid: std::process::id(),
        interfaces: interfaces.to_vec(),
        services,
        events,
    }
}
