//! A reload, with keepalived's semantics. Instances are matched by name. One whose virtual
//! router is the same ([`restart_reason`] finds nothing) keeps running: its state, timers
//! and VIPs carry over untouched, so it sends nothing it would not have sent anyway, while
//! its priority, VIPs, tracking and notify scripts change in place. Any other change
//! restarts just that instance; new instances start, and removed ones stop as on shutdown.
//! Sync groups are rebuilt around their members.

use std::{collections::HashMap, sync::Arc, time::Instant};

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::{Engine, Event, Group, InstanceSpec, Notifier, Running, Spec, publish};
use crate::vrrp::{
    fsm::State,
    instance::Plan,
    track::{Status, Tracked},
};

impl Engine {
    pub(super) async fn reload(&mut self, spec: Spec, events: &mpsc::UnboundedSender<Event>) {
        let now = Instant::now();
        let Spec {
            instances,
            sync_groups,
            scripts,
            files,
            notify_fifo,
        } = spec;
        if notify_fifo != self.notifier.fifo {
            // The old runner finishes first, so that notices keep their order.
            let old = std::mem::replace(&mut self.notifier, Notifier::spawn(notify_fifo));
            old.finish().await;
        }
        let mut old: HashMap<String, Running> = std::mem::take(&mut self.instances)
            .into_iter()
            .map(|r| (r.name().to_owned(), r))
            .collect();
        // In the new configuration's order, which its sync groups' indexes follow; `None`
        // for an instance that could not be opened.
        let mut placed: Vec<Option<Running>> = Vec::new();
        let mut fresh = Vec::new();
        for spec in instances {
            let name = spec.plan.name().to_owned();
            let slot = match old.remove(&name) {
                Some(running) => match restart_reason(&running.instance.plan, &spec.plan) {
                    None => Some(reconfigure(running, spec, now, events).await),
                    Some(what) => {
                        info!("({name}) {what} changed: restarting");
                        self.shut_down(running, events).await;
                        fresh.push(placed.len());
                        self.open_logged(spec).await
                    }
                },
                None => {
                    info!("({name}) added");
                    fresh.push(placed.len());
                    self.open_logged(spec).await
                }
            };
            placed.push(slot);
        }
        for (name, running) in old {
            info!("({name}) removed");
            self.shut_down(running, events).await;
        }
        let index = renumber(&placed);
        self.instances = placed.into_iter().flatten().collect();
        let fresh: Vec<usize> = fresh.into_iter().filter_map(|i| index[i]).collect();
        self.groups = sync_groups
            .into_iter()
            .map(|g| Group {
                members: g.members.iter().filter_map(|&m| index[m]).collect(),
                ..Group::from(g)
            })
            .collect();
        self.retrack(&scripts, &files).await;
        self.listen_where_bound();
        for i in 0..self.instances.len() {
            if fresh.contains(&i) {
                self.start_fresh(i, &fresh, now, events).await;
            } else {
                self.apply_tracking(i, now, events).await;
            }
        }
    }

    async fn open_logged(&self, spec: InstanceSpec) -> Option<Running> {
        let name = spec.plan.name().to_owned();
        self.open(spec)
            .await
            .inspect_err(|e| error!("({name}) cannot start: {e}"))
            .ok()
    }

    /// Runs the reloaded scripts and files, and keeps the status of what is still tracked.
    async fn retrack(
        &mut self,
        scripts: &[crate::vrrp::script::ScriptSpec],
        files: &[crate::vrrp::script::FileSpec],
    ) {
        let status = &self.status;
        self.tasks.track(scripts, files, |name| {
            status.get(&Tracked::Script(name.to_owned())) == Some(&Status::Up(true))
        });
        let interfaces: Vec<Tracked> = self
            .instances
            .iter()
            .flat_map(|r| &r.tracks)
            .map(|t| t.what.clone())
            .filter(|w| matches!(w, Tracked::Interface(_)))
            .collect();
        let tasks = &self.tasks;
        self.status.retain(|what, _| match what {
            Tracked::Interface(_) => interfaces.contains(what),
            _ => tasks.runs(what),
        });
        for i in 0..self.instances.len() {
            let tracks = self.instances[i].tracks.clone();
            if let Err(e) = self.learn_interfaces(&tracks).await {
                warn!("({}) {e}", self.instances[i].name());
            }
        }
    }

    /// Starts instance `i`, new or restarted by this reload. In a sync group whose other
    /// members ran on, it joins them where they stand (a group moves together) rather than
    /// pulling them into BACKUP; one that starts in FAULT pulls them into FAULT, as always.
    async fn start_fresh(
        &mut self,
        i: usize,
        fresh: &[usize],
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let changes = self.start_instance(i, now).await;
        let standing = self.group_of(i).and_then(|g| {
            let m = self.groups[g].members.iter().find(|m| !fresh.contains(m))?;
            Some(self.instances[*m].instance.machine.state())
        });
        match standing {
            Some(state) if self.instances[i].instance.machine.state() != State::Fault => {
                for c in changes {
                    self.report(&self.instances[i], c.to, events);
                }
                self.follow(i, state, now, events).await;
            }
            _ => self.after(i, changes, now, events).await,
        }
    }
}

/// Applies `spec` to `running`, an instance whose virtual router it keeps. Tracking is
/// evaluated again once every instance is in place.
async fn reconfigure(
    mut running: Running,
    spec: InstanceSpec,
    now: Instant,
    events: &mpsc::UnboundedSender<Event>,
) -> Running {
    let vips = running.instance.plan.covered();
    running.instance.reconfigure(spec.plan, now).await;
    running.tracks = spec.tracks;
    running.notify = Arc::new(spec.notify);
    if running.instance.plan.covered() != vips {
        publish(&running, running.instance.machine.state(), events);
    }
    running
}

/// Each slot's index once the empty ones are gone.
fn renumber<T>(slots: &[Option<T>]) -> Vec<Option<usize>> {
    let mut next = 0;
    slots
        .iter()
        .map(|slot| {
            slot.as_ref().map(|_| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

/// What a reload changed of the things that make an instance's virtual router on the wire
/// (its interface, VRID, version, advert interval, source and destinations), which no
/// running instance can change: the instance restarts for it. `None`: it changes in place.
fn restart_reason(old: &Plan, new: &Plan) -> Option<&'static str> {
    let (was, is) = (&old.settings, &new.settings);
    [
        (
            old.ifname != new.ifname || old.ifindex != new.ifindex,
            "interface",
        ),
        (old.vrid != new.vrid, "virtual_router_id"),
        (was.version != is.version, "version"),
        (was.interval != is.interval, "advert_int"),
        (was.primary != is.primary, "source address"),
        (
            old.expect.unicast_peers != new.expect.unicast_peers,
            "unicast_peer",
        ),
        (old.destinations != new.destinations, "mcast_dst_ip"),
    ]
    .into_iter()
    .find_map(|(changed, what)| changed.then_some(what))
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, time::Duration};

    use super::*;
    use crate::{
        config::Garp,
        net::HostAddr,
        vrrp::{
            accept::Expect,
            announce::GarpSettings,
            fsm::{Election, Settings},
            instance::Source,
            packet::Auth,
            types::{AdvertInterval, Priority, Version, Vrid},
        },
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn vip(s: &str) -> HostAddr {
        HostAddr {
            addr: ip(s),
            prefix_len: 24,
            ifindex: 2,
            label: None,
            scope: 0,
            broadcast: None,
            nodad: false,
        }
    }

    fn plan() -> Plan {
        let interval = AdvertInterval::from_centis(100).unwrap();
        Plan {
            settings: Settings {
                name: "VI_1".into(),
                version: Version::V3,
                interval,
                primary: ip("192.0.2.1"),
                election: Election {
                    priority: Priority::new(100),
                    preempt: true,
                    preempt_delay: Duration::ZERO,
                    want_master: false,
                },
            },
            vrid: Vrid::new(51).unwrap(),
            ifname: "eth0".into(),
            ifindex: 2,
            destinations: vec![ip("224.0.0.18")],
            expect: Expect {
                version: Version::V3,
                auth: Auth::None,
                interval,
                vips: vec![ip("192.0.2.100")],
                unicast_peers: Vec::new(),
                check_unicast_src: false,
            },
            vips: vec![vip("192.0.2.100")],
            excluded: Vec::new(),
            garp: GarpSettings {
                rules: Garp::default(),
                interval: Duration::ZERO,
            },
            source: Source::Interface,
        }
    }

    #[test]
    fn priorities_vips_and_preemption_change_in_place() {
        let mut new = plan();
        new.settings.election.priority = Priority::new(50);
        new.settings.election.preempt = false;
        new.vips.push(vip("192.0.2.101"));
        new.expect.vips.push(ip("192.0.2.101"));
        new.excluded.push(vip("198.51.100.1"));
        new.garp.rules.master_repeat = 1;
        assert_eq!(restart_reason(&plan(), &new), None);
    }

    #[test]
    fn what_names_the_virtual_router_restarts_the_instance() {
        type Edit = fn(&mut Plan);
        let changes: [(Edit, &str); 7] = [
            (|p| p.ifname = "eth1".into(), "interface"),
            (|p| p.ifindex = 7, "interface"),
            (|p| p.vrid = Vrid::new(52).unwrap(), "virtual_router_id"),
            (|p| p.settings.version = Version::V2, "version"),
            (
                |p| p.settings.interval = AdvertInterval::from_centis(200).unwrap(),
                "advert_int",
            ),
            (|p| p.settings.primary = ip("192.0.2.9"), "source address"),
            (
                |p| {
                    p.expect.unicast_peers = vec![ip("192.0.2.2")];
                    p.destinations = vec![ip("192.0.2.2")];
                },
                "unicast_peer",
            ),
        ];
        for (change, what) in changes {
            let mut new = plan();
            change(&mut new);
            assert_eq!(restart_reason(&plan(), &new), Some(what));
        }
    }

    #[test]
    fn instances_that_failed_to_open_leave_no_gap() {
        assert_eq!(
            renumber(&[Some('a'), None, Some('c')]),
            [Some(0), None, Some(1)]
        );
    }
}
