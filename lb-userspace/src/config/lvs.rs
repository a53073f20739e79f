//! `virtual_server`, `real_server` and their checkers.

use std::{net::SocketAddr, time::Duration};

use super::{
    diag::Diagnostics,
    model::{
        Check, CheckConnect, CheckTiming, ForwardMethod, Protocol, RealServer, Scheduler,
        ServiceTarget, TcpCheck, VirtualServer, Weight,
    },
    tree::{Arg, Node},
    value,
};

/// keepalived's `delay_loop` when a service sets none.
const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);

pub fn virtual_server(node: &Node, diags: &mut Diagnostics) -> Option<VirtualServer> {
    let target = match node.args.first().map(|a| a.value.as_str()) {
        Some("fwmark" | "group") => {
            diags.error(
                node.pos(),
                format!(
                    "'virtual_server {}' is not supported yet",
                    node.args[0].value
                ),
            );
            return None;
        }
        _ => ServiceTarget::Addr(socket_addr(node, diags)?),
    };
    let mut vs = VirtualServer {
        pos: node.pos().clone(),
        target,
        protocol: Protocol::Tcp,
        scheduler: Scheduler::Wlc,
        method: ForwardMethod::Nat,
        delay_loop: DEFAULT_DELAY_LOOP,
        real_servers: Vec::new(),
    };
    for child in node.children() {
        match child.name() {
            "delay_loop" => set(&mut vs.delay_loop, child, diags, |a| {
                value::seconds(&a.value)
            }),
            "lb_algo" => set(&mut vs.scheduler, child, diags, |a| scheduler(&a.value)),
            "lb_kind" => set(&mut vs.method, child, diags, |a| method(&a.value)),
            "protocol" => set(&mut vs.protocol, child, diags, |a| protocol(&a.value)),
            "real_server" => vs.real_servers.extend(real_server(child, diags)),
            _ => not_supported(child, diags),
        }
    }
    Some(vs)
}

fn real_server(node: &Node, diags: &mut Diagnostics) -> Option<RealServer> {
    let addr = socket_addr(node, diags)?;
    let mut rs = RealServer {
        pos: node.pos().clone(),
        addr,
        weight: Weight::default(),
        checks: Vec::new(),
    };
    for child in node.children() {
        match child.name() {
            "weight" => set(&mut rs.weight, child, diags, |a| weight(&a.value)),
            "TCP_CHECK" => rs.checks.push(Check::Tcp(tcp_check(child, diags))),
            _ => not_supported(child, diags),
        }
    }
    Some(rs)
}

fn tcp_check(node: &Node, diags: &mut Diagnostics) -> TcpCheck {
    let mut connect = CheckConnect::default();
    let mut timing = CheckTiming::default();
    for child in node.children() {
        match child.name() {
            "connect_timeout" => set(&mut timing.connect_timeout, child, diags, |a| {
                value::seconds(&a.value)
            }),
            "retry" => set(&mut timing.retry, child, diags, |a| retry(&a.value)),
            "nb_get_retry" => {
                diags.warning(child.pos(), "'nb_get_retry' is the old name of 'retry'");
                set(&mut timing.retry, child, diags, |a| retry(&a.value));
            }
            "delay_before_retry" => set(&mut timing.delay_before_retry, child, diags, |a| {
                value::seconds(&a.value)
            }),
            "delay_loop" => set_some(&mut timing.delay_loop, child, diags, |a| {
                value::seconds(&a.value)
            }),
            "connect_ip" => set_some(&mut connect.ip, child, diags, |a| value::ip(&a.value)),
            "connect_port" => set_some(&mut connect.port, child, diags, |a| value::port(&a.value)),
            "bindto" => set_some(&mut connect.bind_ip, child, diags, |a| value::ip(&a.value)),
            _ => not_supported(child, diags),
        }
    }
    TcpCheck {
        pos: node.pos().clone(),
        connect,
        timing,
    }
}

/// `ADDRESS PORT` of a service or a real.
fn socket_addr(node: &Node, diags: &mut Diagnostics) -> Option<SocketAddr> {
    let [ip, port] = node.args.as_slice() else {
        diags.error(
            node.pos(),
            format!("'{}' needs an address and a port", node.name()),
        );
        return None;
    };
    let ip = report(diags, ip, value::ip(&ip.value))?;
    let port = report(diags, port, value::port(&port.value))?;
    Some(SocketAddr::new(ip, port))
}

/// Stores the value of a one-argument statement, or reports why it cannot.
fn set<T>(
    slot: &mut T,
    node: &Node,
    diags: &mut Diagnostics,
    read: impl FnOnce(&Arg) -> Result<T, String>,
) {
    if let Some(value) = single(node, diags).and_then(|arg| report(diags, arg, read(arg))) {
        *slot = value;
    }
}

fn set_some<T>(
    slot: &mut Option<T>,
    node: &Node,
    diags: &mut Diagnostics,
    read: impl FnOnce(&Arg) -> Result<T, String>,
) {
    if let Some(value) = single(node, diags).and_then(|arg| report(diags, arg, read(arg))) {
        *slot = Some(value);
    }
}

fn single<'a>(node: &'a Node, diags: &mut Diagnostics) -> Option<&'a Arg> {
    match node.args.as_slice() {
        [arg] => Some(arg),
        _ => {
            diags.error(
                node.pos(),
                format!("'{}' takes exactly one argument", node.name()),
            );
            None
        }
    }
}

fn report<T>(diags: &mut Diagnostics, arg: &Arg, result: Result<T, String>) -> Option<T> {
    result
        .map_err(|message| diags.error(&arg.pos, message))
        .ok()
}

fn not_supported(node: &Node, diags: &mut Diagnostics) {
    diags.warning(
        node.pos(),
        format!("'{}' is not supported yet and is ignored", node.name()),
    );
}

fn scheduler(name: &str) -> Result<Scheduler, String> {
    Scheduler::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| format!("unknown lb_algo '{name}'"))
}

fn method(name: &str) -> Result<ForwardMethod, String> {
    match name {
        "DR" => Ok(ForwardMethod::Dr),
        "NAT" => Ok(ForwardMethod::Nat),
        "TUN" => Ok(ForwardMethod::Tun),
        _ => Err(format!(
            "unknown lb_kind '{name}' (expected DR, NAT or TUN)"
        )),
    }
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

fn retry(text: &str) -> Result<u32, String> {
    value::integer(text, 0, u64::from(u32::MAX)).map(|n| n as u32)
}
