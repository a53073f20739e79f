//! One running VRRP instance: its state machine and announcer, and the sockets and
//! netlink requests that carry out what they decide.

use std::{net::IpAddr, time::Instant};

use tracing::{info, warn};

use super::{
    StartError,
    accept::{Arrival, Expect, Rejections},
    announce::{Announcer, GarpSettings},
    fsm::{Action, Heard, Machine, Settings, State},
    garp::Announcements,
    packet::{Advert, Auth},
    socket::{Received, Sender},
    types::Vrid,
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

pub struct Instance {
    pub plan: Plan,
    pub machine: Machine,
    sender: Sender,
    announcements: Announcements,
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
        let sender = Sender::open(&plan.ifname, plan.ifindex, plan.settings.primary)?;
        let mac = netlink.hardware_address(plan.ifindex).await?;
        let announcements = Announcements::open(&plan.ifname, plan.ifindex, mac)?;
        Ok(Self {
            machine: Machine::new(plan.settings.clone()),
            plan,
            sender,
            announcements,
            announcer: Announcer::default(),
            netlink,
            rejections,
        })
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
            for a in self.plan.all_addrs() {
                if let Err(e) = self.netlink.del_addr(a).await {
                    warn!("({name}) {e}");
                }
            }
        }
    }

    fn advertise(&self, priority: super::types::Priority) {
        let s = &self.plan.settings;
        let advert = Advert {
            version: s.version,
            vrid: self.plan.vrid,
            priority,
            interval: s.interval,
            addrs: self.plan.expect.vips.clone(),
            auth: match s.version {
                super::types::Version::V2 => self.plan.expect.auth,
                super::types::Version::V3 => Auth::None,
            },
        };
        for dst in &self.plan.destinations {
            let msg = advert.encode(self.sender.src(), *dst);
            if let Err(e) = self.sender.send(*dst, &msg) {
                warn!("({}) cannot send advert to {dst}: {e}", self.plan.name());
            }
        }
    }

    fn announce(&self, rounds: u32) {
        if rounds == 0 {
            return;
        }
        let name = self.plan.name();
        for a in self.plan.all_addrs() {
            info!(
                "({name}) Sending/queueing gratuitous ARPs on {} for {}",
                self.plan.ifname, a.addr
            );
            for _ in 0..rounds {
                if let Err(e) = self.announcements.announce(a.addr) {
                    warn!("({name}) cannot announce {}: {e}", a.addr);
                }
            }
        }
    }
}
