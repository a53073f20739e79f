//! From the configuration model to what the engine runs: names resolved to interface
//! indexes, the advert source found on the interface, weights and scripts looked up.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use tracing::warn;

use super::{
    StartError,
    accept::Expect,
    announce::GarpSettings,
    engine::{InstanceSpec, Spec, SyncGroupSpec},
    fsm::{Election, Settings},
    instance::{Plan, Source},
    notify::Scripts,
    packet::Auth,
    script::{self, FileSpec, ScriptSpec},
    track::{Track, Tracked},
    types::{AdvertInterval, Priority},
};
use crate::{
    config::{
        AuthType, Broadcast, Command, Config, InitialState, Notify, TrackWeight, VirtualAddress,
        VrrpInstance,
    },
    net::{self, HostAddr, Netlink},
};

/// How often track files are read.
const TRACK_FILE_PERIOD: Duration = Duration::from_secs(1);

/// Why the configuration cannot run on this host.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{pos}: ({name}) {what}")]
    Instance {
        pos: String,
        name: String,
        what: String,
    },
}

/// Resolves every VRRP part of `config` against this host, asking `netlink` for the
/// interfaces' addresses.
pub async fn resolve(config: &Config, netlink: &Netlink) -> Result<Spec, PlanError> {
    let global = &config.global;
    let mut spec = Spec {
        notify_fifo: global
            .vrrp_notify_fifo
            .as_ref()
            .or(global.notify_fifo.as_ref())
            .map(|f| f.path.clone()),
        ..Spec::default()
    };
    let secure = |cmd: &Command| -> bool {
        if !global.enable_script_security {
            return true;
        }
        match script::check_secure(cmd.program()) {
            Ok(()) => true,
            Err(e) => {
                warn!("{}: script {} disabled: {e}", cmd.pos, cmd.program());
                false
            }
        }
    };
    let argv = |c: &Option<Command>| c.as_ref().filter(|c| secure(c)).map(|c| c.argv.clone());
    let scripts = |n: &Notify| Scripts {
        master: argv(&n.master),
        backup: argv(&n.backup),
        fault: argv(&n.fault),
        stop: argv(&n.stop),
        any: argv(&n.any),
    };
    for s in &config.vrrp_scripts {
        if !secure(&s.command) {
            continue;
        }
        spec.scripts.push(ScriptSpec {
            name: s.name.clone(),
            argv: s.command.argv.clone(),
            interval: s.interval,
            timeout: s.timeout.unwrap_or(s.interval),
            rise: s.rise,
            fall: s.fall,
            init_fail: s.init_fail,
        });
    }
    for f in &config.track_files {
        spec.files.push(FileSpec {
            name: f.name.clone(),
            path: f.file.clone(),
            interval: TRACK_FILE_PERIOD,
        });
    }
    for inst in &config.vrrp_instances {
        let plan = plan(config, inst, netlink).await?;
        let tracks = tracks(config, inst, &plan.ifname)?;
        spec.instances.push(InstanceSpec {
            plan,
            tracks,
            notify: scripts(&inst.notify),
        });
    }
    for g in &config.vrrp_sync_groups {
        let members = g
            .members
            .iter()
            .filter_map(|m| config.vrrp_instances.iter().position(|i| i.name == m.name))
            .collect();
        spec.sync_groups.push(SyncGroupSpec {
            name: g.name.clone(),
            members,
            notify: scripts(&g.notify),
        });
    }
    Ok(spec)
}

async fn plan(config: &Config, inst: &VrrpInstance, netlink: &Netlink) -> Result<Plan, PlanError> {
    let fail = |what: String| PlanError::Instance {
        pos: inst.pos.to_string(),
        name: inst.name.clone(),
        what,
    };
    let ifname = inst
        .interface
        .as_ref()
        .map(|n| n.name.clone())
        .ok_or_else(|| fail("xlb needs an interface for every instance".into()))?;
    let ifindex = net::index(&ifname).map_err(|e| fail(e.to_string()))?;
    let v6 = matches!(inst.family, crate::config::Family::Ipv6);
    let (primary, source) = match inst.src_ip {
        Some(ip) => (ip, Source::Configured),
        None => (
            source_address(netlink, ifindex, v6)
                .await
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail(format!("no usable source address on {ifname}")))?,
            Source::Interface,
        ),
    };
    let interval = AdvertInterval::from_duration(inst.advert_int)
        .ok_or_else(|| fail(format!("advert_int {:?} cannot be sent", inst.advert_int)))?;
    let auth = match &inst.authentication {
        None => Auth::None,
        Some(a) if a.auth_type == AuthType::Pass => Auth::pass(&a.password),
        Some(a) => {
            return Err(PlanError::Instance {
                pos: a.pos.to_string(),
                name: inst.name.clone(),
                what: "auth_type AH is not supported by xlb".into(),
            });
        }
    };
    let peers: Vec<IpAddr> = inst.unicast_peers.iter().map(|p| p.addr).collect();
    let destinations = if peers.is_empty() {
        vec![inst.mcast_dst_ip.unwrap_or(if v6 {
            config.global.vrrp_mcast_group6.into()
        } else {
            config.global.vrrp_mcast_group4.into()
        })]
    } else {
        peers.clone()
    };
    let host = |v: &VirtualAddress| -> Result<HostAddr, PlanError> {
        let ifindex = match &v.dev {
            Some(dev) => net::index(dev).map_err(|e| fail(e.to_string()))?,
            None => ifindex,
        };
        Ok(HostAddr {
            addr: v.addr,
            prefix_len: v.prefix_len,
            ifindex,
            label: v.label.clone(),
            scope: v.scope.map_or(0, |s| s.number()),
            broadcast: broadcast(v),
            // A VIP that moves between routers must be usable at once.
            nodad: v.addr.is_ipv6(),
        })
    };
    let vips = inst
        .virtual_ipaddresses
        .iter()
        .map(host)
        .collect::<Result<Vec<_>, _>>()?;
    let excluded = inst
        .virtual_ipaddresses_excluded
        .iter()
        .map(host)
        .collect::<Result<Vec<_>, _>>()?;
    let gap = if v6 {
        config.global.vrrp_gna_interval
    } else {
        config.global.vrrp_garp_interval
    };
    Ok(Plan {
        settings: Settings {
            name: inst.name.clone(),
            version: inst.version,
            interval,
            primary,
            election: Election {
                priority: Priority::new(inst.priority.get()),
                preempt: !inst.nopreempt,
                preempt_delay: inst.preempt_delay,
                want_master: inst.state == InitialState::Master,
            },
        },
        source,
        vrid: inst.vrid,
        ifname,
        ifindex,
        destinations,
        expect: Expect {
            version: inst.version,
            auth,
            interval,
            vips: vips.iter().map(|v| v.addr).collect(),
            unicast_peers: peers,
            check_unicast_src: inst.check_unicast_src,
        },
        vips,
        excluded,
        garp: GarpSettings {
            rules: inst.garp.clone(),
            interval: gap,
        },
    })
}

fn tracks(config: &Config, inst: &VrrpInstance, own: &str) -> Result<Vec<Track>, PlanError> {
    let track = |what, w: TrackWeight| Track {
        what,
        weight: w.weight,
        reverse: w.reverse,
    };
    let mut out = Vec::new();
    if !inst.dont_track_primary {
        out.push(track(
            Tracked::Interface(own.to_owned()),
            TrackWeight::default(),
        ));
    }
    for i in &inst.track.interfaces {
        net::index(&i.name).map_err(|e| PlanError::Instance {
            pos: i.pos.to_string(),
            name: inst.name.clone(),
            what: e.to_string(),
        })?;
        out.push(track(Tracked::Interface(i.name.clone()), i.weight));
    }
    for s in &inst.track.scripts {
        if let Some(script) = config.vrrp_script(&s.name) {
            out.push(track(
                Tracked::Script(s.name.clone()),
                s.weight.unwrap_or(script.weight),
            ));
        }
    }
    for f in &inst.track.files {
        if let Some(file) = config.track_file(&f.name) {
            out.push(track(
                Tracked::File(f.name.clone()),
                f.weight.unwrap_or(file.weight),
            ));
        }
    }
    Ok(out)
}

fn broadcast(v: &VirtualAddress) -> Option<Ipv4Addr> {
    let IpAddr::V4(a) = v.addr else { return None };
    let host_mask = u32::MAX.checked_shr(u32::from(v.prefix_len)).unwrap_or(0);
    match v.broadcast? {
        Broadcast::Addr(b) => Some(b),
        Broadcast::Plus => Some(Ipv4Addr::from(u32::from(a) | host_mask)),
        Broadcast::Minus => Some(Ipv4Addr::from(u32::from(a) & !host_mask)),
    }
}

/// Why an instance cannot use its interface again yet.
#[derive(Debug, thiserror::Error)]
pub enum RebindError {
    #[error("no usable source address on {0} yet")]
    NoSource(String),
    #[error(transparent)]
    Open(#[from] StartError),
}

impl Plan {
    /// This plan on the interface of the same name, which came back as `ifindex`: what
    /// lived on the old index moves to the new one, and an advert source found on the
    /// interface is found again.
    pub async fn rebound(&self, ifindex: u32, netlink: &Netlink) -> Result<Plan, RebindError> {
        let old = self.ifindex;
        let mut plan = self.clone();
        plan.ifindex = ifindex;
        for a in plan.vips.iter_mut().chain(&mut plan.excluded) {
            if a.ifindex == old {
                a.ifindex = ifindex;
            }
        }
        if plan.source == Source::Interface {
            plan.settings.primary = source_address(netlink, ifindex, plan.is_v6())
                .await
                .map_err(StartError::from)?
                .ok_or_else(|| RebindError::NoSource(plan.ifname.clone()))?;
        }
        Ok(plan)
    }
}

/// The interface's first IPv4 address, or its IPv6 link-local address, as keepalived
/// picks the advert source when none is configured.
async fn source_address(
    netlink: &Netlink,
    ifindex: u32,
    v6: bool,
) -> Result<Option<IpAddr>, net::Error> {
    Ok(netlink
        .addresses(ifindex)
        .await?
        .into_iter()
        .find(|a| match a {
            IpAddr::V4(_) => !v6,
            IpAddr::V6(a) => v6 && a.is_unicast_link_local(),
        }))
}
