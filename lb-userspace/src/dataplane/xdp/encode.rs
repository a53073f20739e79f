//! A plan's services as the balancer's maps hold them: the values the XDP programs read.

use std::net::SocketAddr;

use lb_common::{
    Addr, Family,
    maps::{Real, Service, VipKey, method, select, service_flags},
    persist::whole_address,
    sched::least::{Least, MAX_LEAST_REALS},
    timeouts::Timeouts,
};

use super::Nodest;
use crate::{
    config::{
        ForwardMethod, LvsTimeouts, Persistence, Protocol, Scheduler, SchedulerFlags, ServiceKey,
    },
    dataplane::ServicePlan,
};

/// How the XDP program picks a service's real for a new flow, and so what its selection
/// table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// rr: each real with a weight once, stepped through in turn.
    RoundRobin,
    /// wrr: reals as often as their weights, interleaved.
    Weighted,
    /// sh: buckets dealt by weight, indexed by a hash of the client.
    SourceHash,
    /// dh: buckets dealt one per real, indexed by a hash of the destination.
    DestinationHash,
    /// mh: a Maglev table, indexed by a hash of the client.
    Maglev,
    /// The lc family: every real listed once, compared by connections per new flow.
    Least(Least),
    /// lblc (`replicated` false) and lblcr: listed as for the lc family, picked by wlc.
    Locality { replicated: bool },
}

/// The program's code for `method`.
fn method_code(method: ForwardMethod) -> u8 {
    match method {
        ForwardMethod::Dr => method::DR,
        ForwardMethod::Nat => method::NAT,
        ForwardMethod::Tun => method::TUN,
    }
}

pub fn selection(scheduler: Scheduler) -> Result<Selection, String> {
    match scheduler {
        Scheduler::Rr => Ok(Selection::RoundRobin),
        Scheduler::Wrr => Ok(Selection::Weighted),
        Scheduler::Sh => Ok(Selection::SourceHash),
        Scheduler::Dh => Ok(Selection::DestinationHash),
        Scheduler::Mh => Ok(Selection::Maglev),
        Scheduler::Lc => Ok(Selection::Least(Least::Lc)),
        Scheduler::Wlc => Ok(Selection::Least(Least::Wlc)),
        Scheduler::Sed => Ok(Selection::Least(Least::Sed)),
        Scheduler::Nq => Ok(Selection::Least(Least::Nq)),
        Scheduler::Fo => Ok(Selection::Least(Least::Fo)),
        Scheduler::Ovf => Ok(Selection::Least(Least::Ovf)),
        Scheduler::Lblc => Ok(Selection::Locality { replicated: false }),
        Scheduler::Lblcr => Ok(Selection::Locality { replicated: true }),
    }
}

impl Selection {
    /// The `select` value the program dispatches on.
    const fn select(self) -> u8 {
        match self {
            Selection::RoundRobin | Selection::Weighted => select::RING,
            Selection::SourceHash | Selection::Maglev => select::SOURCE_HASH,
            Selection::DestinationHash => select::DESTINATION_HASH,
            Selection::Least(_) => select::LEAST,
            Selection::Locality { .. } => select::LOCALITY,
        }
    }

    /// The rule the lc family compares by; 0 (and unread) for the others.
    const fn least(self) -> u8 {
        match self {
            Selection::Least(rule) => rule as u8,
            Selection::Locality { .. } => Least::Wlc as u8,
            _ => 0,
        }
    }
}

/// Whether the XDP program can schedule a service this way, or why not (it forwards with
/// every `lb_kind`).
pub fn supports(scheduler: Scheduler) -> Result<(), String> {
    selection(scheduler).map(|_| ())
}

/// Whether the XDP program can schedule among `reals` reals with `scheduler`, or why not.
pub fn supports_reals(scheduler: Scheduler, reals: usize) -> Result<(), String> {
    match selection(scheduler) {
        Ok(Selection::Least(_) | Selection::Locality { .. })
            if reals > MAX_LEAST_REALS as usize =>
        {
            Err(format!(
                "lb_algo {} compares every real for each new connection: the XDP data plane \
             allows at most {MAX_LEAST_REALS} reals per service with it, not {reals}",
                scheduler.name()
            ))
        }
        _ => Ok(()),
    }
}

/// The [`Service::flags`] of a service: whether it replicates (lblcr), IPVS's scheduler
/// flags (which mean the same to sh and mh), and what becomes of flows without a real.
fn service_flags(selection: Selection, flags: SchedulerFlags, nodest: Nodest) -> u8 {
    let mut bits = 0;
    if nodest == Nodest::Drop {
        bits |= service_flags::DROP_NODEST;
    }
    if selection == (Selection::Locality { replicated: true }) {
        bits |= service_flags::REPLICATED;
    }
    if flags.flag1 {
        bits |= service_flags::FALLBACK;
    }
    if flags.flag2 {
        bits |= service_flags::PORT;
    }
    bits
}

/// An address and port as the maps hold them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapAddr {
    pub addr: Addr,
    pub family: Family,
    /// Network byte order, as in the L4 header.
    pub port: u16,
}

impl From<SocketAddr> for MapAddr {
    fn from(addr: SocketAddr) -> Self {
        let ip = addr.ip();
        Self {
            addr: Addr::from(ip),
            family: Family::of(&ip),
            port: addr.port().to_be(),
        }
    }
}

impl MapAddr {
    /// The socket address this is, when its family byte names one.
    pub fn socket_addr(addr: Addr, family: u8, port: u16) -> Option<SocketAddr> {
        let family = Family::from_raw(family)?;
        Some(SocketAddr::new(addr.to_ip(family), u16::from_be(port)))
    }
}

/// The `VIPS` key of a service.
pub fn vip_key(key: &ServiceKey) -> VipKey {
    let vip = MapAddr::from(key.addr);
    VipKey {
        addr: vip.addr,
        port: vip.port,
        proto: key.protocol.number(),
        family: vip.family as u8,
    }
}

/// The service a `VIPS` key stands for, when it is one a plan could have written.
pub fn service_key(vip: &VipKey) -> Option<ServiceKey> {
    Some(ServiceKey {
        addr: MapAddr::socket_addr(vip.addr, vip.family, vip.port)?,
        protocol: Protocol::from_number(vip.proto)?,
    })
}

/// The `VIPS` value of a service in slot `id`, scheduled by `selection`, whose selection
/// table of `table_len` entries starts at `TABLES` index `table`.
pub fn service_value(
    id: u32,
    (table, table_len): (u32, u32),
    key: &ServiceKey,
    plan: &ServicePlan,
    selection: Selection,
    nodest: Nodest,
) -> Service {
    Service {
        id,
        table,
        table_len,
        method: method_code(plan.method),
        select: selection.select(),
        flags: service_flags(selection, plan.scheduler_flags, nodest),
        least: selection.least(),
        persistence: persistence_secs(plan.persistence.as_ref()),
        granularity: granularity(key, plan.persistence.as_ref()),
    }
}

/// What a `REALS` entry says of the real's service.
#[derive(Clone, Copy, Debug)]
pub struct RealOf {
    /// The service's slot.
    pub service: u32,
    pub method: ForwardMethod,
    /// Whether the service forwards (is not on standby).
    pub active: bool,
}

/// The `REALS` entry of a real of `of`, for the flows pinned to this `generation` of its
/// slot.
pub fn real_entry(addr: SocketAddr, generation: u32, weight: u32, of: RealOf) -> Real {
    let real = MapAddr::from(addr);
    let active = if of.active { Real::ACTIVE } else { 0 };
    Real {
        addr: real.addr,
        port: real.port,
        family: real.family as u8,
        flags: Real::PRESENT | active,
        generation,
        weight,
        service: of.service,
        method: method_code(of.method),
        _pad: [0; 3],
    }
}

/// `lvs_timeouts` as the program reads them: nanoseconds of its clock.
pub fn timeouts(config: &LvsTimeouts) -> Timeouts {
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Timeouts {
        tcp: nanos(config.tcp),
        tcp_fin: nanos(config.tcp_fin),
        udp: nanos(config.udp),
    }
}

/// `persistence_timeout` as the program reads it: whole seconds, at least one; 0 for none.
fn persistence_secs(persistence: Option<&Persistence>) -> u32 {
    persistence.map_or(0, |p| {
        u32::try_from(p.timeout.as_secs())
            .unwrap_or(u32::MAX)
            .max(1)
    })
}

/// The mask a service applies to clients for persistence: `persistence_granularity`, or
/// the whole address.
fn granularity(key: &ServiceKey, persistence: Option<&Persistence>) -> Addr {
    persistence
        .and_then(|p| p.granularity)
        .map_or_else(|| whole_address(Family::of(&key.addr.ip())), Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_timeouts_become_the_programs_nanoseconds() {
        assert_eq!(timeouts(&LvsTimeouts::default()), Timeouts::IPVS);
        let tight = LvsTimeouts {
            tcp: std::time::Duration::from_secs(7200),
            tcp_fin: std::time::Duration::from_millis(1500),
            udp: std::time::Duration::from_nanos(1),
        };
        assert_eq!(
            timeouts(&tight),
            Timeouts {
                tcp: 7_200_000_000_000,
                tcp_fin: 1_500_000_000,
                udp: 1,
            }
        );
    }

    #[test]
    fn every_ipvs_scheduler_is_selectable() {
        for scheduler in Scheduler::ALL {
            assert_eq!(supports(scheduler), Ok(()), "{scheduler:?}");
        }
    }

    #[test]
    fn the_lc_family_refuses_more_reals_than_it_scans() {
        let most = MAX_LEAST_REALS as usize;
        for scheduler in [Scheduler::Wlc, Scheduler::Lblcr] {
            assert_eq!(supports_reals(scheduler, most), Ok(()));
            let refused = supports_reals(scheduler, most + 1).unwrap_err();
            assert!(refused.contains("at most 64 reals"), "{refused}");
        }
        assert_eq!(supports_reals(Scheduler::Mh, most + 1), Ok(()));
    }

    #[test]
    fn scheduler_flags_map_to_service_flags() {
        let flags = SchedulerFlags {
            flag1: true,
            flag2: true,
            flag3: false,
        };
        assert_eq!(
            service_flags(Selection::Maglev, flags, Nodest::Reschedule),
            service_flags::FALLBACK | service_flags::PORT
        );
        assert_eq!(
            service_flags(
                Selection::Locality { replicated: true },
                SchedulerFlags::default(),
                Nodest::Drop
            ),
            service_flags::REPLICATED | service_flags::DROP_NODEST
        );
    }
}
