//! The typed configuration every subsystem takes its settings from.
//!
//! Values are what keepalived means by them (durations, addresses, enums), each with the
//! position it was read from so that later stages can point at the line they cannot honour.

use std::{fmt, net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::diag::Pos;

/// A whole keepalived.conf.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Config {
    pub virtual_servers: Vec<VirtualServer>,
}

/// `virtual_server ADDRESS PORT | fwmark N | group NAME { ... }`: one IPVS service.
#[derive(Clone, Debug, Serialize)]
pub struct VirtualServer {
    pub pos: Pos,
    pub target: ServiceTarget,
    pub protocol: Protocol,
    pub scheduler: Scheduler,
    pub method: ForwardMethod,
    /// How often checkers of this service's reals run (`delay_loop`).
    pub delay_loop: Duration,
    pub real_servers: Vec<RealServer>,
}

/// What a `virtual_server` matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceTarget {
    Addr(SocketAddr),
    Fwmark(u32),
    /// A `virtual_server_group` by name.
    Group(String),
}

/// `real_server ADDRESS PORT { ... }`.
#[derive(Clone, Debug, Serialize)]
pub struct RealServer {
    pub pos: Pos,
    pub addr: SocketAddr,
    pub weight: Weight,
    pub checks: Vec<Check>,
}

/// `protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// `lb_algo`: the IPVS schedulers, by their IPVS names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Fo,
    Ovf,
    Mh,
}

impl Scheduler {
    pub const ALL: [Scheduler; 13] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
        }
    }
}

/// `lb_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ForwardMethod {
    Dr,
    Nat,
    Tun,
}

/// A real server's IPVS weight: 0 takes no new connections, keeps existing ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Weight(u32);

impl Weight {
    /// The largest weight IPVS and keepalived accept.
    pub const MAX: u32 = 65535;

    pub const fn new(weight: u32) -> Option<Self> {
        if weight <= Self::MAX {
            Some(Self(weight))
        } else {
            None
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for Weight {
    fn default() -> Self {
        Self(1)
    }
}

/// A health checker of a real server.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub enum Check {
    #[serde(rename = "TCP_CHECK")]
    Tcp(TcpCheck),
}

/// `TCP_CHECK { ... }`: the real is up while a TCP connection to it succeeds.
#[derive(Clone, Debug, Serialize)]
pub struct TcpCheck {
    pub pos: Pos,
    pub connect: CheckConnect,
    pub timing: CheckTiming,
}

/// Where a checker connects: the real's own address and port unless told otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckConnect {
    pub ip: Option<std::net::IpAddr>,
    pub port: Option<u16>,
    pub bind_ip: Option<std::net::IpAddr>,
}

/// When a checker runs and how much failure it tolerates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckTiming {
    /// `connect_timeout`.
    pub connect_timeout: Duration,
    /// `retry`: further attempts after a failure before the real is declared down.
    pub retry: u32,
    /// `delay_before_retry`.
    pub delay_before_retry: Duration,
    /// The checker's own `delay_loop`, overriding the service's.
    pub delay_loop: Option<Duration>,
}

impl Default for CheckTiming {
    /// keepalived's defaults.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
            delay_loop: None,
        }
    }
}
