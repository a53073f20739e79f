//! `vrrp_instance` and `vrrp_sync_group`.
//!
//! An instance is read into a draft first: many of its settings default from
//! `global_defs`, from its addresses or from each other, and `global_defs` may come later in
//! the file. [`finish`] then applies keepalived's rules in one place.

use std::{net::IpAddr, time::Duration};

use super::{
    arg_value, args, block, block_name, boolean, command, command_from, flag, parsed, renamed, set,
    set_some,
    track::{FILE_WEIGHT, SCRIPT_WEIGHT},
    track_weight, unknown, unsupported, value, words,
};
use crate::config::{
    diag::{Diagnostics, Pos},
    model::{
        AuthType, Authentication, Broadcast, Family, Garp, GlobalDefs, InitialState, Named, Notify,
        PreferredLifetime, Priority, Scope, TrackRef, TrackedInterface, Tracking, UnicastPeer,
        VirtualAddress, Vrid, VrrpInstance, VrrpSyncGroup, VrrpVersion,
    },
    tree::{Arg, Node},
};

/// `vrrp_instance` keywords keepalived knows and xlb does not act on yet.
const UNSUPPORTED: &[&str] = &[
    "use_vmac",
    "use_vmac_addr",
    "vmac_xmit_base",
    "use_ipvlan",
    "vrf",
    "unicast_fault_no_peer",
    "old_unicast_checksum",
    "track_src_ip",
    "virtual_routes",
    "virtual_rules",
    "garp_extra_if",
    "kernel_rx_buf_size",
    "lvs_sync_daemon_interface",
    "linkbeat_use_polling",
];

/// Settings of a `vrrp_instance` as written, before defaults are applied.
pub(super) struct Draft {
    pos: Pos,
    name: String,
    state: Option<InitialState>,
    interface: Option<Named>,
    vrid: Option<Vrid>,
    /// A `virtual_router_id` was written, even if it could not be read.
    vrid_written: bool,
    priority: Option<Priority>,
    advert_int: Option<(Duration, Pos)>,
    version: Option<VrrpVersion>,
    native_ipv6: Option<Pos>,
    auth_type: Option<(AuthType, Pos)>,
    auth_pass: Option<String>,
    vips: Vec<VirtualAddress>,
    evips: Vec<VirtualAddress>,
    track: Tracking,
    dont_track_primary: bool,
    src_ip: Option<(IpAddr, Pos)>,
    unicast_peers: Vec<UnicastPeer>,
    unicast_ttl: Option<u8>,
    check_unicast_src: bool,
    mcast_dst_ip: Option<(IpAddr, Pos)>,
    nopreempt: Option<Pos>,
    preempt_delay: Option<(Duration, Pos)>,
    garp: GarpDraft,
    lower_prio_no_advert: Option<bool>,
    higher_prio_send_advert: Option<bool>,
    skip_check_adv_addr: Option<bool>,
    strict_mode: Option<bool>,
    accept: Option<bool>,
    promote_secondaries: bool,
    down_timer_adverts: u8,
    notify: Notify,
    smtp_alert: bool,
}

impl Draft {
    /// An instance with nothing written yet.
    fn new(pos: Pos, name: String) -> Self {
        Self {
            pos,
            name,
            state: None,
            interface: None,
            vrid: None,
            vrid_written: false,
            priority: None,
            advert_int: None,
            version: None,
            native_ipv6: None,
            auth_type: None,
            auth_pass: None,
            vips: Vec::new(),
            evips: Vec::new(),
            track: Tracking::default(),
            dont_track_primary: false,
            src_ip: None,
            unicast_peers: Vec::new(),
            unicast_ttl: None,
            check_unicast_src: false,
            mcast_dst_ip: None,
            nopreempt: None,
            preempt_delay: None,
            garp: GarpDraft::default(),
            lower_prio_no_advert: None,
            higher_prio_send_advert: None,
            skip_check_adv_addr: None,
            strict_mode: None,
            accept: None,
            promote_secondaries: false,
            down_timer_adverts: 3,
            notify: Notify::default(),
            smtp_alert: false,
        }
    }
}

#[derive(Default)]
struct GarpDraft {
    master_delay: Option<Duration>,
    master_repeat: Option<u32>,
    master_refresh: Option<Option<Duration>>,
    master_refresh_repeat: Option<u32>,
    lower_prio_delay: Option<Duration>,
    lower_prio_repeat: Option<u32>,
}

impl GarpDraft {
    /// Reads `node` when it is one of the instance's gratuitous ARP settings; false
    /// otherwise.
    fn read(&mut self, node: &Node, diags: &mut Diagnostics) -> bool {
        match node.name() {
            "garp_master_delay" => {
                set_some(&mut self.master_delay, node, diags, value::whole_seconds)
            }
            "garp_master_repeat" => set_some(&mut self.master_repeat, node, diags, value::repeat),
            "garp_master_refresh" => {
                set_some(&mut self.master_refresh, node, diags, value::refresh)
            }
            "garp_master_refresh_repeat" => {
                set_some(&mut self.master_refresh_repeat, node, diags, value::repeat)
            }
            "garp_lower_prio_delay" => set_some(
                &mut self.lower_prio_delay,
                node,
                diags,
                value::whole_seconds,
            ),
            "garp_lower_prio_repeat" => {
                set_some(&mut self.lower_prio_repeat, node, diags, value::count)
            }
            _ => return false,
        }
        true
    }

    /// The settings with the instance's defaults: `global_defs`'s, and none of the lower
    /// priority repeats in strict mode.
    fn finish(&self, global: &Garp, strict: bool) -> Garp {
        Garp {
            master_delay: self.master_delay.unwrap_or(global.master_delay),
            master_repeat: self.master_repeat.unwrap_or(global.master_repeat),
            master_refresh: self.master_refresh.unwrap_or(global.master_refresh),
            master_refresh_repeat: self
                .master_refresh_repeat
                .unwrap_or(global.master_refresh_repeat),
            lower_prio_delay: self.lower_prio_delay.unwrap_or(if strict {
                Duration::ZERO
            } else {
                global.lower_prio_delay
            }),
            lower_prio_repeat: self.lower_prio_repeat.unwrap_or(if strict {
                0
            } else {
                global.lower_prio_repeat
            }),
        }
    }
}

pub(super) fn instance(node: &Node, diags: &mut Diagnostics) -> Option<Draft> {
    let name = block_name(node, diags);
    let mut d = Draft::new(
        node.pos().clone(),
        name.map(|n| n.value.clone()).unwrap_or_default(),
    );
    for child in block(node, diags) {
        if tracking(child, &mut d.track, diags)
            || notify(child, &mut d.notify, diags)
            || d.garp.read(child, diags)
        {
            continue;
        }
        match child.name() {
            "state" => set_some(&mut d.state, child, diags, |v| match v {
                "MASTER" => Ok(InitialState::Master),
                "BACKUP" => Ok(InitialState::Backup),
                _ => Err(format!("unknown state '{v}' (expected MASTER or BACKUP)")),
            }),
            "interface" => {
                if let Some(arg) = super::one(child, diags) {
                    d.interface =
                        parsed(arg, interface_name(&arg.value), diags).map(|name| Named {
                            pos: arg.pos.clone(),
                            name,
                        });
                }
            }
            "virtual_router_id" => {
                d.vrid_written = true;
                set_some(&mut d.vrid, child, diags, |v| {
                    value::integer(v, 1, 255)
                        .ok()
                        .and_then(|n| Vrid::new(n as u8))
                        .ok_or_else(|| format!("VRID '{v}' is not between 1 and 255"))
                })
            }
            "priority" => set_some(&mut d.priority, child, diags, |v| {
                value::integer(v, 1, 255)
                    .ok()
                    .and_then(|n| Priority::new(n as u8))
                    .ok_or_else(|| format!("priority '{v}' is not between 1 and 255"))
            }),
            "advert_int" => {
                if let Some(arg) = super::one(child, diags) {
                    d.advert_int = parsed(arg, value::seconds(&arg.value), diags)
                        .map(|t| (t, arg.pos.clone()));
                }
            }
            "version" => set_some(&mut d.version, child, diags, value::vrrp_version),
            "native_ipv6" => {
                flag(child, diags);
                diags.warning(
                    child.pos(),
                    "'native_ipv6' is deprecated: IPv6 virtual addresses make an instance IPv6",
                );
                d.native_ipv6 = Some(child.pos().clone());
            }
            "authentication" => authentication(child, &mut d, diags),
            "virtual_ipaddress" => d.vips.extend(addresses(child, diags)),
            "virtual_ipaddress_excluded" => d.evips.extend(addresses(child, diags)),
            "dont_track_primary" => d.dont_track_primary = flag(child, diags),
            "mcast_src_ip" | "unicast_src_ip" => {
                if let Some(arg) = super::one(child, diags) {
                    d.src_ip =
                        parsed(arg, value::ip(&arg.value), diags).map(|a| (a, arg.pos.clone()));
                }
            }
            "unicast_peer" => d.unicast_peers.extend(unicast_peers(child, diags)),
            "unicast_ttl" => set_some(&mut d.unicast_ttl, child, diags, |v| {
                value::integer(v, 0, 255).map(|n| n as u8)
            }),
            "check_unicast_src" => d.check_unicast_src = flag(child, diags),
            "mcast_dst_ip" => {
                if let Some(arg) = super::one(child, diags) {
                    d.mcast_dst_ip =
                        parsed(arg, multicast(&arg.value), diags).map(|a| (a, arg.pos.clone()));
                }
            }
            "nopreempt" => {
                flag(child, diags);
                d.nopreempt = Some(child.pos().clone());
            }
            "preempt" => {
                flag(child, diags);
                d.nopreempt = None;
            }
            "preempt_delay" => {
                if let Some(arg) = super::one(child, diags) {
                    d.preempt_delay =
                        parsed(arg, preempt_delay(&arg.value), diags).map(|t| (t, arg.pos.clone()));
                }
            }
            "lower_prio_no_advert" => d.lower_prio_no_advert = boolean(child, diags),
            "higher_prio_send_advert" => d.higher_prio_send_advert = boolean(child, diags),
            "skip_check_adv_addr" => d.skip_check_adv_addr = boolean(child, diags),
            "strict_mode" => d.strict_mode = boolean(child, diags),
            "accept" => d.accept = Some(flag(child, diags)),
            "no_accept" => d.accept = Some(!flag(child, diags)),
            "promote_secondaries" => d.promote_secondaries = flag(child, diags),
            "down_timer_adverts" => set(&mut d.down_timer_adverts, child, diags, |v| {
                value::integer(v, 1, 100).map(|n| n as u8)
            }),
            "debug" => {
                // keepalived reads the level but has no per-instance debugging either.
                arg_value(child, diags, |v| value::integer(v, 0, 4));
            }
            "smtp_alert" => {
                d.smtp_alert = boolean(child, diags).unwrap_or(false);
                unsupported(child, diags);
            }
            "vmac_garp_intvl" => renamed(child, "garp_extra_if", diags),
            other if UNSUPPORTED.contains(&other) => unsupported(child, diags),
            _ => unknown(child, diags),
        }
    }
    name?;
    Some(d)
}

/// An interface name the kernel would accept.
fn interface_name(name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() >= 16 {
        return Err(format!("interface name '{name}' is not 1 to 15 characters"));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!("'{name}' is not a valid interface name"));
    }
    Ok(name.to_string())
}

fn multicast(text: &str) -> Result<IpAddr, String> {
    let addr = value::ip(text)?;
    let ok = match addr {
        IpAddr::V4(a) => a.is_multicast(),
        // IPv6 VRRP groups must be link-local multicast (ffX2::/16).
        IpAddr::V6(a) => a.segments()[0] & 0xff0f == 0xff02,
    };
    if ok {
        Ok(addr)
    } else {
        Err(format!("'{text}' is not a (link-local) multicast address"))
    }
}

/// `preempt_delay`: seconds, at most 1000.
fn preempt_delay(text: &str) -> Result<Duration, String> {
    let delay = value::seconds(text)?;
    if delay > Duration::from_secs(1000) {
        return Err(format!("preempt_delay {text} is more than 1000 seconds"));
    }
    Ok(delay)
}

fn authentication(node: &Node, d: &mut Draft, diags: &mut Diagnostics) {
    for child in block(node, diags) {
        match child.name() {
            "auth_type" => {
                if let Some(arg) = super::one(child, diags) {
                    let auth_type = match arg.value.as_str() {
                        "PASS" => Ok(AuthType::Pass),
                        "AH" => Ok(AuthType::Ah),
                        other => Err(format!(
                            "unknown authentication type '{other}' (expected PASS or AH)"
                        )),
                    };
                    d.auth_type = parsed(arg, auth_type, diags).map(|t| (t, child.pos().clone()));
                }
            }
            "auth_pass" => {
                if let Some(arg) = super::one(child, diags) {
                    let mut pass = arg.value.clone();
                    if pass.len() > Authentication::MAX_PASSWORD {
                        diags.warning(
                            &arg.pos,
                            format!(
                                "auth_pass is truncated to {} characters",
                                Authentication::MAX_PASSWORD
                            ),
                        );
                        let mut end = Authentication::MAX_PASSWORD;
                        while !pass.is_char_boundary(end) {
                            end -= 1;
                        }
                        pass.truncate(end);
                    }
                    d.auth_pass = Some(pass);
                }
            }
            _ => unknown(child, diags),
        }
    }
}

/// The lines of `virtual_ipaddress` / `virtual_ipaddress_excluded`.
fn addresses(node: &Node, diags: &mut Diagnostics) -> Vec<VirtualAddress> {
    block(node, diags)
        .iter()
        .filter_map(|line| {
            super::no_block(line, diags);
            address(line, diags)
        })
        .collect()
}

/// `ADDRESS[/PREFIX] [dev IF] [scope S] [brd B] [label L] [peer P] [flags...]`.
fn address(line: &Node, diags: &mut Diagnostics) -> Option<VirtualAddress> {
    let (addr, prefix_len) = parsed(&line.keyword, value::prefix(&line.keyword.value), diags)?;
    let mut vip = VirtualAddress {
        pos: line.pos().clone(),
        addr,
        prefix_len,
        dev: None,
        label: None,
        scope: None,
        broadcast: None,
        peer: None,
        no_track: false,
        home: false,
        nodad: false,
        mngtmpaddr: false,
        noprefixroute: false,
        autojoin: false,
        preferred_lft: None,
    };
    let mut args = line.args.iter();
    while let Some(opt) = args.next() {
        let mut param = |diags: &mut Diagnostics| -> Option<&Arg> {
            let p = args.next();
            if p.is_none() {
                diags.error(&opt.pos, format!("'{}' needs a value", opt.value));
            }
            p
        };
        match opt.value.as_str() {
            "dev" => {
                let p = param(diags)?;
                vip.dev = Some(parsed(p, interface_name(&p.value), diags)?);
            }
            "label" => vip.label = Some(param(diags)?.value.clone()),
            "scope" => {
                let p = param(diags)?;
                vip.scope = Some(parsed(p, scope(&p.value), diags)?);
            }
            "brd" | "broadcast" => {
                let p = param(diags)?;
                let brd = match (p.value.as_str(), addr) {
                    (_, IpAddr::V6(_)) => Err("an IPv6 address has no broadcast".to_string()),
                    ("+", _) => Ok(Broadcast::Plus),
                    ("-", _) => Ok(Broadcast::Minus),
                    (v, _) => match value::ip(v) {
                        Ok(IpAddr::V4(b)) => Ok(Broadcast::Addr(b)),
                        _ => Err(format!("'{v}' is not an IPv4 broadcast address")),
                    },
                };
                vip.broadcast = Some(parsed(p, brd, diags)?);
            }
            "peer" => {
                let p = param(diags)?;
                vip.peer = Some(parsed(p, value::prefix(&p.value).map(|(a, _)| a), diags)?);
            }
            "preferred_lft" => {
                let p = param(diags)?;
                let lft = match p.value.as_str() {
                    "forever" => Ok(PreferredLifetime::Forever),
                    v => value::integer(v, 0, u64::from(u32::MAX))
                        .map(|n| PreferredLifetime::Seconds(n as u32)),
                };
                vip.preferred_lft = Some(parsed(p, lft, diags)?);
            }
            "no_track" => vip.no_track = true,
            "home" => vip.home = true,
            "-nodad" => vip.nodad = true,
            "mngtmpaddr" => vip.mngtmpaddr = true,
            "noprefixroute" => vip.noprefixroute = true,
            "autojoin" => vip.autojoin = true,
            "use_vmac" => {
                diags.warning(
                    &opt.pos,
                    "'use_vmac' is not supported by xlb yet and is ignored",
                );
            }
            other => {
                diags.error(&opt.pos, format!("unknown address option '{other}'"));
                return None;
            }
        }
    }
    Some(vip)
}

fn scope(text: &str) -> Result<Scope, String> {
    Ok(match text {
        "global" | "universe" => Scope::Global,
        "site" => Scope::Site,
        "link" => Scope::Link,
        "host" => Scope::Host,
        "nowhere" => Scope::Nowhere,
        n => match value::integer(n, 0, 255) {
            Ok(n) => Scope::Other(n as u8),
            Err(_) => return Err(format!("unknown scope '{text}'")),
        },
    })
}

/// `unicast_peer { ADDRESS [min_ttl N] [max_ttl N] ... }`.
fn unicast_peers(node: &Node, diags: &mut Diagnostics) -> Vec<UnicastPeer> {
    let mut peers = Vec::new();
    for line in block(node, diags) {
        super::no_block(line, diags);
        let Some(addr) = parsed(&line.keyword, value::ip(&line.keyword.value), diags) else {
            continue;
        };
        let mut peer = UnicastPeer {
            pos: line.pos().clone(),
            addr,
            min_ttl: None,
            max_ttl: None,
        };
        let mut args = line.args.iter();
        while let Some(opt) = args.next() {
            let slot = match opt.value.as_str() {
                "min_ttl" => &mut peer.min_ttl,
                "max_ttl" => &mut peer.max_ttl,
                other => {
                    diags.error(&opt.pos, format!("unknown unicast_peer option '{other}'"));
                    break;
                }
            };
            match args.next() {
                Some(n) => {
                    *slot = parsed(n, value::integer(&n.value, 0, 255).map(|t| t as u8), diags)
                }
                None => diags.error(&opt.pos, format!("'{}' needs a value", opt.value)),
            }
        }
        peers.push(peer);
    }
    peers
}

/// `track_interface`, `track_script`, `track_file`, `track_process`, `track_bfd`; false
/// when `node` is none of them.
fn tracking(node: &Node, track: &mut Tracking, diags: &mut Diagnostics) -> bool {
    match node.name() {
        "track_interface" => {
            for line in block(node, diags) {
                super::no_block(line, diags);
                let weight = match line.args.as_slice() {
                    [] => Some(Default::default()),
                    args => track_weight(line, args, SCRIPT_WEIGHT, diags),
                };
                let name = parsed(&line.keyword, interface_name(&line.keyword.value), diags);
                if let (Some(weight), Some(name)) = (weight, name) {
                    track.interfaces.push(TrackedInterface {
                        pos: line.pos().clone(),
                        name,
                        weight,
                    });
                }
            }
        }
        "track_script" => track.scripts.extend(track_refs(node, SCRIPT_WEIGHT, diags)),
        "track_file" => track.files.extend(track_refs(node, FILE_WEIGHT, diags)),
        "track_process" => {
            unsupported(node, diags);
            track.processes.extend(track_refs(node, FILE_WEIGHT, diags));
        }
        "track_bfd" => {
            unsupported(node, diags);
            track.bfds.extend(track_refs(node, SCRIPT_WEIGHT, diags));
        }
        _ => return false,
    }
    true
}

fn track_refs(node: &Node, bound: i64, diags: &mut Diagnostics) -> Vec<TrackRef> {
    let mut refs = Vec::new();
    for line in block(node, diags) {
        super::no_block(line, diags);
        let weight = match line.args.as_slice() {
            [] => None,
            args => match track_weight(line, args, bound, diags) {
                Some(w) => Some(w),
                None => continue,
            },
        };
        refs.push(TrackRef {
            pos: line.pos().clone(),
            name: line.keyword.value.clone(),
            weight,
        });
    }
    refs
}

/// The notify keywords shared by instances and sync groups; false when `node` is none.
fn notify(node: &Node, notify: &mut Notify, diags: &mut Diagnostics) -> bool {
    let slot = match node.name() {
        "notify_master" => &mut notify.master,
        "notify_backup" => &mut notify.backup,
        "notify_fault" => &mut notify.fault,
        "notify_stop" => &mut notify.stop,
        "notify" => &mut notify.any,
        "notify_master_rx_lower_pri" => &mut notify.master_rx_lower_pri,
        "notify_deleted" => {
            notify.deleted = match args(node, 0, 3, diags) {
                Some([]) => Some(None),
                Some(a) => command_from(node, a, diags).map(Some),
                None => None,
            };
            return true;
        }
        "notify_priority_changes" => {
            notify.priority_changes = boolean(node, diags).unwrap_or(false);
            return true;
        }
        _ => return false,
    };
    if slot.is_some() {
        diags.error(node.pos(), format!("'{}' is already set", node.name()));
    }
    *slot = command(node, diags);
    true
}

/// Applies keepalived's defaults and consistency rules to a drafted instance.
pub(super) fn finish(
    d: Draft,
    global: &GlobalDefs,
    diags: &mut Diagnostics,
) -> Option<VrrpInstance> {
    let name = &d.name;
    let Some(vrid) = d.vrid else {
        if !d.vrid_written {
            diags.error(&d.pos, format!("({name}) virtual_router_id is missing"));
        }
        return None;
    };
    let family = instance_family(&d, diags);
    let strict = d.strict_mode.unwrap_or(global.vrrp_strict);
    let version = version(&d, family, strict, global, diags);
    if d.interface.is_none() && d.src_ip.is_none() {
        diags.error(
            &d.pos,
            format!("({name}) needs an interface, or a unicast_src_ip for unicast"),
        );
    }
    let priority = d.priority.unwrap_or(match d.state {
        Some(InitialState::Master) => Priority::OWNER,
        _ => Priority::DEFAULT,
    });
    let mut state = d.state.unwrap_or(if priority.is_owner() {
        InitialState::Master
    } else {
        InitialState::Backup
    });
    if strict && (state == InitialState::Master) != priority.is_owner() {
        diags.error(&d.pos, format!("({name}) strict mode: state MASTER must go with priority 255 (address owner) and only with it"));
    }
    let advert_int = advert_int(&d, version, diags);
    let authentication = authentication_of(&d, version, family, strict, diags);
    if matches!(&authentication, Some(a) if a.auth_type == AuthType::Ah)
        && state == InitialState::Master
        && !priority.is_owner()
    {
        diags.warning(
            &d.pos,
            format!(
                "({name}) AH authentication needs an advert before taking over; starting as BACKUP"
            ),
        );
        state = InitialState::Backup;
    }
    let (nopreempt, preempt_delay) = preemption(&d, state, priority, strict, diags);
    if strict && !d.unicast_peers.is_empty() {
        diags.warning(
            &d.pos,
            format!(
                "({name}) strict mode does not allow unicast peers on multicast-capable interfaces"
            ),
        );
    }
    let garp = d.garp.finish(&global.garp, strict);
    let check_unicast_src = d.check_unicast_src
        || global.vrrp_check_unicast_src
        || d.unicast_peers
            .iter()
            .any(|p| p.min_ttl.is_some() || p.max_ttl.is_some());
    Some(VrrpInstance {
        pos: d.pos,
        name: d.name,
        state,
        interface: d.interface,
        vrid,
        priority,
        advert_int,
        version,
        family,
        authentication,
        virtual_ipaddresses: d.vips,
        virtual_ipaddresses_excluded: d.evips,
        track: d.track,
        dont_track_primary: d.dont_track_primary,
        src_ip: d.src_ip.map(|(a, _)| a),
        unicast_peers: d.unicast_peers,
        unicast_ttl: d.unicast_ttl,
        check_unicast_src,
        mcast_dst_ip: d.mcast_dst_ip.map(|(a, _)| a),
        nopreempt,
        preempt_delay,
        garp,
        lower_prio_no_advert: d
            .lower_prio_no_advert
            .unwrap_or(strict || global.vrrp_lower_prio_no_advert),
        higher_prio_send_advert: d
            .higher_prio_send_advert
            .unwrap_or(!strict && global.vrrp_higher_prio_send_advert),
        skip_check_adv_addr: d
            .skip_check_adv_addr
            .unwrap_or(global.vrrp_skip_check_adv_addr),
        strict_mode: strict,
        accept: d.accept.unwrap_or(priority.is_owner() || !strict),
        promote_secondaries: d.promote_secondaries,
        down_timer_adverts: d.down_timer_adverts,
        notify: d.notify,
        smtp_alert: d.smtp_alert,
    })
}

/// Whether the instance preempts, and after how long: `nopreempt` and `preempt_delay` as
/// keepalived lets them work (neither with state MASTER, nor with priority 255).
fn preemption(
    d: &Draft,
    state: InitialState,
    priority: Priority,
    strict: bool,
    diags: &mut Diagnostics,
) -> (bool, Duration) {
    let name = &d.name;
    let mut nopreempt = d.nopreempt.is_some();
    if let Some(pos) = &d.nopreempt {
        if priority.is_owner() {
            diags.warning(
                pos,
                format!("({name}) nopreempt has no effect with priority 255"),
            );
            nopreempt = false;
        } else if state == InitialState::Master {
            diags.warning(
                pos,
                format!("({name}) nopreempt does not work with state MASTER"),
            );
            nopreempt = false;
        }
    }
    let mut preempt_delay = Duration::ZERO;
    if let Some((delay, pos)) = &d.preempt_delay {
        if state == InitialState::Master {
            diags.warning(
                pos,
                format!("({name}) preempt_delay does not work with state MASTER"),
            );
        } else if strict {
            diags.warning(
                pos,
                format!("({name}) preempt_delay does not work in strict mode"),
            );
        } else if nopreempt {
            diags.warning(
                pos,
                format!("({name}) preempt_delay does not work with nopreempt"),
            );
        } else {
            preempt_delay = *delay;
        }
    }
    (nopreempt, preempt_delay)
}

/// The instance's VRRP version (and whether it has the addresses that version needs).
fn version(
    d: &Draft,
    family: Family,
    strict: bool,
    global: &GlobalDefs,
    diags: &mut Diagnostics,
) -> VrrpVersion {
    let name = &d.name;
    let version = match (d.version, family) {
        (Some(VrrpVersion::V2), Family::Ipv6) => {
            diags.error(&d.pos, format!("({name}) IPv6 needs VRRP version 3"));
            VrrpVersion::V3
        }
        (Some(v), _) => v,
        (None, Family::Ipv6) => VrrpVersion::V3,
        (None, Family::Ipv4) => global.vrrp_version,
    };
    if d.vips.is_empty() {
        if version == VrrpVersion::V3 || strict {
            diags.error(
                &d.pos,
                format!("({name}) no virtual_ipaddress; at least one is required"),
            );
        } else {
            diags.warning(
                &d.pos,
                format!("({name}) no virtual_ipaddress; at least one is sensible"),
            );
        }
    }
    version
}

/// The family every advertised address, source and peer must share.
fn instance_family(d: &Draft, diags: &mut Diagnostics) -> Family {
    let name = &d.name;
    let first = d
        .vips
        .first()
        .map(|v| (v.family(), "virtual_ipaddress"))
        .or(d
            .native_ipv6
            .as_ref()
            .map(|_| (Family::Ipv6, "native_ipv6")))
        .or(d
            .src_ip
            .as_ref()
            .map(|(a, _)| (Family::of(a), "the source address")));
    let Some((family, from)) = first else {
        return Family::Ipv4;
    };
    let mut mismatch = |pos: &Pos, what: &str, other: Family| {
        if other != family {
            diags.error(
                pos,
                format!("({name}) {what} is {other} but the instance is {family} (from {from})"),
            );
        }
    };
    for vip in &d.vips {
        mismatch(
            &vip.pos,
            &format!("virtual address {}", vip.addr),
            vip.family(),
        );
    }
    if let Some(pos) = &d.native_ipv6 {
        mismatch(pos, "native_ipv6", Family::Ipv6);
    }
    if let Some((addr, pos)) = &d.src_ip {
        mismatch(pos, &format!("source address {addr}"), Family::of(addr));
    }
    if let Some((addr, pos)) = &d.mcast_dst_ip {
        mismatch(pos, &format!("mcast_dst_ip {addr}"), Family::of(addr));
    }
    for peer in &d.unicast_peers {
        mismatch(
            &peer.pos,
            &format!("unicast peer {}", peer.addr),
            Family::of(&peer.addr),
        );
    }
    family
}

/// `advert_int` within what the version can carry: whole seconds up to 255 for v2,
/// centiseconds up to 40.95 s for v3.
fn advert_int(d: &Draft, version: VrrpVersion, diags: &mut Diagnostics) -> Duration {
    let Some((interval, pos)) = &d.advert_int else {
        return Duration::from_secs(1);
    };
    let name = &d.name;
    let problem = match version {
        VrrpVersion::V2 if interval.subsec_nanos() != 0 || interval.is_zero() => Some(
            "VRRPv2 advertisement interval must be whole seconds between 1 and 255".to_string(),
        ),
        VrrpVersion::V2 if interval.as_secs() > 255 => {
            Some("VRRPv2 advertisement interval must be at most 255 seconds".into())
        }
        VrrpVersion::V3 if interval.subsec_nanos() % 10_000_000 != 0 || interval.is_zero() => {
            Some("VRRPv3 advertisement interval must be a multiple of 0.01 seconds".into())
        }
        VrrpVersion::V3 if *interval > Duration::from_millis(40_950) => {
            Some("VRRPv3 advertisement interval must be at most 40.95 seconds".into())
        }
        _ => None,
    };
    match problem {
        Some(problem) => {
            diags.error(pos, format!("({name}) {problem}"));
            Duration::from_secs(1)
        }
        None => *interval,
    }
}

fn authentication_of(
    d: &Draft,
    version: VrrpVersion,
    family: Family,
    strict: bool,
    diags: &mut Diagnostics,
) -> Option<Authentication> {
    let (auth_type, pos) = d.auth_type.clone()?;
    let name = &d.name;
    let why_not = if strict {
        Some("strict mode does not allow authentication")
    } else if version == VrrpVersion::V3 {
        Some("VRRP version 3 has no authentication")
    } else if d.auth_pass.as_deref().is_none_or(str::is_empty) {
        Some("authentication needs an auth_pass")
    } else if family == Family::Ipv6 && auth_type == AuthType::Ah {
        Some("AH authentication does not work with IPv6")
    } else {
        None
    };
    if let Some(why) = why_not {
        diags.warning(&pos, format!("({name}) {why}; authentication is ignored"));
        return None;
    }
    Some(Authentication {
        pos,
        auth_type,
        password: d.auth_pass.clone().unwrap_or_default(),
    })
}

pub(super) fn sync_group(node: &Node, diags: &mut Diagnostics) -> Option<VrrpSyncGroup> {
    let name = block_name(node, diags);
    let mut group = VrrpSyncGroup {
        pos: node.pos().clone(),
        name: name.map(|n| n.value.clone()).unwrap_or_default(),
        members: Vec::new(),
        track: Tracking::default(),
        notify: Notify::default(),
        smtp_alert: false,
        tracking_weight: false,
    };
    for child in block(node, diags) {
        if tracking(child, &mut group.track, diags) || notify(child, &mut group.notify, diags) {
            continue;
        }
        match child.name() {
            "group" => {
                if !group.members.is_empty() {
                    diags.error(
                        child.pos(),
                        format!("({}) 'group' is already set", group.name),
                    );
                }
                group.members = words(child, diags)
                    .into_iter()
                    .map(|w| Named {
                        pos: w.pos.clone(),
                        name: w.value.clone(),
                    })
                    .collect();
            }
            "smtp_alert" => {
                group.smtp_alert = boolean(child, diags).unwrap_or(false);
                unsupported(child, diags);
            }
            "global_tracking" => {
                renamed(child, "sync_group_tracking_weight", diags);
                group.tracking_weight = flag(child, diags);
            }
            "sync_group_tracking_weight" => group.tracking_weight = flag(child, diags),
            // keepalived 1.x listed members directly in the block.
            member if child.args.is_empty() && child.block.is_none() => {
                diags.warning(
                    child.pos(),
                    format!("instance '{member}' listed directly in vrrp_sync_group is an old form; put members in 'group {{ }}'"),
                );
                group.members.push(Named {
                    pos: child.pos().clone(),
                    name: member.to_string(),
                });
            }
            _ => unknown(child, diags),
        }
    }
    name?;
    Some(group)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{VrrpInstance, read::testing::read};

    use super::*;

    fn instance(body: &str) -> (VrrpInstance, String) {
        let (config, warnings) = read(&format!(
            "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n{body}\n}}\n"
        ));
        (config.vrrp_instances[0].clone(), warnings)
    }

    #[test]
    fn defaults_follow_keepalived() {
        let (vi, _) = instance("virtual_ipaddress {\n 192.0.2.1\n}");
        assert_eq!(vi.state, InitialState::Backup);
        assert_eq!(vi.priority, Priority::DEFAULT);
        assert_eq!(vi.version, VrrpVersion::V2);
        assert_eq!(vi.family, Family::Ipv4);
        assert_eq!(vi.advert_int, Duration::from_secs(1));
        assert_eq!(vi.garp, Garp::default());
        assert!(vi.accept && !vi.nopreempt && !vi.strict_mode);
        assert_eq!(vi.down_timer_adverts, 3);
        assert_eq!(vi.virtual_ipaddresses[0].prefix_len, 32);
    }

    #[test]
    fn master_without_priority_owns_the_addresses() {
        let (vi, _) = instance("state MASTER\nvirtual_ipaddress {\n 192.0.2.1\n}");
        assert_eq!(vi.priority, Priority::OWNER);
        let (vi, _) = instance("priority 255\nvirtual_ipaddress {\n 192.0.2.1\n}");
        assert_eq!(vi.state, InitialState::Master);
    }

    #[test]
    fn ipv6_addresses_make_a_version_3_instance() {
        let (vi, _) = instance(
            "virtual_ipaddress {\n fe80::1/64 dev eth1 scope link\n 2001:db8::1\n}\nadvert_int 0.25",
        );
        assert_eq!(vi.family, Family::Ipv6);
        assert_eq!(vi.version, VrrpVersion::V3);
        assert_eq!(vi.advert_int, Duration::from_millis(250));
        let vip = &vi.virtual_ipaddresses[0];
        assert_eq!(
            (vip.prefix_len, vip.dev.as_deref(), vip.scope),
            (64, Some("eth1"), Some(Scope::Link))
        );
    }

    #[test]
    fn globals_fill_what_instances_leave_out() {
        let (config, _) = read(
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n garp_master_repeat 2\n \
             virtual_ipaddress {\n 192.0.2.1\n }\n}\n\
             global_defs {\n vrrp_version 3\n vrrp_garp_master_delay 1\n vrrp_garp_master_refresh 60\n \
             vrrp_check_unicast_src\n vrrp_lower_prio_no_advert on\n}\n",
        );
        let vi = &config.vrrp_instances[0];
        assert_eq!(vi.version, VrrpVersion::V3);
        assert_eq!(vi.garp.master_delay, Duration::from_secs(1));
        assert_eq!(vi.garp.lower_prio_delay, Duration::from_secs(1));
        assert_eq!(vi.garp.master_repeat, 2);
        assert_eq!(vi.garp.master_refresh, Some(Duration::from_secs(60)));
        assert!(vi.check_unicast_src && vi.lower_prio_no_advert);
    }

    #[test]
    fn tracking_notify_unicast_and_auth_are_read() {
        let (vi, warnings) = instance(
            "virtual_ipaddress {\n 192.0.2.1/24 brd + label eth0:1 no_track\n}\n\
             authentication {\n auth_type PASS\n auth_pass secret-too-long\n}\n\
             unicast_src_ip 192.0.2.10\nunicast_peer {\n 192.0.2.11 min_ttl 250\n}\n\
             track_interface {\n eth1 weight -10 reverse\n}\n\
             notify_master \"/bin/notify.sh MASTER 'VI 1'\" nobody nogroup\n\
             nopreempt\npreempt_delay 5",
        );
        assert_eq!(
            warnings,
            "t.conf:9:12: warning: auth_pass is truncated to 8 characters\n\
             t.conf:20:15: warning: (VI_1) preempt_delay does not work with nopreempt\n"
        );
        let auth = vi.authentication.clone().unwrap();
        assert_eq!(
            (auth.auth_type, auth.password.as_str()),
            (AuthType::Pass, "secret-t")
        );
        assert_eq!(vi.src_ip, Some("192.0.2.10".parse().unwrap()));
        assert!(vi.is_unicast() && vi.check_unicast_src);
        assert_eq!(vi.unicast_peers[0].min_ttl, Some(250));
        let tracked = &vi.track.interfaces[0];
        assert_eq!((tracked.weight.weight, tracked.weight.reverse), (-10, true));
        let notify = vi.notify.master.clone().unwrap();
        assert_eq!(notify.argv, ["/bin/notify.sh", "MASTER", "VI 1"]);
        assert_eq!(notify.user.unwrap().group.as_deref(), Some("nogroup"));
        assert!(vi.nopreempt);
        assert_eq!(
            vi.preempt_delay,
            Duration::ZERO,
            "preempt_delay does nothing with nopreempt"
        );
        let vip = &vi.virtual_ipaddresses[0];
        assert_eq!(
            (vip.broadcast, vip.label.as_deref(), vip.no_track),
            (Some(Broadcast::Plus), Some("eth0:1"), true)
        );
    }

    #[test]
    fn version_3_ignores_authentication_with_a_warning() {
        let (vi, warnings) = instance(
            "version 3\nvirtual_ipaddress {\n 192.0.2.1\n}\nauthentication {\n auth_type PASS\n auth_pass x\n}",
        );
        assert!(vi.authentication.is_none());
        assert_eq!(
            warnings,
            "t.conf:9:2: warning: (VI_1) VRRP version 3 has no authentication; authentication is ignored\n"
        );
    }

    #[test]
    fn sync_groups_and_scripts() {
        let (config, warnings) = read(
            "vrrp_script chk {\n script \"/bin/check -x\"\n interval 2\n weight -20 reverse\n fall 3\n user nobody\n}\n\
             track_file tf {\n file /run/prio\n init_file 5 overwrite\n}\n\
             vrrp_sync_group G {\n group { VI_1 }\n track_script {\n chk weight 5\n }\n global_tracking\n}\n\
             vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n \
             track_file {\n tf\n }\n}\n",
        );
        assert_eq!(
            warnings,
            "t.conf:17:2: warning: 'global_tracking' is the old name of 'sync_group_tracking_weight'\n"
        );
        let script = &config.vrrp_scripts[0];
        assert_eq!(script.command.argv, ["/bin/check", "-x"]);
        assert_eq!(script.command.user.as_ref().unwrap().user, "nobody");
        assert_eq!(
            (script.weight.weight, script.weight.reverse, script.fall),
            (-20, true, 3)
        );
        assert_eq!(script.interval, Duration::from_secs(2));
        let group = &config.vrrp_sync_groups[0];
        assert_eq!(group.members[0].name, "VI_1");
        assert_eq!(group.track.scripts[0].weight.unwrap().weight, 5);
        assert!(group.tracking_weight);
        let file = &config.track_files[0];
        assert_eq!(
            file.init.as_ref().map(|i| (i.value, i.overwrite)),
            Some((5, true))
        );
        assert_eq!(config.vrrp_instances[0].track.files[0].name, "tf");
    }
}
