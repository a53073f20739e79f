//! LVS: `virtual_server`, `virtual_server_group`, `real_server` and health checkers.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    ops::RangeInclusive,
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::{Command, Family, Pos, TrackWeight};

/// keepalived's `delay_loop` when neither a service nor its checkers set one.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);

/// `virtual_server ADDRESS PORT | fwmark N | group NAME { ... }`: one IPVS service.
#[derive(Clone, Debug, Serialize)]
pub struct VirtualServer {
    pub pos: Pos,
    pub target: ServiceTarget,
    pub protocol: Protocol,
    pub scheduler: Scheduler,
    pub scheduler_flags: SchedulerFlags,
    pub method: ForwardMethod,
    /// How often checkers of this service's reals run (`delay_loop`).
    pub delay_loop: Duration,
    pub real_servers: Vec<RealServer>,
    /// `ip_family`, or the family of the address; needed for fwmark services.
    pub family: Option<Family>,
    pub persistence: Option<Persistence>,
    pub quorum: Quorum,
    /// Reals start as down until their checkers succeed.
    pub alpha: bool,
    /// Run `quorum_down` on shutdown too.
    pub omega: bool,
    /// Failed reals get weight 0 instead of being removed (service-wide default).
    pub inhibit_on_failure: bool,
    /// Serves when every real is down.
    pub sorry_server: Option<SorryServer>,
    /// Host header for HTTP checkers that set none.
    pub virtualhost: Option<String>,
    /// Only configure the service while a VRRP instance owns its address.
    pub ha_suspend: bool,
    /// One-packet scheduling (UDP).
    pub one_packet: bool,
}

/// What a `virtual_server` matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceTarget {
    Addr(SocketAddr),
    Fwmark(u32),
    /// A `virtual_server_group` by name.
    Group(String),
}

/// One concrete thing a service matches, after expanding groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceEndpoint {
    Addr(SocketAddr),
    Fwmark(u32),
}

/// `virtual_server_group NAME { ... }`.
#[derive(Clone, Debug, Serialize)]
pub struct VirtualServerGroup {
    pub pos: Pos,
    pub name: String,
    pub entries: Vec<GroupEntry>,
}

impl VirtualServerGroup {
    /// Every address (ranges expanded) and mark of the group, in the order written.
    pub fn endpoints(&self) -> impl Iterator<Item = ServiceEndpoint> + '_ {
        self.entries.iter().flat_map(|entry| entry.endpoints())
    }

    /// The family of the first address entry (marks have none).
    pub fn family(&self) -> Option<Family> {
        self.entries.iter().find_map(GroupEntry::family)
    }
}

/// One line of a `virtual_server_group`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupEntry {
    pub pos: Pos,
    pub kind: GroupEntryKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupEntryKind {
    /// `ADDRESS[-LAST] PORT`: the range varies the last byte (IPv4) or the last 16-bit
    /// group (IPv6), keepalived's notation `192.0.2.1-10`.
    Range {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark(u32),
}

impl GroupEntry {
    pub fn endpoints(&self) -> Box<dyn Iterator<Item = ServiceEndpoint> + '_> {
        match &self.kind {
            GroupEntryKind::Fwmark(mark) => {
                Box::new(std::iter::once(ServiceEndpoint::Fwmark(*mark)))
            }
            GroupEntryKind::Range { first, last, port } => {
                let port = *port;
                Box::new(
                    address_range(*first, *last)
                        .map(move |ip| ServiceEndpoint::Addr(SocketAddr::new(ip, port))),
                )
            }
        }
    }

    pub fn family(&self) -> Option<Family> {
        match &self.kind {
            GroupEntryKind::Range { first, .. } => Some(Family::of(first)),
            GroupEntryKind::Fwmark(_) => None,
        }
    }
}

/// The addresses from `first` to `last` inclusive; both share all but the varying part.
fn address_range(first: IpAddr, last: IpAddr) -> impl Iterator<Item = IpAddr> {
    let (lo, hi) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
        _ => (1, 0),
    };
    (lo..=hi).map(move |n| match first {
        IpAddr::V4(_) => IpAddr::V4((n as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(n.into()),
    })
}

/// `persistence_timeout` and friends: a client sticks to one real.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Persistence {
    pub timeout: Duration,
    /// `persistence_granularity`: clients in one network of this mask share a real.
    pub granularity: Option<IpAddr>,
    /// `persistence_engine` (IPVS SIP persistence).
    pub engine: Option<String>,
}

/// Service quorum: the sum of weights of live reals that counts as "up".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quorum {
    pub quorum: u32,
    pub hysteresis: u32,
    pub up: Option<Command>,
    pub down: Option<Command>,
}

impl Default for Quorum {
    fn default() -> Self {
        Self {
            quorum: 1,
            hysteresis: 0,
            up: None,
            down: None,
        }
    }
}

/// IPVS scheduler flags (`sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`, `flag-N`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SchedulerFlags {
    /// IP_VS_SVC_F_SCHED1: `sh-fallback` / `mh-fallback`.
    pub flag1: bool,
    /// IP_VS_SVC_F_SCHED2: `sh-port` / `mh-port`.
    pub flag2: bool,
    /// IP_VS_SVC_F_SCHED3.
    pub flag3: bool,
}

/// `sorry_server ADDRESS PORT`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SorryServer {
    pub pos: Pos,
    pub addr: SocketAddr,
    pub method: ForwardMethod,
    /// `sorry_server_inhibit`.
    pub inhibit: bool,
}

/// `real_server ADDRESS [PORT] { ... }`.
#[derive(Clone, Debug, Serialize)]
pub struct RealServer {
    pub pos: Pos,
    /// Port 0 when none was written (fwmark services).
    pub addr: SocketAddr,
    pub weight: Weight,
    pub checks: Vec<Check>,
    /// Resolved: the real's own `lvs_method`, or the service's.
    pub method: ForwardMethod,
    /// Resolved: the real's own setting, or the service's.
    pub inhibit_on_failure: bool,
    /// Resolved: starts down until checked (the real's `alpha`, or the service's).
    pub alpha: bool,
    pub notify_up: Option<Command>,
    pub notify_down: Option<Command>,
    /// Connection thresholds (IPVS upper/lower).
    pub uthreshold: Option<u32>,
    pub lthreshold: Option<u32>,
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

    /// The protocol of IP protocol number `number`, if it is one a service may have.
    pub const fn from_number(number: u8) -> Option<Self> {
        match number {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
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
    #[serde(rename = "HTTP_GET")]
    Http(HttpCheck),
    #[serde(rename = "SSL_GET")]
    Ssl(HttpCheck),
    #[serde(rename = "MISC_CHECK")]
    Misc(MiscCheck),
    #[serde(rename = "UDP_CHECK")]
    Udp(UdpCheck),
    #[serde(rename = "DNS_CHECK")]
    Dns(DnsCheck),
    #[serde(rename = "PING_CHECK")]
    Ping(PingCheck),
    #[serde(rename = "SMTP_CHECK")]
    Smtp(SmtpCheck),
    #[serde(rename = "FILE_CHECK")]
    File(FileCheck),
    #[serde(rename = "BFD_CHECK")]
    Bfd(BfdCheck),
}

impl Check {
    /// Where the checker was written.
    pub fn pos(&self) -> &Pos {
        match self {
            Check::Tcp(c) => &c.pos,
            Check::Http(c) | Check::Ssl(c) => &c.pos,
            Check::Misc(c) => &c.pos,
            Check::Udp(c) => &c.pos,
            Check::Dns(c) => &c.pos,
            Check::Ping(c) => &c.pos,
            Check::Smtp(c) => &c.pos,
            Check::File(c) => &c.pos,
            Check::Bfd(c) => &c.pos,
        }
    }

    /// When it runs and how much failure it tolerates; FILE_CHECK and BFD_CHECK follow
    /// something else and have none.
    pub fn timing(&self) -> Option<&CheckTiming> {
        match self {
            Check::Tcp(c) => Some(&c.timing),
            Check::Http(c) | Check::Ssl(c) => Some(&c.timing),
            Check::Misc(c) => Some(&c.timing),
            Check::Udp(c) => Some(&c.timing),
            Check::Dns(c) => Some(&c.timing),
            Check::Ping(c) => Some(&c.timing),
            Check::Smtp(c) => Some(&c.timing),
            Check::File(_) | Check::Bfd(_) => None,
        }
    }

    /// The keyword that introduces this checker.
    pub const fn keyword(&self) -> &'static str {
        match self {
            Check::Tcp(_) => "TCP_CHECK",
            Check::Http(_) => "HTTP_GET",
            Check::Ssl(_) => "SSL_GET",
            Check::Misc(_) => "MISC_CHECK",
            Check::Udp(_) => "UDP_CHECK",
            Check::Dns(_) => "DNS_CHECK",
            Check::Ping(_) => "PING_CHECK",
            Check::Smtp(_) => "SMTP_CHECK",
            Check::File(_) => "FILE_CHECK",
            Check::Bfd(_) => "BFD_CHECK",
        }
    }
}

/// `TCP_CHECK { ... }`: the real is up while a TCP connection to it succeeds.
#[derive(Clone, Debug, Serialize)]
pub struct TcpCheck {
    pub pos: Pos,
    pub connect: CheckConnect,
    pub timing: CheckTiming,
}

/// `HTTP_GET` / `SSL_GET { ... }`: the real is up while every URL answers as expected.
#[derive(Clone, Debug, Serialize)]
pub struct HttpCheck {
    pub pos: Pos,
    pub connect: CheckConnect,
    pub timing: CheckTiming,
    pub urls: Vec<Url>,
    /// Host header: the checker's, the real's or the service's `virtualhost`.
    pub virtualhost: Option<String>,
    pub http_protocol: HttpProtocol,
    /// Send SNI (SSL_GET).
    pub enable_sni: bool,
    /// keepalived: fetch the URLs back to back, not one per `delay_loop`, at start and when
    /// recovering. xlb always fetches all of them in one round.
    pub fast_recovery: bool,
}

/// `http_protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum HttpProtocol {
    #[serde(rename = "1.0")]
    Http10,
    /// keepalived's default: HTTP/1.0 with a Host header and Connection: close.
    #[default]
    #[serde(rename = "1.0C")]
    Http10C,
    #[serde(rename = "1.1")]
    Http11,
}

/// `url { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Url {
    pub pos: Pos,
    pub path: String,
    /// MD5 of the body, lowercase hex.
    pub digest: Option<String>,
    /// Accepted status codes; 200–299 when none are given.
    pub status_codes: Vec<RangeInclusive<u16>>,
    pub virtualhost: Option<String>,
    /// `regex`: the body must match (or, with `regex_no_match`, must not).
    pub regex: Option<String>,
    pub regex_no_match: bool,
}

/// `MISC_CHECK { ... }`: the real is up while a command exits 0.
#[derive(Clone, Debug, Serialize)]
pub struct MiscCheck {
    pub pos: Pos,
    pub command: Command,
    /// `misc_timeout`, by default the check's `delay_loop`.
    pub timeout: Duration,
    /// `misc_dynamic`: exit codes 2–255 set the weight to code − 2.
    pub dynamic: bool,
    pub timing: CheckTiming,
}

/// `UDP_CHECK { ... }`: the real is up while a datagram to it draws no ICMP error (or,
/// with `require_reply`, draws a fitting reply).
#[derive(Clone, Debug, Serialize)]
pub struct UdpCheck {
    pub pos: Pos,
    pub connect: CheckConnect,
    pub timing: CheckTiming,
    /// What to send; keepalived sends 32 arbitrary bytes when `None`.
    pub payload: Option<Vec<u8>>,
    /// `require_reply`: a reply must arrive within `connect_timeout`.
    pub reply_required: bool,
    /// `require_reply HEX`: what the reply must start with.
    pub require_reply: Option<HexPattern>,
    /// Bounds on a required reply's length (keepalived's defaults: 0 and 255).
    pub min_reply_length: u32,
    pub max_reply_length: u32,
}

/// keepalived's `HEX_STR` for replies: bytes where an `X` digit matches any nibble.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HexPattern {
    pub bytes: Vec<u8>,
    /// Per byte, the bits that must equal `bytes`' (0x0f where the high digit was `X`).
    pub mask: Vec<u8>,
}

impl HexPattern {
    /// Whether `data` agrees with the pattern over their common length, as keepalived
    /// compares a reply shorter than its pattern.
    pub fn matches(&self, data: &[u8]) -> bool {
        self.bytes
            .iter()
            .zip(&self.mask)
            .zip(data)
            .all(|((want, mask), got)| (want ^ got) & mask == 0)
    }
}

/// `DNS_CHECK { ... }`.
#[derive(Clone, Debug, Serialize)]
pub struct DnsCheck {
    pub pos: Pos,
    pub connect: CheckConnect,
    pub timing: CheckTiming,
    /// Query type name (A, AAAA, SOA, ...); SOA by default.
    pub query_type: String,
    /// Query name; "." by default.
    pub name: String,
}

/// `PING_CHECK { ... }`: ICMP echo.
#[derive(Clone, Debug, Serialize)]
pub struct PingCheck {
    pub pos: Pos,
    pub connect: CheckConnect,
    pub timing: CheckTiming,
}

/// `SMTP_CHECK { ... }`: greeting, HELO and QUIT must succeed on every host.
#[derive(Clone, Debug, Serialize)]
pub struct SmtpCheck {
    pub pos: Pos,
    pub connect: CheckConnect,
    pub timing: CheckTiming,
    pub helo_name: Option<String>,
    /// `host { ... }` blocks: further endpoints that must all pass.
    pub hosts: Vec<CheckConnect>,
}

/// `FILE_CHECK { ... }`: the real's weight follows a `track_file`.
#[derive(Clone, Debug, Serialize)]
pub struct FileCheck {
    pub pos: Pos,
    pub track_file: String,
    pub weight: Option<TrackWeight>,
}

/// `BFD_CHECK { ... }`: the real follows a `bfd_instance`.
#[derive(Clone, Debug, Serialize)]
pub struct BfdCheck {
    pub pos: Pos,
    pub name: String,
}

/// Where a checker connects: the real's own address and port unless told otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckConnect {
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub bind_ip: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
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
    /// How often the checker runs: its own `delay_loop`, else its real's, else its
    /// service's.
    pub delay_loop: Duration,
    /// `warmup`: a random delay up to this before the first check, by default the
    /// checker's `delay_loop`.
    pub warmup: Duration,
    /// `alpha`: the checker starts failed, so its real waits for a success (the checker's
    /// own setting, or the real's, or the service's).
    pub alpha: bool,
}

impl Default for CheckTiming {
    /// keepalived's defaults.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
            delay_loop: DEFAULT_DELAY_LOOP,
            warmup: DEFAULT_DELAY_LOOP,
            alpha: false,
        }
    }
}
