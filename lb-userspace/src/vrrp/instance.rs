//! One running VRRP instance: its state machine and announcer, and the sockets and
//! netlink requests that carry out what they decide; and what a reload or a returning
//! interface changes in it.

use std::{net::IpAddr, time::Instant};

use tracing::{info, warn};

use super::{
    StartError,
    accept::{Arrival, Expect, Rejections},
    announce::{Announcer, GarpSettings},
    fsm::{Action, Heard, Machine, Settings, State},
    garp::Announcements,
    packet::{Advert, Auth},
    plan::RebindError,
    socket::{Received, Sender},
    types::{Priority, Version, Vrid},
};
use crate::net::{HostAddr, Netlink};

/// Everything an instance needs to run, resolved from the configuration against the
/// host (interface indexes, source address).
#[derive(Clone, Debug)]
pub struct Plan {
    pub settings: Settings,
    pub vrid: Vrid,
    pub ifname: String,
    pub ifindex: u32,
    /// Where adverts go: the VRRP group, or each unicast peer.
    pub destinations: Vec<IpAddr>,
    pub expect: Expect,
    /// `virtual_ipaddress`: added on MASTER, and carried in adverts.
    pub vips: Vec<HostAddr>,
    /// `virtual_ipaddress_excluded`: added on MASTER, not carried in adverts.
    pub excluded: Vec<HostAddr>,
    pub garp: GarpSettings,
    pub source: Source,
}

/// Where an instance's advert source address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `unicast_src_ip` / `mcast_src_ip`.
    Configured,
    /// The interface's own address, looked for again when the interface comes back.
    Interface,
}

impl Plan {
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn is_v6(&self) -> bool {
        self.settings.primary.is_ipv6()
    }

    fn all_addrs(&self) -> impl Iterator<Item = &HostAddr> {
        self.vips.iter().chain(&self.excluded)
    }

    /// The addresses the instance covers, for the data plane to follow.
    pub fn covered(&self) -> Vec<IpAddr> {
        self.all_addrs().map(|a| a.addr).collect()
    }
}

/// What a transition means to the rest of xlb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub from: State,
    pub to: State,
}

/// The sockets an instance speaks through, bound to its interface.
struct Wire {
    sender: Sender,
    announcements: Announcements,
}

impl Wire {
    async fn open(plan: &Plan, netlink: &Netlink) -> Result<Self, StartError> {
        let sender = Sender::open(&plan.ifname, plan.ifindex, plan.settings.primary)?;
        let mac = netlink.hardware_address(plan.ifindex).await?;
        let announcements = Announcements::open(&plan.ifname, plan.ifindex, mac)?;
        Ok(Self {
            sender,
            announcements,
        })
    }
}

pub struct Instance {
    pub plan: Plan,
    pub machine: Machine,
    /// `None` while the interface is gone: the instance is in FAULT, with nothing to say.
    wire: Option<Wire>,
    announcer: Announcer,
    /// Where the VIPs are added and removed.
    netlink: Netlink,
    pub rejections: Rejections,
}

impl Instance {
    pub async fn open(
        plan: Plan,
        rejections: Rejections,
        netlink: Netlink,
    ) -> Result<Self, StartError> {
        let wire = Wire::open(&plan, &netlink).await?;
        Ok(Self {
            machine: Machine::new(plan.settings.clone()),
            plan,
            wire: Some(wire),
            announcer: Announcer::default(),
            netlink,
            rejections,
        })
    }

    /// The index of the interface while it exists: where this instance's adverts arrive.
    pub fn ifindex(&self) -> Option<u32> {
        self.wire.as_ref().map(|_| self.plan.ifindex)
    }

    /// The interface was deleted: its sockets go with it. The caller puts the instance
    /// in FAULT.
    pub fn unbind(&mut self) {
        self.wire = None;
        self.announcer.stop();
    }

    /// The interface came back as `ifindex`: sockets are opened on it and the state machine
    /// begins again (FAULT holds nothing worth keeping), for the caller to start.
    pub async fn rebind(&mut self, ifindex: u32) -> Result<(), RebindError> {
        let plan = self.plan.rebound(ifindex, &self.netlink).await?;
        let wire = Wire::open(&plan, &self.netlink).await?;
        self.machine = Machine::new(plan.settings.clone());
        self.plan = plan;
        self.wire = Some(wire);
        self.announcer = Announcer::default();
        Ok(())
    }

    /// Takes a reloaded plan for the same virtual router (interface, VRID, version,
    /// interval, source and destinations unchanged: otherwise the caller restarts the
    /// instance). The state and its timers carry over; a master adds the VIPs it gained,
    /// announcing them, and removes those it lost; a changed priority is advertised.
    pub async fn reconfigure(&mut self, plan: Plan, now: Instant) {
        let old = std::mem::replace(&mut self.plan, plan);
        if self.machine.state() == State::Master {
            self.move_vips(&old, now).await;
        }
        if let Some(priority) = self
            .machine
            .reconfigure(self.plan.settings.election.clone(), now)
        {
            self.advertise(priority);
        }
    }

    /// As master, swaps the addresses of `old` for the current plan's.
    async fn move_vips(&mut self, old: &Plan, now: Instant) {
        let name = self.plan.name().to_owned();
        let kept = |a: &HostAddr, plan: &Plan| plan.all_addrs().any(|b| b == a);
        for a in old.all_addrs().filter(|a| !kept(a, &self.plan)) {
            info!("({name}) removing VIP {}", a.addr);
            if let Err(e) = self.netlink.del_addr(a).await {
                warn!("({name}) {e}");
            }
        }
        let added: Vec<HostAddr> = self
            .plan
            .all_addrs()
            .filter(|a| !kept(a, old))
            .cloned()
            .collect();
        for a in &added {
            info!("({name}) setting VIP {}", a.addr);
            if let Err(e) = self.netlink.add_addr(a).await {
                warn!("({name}) {e}");
            }
        }
        if !added.is_empty() {
            self.announcer.addresses_added(&self.plan.garp, now);
            let rounds = self.announcer.take_due(&self.plan.garp, now);
            self.announce(rounds);
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        [self.machine.deadline(), self.announcer.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Handles a packet for this instance's VRID, returning the transitions it caused.
    pub async fn on_packet(&mut self, rx: &Received, now: Instant) -> Vec<Change> {
        let checked = Advert::decode(&rx.payload, rx.src, rx.dst).and_then(|advert| {
            let arrival = Arrival {
                src: rx.src,
                ttl: rx.ttl,
                multicast: rx.multicast(),
            };
            self.plan.expect.check(&advert, &arrival).map(|()| advert)
        });
        match checked {
            Ok(advert) => {
                let heard = Heard {
                    from: rx.src,
                    priority: advert.priority,
                    interval: advert.interval,
                };
                let actions = self.machine.on_advert(heard, now);
                self.carry_out(actions, now).await
            }
            Err(reject) => {
                if let Some(log) = self.rejections.record(&reject, now) {
                    info!("({}) {log}", self.plan.name());
                }
                Vec::new()
            }
        }
    }

    /// Runs what is due at `now`: protocol timers and announcements.
    pub async fn on_timer(&mut self, now: Instant) -> Vec<Change> {
        let actions = self.machine.on_timer(now);
        let changes = self.carry_out(actions, now).await;
        let rounds = self.announcer.take_due(&self.plan.garp, now);
        self.announce(rounds);
        changes
    }

    /// Feeds the machine's answer to an input back through the host.
    pub async fn carry_out(&mut self, actions: Vec<Action>, now: Instant) -> Vec<Change> {
        let mut changes = Vec::new();
        for action in actions {
            match action {
                Action::Advertise(priority) => self.advertise(priority),
                Action::Transition { from, to } => {
                    self.apply_transition(from, to, now).await;
                    changes.push(Change { from, to });
                }
                Action::ReannounceAfterLowerPriority => {
                    self.announcer.lower_priority_seen(&self.plan.garp, now);
                    let rounds = self.announcer.take_due(&self.plan.garp, now);
                    self.announce(rounds);
                }
            }
        }
        changes
    }

    async fn apply_transition(&mut self, from: State, to: State, now: Instant) {
        let name = self.plan.name().to_owned();
        if to == State::Master {
            info!("({name}) setting VIPs.");
            for a in self.plan.all_addrs() {
                if let Err(e) = self.netlink.add_addr(a).await {
                    warn!("({name}) {e}");
                }
            }
            self.announcer.became_master(&self.plan.garp, now);
            let rounds = self.announcer.take_due(&self.plan.garp, now);
            self.announce(rounds);
        } else if from == State::Master || from == State::Initialize {
            // Entering BACKUP from start-up clears addresses a previous run left too.
            info!("({name}) removing VIPs.");
            self.announcer.stop();
            // Those on a deleted interface went with it.
            let gone = self.ifindex().is_none().then_some(self.plan.ifindex);
            for a in self.plan.all_addrs().filter(|a| Some(a.ifindex) != gone) {
                if let Err(e) = self.netlink.del_addr(a).await {
                    warn!("({name}) {e}");
                }
            }
        }
    }

    fn advertise(&self, priority: Priority) {
        let Some(wire) = &self.wire else { return };
        let s = &self.plan.settings;
        let advert = Advert {
            version: s.version,
            vrid: self.plan.vrid,
            priority,
            interval: s.interval,
            addrs: self.plan.expect.vips.clone(),
            auth: match s.version {
                Version::V2 => self.plan.expect.auth,
                Version::V3 => Auth::None,
            },
        };
        for dst in &self.plan.destinations {
            let msg = advert.encode(wire.sender.src(), *dst);
            if let Err(e) = wire.sender.send(*dst, &msg) {
                warn!("({}) cannot send advert to {dst}: {e}", self.plan.name());
            }
        }
    }

    fn announce(&self, rounds: u32) {
        let Some(wire) = self.wire.as_ref().filter(|_| rounds > 0) else {
            return;
        };
        let name = self.plan.name();
        for a in self.plan.all_addrs() {
            info!(
                "({name}) Sending/queueing gratuitous ARPs on {} for {}",
                self.plan.ifname, a.addr
            );
            for _ in 0..rounds {
                if let Err(e) = wire.announcements.announce(a.addr) {
                    warn!("({name}) cannot announce {}: {e}", a.addr);
                }
            }
        }
    }
}
