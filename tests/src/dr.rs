//! The LVS-DR topology of the foundation's end-to-end tests and of the demo.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
};

use crate::{Child, HttpServer, Lan, Node, director};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DIRECTOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const REALS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 11),
    Ipv4Addr::new(192, 0, 2, 12),
    Ipv4Addr::new(192, 0, 2, 13),
];
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VIP_PREFIX: &str = "203.0.113.0/24";
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x10);
const VIP6_PREFIX: &str = "2001:db8:203::/64";
const HTTP_PORT: u16 = 80;

/// A client, a director and three real servers `real1`..`real3` on one segment
/// (192.0.2.0/24), with the VIP 203.0.113.10:80.
///
/// The client routes 203.0.113.0/24 via the director. The director has no route to the VIP
/// at all, so VIP traffic reaches a real only if the XDP program forwards it; it forwards on
/// `eth0`, as `bpf_fib_lookup` requires. The reals hold the VIP on `lo` and keep quiet about
/// it in ARP, and answer the client directly, as in LVS-DR.
pub struct DrTopology {
    pub client: Node,
    pub director: Node,
    pub reals: Vec<Node>,
    /// Where clients connect.
    pub vip: SocketAddr,
    pub lan: Lan,
}

impl DrTopology {
    /// Builds the topology; `tag` (letters, digits, '-') names its namespaces.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let topo = Self::without_vips_on_reals(tag)?;
        for real in &topo.reals {
            real.accept_vip_directly(IpAddr::V4(VIP))?;
        }
        Ok(topo)
    }

    /// The topology with reals that do not hold the VIP yet, for a test to make them real
    /// servers its own way (`xlb realserver`).
    pub fn without_vips_on_reals(tag: &str) -> anyhow::Result<Self> {
        let lan = Lan::new(tag, 24)?;
        let client = lan.attach("client", CLIENT)?;
        client.add_route(VIP_PREFIX, IpAddr::V4(DIRECTOR))?;
        let director = lan.attach("director", DIRECTOR)?;
        director.enable_forwarding()?;
        let reals = REALS
            .iter()
            .enumerate()
            .map(|(i, &addr)| lan.attach(&format!("real{}", i + 1), addr))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            client,
            director,
            reals,
            vip: SocketAddr::from((VIP, HTTP_PORT)),
            lan,
        })
    }

    /// Starts an HTTP server on port 80 of every real, answering with the real's name.
    pub fn start_http_servers(&self) -> anyhow::Result<Vec<HttpServer>> {
        self.reals
            .iter()
            .map(|real| real.start_http_server(real.name(), HTTP_PORT))
            .collect()
    }

    /// Adds IPv6 beside IPv4: every host gets [`ipv6_for`] its IPv4 address on the
    /// segment (2001:db8:2::/64), the reals hold the VIP 2001:db8:203::10 as well, and the
    /// client routes 2001:db8:203::/64 via the director. Returns where clients connect.
    pub fn add_ipv6(&self) -> anyhow::Result<SocketAddr> {
        let vip = self.add_ipv6_without_vips_on_reals()?;
        for real in &self.reals {
            real.accept_vip_directly(vip.ip())?;
        }
        Ok(vip)
    }

    /// [`DrTopology::add_ipv6`] but for the VIP on the reals.
    pub fn add_ipv6_without_vips_on_reals(&self) -> anyhow::Result<SocketAddr> {
        for node in [&self.client, &self.director]
            .into_iter()
            .chain(&self.reals)
        {
            node.add_ipv6(ipv6_for(node.addr()), 64)?;
        }
        self.client
            .add_route(VIP6_PREFIX, IpAddr::V6(ipv6_for(DIRECTOR)))?;
        Ok(SocketAddr::from((VIP6, HTTP_PORT)))
    }

    /// Starts `xlb run` on the director, forwarding on its `eth0` with `config` as its
    /// keepalived.conf, and returns it with its run directory (where `xlb status` finds
    /// it) once the client's first request through the VIP is answered.
    pub fn start_xlb(&self, config: &str) -> anyhow::Result<(Child, PathBuf)> {
        self.start_xlb_for(config, self.vip)
    }

    /// [`DrTopology::start_xlb`], waiting for an answer through `vip` instead.
    pub fn start_xlb_for(&self, config: &str, vip: SocketAddr) -> anyhow::Result<(Child, PathBuf)> {
        director::start_xlb(&self.director, &["eth0"], config, || {
            self.client.http_get(vip)
        })
    }
}

/// The IPv6 address [`DrTopology::add_ipv6`] gives the host with IPv4 address `v4`:
/// 2001:db8:2:: and the last byte of `v4` (192.0.2.11 is 2001:db8:2::b).
pub fn ipv6_for(v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, u16::from(v4.octets()[3]))
}
