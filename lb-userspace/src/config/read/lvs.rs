//! `virtual_server`, `virtual_server_group` and `real_server`.
//!
//! Checker timing (`retry`, `connect_timeout`, ...) may be set on the service, the real
//! or the checker, in any order inside the service's block, so reals are drafted and
//! resolved when the service's block ends.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use super::{
    args, block, block_name, checker, command, flag, parsed, set, set_some, unknown, unsupported,
    value,
};
use crate::config::{
    diag::Diagnostics,
    model::{
        Check, DEFAULT_DELAY_LOOP, Family, ForwardMethod, GroupEntry, GroupEntryKind, Persistence,
        Protocol, Quorum, RealServer, Scheduler, SchedulerFlags, ServiceTarget, SorryServer,
        VirtualServer, VirtualServerGroup, Weight,
    },
    tree::{Arg, Node},
};

/// IPVS's persistence timeout when only a granularity is given.
const DEFAULT_PERSISTENCE: Duration = Duration::from_secs(360);

pub(super) fn virtual_server(node: &Node, diags: &mut Diagnostics) -> Option<VirtualServer> {
    let target = target(node, diags);
    let mut vs = VirtualServer {
        pos: node.pos().clone(),
        target: ServiceTarget::Fwmark(0),
        protocol: Protocol::Tcp,
        scheduler: Scheduler::Wlc,
        scheduler_flags: SchedulerFlags::default(),
        method: ForwardMethod::Nat,
        delay_loop: DEFAULT_DELAY_LOOP,
        real_servers: Vec::new(),
        family: None,
        persistence: None,
        quorum: Quorum::default(),
        alpha: false,
        omega: false,
        inhibit_on_failure: false,
        sorry_server: None,
        virtualhost: None,
        ha_suspend: false,
        one_packet: false,
    };
    let mut timing = checker::TimingDraft::default();
    let mut reals = Vec::new();
    let mut persistence_timeout = None;
    let mut granularity = None;
    let mut engine = None;
    let mut default_weight = Weight::default();
    let mut sorry_method = None;
    let mut sorry_inhibit = false;
    for child in block(node, diags) {
        if timing.read(child, diags) {
            continue;
        }
        match child.name() {
            "lb_algo" | "lvs_sched" => set(&mut vs.scheduler, child, diags, scheduler),
            "lb_kind" | "lvs_method" => {
                if let Some(m) = method(child, diags) {
                    vs.method = m;
                }
            }
            "protocol" => set(&mut vs.protocol, child, diags, protocol),
            "ip_family" => set_some(&mut vs.family, child, diags, |v| match v {
                "inet" => Ok(Family::Ipv4),
                "inet6" => Ok(Family::Ipv6),
                _ => Err(format!("unknown ip_family '{v}' (expected inet or inet6)")),
            }),
            "persistence_timeout" => set_some(&mut persistence_timeout, child, diags, |v| {
                value::integer(v, 1, u64::from(u32::MAX)).map(Duration::from_secs)
            }),
            "persistence_granularity" => set_some(&mut granularity, child, diags, value::ip),
            "persistence_engine" => {
                set_some(&mut engine, child, diags, |v| Ok(v.to_string()));
                unsupported(child, diags);
            }
            "quorum" => set(&mut vs.quorum.quorum, child, diags, |v| {
                value::integer(v, 1, u64::from(u32::MAX)).map(|n| n as u32)
            }),
            "hysteresis" => set(&mut vs.quorum.hysteresis, child, diags, value::count),
            "quorum_up" => vs.quorum.up = command(child, diags),
            "quorum_down" => vs.quorum.down = command(child, diags),
            "alpha" => vs.alpha = flag(child, diags),
            "omega" => vs.omega = flag(child, diags),
            "inhibit_on_failure" => vs.inhibit_on_failure = flag(child, diags),
            "virtualhost" => set_some(&mut vs.virtualhost, child, diags, |v| Ok(v.to_string())),
            "ha_suspend" => vs.ha_suspend = flag(child, diags),
            "ops" => vs.one_packet = flag(child, diags),
            "weight" => set(&mut default_weight, child, diags, weight),
            "flag-1" | "sh-fallback" | "mh-fallback" => {
                vs.scheduler_flags.flag1 = flag(child, diags)
            }
            "flag-2" | "sh-port" | "mh-port" => vs.scheduler_flags.flag2 = flag(child, diags),
            "flag-3" => vs.scheduler_flags.flag3 = flag(child, diags),
            "hashed" | "smtp_alert" | "snmp_name" => unsupported(child, diags),
            "sorry_server" => {
                if let Some(addr) = socket_addr(child, diags) {
                    vs.sorry_server = Some(SorryServer {
                        pos: child.pos().clone(),
                        addr,
                        method: ForwardMethod::Nat,
                        inhibit: false,
                    });
                }
            }
            "sorry_server_inhibit" => sorry_inhibit = flag(child, diags),
            "sorry_server_lvs_method" => sorry_method = method(child, diags),
            "real_server" => reals.extend(real_server(child, diags)),
            _ => unknown(child, diags),
        }
    }
    vs.delay_loop = timing.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
    if let Some(sorry) = &mut vs.sorry_server {
        sorry.method = sorry_method.unwrap_or(vs.method);
        sorry.inhibit = sorry_inhibit;
    }
    if persistence_timeout.is_some() || granularity.is_some() || engine.is_some() {
        vs.persistence = Some(Persistence {
            timeout: persistence_timeout.unwrap_or(DEFAULT_PERSISTENCE),
            granularity,
            engine,
        });
    }
    vs.real_servers = reals
        .into_iter()
        .map(|draft| draft.finish(&vs, &timing, default_weight))
        .collect();
    vs.target = target?;
    if let ServiceTarget::Addr(addr) = &vs.target {
        let family = Family::of(&addr.ip());
        if vs.family.is_some_and(|f| f != family) {
            diags.error(
                node.pos(),
                format!("ip_family does not match {}", addr.ip()),
            );
        }
        vs.family = Some(family);
    }
    Some(vs)
}

/// `ADDRESS PORT`, `fwmark N` or `group NAME`.
fn target(node: &Node, diags: &mut Diagnostics) -> Option<ServiceTarget> {
    match node.args.as_slice() {
        [kw, mark] if kw.value == "fwmark" => parsed(
            mark,
            value::integer(&mark.value, 1, u64::from(u32::MAX)),
            diags,
        )
        .map(|m| ServiceTarget::Fwmark(m as u32)),
        [kw, name] if kw.value == "group" => Some(ServiceTarget::Group(name.value.clone())),
        [_] | [_, _] => socket_addr(node, diags).map(ServiceTarget::Addr),
        _ => {
            diags.error(
                node.pos(),
                "'virtual_server' needs ADDRESS PORT, 'fwmark' N or 'group' NAME",
            );
            None
        }
    }
}

/// A real as written, resolved against its service when the service's block ends.
struct RealDraft {
    real: RealServer,
    weight: Option<Weight>,
    method: Option<ForwardMethod>,
    inhibit: Option<bool>,
    alpha: Option<bool>,
    virtualhost: Option<String>,
    timing: checker::TimingDraft,
    checks: Vec<(Check, checker::TimingDraft)>,
}

impl RealDraft {
    fn finish(
        mut self,
        vs: &VirtualServer,
        vs_timing: &checker::TimingDraft,
        default_weight: Weight,
    ) -> RealServer {
        self.real.weight = self.weight.unwrap_or(default_weight);
        self.real.method = self.method.unwrap_or(vs.method);
        self.real.inhibit_on_failure = self.inhibit.unwrap_or(vs.inhibit_on_failure);
        self.real.alpha = self.alpha.unwrap_or(vs.alpha);
        let inherited = checker::Inherited {
            virtualhost: self.virtualhost.as_ref().or(vs.virtualhost.as_ref()),
            alpha: self.real.alpha,
            delay_loop: vs.delay_loop,
        };
        for (mut check, timing) in self.checks {
            checker::resolve(&mut check, &[&timing, &self.timing, vs_timing], &inherited);
            self.real.checks.push(check);
        }
        self.real
    }
}

fn real_server(node: &Node, diags: &mut Diagnostics) -> Option<RealDraft> {
    let addr = socket_addr(node, diags);
    let mut draft = RealDraft {
        real: RealServer {
            pos: node.pos().clone(),
            addr: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0),
            weight: Weight::default(),
            checks: Vec::new(),
            method: ForwardMethod::Nat,
            inhibit_on_failure: false,
            alpha: false,
            notify_up: None,
            notify_down: None,
            uthreshold: None,
            lthreshold: None,
        },
        weight: None,
        method: None,
        inhibit: None,
        alpha: None,
        virtualhost: None,
        timing: checker::TimingDraft::default(),
        checks: Vec::new(),
    };
    for child in block(node, diags) {
        if draft.timing.read(child, diags) {
            continue;
        }
        if let Some(checker) = checker::read(child, diags) {
            draft.checks.extend(checker);
            continue;
        }
        let real = &mut draft.real;
        match child.name() {
            "weight" => set_some(&mut draft.weight, child, diags, weight),
            "lvs_method" => draft.method = method(child, diags),
            "inhibit_on_failure" => draft.inhibit = Some(flag(child, diags)),
            "alpha" => draft.alpha = Some(flag(child, diags)),
            "virtualhost" => set_some(&mut draft.virtualhost, child, diags, |v| Ok(v.to_string())),
            "notify_up" => real.notify_up = command(child, diags),
            "notify_down" => real.notify_down = command(child, diags),
            "uthreshold" => set_some(&mut real.uthreshold, child, diags, value::count),
            "lthreshold" => set_some(&mut real.lthreshold, child, diags, value::count),
            "smtp_alert" | "snmp_name" => unsupported(child, diags),
            _ => unknown(child, diags),
        }
    }
    draft.real.addr = addr?;
    Some(draft)
}

pub(super) fn virtual_server_group(
    node: &Node,
    diags: &mut Diagnostics,
) -> Option<VirtualServerGroup> {
    let name = block_name(node, diags);
    let mut entries = Vec::new();
    for line in block(node, diags) {
        super::no_block(line, diags);
        let kind =
            match (line.name(), line.args.as_slice()) {
                ("fwmark", [mark, family @ ..]) => {
                    if let [f] = family
                        && f.value != "inet"
                        && f.value != "inet6"
                    {
                        diags.error(
                            &f.pos,
                            format!("unknown family '{}' (expected inet or inet6)", f.value),
                        );
                    }
                    parsed(
                        mark,
                        value::integer(&mark.value, 1, u64::from(u32::MAX)),
                        diags,
                    )
                    .map(|m| GroupEntryKind::Fwmark(m as u32))
                }
                (range, [port]) => {
                    let range = parsed(&line.keyword, value::address_range(range), diags);
                    let port = parsed(port, value::port(&port.value), diags);
                    range
                        .zip(port)
                        .map(|((first, last), port)| GroupEntryKind::Range { first, last, port })
                }
                (range, []) => parsed(&line.keyword, value::address_range(range), diags).map(
                    |(first, last)| GroupEntryKind::Range {
                        first,
                        last,
                        port: 0,
                    },
                ),
                _ => {
                    diags.error(line.pos(), "expected ADDRESS[-LAST] PORT or 'fwmark' N");
                    None
                }
            };
        entries.extend(kind.map(|kind| GroupEntry {
            pos: line.pos().clone(),
            kind,
        }));
    }
    let name = name?;
    if entries.is_empty() {
        diags.warning(
            node.pos(),
            format!("virtual_server_group '{}' has no entries", name.value),
        );
    }
    Some(VirtualServerGroup {
        pos: node.pos().clone(),
        name: name.value.clone(),
        entries,
    })
}

/// `ADDRESS [PORT]` of a service or a real; a missing port is 0.
fn socket_addr(node: &Node, diags: &mut Diagnostics) -> Option<SocketAddr> {
    let (ip, port) = match node.args.as_slice() {
        [ip] => (ip, None),
        [ip, port] => (ip, Some(port)),
        _ => {
            diags.error(
                node.pos(),
                format!("'{}' needs an address and a port", node.name()),
            );
            return None;
        }
    };
    let ip = parsed(ip, value::ip(&ip.value), diags);
    let port = match port {
        Some(p) => parsed(p, value::port(&p.value), diags)?,
        None => 0,
    };
    Some(SocketAddr::new(ip?, port))
}

/// `lb_kind` / `lvs_method`: `DR`, `NAT` or `TUN [type ipip] [csum options]`.
fn method(node: &Node, diags: &mut Diagnostics) -> Option<ForwardMethod> {
    let args = args(node, 1, usize::MAX, diags)?;
    let method = parsed(&args[0], method_name(&args[0].value), diags)?;
    if node.name() == "lb_kind" && args.len() > 1 {
        diags.error(
            &args[1].pos,
            "'lb_kind' takes one argument; tunnel options go with 'lvs_method'",
        );
    }
    check_tunnel_options(&args[1..], method, diags);
    Some(method)
}

fn method_name(name: &str) -> Result<ForwardMethod, String> {
    match name {
        "DR" => Ok(ForwardMethod::Dr),
        "NAT" => Ok(ForwardMethod::Nat),
        "TUN" => Ok(ForwardMethod::Tun),
        "PMTUD" | "LOCAL" | "BYPASS" => Err(format!("lb_kind '{name}' is not supported by xlb")),
        _ => Err(format!(
            "unknown lb_kind '{name}' (expected DR, NAT or TUN)"
        )),
    }
}

/// IPVS tunnel options: xlb encapsulates in IPIP only.
fn check_tunnel_options(options: &[Arg], method: ForwardMethod, diags: &mut Diagnostics) {
    let mut options = options.iter();
    while let Some(opt) = options.next() {
        match (method, opt.value.as_str()) {
            (ForwardMethod::Tun, "type") => match options.next() {
                Some(t) if t.value == "ipip" => {}
                Some(t) => diags.error(
                    &t.pos,
                    format!(
                        "tunnel type '{}' is not supported by xlb (only ipip)",
                        t.value
                    ),
                ),
                None => diags.error(&opt.pos, "'type' needs a value"),
            },
            (ForwardMethod::Tun, "port") => {
                options.next();
            }
            (ForwardMethod::Tun, "nocsum" | "csum" | "remcsum") => diags.warning(
                &opt.pos,
                format!(
                    "tunnel option '{}' is not supported by xlb yet and is ignored",
                    opt.value
                ),
            ),
            _ => diags.error(&opt.pos, format!("unexpected '{}'", opt.value)),
        }
    }
}

fn scheduler(name: &str) -> Result<Scheduler, String> {
    Scheduler::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| format!("unknown lb_algo '{name}'"))
}

fn protocol(name: &str) -> Result<Protocol, String> {
    match name {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "SCTP" => Ok(Protocol::Sctp),
        _ => Err(format!(
            "unknown protocol '{name}' (expected TCP, UDP or SCTP)"
        )),
    }
}

fn weight(text: &str) -> Result<Weight, String> {
    value::integer(text, 0, u64::from(Weight::MAX))
        .map(|w| Weight::new(w as u32).expect("range checked"))
}

#[cfg(test)]
mod tests {
    use crate::config::{Check, ServiceEndpoint, read::testing::read};

    use super::*;

    #[test]
    fn checker_timing_falls_through_checker_real_service() {
        let (config, _) = read(
            "virtual_server 203.0.113.1 80 {\n delay_loop 10\n retry 4\n connect_timeout 2\n \
             real_server 192.0.2.1 80 {\n  delay_before_retry 7\n  TCP_CHECK {\n   retry 1\n  }\n \
             }\n real_server 192.0.2.2 80 {\n  delay_loop 3\n  TCP_CHECK {\n  }\n }\n warmup 9\n}\n",
        );
        let vs = &config.virtual_servers[0];
        assert_eq!(vs.delay_loop, Duration::from_secs(10));
        let timing = |i: usize| match &vs.real_servers[i].checks[0] {
            Check::Tcp(c) => c.timing.clone(),
            _ => panic!("TCP_CHECK"),
        };
        let first = timing(0);
        assert_eq!(first.retry, 1);
        assert_eq!(first.delay_before_retry, Duration::from_secs(7));
        assert_eq!(first.connect_timeout, Duration::from_secs(2));
        assert_eq!(
            first.warmup,
            Duration::from_secs(9),
            "set after the reals, still applies"
        );
        assert_eq!(
            first.delay_loop,
            Duration::from_secs(10),
            "without one of its own, a checker runs at the service's delay_loop"
        );
        let second = timing(1);
        assert_eq!(second.retry, 4);
        assert_eq!(second.delay_loop, Duration::from_secs(3));
    }

    #[test]
    fn service_options_and_real_defaults() {
        let (config, warnings) = read(
            "virtual_server fwmark 7 {\n ip_family inet6\n lvs_sched mh\n mh-port\n lvs_method TUN type ipip\n \
             persistence_granularity ffff:ffff::\n inhibit_on_failure\n quorum 2\n hysteresis 1\n \
             quorum_up \"/bin/up x\"\n sorry_server 2001:db8::9 0\n \
             real_server 2001:db8::1 {\n  weight 5\n }\n real_server 2001:db8::2 {\n  lvs_method DR\n  \
             inhibit_on_failure\n  MISC_CHECK {\n   misc_path \"/bin/check 'a b'\"\n   misc_dynamic\n  }\n }\n}\n",
        );
        assert_eq!(warnings, "");
        let vs = &config.virtual_servers[0];
        assert_eq!(vs.target, ServiceTarget::Fwmark(7));
        assert_eq!(vs.family, Some(Family::Ipv6));
        assert_eq!(
            (vs.scheduler, vs.scheduler_flags.flag2),
            (Scheduler::Mh, true)
        );
        assert_eq!(vs.method, ForwardMethod::Tun);
        assert_eq!(
            vs.persistence.as_ref().unwrap().timeout,
            DEFAULT_PERSISTENCE
        );
        assert_eq!((vs.quorum.quorum, vs.quorum.hysteresis), (2, 1));
        assert_eq!(vs.quorum.up.as_ref().unwrap().argv, ["/bin/up", "x"]);
        assert_eq!(vs.sorry_server.as_ref().unwrap().method, ForwardMethod::Tun);
        let (a, b) = (&vs.real_servers[0], &vs.real_servers[1]);
        assert_eq!(
            (a.addr.port(), a.weight.get(), a.method),
            (0, 5, ForwardMethod::Tun)
        );
        assert_eq!((b.weight.get(), b.method), (1, ForwardMethod::Dr));
        assert!(a.inhibit_on_failure && b.inhibit_on_failure);
        let Check::Misc(misc) = &b.checks[0] else {
            panic!("MISC_CHECK")
        };
        assert_eq!(misc.command.argv, ["/bin/check", "a b"]);
        assert!(misc.dynamic);
    }

    #[test]
    fn groups_expand_ranges_and_subnets() {
        let (config, _) = read(
            "virtual_server_group G {\n 192.0.2.1-3 80\n 198.51.100.0/31 53\n fwmark 9\n}\n\
             virtual_server_group G6 {\n 2001:db8::a-c 443\n}\n\
             virtual_server group G {\n protocol UDP\n}\nvirtual_server group G6 {\n}\n",
        );
        let endpoints = |i: usize| config.service_endpoints(&config.virtual_servers[i]);
        let addr = |s: &str| ServiceEndpoint::Addr(s.parse().unwrap());
        assert_eq!(
            endpoints(0),
            [
                addr("192.0.2.1:80"),
                addr("192.0.2.2:80"),
                addr("192.0.2.3:80"),
                addr("198.51.100.0:53"),
                addr("198.51.100.1:53"),
                ServiceEndpoint::Fwmark(9),
            ]
        );
        assert_eq!(
            endpoints(1),
            [
                addr("[2001:db8::a]:443"),
                addr("[2001:db8::b]:443"),
                addr("[2001:db8::c]:443")
            ]
        );
    }

    #[test]
    fn http_checks_inherit_virtualhost_and_read_urls() {
        let (config, warnings) = read(
            "virtual_server 203.0.113.1 443 {\n virtualhost example.org\n real_server 192.0.2.1 443 {\n  \
             SSL_GET {\n   nb_get_retry 2\n   url {\n    path /health\n    status_code 200 301-302\n   }\n  }\n }\n}\n",
        );
        assert_eq!(
            warnings,
            "t.conf:5:4: warning: 'nb_get_retry' is the old name of 'retry'\n"
        );
        let Check::Ssl(ssl) = &config.virtual_servers[0].real_servers[0].checks[0] else {
            panic!("SSL_GET")
        };
        assert_eq!(ssl.virtualhost.as_deref(), Some("example.org"));
        assert_eq!(ssl.timing.retry, 2);
        assert_eq!(ssl.urls[0].status_codes, [200..=200, 301..=302]);
    }

    #[test]
    fn checker_defaults_depend_on_the_kind() {
        let (config, _) = read(
            "virtual_server 203.0.113.1 53 {\n delay_loop 10\n real_server 192.0.2.1 53 {\n  \
             MISC_CHECK {\n   misc_path /bin/true\n  }\n  DNS_CHECK {\n  }\n  \
             HTTP_GET {\n   url {\n    path /\n   }\n  }\n  TCP_CHECK {\n  }\n }\n \
             real_server 192.0.2.2 53 {\n  retry 5\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n }\n}\n",
        );
        let timing = |real: usize, i: usize| {
            config.virtual_servers[0].real_servers[real].checks[i]
                .timing()
                .unwrap()
                .clone()
        };
        let secs = Duration::from_secs;
        assert_eq!(
            (timing(0, 0).retry, timing(0, 0).delay_before_retry),
            (0, secs(1))
        );
        assert_eq!(
            (timing(0, 1).retry, timing(0, 1).delay_before_retry),
            (3, secs(10))
        );
        assert_eq!(
            (timing(0, 2).retry, timing(0, 2).delay_before_retry),
            (1, secs(3))
        );
        assert_eq!(
            (timing(0, 3).retry, timing(0, 3).delay_before_retry),
            (1, secs(1))
        );
        assert_eq!(
            timing(1, 0).retry,
            5,
            "a real's retry beats the kind's default"
        );
    }

    #[test]
    fn alpha_is_the_checker_s_or_the_real_s() {
        let (config, warnings) = read(
            "virtual_server 203.0.113.1 80 {\n alpha\n real_server 192.0.2.1 80 {\n  \
             TCP_CHECK {\n  }\n  TCP_CHECK {\n   alpha no\n  }\n  MISC_CHECK {\n   \
             misc_path /bin/true\n   alpha false\n  }\n }\n}\n",
        );
        assert_eq!(warnings, "");
        let alpha = |i: usize| {
            config.virtual_servers[0].real_servers[0].checks[i]
                .timing()
                .unwrap()
                .alpha
        };
        assert_eq!((alpha(0), alpha(1), alpha(2)), (true, false, false));
    }

    #[test]
    fn udp_hex_strings_read_like_keepalived_s() {
        let (config, _) = read(
            "virtual_server 203.0.113.1 53 {\n protocol UDP\n real_server 192.0.2.1 53 {\n  \
             UDP_CHECK {\n   payload Ab12f 3 456\n   require_reply 12 3X x4\n   \
             max_reply_length 512\n  }\n }\n}\n",
        );
        let Check::Udp(udp) = &config.virtual_servers[0].real_servers[0].checks[0] else {
            panic!("UDP_CHECK")
        };
        assert_eq!(
            udp.payload.as_deref(),
            Some(&[0xab, 0x12, 0x0f, 0x03, 0x45, 0x06][..])
        );
        let reply = udp.require_reply.as_ref().unwrap();
        assert_eq!(reply.bytes, [0x12, 0x30, 0x04]);
        assert_eq!(reply.mask, [0xff, 0xf0, 0x0f]);
        assert!(reply.matches(&[0x12, 0x3a, 0xb4, 0x99]));
        assert!(!reply.matches(&[0x13]));
        assert_eq!((udp.min_reply_length, udp.max_reply_length), (0, 512));
    }

    #[test]
    fn file_checks_take_weights_beyond_vrrp_s() {
        let (config, _) = read(
            "track_file tf {\n file /run/xlb-weight\n}\nvirtual_server 203.0.113.1 80 {\n \
             real_server 192.0.2.1 80 {\n  FILE_CHECK {\n   track_file tf\n   weight 1000 reverse\n  }\n }\n}\n",
        );
        let Check::File(file) = &config.virtual_servers[0].real_servers[0].checks[0] else {
            panic!("FILE_CHECK")
        };
        let weight = file.weight.unwrap();
        assert_eq!((weight.weight, weight.reverse), (1000, true));
    }
}
