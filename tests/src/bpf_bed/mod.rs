//! The BPF test-run bed: xlb's real balancer object run on crafted frames in a [`StaticNet`]
//! (see [`net`]), for the data-plane fixtures and the `xdp` benchmark.
//!
//! This is no module of the library, which must build without lb-userspace (xtask depends on
//! the library, and lb-userspace's build needs what `cargo xtask setup` installs). Fixtures
//! and benchmarks include it:
//!
//! ```ignore
//! #[path = "../src/bpf_bed/mod.rs"]
//! mod bpf_bed;
//! ```
// Each includer uses part of it.
#![allow(dead_code)]

pub mod frame;
pub mod net;
pub mod table;

use std::net::{IpAddr, Ipv4Addr};

use lb_common::stats::Event;
use xlb::{
    config::{self, RealKey},
    dataplane::{
        Conditions, Plan,
        xdp::{TestRunOutcome, XdpDataPlane},
    },
};
use xlb_testbed::{Netns, StaticNet, is_root, note_skip};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

/// Room in the flow table of the fixtures' balancers.
const FIXTURE_FLOWS: u32 = 1024;

/// The agent's view as a bed fixes it: every VIP served, IPv4 reals healthy as the function
/// says, IPv6 reals healthy.
pub struct Health<F>(pub F);

impl<F: Fn(Ipv4Addr) -> bool> Conditions for Health<F> {
    fn healthy(&self, real: &RealKey) -> bool {
        match real.addr.ip() {
            IpAddr::V4(ip) => (self.0)(ip),
            IpAddr::V6(_) => true,
        }
    }

    fn serves(&self, _: IpAddr) -> bool {
        true
    }
}

/// For [`Health`] and [`Bed::apply`]: every real up.
pub fn every_real_up(_: Ipv4Addr) -> bool {
    true
}

/// The plan for the keepalived.conf `text`, reals healthy as `healthy` says.
pub fn plan(text: &str, healthy: impl Fn(Ipv4Addr) -> bool) -> Plan {
    let config = config::parse_str("fixture.conf", text)
        .expect("config")
        .config;
    Plan::new(&config, &Health(healthy))
}

/// The network, and a balancer loaded (not attached) in it.
pub struct Bed {
    net: StaticNet,
    pub dataplane: XdpDataPlane,
    /// Interface indexes: the reals' side and the clients' side.
    pub lb0: u32,
    pub lb1: u32,
}

impl Bed {
    /// The network named after `tag`, with a balancer of room for `flows` flows and no
    /// services yet.
    pub fn load(tag: &str, flows: u32) -> anyhow::Result<Self> {
        let (net, interfaces) = net::build(tag)?;
        let dataplane = Self::load_in(flows)?;
        Ok(Self {
            net,
            dataplane,
            lb0: interfaces.lb0,
            lb1: interfaces.lb1,
        })
    }

    fn load_in(flows: u32) -> anyhow::Result<XdpDataPlane> {
        Ok(XdpDataPlane::load(Some(flows))?.0)
    }

    /// A fixture's bed: the balancer with nothing applied, or `None` (with a note) when not
    /// root.
    pub fn empty(tag: &str) -> Option<Self> {
        if !is_root() {
            note_skip(
                env!("CARGO_CRATE_NAME"),
                "BPF test-run and namespaces need root",
            );
            return None;
        }
        Some(Self::load(tag, FIXTURE_FLOWS).expect("bed"))
    }

    /// A fixture's bed with `config` applied, every real up.
    pub fn new(tag: &str, config: &str) -> Option<Self> {
        let mut bed = Self::empty(tag)?;
        bed.apply(config, every_real_up);
        Some(bed)
    }

    /// Replaces the balancer with a fresh one: no flows, counters or scheduler state.
    pub fn reload(&mut self) {
        self.dataplane = Self::load_in(FIXTURE_FLOWS).expect("load");
    }

    /// Applies the keepalived.conf `text`, reals healthy as `healthy` says.
    pub fn apply(&mut self, text: &str, healthy: impl Fn(Ipv4Addr) -> bool) {
        self.apply_plan(&plan(text, healthy));
    }

    pub fn apply_plan(&mut self, plan: &Plan) {
        self.dataplane.apply(plan).expect("apply");
    }

    /// The namespace, to run many test-runs in at once.
    pub fn ns(&self) -> &Netns {
        self.net.ns()
    }

    /// Runs the balancer on `frame` arriving on `ingress`, `repeat` times.
    pub fn try_run(
        &self,
        ingress: u32,
        frame: &[u8],
        repeat: u32,
    ) -> anyhow::Result<TestRunOutcome> {
        let dataplane = &self.dataplane;
        Ok(self
            .ns()
            .run(|| dataplane.test_run(frame, Some(ingress), repeat))??)
    }

    /// Runs the balancer once on `frame` arriving on `ingress`.
    pub fn run_on(&self, ingress: u32, frame: &[u8]) -> TestRunOutcome {
        self.try_run(ingress, frame, 1).expect("test run")
    }

    /// Runs the balancer once on `frame` arriving on `lb0`, the reals' side (where the DR
    /// fixtures' clients are too).
    pub fn run(&self, frame: &[u8]) -> TestRunOutcome {
        self.run_on(self.lb0, frame)
    }

    /// A frame from the clients' side (`lb1`).
    pub fn client_sends(&self, frame: &[u8]) -> TestRunOutcome {
        self.run_on(self.lb1, frame)
    }

    /// A frame from the reals' side (`lb0`).
    pub fn real_sends(&self, frame: &[u8]) -> TestRunOutcome {
        self.run(frame)
    }

    /// Every event counter, by event.
    pub fn events(&self) -> Vec<(Event, u64)> {
        self.dataplane.stats().expect("stats").events
    }

    /// How many times `event` was counted.
    pub fn event(&self, event: Event) -> u64 {
        let events = self.events();
        let found = events.iter().find(|(e, _)| *e == event);
        found.map(|(_, n)| *n).unwrap()
    }
}

/// Waits until the kernel's coarse clock, the one the programs read, has moved on: a
/// timeout of a nanosecond set before is past then, for every packet sent after.
pub fn after_a_clock_tick() {
    let start = coarse_clock();
    xlb_testbed::wait_until(
        "the kernel's coarse clock to tick",
        std::time::Duration::from_secs(1),
        std::time::Duration::from_millis(1),
        || coarse_clock() > start,
    )
    .expect("the coarse clock stood still");
}

/// `CLOCK_MONOTONIC_COARSE`, which is what `bpf_ktime_get_coarse_ns` reads.
fn coarse_clock() -> std::time::Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid place for the kernel to write the time to; the clock always
    // exists, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
