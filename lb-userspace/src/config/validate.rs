//! Checks across blocks: names defined once, references that resolve, no two instances
//! fighting over a VRID or an address, one address family per instance and per service.

use std::{collections::HashMap, net::IpAddr};

use super::{
    diag::{Diagnostics, Pos},
    model::{Check, Config, Family, ServiceTarget, Tracking, VrrpInstance},
};

pub(super) fn config(config: &Config, diags: &mut Diagnostics) {
    unique(
        diags,
        "vrrp_script",
        config.vrrp_scripts.iter().map(|s| (&s.name, &s.pos)),
    );
    unique(
        diags,
        "track_file",
        config.track_files.iter().map(|f| (&f.name, &f.pos)),
    );
    unique(
        diags,
        "vrrp_track_process",
        config.track_processes.iter().map(|p| (&p.name, &p.pos)),
    );
    unique(
        diags,
        "vrrp_instance",
        config.vrrp_instances.iter().map(|i| (&i.name, &i.pos)),
    );
    unique(
        diags,
        "vrrp_sync_group",
        config.vrrp_sync_groups.iter().map(|g| (&g.name, &g.pos)),
    );
    unique(
        diags,
        "virtual_server_group",
        config
            .virtual_server_groups
            .iter()
            .map(|g| (&g.name, &g.pos)),
    );
    for instance in &config.vrrp_instances {
        references(config, &instance.name, &instance.track, diags);
    }
    sync_groups(config, diags);
    vrids(&config.vrrp_instances, diags);
    addresses(&config.vrrp_instances, diags);
    groups(config, diags);
    services(config, diags);
}

/// Reports every definition of a name after the first.
fn unique<'a>(
    diags: &mut Diagnostics,
    kind: &str,
    items: impl Iterator<Item = (&'a String, &'a Pos)>,
) {
    let mut seen: HashMap<&str, &Pos> = HashMap::new();
    for (name, pos) in items {
        if let Some(first) = seen.insert(name, pos) {
            diags.error(
                pos,
                format!("{kind} '{name}' is already defined at {first}"),
            );
            seen.insert(name, first);
        }
    }
}

fn references(config: &Config, owner: &str, track: &Tracking, diags: &mut Diagnostics) {
    for r in &track.scripts {
        if config.vrrp_script(&r.name).is_none() {
            diags.error(
                &r.pos,
                format!(
                    "({owner}) track_script '{}' is not defined by any vrrp_script",
                    r.name
                ),
            );
        }
    }
    for r in &track.files {
        if config.track_file(&r.name).is_none() {
            diags.error(
                &r.pos,
                format!(
                    "({owner}) track_file '{}' is not defined by any track_file block",
                    r.name
                ),
            );
        }
    }
    for r in &track.processes {
        if !config.track_processes.iter().any(|p| p.name == r.name) {
            diags.error(
                &r.pos,
                format!(
                    "({owner}) track_process '{}' is not defined by any vrrp_track_process",
                    r.name
                ),
            );
        }
    }
}

fn sync_groups(config: &Config, diags: &mut Diagnostics) {
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for group in &config.vrrp_sync_groups {
        references(config, &group.name, &group.track, diags);
        if group.members.is_empty() {
            diags.warning(
                &group.pos,
                format!("vrrp_sync_group '{}' has no members", group.name),
            );
        }
        for member in &group.members {
            if config.vrrp_instance(&member.name).is_none() {
                diags.error(
                    &member.pos,
                    format!(
                        "({}) vrrp_instance '{}' is not defined",
                        group.name, member.name
                    ),
                );
            } else if let Some(other) = member_of.insert(&member.name, &group.name) {
                diags.error(
                    &member.pos,
                    format!(
                        "vrrp_instance '{}' is already in sync group '{other}'",
                        member.name
                    ),
                );
            }
        }
    }
}

/// Two instances on one interface, family and advert destination must not share a VRID,
/// unless both are unicast to disjoint peers.
fn vrids(instances: &[VrrpInstance], diags: &mut Diagnostics) {
    for (i, b) in instances.iter().enumerate() {
        let clash = instances[..i].iter().find(|a| {
            a.vrid == b.vrid
                && a.family == b.family
                && a.interface.as_ref().map(|n| &n.name) == b.interface.as_ref().map(|n| &n.name)
                && a.mcast_dst_ip == b.mcast_dst_ip
                && !(a.is_unicast()
                    && b.is_unicast()
                    && a.unicast_peers
                        .iter()
                        .all(|p| b.unicast_peers.iter().all(|q| q.addr != p.addr)))
        });
        if let Some(a) = clash {
            let on = b
                .interface
                .as_ref()
                .map_or_else(|| "this host".to_string(), |n| n.name.clone());
            diags.error(
                &b.pos,
                format!(
                    "({}) virtual_router_id {} for {} is already used on {on} by {}",
                    b.name, b.vrid, b.family, a.name
                ),
            );
        }
    }
}

/// The same address on the same interface twice: a warning within one instance (the
/// second adds nothing), an error across instances (they would fight over it).
fn addresses(instances: &[VrrpInstance], diags: &mut Diagnostics) {
    let mut seen: HashMap<(IpAddr, Option<&str>), (&str, &Pos)> = HashMap::new();
    for instance in instances {
        let vips = instance
            .virtual_ipaddresses
            .iter()
            .chain(&instance.virtual_ipaddresses_excluded);
        for vip in vips {
            let dev = vip
                .dev
                .as_deref()
                .or(instance.interface.as_ref().map(|n| n.name.as_str()));
            match seen.get(&(vip.addr, dev)) {
                Some((owner, _)) if *owner == instance.name => diags.warning(
                    &vip.pos,
                    format!("({}) {} is listed more than once", instance.name, vip.addr),
                ),
                Some((owner, first)) => diags.error(
                    &vip.pos,
                    format!(
                        "({}) {} on {} is already a virtual address of {owner} at {first}",
                        instance.name,
                        vip.addr,
                        dev.unwrap_or("the default interface")
                    ),
                ),
                None => {
                    seen.insert((vip.addr, dev), (&instance.name, &vip.pos));
                }
            }
        }
    }
}

fn services(config: &Config, diags: &mut Diagnostics) {
    let mut seen: HashMap<(&ServiceTarget, u8), &Pos> = HashMap::new();
    for vs in &config.virtual_servers {
        if let Some(first) = seen.insert((&vs.target, vs.protocol.number()), &vs.pos) {
            diags.error(
                &vs.pos,
                format!("the same virtual_server is already defined at {first}"),
            );
        }
        let family = match &vs.target {
            ServiceTarget::Group(name) => match config.virtual_server_group(name) {
                Some(group) => group.family().or(vs.family),
                None => {
                    diags.error(
                        &vs.pos,
                        format!("virtual_server_group '{name}' is not defined"),
                    );
                    vs.family
                }
            },
            _ => vs.family,
        }
        .or_else(|| vs.real_servers.first().map(|r| Family::of(&r.addr.ip())));
        let Some(family) = family else {
            continue;
        };
        let mut reals: HashMap<std::net::SocketAddr, &Pos> = HashMap::new();
        for real in &vs.real_servers {
            if let Some(first) = reals.insert(real.addr, &real.pos) {
                diags.error(
                    &real.pos,
                    format!("real_server {} is already defined at {first}", real.addr),
                );
            }
            let real_family = Family::of(&real.addr.ip());
            if real_family != family {
                diags.error(
                    &real.pos,
                    format!(
                        "real_server {} is {real_family} but the virtual_server is {family}",
                        real.addr.ip()
                    ),
                );
            }
            for check in &real.checks {
                if let Check::File(file) = check
                    && config.track_file(&file.track_file).is_none()
                {
                    diags.error(
                        &file.pos,
                        format!(
                            "track_file '{}' is not defined by any track_file block",
                            file.track_file
                        ),
                    );
                }
            }
        }
        if let Some(sorry) = &vs.sorry_server
            && Family::of(&sorry.addr.ip()) != family
        {
            diags.error(
                &sorry.pos,
                format!(
                    "sorry_server {} is not {family} like the virtual_server",
                    sorry.addr.ip()
                ),
            );
        }
    }
}

/// A group's addresses must share one family.
fn groups(config: &Config, diags: &mut Diagnostics) {
    for group in &config.virtual_server_groups {
        let Some(family) = group.family() else {
            continue;
        };
        for entry in &group.entries {
            if entry.family().is_some_and(|f| f != family) {
                diags.error(
                    &entry.pos,
                    format!("({}) mixes IPv4 and IPv6 addresses", group.name),
                );
            }
        }
    }
}
