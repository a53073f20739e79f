//! The test bed's address plan, from the documentation prefixes (RFC 5737, RFC 3849): one
//! address has one role in every topology and fixture.
//!
//! - 192.0.2.0/24, the reals' segment: the reals [`REALS`], the director [`DIRECTOR`] (a
//!   second one, [`DIRECTOR2`], in failover) and, where it shares that segment (LVS-DR,
//!   failover), the client [`SEGMENT_CLIENT`]; in IPv6 2001:db8:2::/64 ([`ipv6_for`]).
//! - 198.51.100.0/24, the clients' segment beyond the director (LVS-NAT, the data plane's
//!   fixtures): the client [`CLIENT`] and the director's [`DIRECTOR_CLIENT_SIDE`]; in IPv6
//!   2001:db8:1::/64 ([`client_side_ipv6_for`]).
//! - 203.0.113.0/24 and 2001:db8:203::/64: the VIPs, which clients route via the director.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The real servers `real1`..`real3`.
pub const REALS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 11),
    Ipv4Addr::new(192, 0, 2, 12),
    Ipv4Addr::new(192, 0, 2, 13),
];
/// The director, on the reals' segment.
pub const DIRECTOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The second director of the failover topology.
pub const DIRECTOR2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
/// A client on the reals' segment.
pub const SEGMENT_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// A VIP on the reals' segment, found by ARP: the one VRRP moves between directors.
pub const SEGMENT_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

/// The client on its own segment.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// The director on the clients' segment.
pub const DIRECTOR_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// The VIP, and the prefix clients route via the director.
pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const VIP_PREFIX: &str = "203.0.113.0/24";
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x10);
pub const VIP6_PREFIX: &str = "2001:db8:203::/64";

/// Where the VIP serves HTTP, and so do the reals, except behind NAT...
pub const HTTP_PORT: u16 = 80;
/// ...which translates to this port.
pub const NAT_REAL_PORT: u16 = 8080;

/// The IPv6 address on the reals' segment of the host with IPv4 address `v4` there:
/// 2001:db8:2:: and the last byte of `v4` (192.0.2.11 is 2001:db8:2::b).
pub const fn ipv6_for(v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, v4.octets()[3] as u16)
}

/// The IPv6 address on the clients' segment of the host with IPv4 address `v4` there:
/// 2001:db8:1:: and the last byte of `v4` (198.51.100.7 is 2001:db8:1::7).
pub const fn client_side_ipv6_for(v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, v4.octets()[3] as u16)
}
