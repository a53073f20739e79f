//! The XDP data plane: xlb's balancer program in the kernel, its maps written from a
//! [`Plan`].

pub mod baseline;
pub mod decap;
mod forwarding;
pub mod load;
mod maps;
pub mod neigh;
mod slots;
mod stats;
mod tunnel;

use std::{collections::HashMap, net::SocketAddr};

use aya::{
    Ebpf, EbpfLoader,
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode},
};
use lb_common::{
    Addr, Family, conn,
    maps::{
        DEFAULT_FLOWS, MAX_REALS, MAX_SERVICES, Real, Service, TABLE_SIZE, VipKey, method, name,
        select, service_flags,
        stage::{self, Stage},
        table_base,
    },
    nat::Timeouts,
    persist::whole_address,
    sched::{
        self, hash,
        least::{Least, MAX_LEAST_REALS},
        maglev::{MaglevReal, maglev},
    },
};
use thiserror::Error;
use tracing::{debug, info};

use self::{forwarding::Forwarding, maps::Maps, slots::Slots};
pub use self::{stats::Stats, tunnel::TunnelPrefix};
use super::{Plan, RealPlan, ServiceKey, ServicePlan};
use crate::config::{ForwardMethod, LvsTimeouts, Persistence, Scheduler, SchedulerFlags};

/// The balancer object, built from `lb-ebpf` by this crate's build script.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf.o"));

/// Name of the balancer's entry program in [`OBJECT`], the one attached to interfaces.
const PROGRAM: &str = stage::ENTRY;

/// How the program is attached (`--xdp-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Native when the driver supports it, generic otherwise: the kernel decides.
    #[default]
    Auto,
    /// In the driver; fails where the driver has no XDP support.
    Native,
    /// Generic (skb) XDP: works everywhere, slower.
    Skb,
}

impl From<Mode> for XdpMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Auto => XdpMode::Default,
            Mode::Native => XdpMode::Driver,
            Mode::Skb => XdpMode::Skb,
        }
    }
}

/// What happens to packets of a flow whose real was removed from its service: IPVS's
/// `expire_nodest_conn` (`--expire-nodest-conn`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Nodest {
    /// Scheduled again, as a new flow (`expire_nodest_conn` 1).
    #[default]
    Reschedule,
    /// Dropped and counted as `no_dest` (`expire_nodest_conn` 0, IPVS's default), until the
    /// flow table forgets the flow.
    Drop,
}

#[derive(Debug, Error)]
pub enum XdpError {
    #[error("cannot load the XDP object")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program")]
    Program(#[from] ProgramError),
    #[error("cannot attach to {interface} in {mode:?} mode")]
    Attach {
        interface: String,
        mode: Mode,
        #[source]
        source: ProgramError,
    },
    #[error("map {map}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("the object has no {0}")]
    Missing(&'static str),
    #[error("the object has no XDP program {0}")]
    MissingProgram(String),
    #[error(
        "the kernel refused the XDP program {program}; its verifier ended with:\n  \
         {verifier}"
    )]
    Refused {
        program: String,
        verifier: String,
        source: std::io::Error,
    },
    #[error("no room for more {what}: the data plane holds at most {capacity}")]
    Full { what: &'static str, capacity: u32 },
    #[error("{service}: {reason}")]
    Unsupported { service: ServiceKey, reason: String },
    #[error("XDP link {path}")]
    Link {
        path: String,
        #[source]
        source: aya::programs::links::LinkError,
    },
    #[error("cannot pin the XDP link at {path}")]
    Pin {
        path: String,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("cannot remove the pinned XDP link {path}")]
    Unpin {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("enabling forwarding on {interface}")]
    Forwarding {
        interface: String,
        #[source]
        source: std::io::Error,
    },
}

/// How the XDP program picks a service's real for a new flow, and so what its selection
/// table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Selection {
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

fn selection(scheduler: Scheduler) -> Result<Selection, String> {
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

/// A service as last written to the maps.
#[derive(Debug)]
struct Applied {
    value: Service,
    /// Which of the service's two tables `value` points at.
    slot: u32,
    table: Vec<u32>,
    reals: Vec<SocketAddr>,
    /// Whether the VIP is in `VIPS`: an inactive service keeps its slots, tables and flows
    /// but is left out, so its traffic passes to the kernel.
    installed: bool,
}

/// The loaded balancer and everything it was told, so that each [`Plan`] only changes
/// what differs.
pub struct XdpDataPlane {
    ebpf: Ebpf,
    maps: Maps,
    services: Slots<ServiceKey>,
    reals: Slots<(ServiceKey, SocketAddr)>,
    /// Per real slot: the generation of its current occupant.
    generations: Vec<u32>,
    applied: HashMap<ServiceKey, Applied>,
    timeouts: Timeouts,
    forwarding: Vec<Forwarding>,
    /// Where the program is attached.
    interfaces: Vec<String>,
    /// Whether those forward IPv6 too.
    ipv6_forwarding: bool,
    nodest: Nodest,
}

impl XdpDataPlane {
    /// Loads the balancer's programs into the kernel, attached nowhere yet, and says what
    /// the verifier made of each. `flows` sizes the flow table, and the NAT connection
    /// table alike.
    pub fn load(flows: Option<u32>) -> Result<(Self, load::LoadReport), XdpError> {
        let flows = flows.unwrap_or(DEFAULT_FLOWS);
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(name::FLOWS, flows)
            .map_max_entries(name::NAT_CONNS, flows)
            .load(OBJECT)?;
        let programs: Vec<&str> = std::iter::once(PROGRAM)
            .chain(Stage::ALL.iter().map(|stage| stage.program()))
            .collect();
        let report = load::programs(&mut ebpf, &programs)?;
        let mut maps = Maps::take(&mut ebpf)?;
        for stage in Stage::ALL {
            let program: &Xdp = ebpf
                .program(stage.program())
                .ok_or_else(|| XdpError::MissingProgram(stage.program().to_string()))?
                .try_into()?;
            maps.set_stage(stage as u32, program.fd()?)?;
        }
        let timeouts = Timeouts::IPVS;
        maps.set_timeouts(&timeouts)?;
        let plane = Self {
            ebpf,
            maps,
            services: Slots::new(MAX_SERVICES),
            reals: Slots::new(MAX_REALS),
            generations: vec![0; MAX_REALS as usize],
            applied: HashMap::new(),
            timeouts,
            forwarding: Vec::new(),
            interfaces: Vec::new(),
            ipv6_forwarding: false,
            nodest: Nodest::default(),
        };
        Ok((plane, report))
    }

    /// Sets what happens to flows whose real is removed, for services applied from now on.
    pub fn set_nodest(&mut self, nodest: Nodest) {
        self.nodest = nodest;
    }

    /// Attaches to `interface`. IPv4 forwarding is switched on there if it is off (IPv6
    /// forwarding too once there are IPv6 services): the kernel only resolves next hops for
    /// the program on interfaces that forward. It is switched back off when the data plane
    /// is dropped.
    pub fn attach(&mut self, interface: &str, mode: Mode) -> Result<(), XdpError> {
        self.enable_forwarding(Family::V4, interface)?;
        if self.ipv6_forwarding {
            self.enable_forwarding(Family::V6, interface)?;
        }
        program_mut(&mut self.ebpf)?
            .attach(interface, mode.into())
            .map_err(|source| XdpError::Attach {
                interface: interface.to_string(),
                mode,
                source,
            })?;
        self.interfaces.push(interface.to_string());
        info!("XDP balancer attached to {interface} ({mode:?} mode)");
        Ok(())
    }

    fn enable_forwarding(&mut self, family: Family, interface: &str) -> Result<(), XdpError> {
        let guard =
            Forwarding::enable(family, interface).map_err(|source| XdpError::Forwarding {
                interface: interface.to_string(),
                source,
            })?;
        self.forwarding.extend(guard);
        Ok(())
    }

    /// IPv6 forwarding changes how a host treats router advertisements, so it is only
    /// switched on once an IPv6 service needs it.
    fn forward_ipv6(&mut self, plan: &Plan) -> Result<(), XdpError> {
        if self.ipv6_forwarding || !plan.services.keys().any(|k| k.addr.is_ipv6()) {
            return Ok(());
        }
        for interface in self.interfaces.clone() {
            self.enable_forwarding(Family::V6, &interface)?;
        }
        self.ipv6_forwarding = true;
        Ok(())
    }

    /// Takes outer source addresses of tunnelled packets in `prefix`'s family from it,
    /// instead of the address the route to the real would use.
    pub fn set_tunnel_source(&mut self, prefix: &TunnelPrefix) -> Result<(), XdpError> {
        self.maps
            .set_tunnel_source(prefix.family(), &prefix.entry())?;
        info!(
            "Tunnelled {} packets leave with sources from {prefix}",
            prefix.family().name()
        );
        Ok(())
    }

    /// Makes the maps say what `plan` says, touching only what changed.
    pub fn apply(&mut self, plan: &Plan) -> Result<(), XdpError> {
        let timeouts = timeouts(&plan.timeouts);
        if timeouts != self.timeouts {
            self.maps.set_timeouts(&timeouts)?;
            self.timeouts = timeouts;
        }
        self.forward_ipv6(plan)?;
        let gone: Vec<ServiceKey> = self
            .applied
            .keys()
            .filter(|k| !plan.services.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            self.remove_service(&key)?;
        }
        for (key, service) in &plan.services {
            self.apply_service(key, service)?;
        }
        Ok(())
    }

    fn apply_service(&mut self, key: &ServiceKey, plan: &ServicePlan) -> Result<(), XdpError> {
        let unsupported = |reason| XdpError::Unsupported {
            service: *key,
            reason,
        };
        let method = method_code(plan.method);
        let selection = selection(plan.scheduler).map_err(unsupported)?;
        let (id, new) = self.services.assign(key).map_err(|f| full("services", f))?;
        if new {
            self.maps.reset_service_stats(id)?;
        }
        let previous = self.applied.get(key);
        for addr in previous.iter().flat_map(|p| &p.reals) {
            if !plan.reals.iter().any(|r| r.addr == *addr) {
                release_real(&mut self.reals, &mut self.maps, key, *addr)?;
            }
        }
        let mut indices = Vec::with_capacity(plan.reals.len());
        for real in &plan.reals {
            let (index, new) = self
                .reals
                .assign(&(*key, real.addr))
                .map_err(|f| full("reals", f))?;
            let generation = &mut self.generations[index as usize];
            if new {
                *generation = generation.wrapping_add(1);
                self.maps.reset_real_stats(index)?;
                self.maps.reset_conns(index)?;
            }
            // Written every time: the weight the program checks may have changed.
            self.maps.set_real(
                index,
                &real_entry(real.addr, *generation, real.effective_weight()),
            )?;
            indices.push(index);
        }

        let table = selection_table(*key, selection, plan, &indices)?;
        let previous = self.applied.get(key);
        let slot = match previous {
            Some(p) if p.table == table => p.slot,
            Some(p) => 1 - p.slot,
            None => 0,
        };
        if previous.is_none_or(|p| p.table != table) {
            self.maps.write_table(table_base(id, slot), &table)?;
        }
        let value = Service {
            id,
            table: table_base(id, slot),
            table_len: table.len() as u32,
            method,
            select: selection.select(),
            flags: service_flags(selection, plan.scheduler_flags, self.nodest),
            least: selection.least(),
            persistence: persistence_secs(plan.persistence.as_ref()),
            granularity: granularity(key, plan.persistence.as_ref()),
        };
        let installed = previous.is_some_and(|p| p.installed);
        if plan.active && (!installed || previous.is_some_and(|p| p.value != value)) {
            self.maps.set_service(&vip_key(key), &value)?;
            debug!(
                "{key}: {} reals, selection table of {}",
                indices.len(),
                table.len()
            );
        } else if !plan.active && installed {
            self.maps.remove_service(&vip_key(key))?;
            debug!("{key}: standing by");
        }
        let reals = plan.reals.iter().map(|r| r.addr).collect();
        self.applied.insert(
            *key,
            Applied {
                value,
                slot,
                table,
                reals,
                installed: plan.active,
            },
        );
        Ok(())
    }

    fn remove_service(&mut self, key: &ServiceKey) -> Result<(), XdpError> {
        let Some(applied) = self.applied.remove(key) else {
            return Ok(());
        };
        self.maps.remove_service(&vip_key(key))?;
        for addr in applied.reals {
            release_real(&mut self.reals, &mut self.maps, key, addr)?;
        }
        self.services.release(key);
        Ok(())
    }

    /// Counters of every applied service and its reals, summed over CPUs.
    pub fn stats(&self) -> Result<Stats, XdpError> {
        let window = conn::window(monotonic_ns());
        let mut stats = Stats {
            events: self.maps.events()?,
            ..Stats::default()
        };
        for (key, applied) in &self.applied {
            stats
                .services
                .insert(*key, self.maps.service_stats(applied.value.id)?);
            for addr in &applied.reals {
                if let Some(index) = self.reals.get(&(*key, *addr)) {
                    stats
                        .reals
                        .insert((*key, *addr), self.maps.real_stats(index)?);
                    stats
                        .conns
                        .insert((*key, *addr), self.maps.conns(index, window)?);
                }
            }
        }
        Ok(stats)
    }

    /// Runs the balancer `repeat` times on `frame` through the kernel's test-run, returning
    /// the action and the frame as the program left it. Used by fixtures and benchmarks.
    ///
    /// The frame arrives on `ingress` (an interface index in the calling thread's network
    /// namespace, which is where next hops are looked up), or on loopback when `None`.
    pub fn test_run(
        &self,
        frame: &[u8],
        ingress: Option<u32>,
        repeat: u32,
    ) -> Result<TestRunOutcome, XdpError> {
        let program: &Xdp = self
            .ebpf
            .program(PROGRAM)
            .ok_or(XdpError::Missing("balancer program"))?
            .try_into()?;
        test_run(program, frame, ingress, repeat)
    }

    /// The ring of next hops the program could not resolve, for the agent to drain; `None`
    /// once taken.
    pub fn take_neigh_misses(&mut self) -> std::io::Result<Option<neigh::Misses>> {
        self.maps
            .neigh_misses
            .take()
            .map(neigh::Misses::new)
            .transpose()
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

/// Now on the clock the XDP program reads (`bpf_ktime_get_ns`).
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid place for the kernel to write the time to; the monotonic
    // clock always exists, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The result of [`XdpDataPlane::test_run`].
#[derive(Debug)]
pub struct TestRunOutcome {
    /// The XDP action (`XDP_PASS` = 2, `XDP_TX` = 3, ...).
    pub action: u32,
    pub frame: Vec<u8>,
    /// Average time per run, as the kernel measured it.
    pub duration: std::time::Duration,
}

fn test_run(
    program: &Xdp,
    frame: &[u8],
    ingress: Option<u32>,
    repeat: u32,
) -> Result<TestRunOutcome, XdpError> {
    // Room for the frame to grow (encapsulation) without the kernel refusing to copy it out.
    let mut out = vec![0u8; frame.len() + 256];
    let context = ingress.map(|ifindex| xdp_md(frame.len(), ifindex));
    let result = program.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ctx_in: context.as_ref().map(|c| c.as_slice()),
        repeat,
        ..TestRunOptions::default()
    })?;
    out.truncate(result.data_size_out as usize);
    Ok(TestRunOutcome {
        action: result.return_value,
        frame: out,
        duration: result.duration,
    })
}

/// `struct xdp_md` as test-run takes it: the frame spans the whole input (data 0, data_end
/// its length, no metadata) and arrived on `ifindex`, queue 0.
fn xdp_md(frame_len: usize, ifindex: u32) -> [u8; 24] {
    let fields = [0, frame_len as u32, 0, ifindex, 0, 0];
    let mut bytes = [0u8; 24];
    for (chunk, field) in bytes.chunks_exact_mut(4).zip(fields) {
        chunk.copy_from_slice(&field.to_ne_bytes());
    }
    bytes
}

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    Ok(ebpf
        .program_mut(PROGRAM)
        .ok_or(XdpError::Missing("balancer program"))?
        .try_into()?)
}

fn full(what: &'static str, full: slots::Full) -> XdpError {
    XdpError::Full {
        what,
        capacity: full.capacity,
    }
}

fn release_real(
    reals: &mut Slots<(ServiceKey, SocketAddr)>,
    maps: &mut Maps,
    key: &ServiceKey,
    addr: SocketAddr,
) -> Result<(), XdpError> {
    if let Some(index) = reals.release(&(*key, addr)) {
        maps.set_real(index, &Real::default())?;
    }
    Ok(())
}

fn vip_key(key: &ServiceKey) -> VipKey {
    let ip = key.addr.ip();
    VipKey::new(
        Addr::from(ip),
        Family::of(&ip),
        key.addr.port(),
        key.protocol.number(),
    )
}

fn timeouts(config: &LvsTimeouts) -> Timeouts {
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Timeouts {
        tcp: nanos(config.tcp),
        tcp_fin: nanos(config.tcp_fin),
        udp: nanos(config.udp),
    }
}

fn real_entry(addr: SocketAddr, generation: u32, weight: u32) -> Real {
    let ip = addr.ip();
    Real {
        addr: Addr::from(ip),
        port: addr.port().to_be(),
        family: Family::of(&ip) as u8,
        flags: Real::PRESENT,
        generation,
        weight,
    }
}

/// The service's selection table as real slots: the order the program walks (rr, wrr), the
/// buckets it hashes into (sh, dh, mh), or the reals it compares (the lc family, which
/// reads their weights from `REALS`).
///
/// Hash tables are built over the reals that are up, as keepalived leaves a failed real out
/// of IPVS; a real of weight 0 still holds its sh and dh buckets, as in IPVS, and refuses
/// the clients that hash to it unless the service falls back.
fn selection_table(
    key: ServiceKey,
    selection: Selection,
    plan: &ServicePlan,
    indices: &[u32],
) -> Result<Vec<u32>, XdpError> {
    let unsupported = |reason| XdpError::Unsupported {
        service: key,
        reason,
    };
    // Positions in `plan.reals` of the reals a table is built over, and their weights.
    let over = |weight: fn(&RealPlan) -> Option<u32>| -> (Vec<usize>, Vec<u32>) {
        plan.reals
            .iter()
            .enumerate()
            .filter_map(|(i, r)| weight(r).map(|w| (i, w)))
            .unzip()
    };
    let ring = |r: &RealPlan| Some(r.effective_weight());
    let hashed = |r: &RealPlan| r.healthy.then_some(r.weight.get());
    let mut positions = vec![0u32; TABLE_SIZE as usize];
    let buckets = &mut positions[..sched::HASH_TABLE_LEN];
    let (listed, built) = match selection {
        Selection::Least(_) | Selection::Locality { .. } => {
            supports_reals(plan.scheduler, plan.reals.len()).map_err(unsupported)?;
            return Ok(indices.to_vec());
        }
        Selection::RoundRobin => {
            let (listed, weights) = over(ring);
            (listed, sched::round_robin(&weights, &mut positions))
        }
        Selection::Weighted => {
            let (listed, weights) = over(ring);
            (
                listed,
                sched::weighted_round_robin(&weights, &mut positions),
            )
        }
        Selection::SourceHash => {
            let (listed, weights) = over(hashed);
            (listed, hash::source_hash(&weights, buckets))
        }
        Selection::DestinationHash => {
            let (listed, weights) = over(hashed);
            (listed, hash::destination_hash(&weights, buckets))
        }
        Selection::Maglev => {
            let (listed, weights) = over(hashed);
            let reals: Vec<MaglevReal> = listed
                .iter()
                .zip(&weights)
                .map(|(i, weight)| {
                    let addr = plan.reals[*i].addr;
                    MaglevReal {
                        addr: Addr::from(addr.ip()),
                        port: addr.port().to_be(),
                        weight: *weight,
                    }
                })
                .collect();
            (listed, maglev(&reals, buckets))
        }
    };
    let len = built.map_err(|sched::TableError::TooManyReals { reals, capacity }| {
        unsupported(format!(
            "{reals} reals do not fit a selection table of {capacity}"
        ))
    })?;
    Ok(positions[..len]
        .iter()
        .map(|p| indices[listed[*p as usize]])
        .collect())
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
