//! `global_defs`.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use super::{
    UNSUPPORTED_PROCESS, args, block, boolean, command, flag, parsed, renamed, script_user, set,
    set_some, unknown, unsupported, value,
};
use crate::config::{
    diag::Diagnostics,
    model::{GlobalDefs, LvsTimeouts, NotifyFifo},
    tree::Node,
};

/// `global_defs` keywords keepalived knows and xlb does not act on yet.
const UNSUPPORTED: &[&str] = &[
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "notification_email_from",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "notification_email",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "max_auto_priority",
    "min_auto_priority_delay",
    "checker_log_all_failures",
    "dynamic_interfaces",
    "no_email_faults",
    "default_interface",
    "disable_local_igmp",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_sync_daemon",
    "vrrp_down_timer_adverts",
    "vrrp_min_garp",
    "vrrp_garp_extra_if",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "nftables_counters",
    "vrrp_priority",
    "vrrp_no_swap",
    "vrrp_rt_priority",
    "vrrp_cpu_affinity",
    "vrrp_rlimit_rttime",
    "vrrp_notify_priority_changes",
    "fifo_write_vrrp_states_on_reload",
    "checker_priority",
    "checker_no_swap",
    "checker_rt_priority",
    "checker_cpu_affinity",
    "checker_rlimit_rttime",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_cpu_affinity",
    "bfd_rlimit_rttime",
    "snmp_socket",
    "enable_traps",
    "enable_snmp_vrrp",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_checker",
    "enable_dbus",
    "dbus_service_name",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "rs_init_notifies",
    "no_checker_emails",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "vrrp_startup_delay",
    "log_unknown_vrids",
    "vmac_prefix",
    "vmac_addr_prefix",
    "umask",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "include_check",
    "config_save_dir",
    "tmp_config_directory",
    "data_use_instance",
];

/// Old `global_defs` spellings and their modern names.
const RENAMED: &[(&str, &str)] = &[
    ("lvs_process_name", "checker_process_name"),
    ("lvs_flush_onstop", "lvs_flush_on_stop"),
    ("vrrp_vmac_garp_intvl", "vrrp_garp_extra_if"),
    ("vrrp_rlimit_rtime", "vrrp_rlimit_rttime"),
    ("checker_rlimit_rtime", "checker_rlimit_rttime"),
    ("bfd_rlimit_rtime", "bfd_rlimit_rttime"),
    ("enable_snmp_keepalived", "enable_snmp_vrrp"),
];

pub(super) fn read(node: &Node, global: &mut GlobalDefs, diags: &mut Diagnostics) {
    if !node.args.is_empty() {
        diags.error(node.pos(), "'global_defs' takes no arguments");
    }
    // Unless set, these follow the MASTER settings, wherever those are written.
    let mut lower_prio_delay = None;
    let mut lower_prio_repeat = None;
    for child in block(node, diags) {
        let name = match RENAMED.iter().find(|(old, _)| *old == child.name()) {
            Some((_, modern)) => {
                renamed(child, modern, diags);
                *modern
            }
            None => child.name(),
        };
        let garp = &mut global.garp;
        match name {
            "router_id" => set_some(&mut global.router_id, child, diags, |v| Ok(v.to_string())),
            "vrrp_version" => set(&mut global.vrrp_version, child, diags, value::vrrp_version),
            "vrrp_garp_master_delay" => {
                set(&mut garp.master_delay, child, diags, value::whole_seconds)
            }
            "vrrp_garp_master_repeat" => set(&mut garp.master_repeat, child, diags, value::repeat),
            "vrrp_garp_master_refresh" => {
                set(&mut garp.master_refresh, child, diags, value::refresh)
            }
            "vrrp_garp_master_refresh_repeat" => {
                set(&mut garp.master_refresh_repeat, child, diags, value::repeat)
            }
            "vrrp_garp_lower_prio_delay" => {
                set_some(&mut lower_prio_delay, child, diags, value::whole_seconds)
            }
            "vrrp_garp_lower_prio_repeat" => {
                set_some(&mut lower_prio_repeat, child, diags, value::count)
            }
            "vrrp_garp_interval" => {
                set(&mut global.vrrp_garp_interval, child, diags, value::seconds)
            }
            "vrrp_gna_interval" => set(&mut global.vrrp_gna_interval, child, diags, value::seconds),
            "vrrp_lower_prio_no_advert" => {
                set_bool(&mut global.vrrp_lower_prio_no_advert, child, diags)
            }
            "vrrp_higher_prio_send_advert" => {
                set_bool(&mut global.vrrp_higher_prio_send_advert, child, diags)
            }
            "vrrp_check_unicast_src" => global.vrrp_check_unicast_src = flag(child, diags),
            "vrrp_skip_check_adv_addr" => {
                set_bool(&mut global.vrrp_skip_check_adv_addr, child, diags)
            }
            "vrrp_strict" => global.vrrp_strict = flag(child, diags),
            "vrrp_mcast_group4" => {
                set(
                    &mut global.vrrp_mcast_group4,
                    child,
                    diags,
                    |v| match value::ip(v)? {
                        IpAddr::V4(a) if a.is_multicast() => Ok(a),
                        _ => Err(format!("'{v}' is not an IPv4 multicast address")),
                    },
                )
            }
            "vrrp_mcast_group6" => {
                set(
                    &mut global.vrrp_mcast_group6,
                    child,
                    diags,
                    |v| match value::ip(v)? {
                        IpAddr::V6(a) if a.is_multicast() => Ok(a),
                        _ => Err(format!("'{v}' is not an IPv6 multicast address")),
                    },
                )
            }
            "enable_script_security" => global.enable_script_security = flag(child, diags),
            "script_user" => {
                if let Some(a) = args(child, 1, 2, diags) {
                    global.script_user = script_user(a);
                }
            }
            "smtp_server" => {
                if let Some(a) = args(child, 1, 2, diags) {
                    global.smtp_server = parsed(&a[0], value::ip(&a[0].value), diags);
                }
                unsupported(child, diags);
            }
            "lvs_timeouts" => lvs_timeouts(&mut global.lvs_timeouts, child, diags),
            "notify_fifo" => fifo(&mut global.notify_fifo, child, diags),
            "vrrp_notify_fifo" => fifo(&mut global.vrrp_notify_fifo, child, diags),
            "lvs_notify_fifo" => fifo(&mut global.lvs_notify_fifo, child, diags),
            "notify_fifo_script" => fifo_script(&mut global.notify_fifo, child, diags),
            "vrrp_notify_fifo_script" => fifo_script(&mut global.vrrp_notify_fifo, child, diags),
            "lvs_notify_fifo_script" => fifo_script(&mut global.lvs_notify_fifo, child, diags),
            other if UNSUPPORTED.contains(&other) || UNSUPPORTED_PROCESS.contains(&other) => {
                unsupported(child, diags)
            }
            _ => unknown(child, diags),
        }
    }
    let garp = &mut global.garp;
    garp.lower_prio_delay = lower_prio_delay.unwrap_or(garp.master_delay);
    garp.lower_prio_repeat = lower_prio_repeat.unwrap_or(garp.master_repeat);
}

/// keepalived's upper bound for `lvs_timeouts` values: 31 days.
const MAX_LVS_TIMEOUT: u64 = 31 * 86_400;

/// `lvs_timeouts [tcp N] [tcpfin N] [udp N]`, in any order; 0 keeps the default.
fn lvs_timeouts(slot: &mut LvsTimeouts, node: &Node, diags: &mut Diagnostics) {
    let Some(args) = args(node, 2, 6, diags) else {
        return;
    };
    let mut pairs = args.chunks_exact(2);
    for pair in pairs.by_ref() {
        let (name, arg) = (&pair[0], &pair[1]);
        let field = match name.value.as_str() {
            "tcp" => &mut slot.tcp,
            "tcpfin" => &mut slot.tcp_fin,
            "udp" => &mut slot.udp,
            other => {
                diags.error(
                    &name.pos,
                    format!("'{other}' is not an lvs_timeouts protocol (tcp, tcpfin, udp)"),
                );
                continue;
            }
        };
        let seconds = value::integer(&arg.value, 0, MAX_LVS_TIMEOUT);
        match parsed(arg, seconds, diags) {
            Some(0) | None => {}
            Some(n) => *field = Duration::from_secs(n),
        }
    }
    if let [extra] = pairs.remainder() {
        diags.error(
            &extra.pos,
            format!("'{}' needs a number of seconds", extra.value),
        );
    }
}

fn set_bool(slot: &mut bool, node: &Node, diags: &mut Diagnostics) {
    if let Some(v) = boolean(node, diags) {
        *slot = v;
    }
}

/// `*notify_fifo PATH [USER [GROUP]]`.
fn fifo(slot: &mut Option<NotifyFifo>, node: &Node, diags: &mut Diagnostics) {
    let Some(args) = args(node, 1, 3, diags) else {
        return;
    };
    let script = slot.take().and_then(|f| f.script);
    *slot = Some(NotifyFifo {
        pos: node.pos().clone(),
        path: PathBuf::from(&args[0].value),
        script,
    });
}

/// `*notify_fifo_script "PROGRAM ARGS" [USER [GROUP]]`; needs its FIFO.
fn fifo_script(slot: &mut Option<NotifyFifo>, node: &Node, diags: &mut Diagnostics) {
    let Some(script) = command(node, diags) else {
        return;
    };
    match slot {
        Some(fifo) => fifo.script = Some(script),
        None => {
            let fifo = node.name().trim_end_matches("_script");
            diags.error(
                node.pos(),
                format!("'{}' needs '{fifo}' first", node.name()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{model::LvsTimeouts, parse_str};

    fn timeouts(line: &str) -> Result<LvsTimeouts, String> {
        parse_str("t.conf", &format!("global_defs {{\n {line}\n}}\n"))
            .map(|loaded| loaded.config.global.lvs_timeouts)
            .map_err(|diags| diags.to_string())
    }

    #[test]
    fn lvs_timeouts_set_what_they_name_and_zero_keeps_the_default() {
        let t = timeouts("lvs_timeouts udp 30 tcp 7200 tcpfin 0").unwrap();
        assert_eq!(
            (t.tcp, t.tcp_fin, t.udp),
            (
                Duration::from_secs(7200),
                Duration::from_secs(120),
                Duration::from_secs(30)
            )
        );
    }

    #[test]
    fn lvs_timeouts_reject_unknown_protocols_and_missing_values() {
        assert_eq!(
            timeouts("lvs_timeouts sctp 5").unwrap_err(),
            "t.conf:2:15: error: 'sctp' is not an lvs_timeouts protocol (tcp, tcpfin, udp)\n"
        );
        assert!(
            timeouts("lvs_timeouts tcp 5 udp")
                .unwrap_err()
                .contains("'udp' needs a number of seconds")
        );
        assert!(timeouts("lvs_timeouts tcp 99999999").is_err());
    }
}
