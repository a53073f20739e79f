//! The LVS-NAT topology: a client and reals on two subnets, the director between them.

use std::net::{IpAddr, SocketAddr};

use crate::{
    Lan, Node, Topology,
    addrs::{
        CLIENT, DIRECTOR, DIRECTOR_CLIENT_SIDE, HTTP_PORT, NAT_REAL_PORT, REALS, VIP, VIP_PREFIX,
        VIP6, VIP6_PREFIX, client_side_ipv6_for, ipv6_for,
    },
};

/// A client on 198.51.100.0/24, three reals `real1`..`real3` on 192.0.2.0/24, and a
/// director with 192.0.2.2 towards the reals and 198.51.100.2 towards the client: on two
/// interfaces and segments ([`NatTopology::new`]: `eth0` the reals' side, `eth1` the
/// client's), or both on `eth0` of one segment ([`NatTopology::one_segment`]). The VIP is
/// 203.0.113.10:80; the reals serve on port 8080, which NAT translates to.
///
/// The client routes 203.0.113.0/24 via the director, and the reals route everything via
/// it, so their answers come back through the director as LVS-NAT needs. The director has
/// no route to the VIP, so the client reaches a real only through the XDP program, which
/// is attached to every interface of the director, since answers arrive on the reals' side.
/// Its segments are the reals' and then the client's (only one in the one-segment form).
pub type NatTopology = Topology<Vec<Lan>>;

impl NatTopology {
    /// Builds the topology on two segments; `tag` (letters, digits, '-') names its
    /// namespaces.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let real_lan = Lan::new(&format!("{tag}-r"), 24)?;
        let client_lan = Lan::new(&format!("{tag}-c"), 24)?;
        let director = real_lan.attach("director", DIRECTOR)?;
        client_lan.cable(&director, "director", "eth1", DIRECTOR_CLIENT_SIDE)?;
        let client = client_lan.attach("client", CLIENT)?;
        Self::finish(
            client,
            director,
            vec![real_lan, client_lan],
            vec!["eth0", "eth1"],
        )
    }

    /// Builds the topology on one segment, where the director answers on one interface for
    /// both subnets, and sends everything back out of it.
    pub fn one_segment(tag: &str) -> anyhow::Result<Self> {
        let lan = Lan::new(tag, 24)?;
        let director = lan.attach("director", DIRECTOR)?;
        let client_side = format!("{DIRECTOR_CLIENT_SIDE}/24");
        director.ip(&["address", "add", &client_side, "dev", "eth0"])?;
        let client = lan.attach("client", CLIENT)?;
        Self::finish(client, director, vec![lan], vec!["eth0"])
    }

    /// Adds the reals to the first of `lans`, and the routes through the director.
    fn finish(
        client: Node,
        director: Node,
        lans: Vec<Lan>,
        interfaces: Vec<&'static str>,
    ) -> anyhow::Result<Self> {
        client.add_route(VIP_PREFIX, IpAddr::V4(DIRECTOR_CLIENT_SIDE))?;
        let reals = lans[0].attach_reals(&REALS)?;
        for real in &reals {
            real.add_route("default", IpAddr::V4(DIRECTOR))?;
        }
        Ok(Self {
            client,
            director,
            reals,
            vip: SocketAddr::from((VIP, HTTP_PORT)),
            real_port: NAT_REAL_PORT,
            interfaces,
            lans,
        })
    }

    /// Adds IPv6 beside IPv4 on the two-segment topology: the reals' segment is
    /// 2001:db8:2::/64 ([`ipv6_for`] their IPv4 addresses, default route via the director),
    /// the client's 2001:db8:1::/64 ([`client_side_ipv6_for`]), and the client routes
    /// 2001:db8:203::/64 via the director. Returns where clients connect: the VIP
    /// 2001:db8:203::10 on port 80.
    pub fn add_ipv6(&self) -> anyhow::Result<SocketAddr> {
        self.director.add_ipv6(ipv6_for(DIRECTOR), 64)?;
        let director_client_side = client_side_ipv6_for(DIRECTOR_CLIENT_SIDE);
        self.director.ip(&[
            "address",
            "add",
            &format!("{director_client_side}/64"),
            "dev",
            "eth1",
            "nodad",
        ])?;
        for real in &self.reals {
            real.add_ipv6(ipv6_for(real.addr()), 64)?;
            real.add_route("default", IpAddr::V6(ipv6_for(DIRECTOR)))?;
        }
        self.client.add_ipv6(client_side_ipv6_for(CLIENT), 64)?;
        self.client
            .add_route(VIP6_PREFIX, IpAddr::V6(director_client_side))?;
        Ok(SocketAddr::from((VIP6, HTTP_PORT)))
    }
}
