//! The static network every BPF test-run bed has: the director's two sides as interfaces
//! with permanent neighbours and fixed routes, so that the program's `bpf_fib_lookup` sees
//! a predictable world (addresses from [`xlb_testbed::addrs`]):
//!
//! - `lb0` 192.0.2.2/24 and 2001:db8:2::2/64, the reals' side: reals 192.0.2.11-13 and
//!   2001:db8:2::11-12 resolved; 192.0.2.99 and 2001:db8:2::99 never resolved; a gateway
//!   192.0.2.254 leading to 203.0.113.128/25; reals 192.0.2.14 and 2001:db8:2::14,
//!   resolved, behind routes of MTU 600 and 1400.
//! - `lb1` 198.51.100.2/24 and 2001:db8:1::2/64, the clients' side: the client
//!   198.51.100.7 and 2001:db8:1::7 resolved, and a real 198.51.100.21.
//!
//! MACs are the test bed's ([`MacAddr`]): each host's is made of its address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xlb_testbed::{
    MacAddr, StaticNet,
    addrs::{self, client_side_ipv6_for, ipv6_for},
};

/// The director's interface on the reals' side, and its IPv6 address there.
pub const LB0: Ipv4Addr = addrs::DIRECTOR;
pub const LB0_6: Ipv6Addr = ipv6_for(LB0);
/// The director's interface on the clients' side, and its IPv6 address there.
pub const LB1: Ipv4Addr = addrs::DIRECTOR_CLIENT_SIDE;
pub const LB1_6: Ipv6Addr = client_side_ipv6_for(LB1);

/// The client, resolved on `lb1`.
pub const CLIENT: Ipv4Addr = addrs::CLIENT;
pub const CLIENT6: Ipv6Addr = client_side_ipv6_for(CLIENT);

pub const REALS: [Ipv4Addr; 3] = addrs::REALS;
pub const REAL1: Ipv4Addr = REALS[0];
pub const REAL2: Ipv4Addr = REALS[1];
pub const REAL3: Ipv4Addr = REALS[2];
pub const REAL6_1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x11);
pub const REAL6_2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x12);
/// A real on the clients' side, reached out of `lb1`.
pub const REMOTE_REAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 21);
/// The next hop to 203.0.113.128/25 (where 203.0.113.200, a TUN real, is).
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
/// Reals behind routes of MTU 600 (IPv4) and 1400 (IPv6).
pub const SMALL_MTU_REAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 14);
pub const SMALL_MTU_REAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x14);

pub const VIP: Ipv4Addr = addrs::VIP;

/// The test bed's MAC for the host with address `addr`; the director's interfaces have the
/// MACs of their IPv4 addresses.
pub fn mac(addr: impl Into<IpAddr>) -> [u8; 6] {
    match addr.into() {
        IpAddr::V4(v4) => MacAddr::for_ipv4(v4).0,
        IpAddr::V6(v6) => MacAddr::for_ipv6(v6).0,
    }
}

/// The interfaces' indexes.
pub struct Interfaces {
    pub lb0: u32,
    pub lb1: u32,
}

/// Builds the network in a namespace of its own, named after `tag`.
pub fn build(tag: &str) -> anyhow::Result<(StaticNet, Interfaces)> {
    let net = StaticNet::new(tag)?;
    let lb0 = net.add_interface("lb0", LB0, 24)?;
    let lb1 = net.add_interface("lb1", LB1, 24)?;
    for real in [REAL1, REAL2, REAL3, GATEWAY, SMALL_MTU_REAL] {
        net.add_neighbour("lb0", real)?;
    }
    for host in [REMOTE_REAL, CLIENT] {
        net.add_neighbour("lb1", host)?;
    }
    net.add_ipv6_address("lb0", LB0_6, 64)?;
    net.add_ipv6_address("lb1", LB1_6, 64)?;
    for real in [REAL6_1, REAL6_2, SMALL_MTU_REAL6] {
        net.add_ipv6_neighbour("lb0", real)?;
    }
    net.add_ipv6_neighbour("lb1", CLIENT6)?;
    for (real, mtu) in [
        (IpAddr::V4(SMALL_MTU_REAL), "600"),
        (IpAddr::V6(SMALL_MTU_REAL6), "1400"),
    ] {
        let real = real.to_string();
        net.ns()
            .ip(&["route", "add", &real, "dev", "lb0", "mtu", "lock", mtu])?;
    }
    net.add_route("203.0.113.128/25", IpAddr::V4(GATEWAY))?;
    Ok((net, Interfaces { lb0, lb1 }))
}
