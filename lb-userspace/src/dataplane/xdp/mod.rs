//! The XDP data plane: xlb's balancer programs in the kernel, their maps written from a
//! [`Plan`].
//!
//! `load` brings the programs into the kernel, `encode` and `tables` turn a plan's
//! services into the values the programs read, and [`XdpDataPlane`] writes only what
//! changed since the last plan.

mod adopt;
pub mod baseline;
pub mod decap;
mod encode;
mod error;
mod forwarding;
pub mod load;
mod maps;
pub mod neigh;
mod options;
pub mod pin;
mod slots;
mod tables;
mod test_run;
mod tunnel;

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    programs::{
        ProgramError, Xdp,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use lb_common::{
    Family, conn_count,
    maps::{
        DEFAULT_FLOWS, MAX_REALS, MAX_SERVICES, Real, Service, name,
        stage::{self, Stage},
        table_base,
    },
    stats::Counters,
    timeouts::Timeouts,
};
use tracing::{debug, info, warn};

pub use self::{
    encode::{supports, supports_reals},
    error::XdpError,
    load::LoadReport,
    options::{Mode, Nodest},
    pin::{Found, Pins},
    test_run::TestRunOutcome,
    tunnel::TunnelPrefix,
};
use self::{forwarding::Forwarding, maps::Maps, slots::Slots};
use super::{Driver, DriverError, Plan, ServicePlan, Stats};
use crate::config::{RealKey, ServiceKey};

/// The balancer object, built from `lb-ebpf` by this crate's build script.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf.o"));

/// Name of the balancer's entry program in [`OBJECT`], the one attached to interfaces.
const PROGRAM: &str = stage::ENTRY;

/// A service as last written to the maps.
#[derive(Debug)]
pub(super) struct Applied {
    value: Service,
    /// Which of the service's two tables `value` points at.
    slot: u32,
    table: Vec<u32>,
    reals: Vec<SocketAddr>,
    /// Whether the VIP is in `VIPS`: an inactive service keeps its slots, tables and flows
    /// but is left out, so its traffic passes to the kernel.
    installed: bool,
}

/// An interface the balancer is attached to, as it was when attached.
#[derive(Clone, Debug)]
struct Attached {
    name: String,
    ifindex: u32,
    mode: Mode,
}

/// The loaded balancer and everything it was told, so that each [`Plan`] only changes
/// what differs.
pub struct XdpDataPlane {
    ebpf: Ebpf,
    maps: Maps,
    /// Where the maps and links are pinned; `None` for a data plane that lives as long as
    /// this value.
    pins: Option<Pins>,
    services: Slots<ServiceKey>,
    reals: Slots<RealKey>,
    /// Per real slot: the generation of its current occupant.
    generations: Vec<u32>,
    applied: HashMap<ServiceKey, Applied>,
    /// Per service: what the reals that left it carried, which its counters keep.
    departed: HashMap<ServiceKey, Counters>,
    timeouts: Timeouts,
    forwarding: Vec<Forwarding>,
    /// Where the program is attached.
    interfaces: Vec<Attached>,
    /// Whether those forward IPv6 too.
    ipv6_forwarding: bool,
    nodest: Nodest,
}

impl XdpDataPlane {
    /// Loads the balancer's programs into the kernel, attached nowhere yet, with maps of
    /// their own that live as long as the value (fixtures and benchmarks use it), and says
    /// what the verifier made of each. `flows` sizes the flow table, and the NAT connection
    /// table alike.
    pub fn load(flows: Option<u32>) -> Result<(Self, LoadReport), XdpError> {
        let (plane, report, _) = Self::open(None, flows)?;
        Ok((plane, report))
    }

    /// [`XdpDataPlane::load`] with its maps pinned in `pins`, adopting the data plane a
    /// previous agent left there when this xlb can use its maps (see [`pin`]); and how it
    /// went with what it found.
    pub fn open(
        pins: Option<Pins>,
        flows: Option<u32>,
    ) -> Result<(Self, LoadReport, Found), XdpError> {
        let flows = flows.unwrap_or(DEFAULT_FLOWS);
        let sizes = [(name::FLOWS, flows), (name::NAT_CONNS, flows)];
        let found = match &pins {
            Some(pins) => pins
                .find(OBJECT, &sizes)
                .map_err(|source| pin_error(pins, source))?,
            None => Found::Nothing,
        };
        let mut loader = EbpfLoader::new();
        for (map, entries) in sizes {
            loader.map_max_entries(map, entries);
        }
        if let Some(pins) = &pins {
            if matches!(found, Found::Foreign(_)) {
                pins.remove().map_err(|source| pin_error(pins, source))?;
            }
            pins.create().map_err(|source| pin_error(pins, source))?;
        }
        let map_names = object_map_names()?;
        let pin_paths: Vec<PathBuf> = match &pins {
            Some(pins) => map_names.iter().map(|name| pins.map(name)).collect(),
            None => Vec::new(),
        };
        for (name, path) in map_names.iter().zip(&pin_paths) {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(OBJECT)?;
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
        let adopted = match found {
            Found::Adoptable => adopt::read(&maps)?,
            _ => adopt::State::default(),
        };
        let plane = Self {
            ebpf,
            maps,
            pins,
            services: Slots::with_taken(MAX_SERVICES, adopted.services),
            reals: Slots::with_taken(MAX_REALS, adopted.reals),
            generations: adopted.generations,
            applied: adopted.applied,
            departed: HashMap::new(),
            timeouts,
            forwarding: Vec::new(),
            interfaces: Vec::new(),
            ipv6_forwarding: false,
            nodest: Nodest::default(),
        };
        Ok((plane, report, found))
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
        let ifindex = self.link(interface, mode)?;
        self.interfaces.push(Attached {
            name: interface.to_string(),
            ifindex,
            mode,
        });
        Ok(())
    }

    /// Attaches the balancer to `interface` (pinning the link when the data plane is
    /// pinned), or takes over the link a previous agent left there; returns the
    /// interface's index.
    fn link(&mut self, interface: &str, mode: Mode) -> Result<u32, XdpError> {
        let ifindex =
            nix::net::if_::if_nametoindex(interface).map_err(|errno| XdpError::Attach {
                interface: interface.to_string(),
                mode,
                source: ProgramError::IOError(errno.into()),
            })?;
        let pinned = self.pins.as_ref().map(|pins| pins.link(interface));
        let program = program_mut(&mut self.ebpf)?;
        let attach_error = |source| XdpError::Attach {
            interface: interface.to_string(),
            mode,
            source,
        };
        let Some(path) = pinned else {
            program
                .attach(interface, mode.into())
                .map_err(attach_error)?;
            info!("XDP balancer attached to {interface} ({mode:?} mode)");
            return Ok(ifindex);
        };
        // A previous agent's link: its program is swapped for this one atomically, so
        // that not a packet goes unbalanced. A link whose interface went away in between
        // is gone with it: its pin is removed, and the balancer attached afresh.
        if path.exists() {
            let taken = PinnedLink::from_pin(&path)
                .map(FdLink::from)
                .map_err(|source| XdpError::Link {
                    path: path.display().to_string(),
                    source,
                })
                .and_then(|link| {
                    XdpLink::try_from(link).map_err(|source| XdpError::Link {
                        path: path.display().to_string(),
                        source,
                    })
                })
                .and_then(|link| program.attach_to_link(link).map_err(XdpError::Program));
            match taken {
                Ok(_) => {
                    info!("XDP balancer replaced on {interface}, its flows kept");
                    return Ok(ifindex);
                }
                Err(err) => {
                    warn!(
                        "Cannot take over the XDP link pinned for {interface} ({:#}): attaching afresh",
                        anyhow::Error::from(err)
                    );
                    std::fs::remove_file(&path).map_err(|source| XdpError::Unpin {
                        path: path.display().to_string(),
                        source,
                    })?;
                }
            }
        }
        let id = program
            .attach(interface, mode.into())
            .map_err(attach_error)?;
        let link = FdLink::try_from(program.take_link(id)?).map_err(|source| XdpError::Link {
            path: path.display().to_string(),
            source,
        })?;
        link.pin(&path).map_err(|source| XdpError::Pin {
            path: path.display().to_string(),
            source,
        })?;
        info!("XDP balancer attached to {interface} ({mode:?} mode)");
        Ok(ifindex)
    }

    /// Attaches the balancer again to every interface that was deleted and has come back
    /// under its name (a new index): the old attachment went with the old interface.
    /// Returns the interfaces it attached to again.
    pub fn follow_interfaces(&mut self) -> Result<Vec<String>, XdpError> {
        let mut returned = Vec::new();
        for i in 0..self.interfaces.len() {
            let Attached {
                name,
                ifindex,
                mode,
            } = self.interfaces[i].clone();
            match nix::net::if_::if_nametoindex(name.as_str()) {
                Ok(now) if now != ifindex => {
                    // A new interface starts with the default settings.
                    self.enable_forwarding(Family::V4, &name)?;
                    if self.ipv6_forwarding {
                        self.enable_forwarding(Family::V6, &name)?;
                    }
                    self.interfaces[i].ifindex = self.link(&name, mode)?;
                    returned.push(name);
                }
                _ => {}
            }
        }
        Ok(returned)
    }

    /// Stops forwarding: detaches the balancer and frees its maps, pinned or not, and
    /// puts back the forwarding settings it changed. With `keep`, leaves all of that to
    /// the next agent instead, which adopts it (an upgrade).
    pub fn shut_down(mut self, keep: bool) -> Result<(), XdpError> {
        if keep {
            for guard in self.forwarding.drain(..) {
                guard.keep();
            }
            info!("XDP data plane left forwarding for the next xlb");
            return Ok(());
        }
        if let Some(pins) = &self.pins {
            pins.remove().map_err(|source| pin_error(pins, source))?;
        }
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
        let names: Vec<String> = self.interfaces.iter().map(|i| i.name.clone()).collect();
        for interface in names {
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
        let timeouts = encode::timeouts(&plan.timeouts);
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
        let plan = &plan.serving();
        let selection =
            encode::selection(plan.scheduler).map_err(|reason| XdpError::Unsupported {
                service: *key,
                reason,
            })?;
        let (id, _) = self.services.assign(key).map_err(|f| full("services", f))?;
        let indices = self.apply_reals(key, id, plan)?;
        let table = tables::selection_table(*key, selection, plan, &indices)?;
        let previous = self.applied.get(key);
        // A changed table goes to the slot the program is not reading; the switch is the
        // service value's update below.
        let slot = match previous {
            Some(p) if p.table == table => p.slot,
            Some(p) => 1 - p.slot,
            None => 0,
        };
        if previous.is_none_or(|p| p.table != table) {
            self.maps.write_table(table_base(id, slot), &table)?;
        }
        let value = encode::service_value(
            id,
            (table_base(id, slot), table.len() as u32),
            key,
            plan,
            selection,
            self.nodest,
        );
        let installed = previous.is_some_and(|p| p.installed);
        if plan.active && (!installed || previous.is_some_and(|p| p.value != value)) {
            self.maps.set_service(&encode::vip_key(key), &value)?;
            debug!(
                "{key}: {} reals, selection table of {}",
                indices.len(),
                table.len()
            );
        } else if !plan.active && installed {
            self.maps.remove_service(&encode::vip_key(key))?;
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

    /// Gives `plan`'s reals of service `key` their slots in `REALS` (freeing those of reals
    /// that left it) and writes their entries; returns their slots in the plan's order.
    fn apply_reals(
        &mut self,
        key: &ServiceKey,
        id: u32,
        plan: &ServicePlan,
    ) -> Result<Vec<u32>, XdpError> {
        let left: Vec<SocketAddr> = self
            .applied
            .get(key)
            .iter()
            .flat_map(|p| &p.reals)
            .filter(|addr| !plan.reals.iter().any(|r| r.addr == **addr))
            .copied()
            .collect();
        for addr in left {
            self.release_real(key.real(addr))?;
        }
        let mut indices = Vec::with_capacity(plan.reals.len());
        for real in &plan.reals {
            let (index, new) = self
                .reals
                .assign(&key.real(real.addr))
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
                &encode::real_entry(
                    real.addr,
                    *generation,
                    real.effective_weight(),
                    encode::RealOf {
                        service: id,
                        method: plan.method,
                        active: plan.active,
                    },
                ),
            )?;
            indices.push(index);
        }
        Ok(indices)
    }

    fn remove_service(&mut self, key: &ServiceKey) -> Result<(), XdpError> {
        let Some(applied) = self.applied.remove(key) else {
            return Ok(());
        };
        self.maps.remove_service(&encode::vip_key(key))?;
        for addr in applied.reals {
            self.release_real(key.real(addr))?;
        }
        self.services.release(key);
        self.departed.remove(key);
        Ok(())
    }

    /// Gives back `real`'s slot. What it carried stays in its service's counters.
    fn release_real(&mut self, real: RealKey) -> Result<(), XdpError> {
        let Some(index) = self.reals.release(&real) else {
            return Ok(());
        };
        let carried = self.maps.real_stats(index)?;
        let departed = self.departed.entry(real.service).or_default();
        *departed = Counters::sum([&*departed, &carried]);
        self.maps
            .set_real(index, &Real::vacant(self.generations[index as usize]))
    }

    /// Counters of every applied service and its reals, summed over CPUs.
    pub fn stats(&self) -> Result<Stats, XdpError> {
        let window = conn_count::window(clock_ns());
        let mut stats = Stats {
            events: self.maps.events()?,
            ..Stats::default()
        };
        for (key, applied) in &self.applied {
            let mut service = self.departed.get(key).copied().unwrap_or_default();
            for addr in &applied.reals {
                let real = key.real(*addr);
                if let Some(index) = self.reals.get(&real) {
                    let counters = self.maps.real_stats(index)?;
                    service = Counters::sum([&service, &counters]);
                    stats.reals.insert(real, counters);
                    stats.conns.insert(real, self.maps.conns(index, window)?);
                }
            }
            stats.services.insert(*key, service);
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
        test_run::run(program, frame, ingress, repeat)
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

impl Driver for XdpDataPlane {
    fn follow_interfaces(&mut self) -> Result<Vec<String>, DriverError> {
        Ok(XdpDataPlane::follow_interfaces(self)?)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), DriverError> {
        Ok(XdpDataPlane::apply(self, plan)?)
    }

    fn stats(&self) -> Result<Stats, DriverError> {
        Ok(XdpDataPlane::stats(self)?)
    }

    fn shut_down(self: Box<Self>, keep: bool) -> Result<(), DriverError> {
        Ok(XdpDataPlane::shut_down(*self, keep)?)
    }
}

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    Ok(ebpf
        .program_mut(PROGRAM)
        .ok_or(XdpError::Missing("balancer program"))?
        .try_into()?)
}

fn pin_error(pins: &Pins, source: std::io::Error) -> XdpError {
    XdpError::Pins {
        dir: pins.dir().display().to_string(),
        source,
    }
}

/// The maps of [`OBJECT`], by name.
fn object_map_names() -> Result<Vec<String>, XdpError> {
    let object = aya_obj::Object::parse(OBJECT)
        .map_err(|source| XdpError::Load(aya::EbpfError::ParseError(source)))?;
    Ok(object.maps.into_keys().collect())
}

fn full(what: &'static str, full: slots::Full) -> XdpError {
    XdpError::Full {
        what,
        capacity: full.capacity,
    }
}

/// Now on the clock the XDP programs read (`bpf_ktime_get_coarse_ns`).
fn clock_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid place for the kernel to write the time to; the coarse
    // monotonic clock always exists, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
