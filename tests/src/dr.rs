//! The LVS-DR topology of the foundation's end-to-end tests and of the demo.

use std::net::{IpAddr, SocketAddr};

use crate::{
    Lan, Topology,
    addrs::{
        DIRECTOR, HTTP_PORT, REALS, SEGMENT_CLIENT, VIP, VIP_PREFIX, VIP6, VIP6_PREFIX, ipv6_for,
    },
};

/// A client, a director and three real servers `real1`..`real3` on one segment
/// (192.0.2.0/24), with the VIP 203.0.113.10:80; the reals serve on port 80 too.
///
/// The client routes 203.0.113.0/24 via the director. The director has no route to the VIP
/// at all, so VIP traffic reaches a real only if the XDP program forwards it; it forwards on
/// `eth0`, as `bpf_fib_lookup` requires. The reals hold the VIP on `lo` and keep quiet about
/// it in ARP, and answer the client directly, as in LVS-DR.
pub type DrTopology = Topology<Lan>;

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
        let client = lan.attach("client", SEGMENT_CLIENT)?;
        client.add_route(VIP_PREFIX, IpAddr::V4(DIRECTOR))?;
        let director = lan.attach("director", DIRECTOR)?;
        director.enable_forwarding()?;
        let reals = lan.attach_reals(&REALS)?;
        Ok(Self {
            client,
            director,
            reals,
            vip: SocketAddr::from((VIP, HTTP_PORT)),
            real_port: HTTP_PORT,
            interfaces: vec!["eth0"],
            lans: lan,
        })
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
}
