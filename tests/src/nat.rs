//! The LVS-NAT topology: a client and reals on two subnets, the director between them.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
};

use crate::{Child, HttpServer, Lan, Node, director, ipv6_for, reals};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const DIRECTOR_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const DIRECTOR_REAL_SIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x10);
const VIP6_PREFIX: &str = "2001:db8:203::/64";
/// The client's segment in IPv6; the reals' is [`ipv6_for`]'s 2001:db8:2::/64.
const CLIENT_SIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0);
const REALS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 11),
    Ipv4Addr::new(192, 0, 2, 12),
    Ipv4Addr::new(192, 0, 2, 13),
];
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VIP_PREFIX: &str = "203.0.113.0/24";
const VIP_PORT: u16 = 80;
/// The reals listen elsewhere than the VIP's port, which NAT translates.
const REAL_PORT: u16 = 8080;

/// A client on 198.51.100.0/24, three reals `real1`..`real3` on 192.0.2.0/24, and a
/// director with 192.0.2.2 towards the reals and 198.51.100.2 towards the client: on two
/// interfaces and segments ([`NatTopology::new`]: `eth0` the reals' side, `eth1` the
/// client's), or both on `eth0` of one segment ([`NatTopology::one_segment`]). The VIP is
/// 203.0.113.10:80; the reals serve on port 8080.
///
/// The client routes 203.0.113.0/24 via the director, and the reals route everything via
/// it, so their answers come back through the director as LVS-NAT needs. The director has
/// no route to the VIP, so the client reaches a real only through the XDP program, which
/// is attached to every interface of the director, since answers arrive on the reals' side.
pub struct NatTopology {
    pub client: Node,
    pub director: Node,
    pub reals: Vec<Node>,
    /// Where clients connect.
    pub vip: SocketAddr,
    /// Where the reals listen.
    pub real_port: u16,
    /// The director's interfaces.
    pub interfaces: Vec<&'static str>,
    /// The segments, the reals' first.
    pub lans: Vec<Lan>,
}

impl NatTopology {
    /// Builds the topology on two segments; `tag` (letters, digits, '-') names its
    /// namespaces.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let real_lan = Lan::new(&format!("{tag}-r"), 24)?;
        let client_lan = Lan::new(&format!("{tag}-c"), 24)?;
        let director = real_lan.attach("director", DIRECTOR_REAL_SIDE)?;
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
        let director = lan.attach("director", DIRECTOR_REAL_SIDE)?;
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
            real.add_route("default", IpAddr::V4(DIRECTOR_REAL_SIDE))?;
        }
        Ok(Self {
            client,
            director,
            reals,
            vip: SocketAddr::from((VIP, VIP_PORT)),
            real_port: REAL_PORT,
            interfaces,
            lans,
        })
    }

    /// Adds IPv6 beside IPv4 on the two-segment topology: the reals' segment is
    /// 2001:db8:2::/64 ([`ipv6_for`] their IPv4 addresses, default route via the director),
    /// the client's 2001:db8:1::/64 with the same host parts, and the client routes
    /// 2001:db8:203::/64 via the director. Returns where clients connect: the VIP
    /// 2001:db8:203::10 on port 80.
    pub fn add_ipv6(&self) -> anyhow::Result<SocketAddr> {
        let client_side = |v4: Ipv4Addr| {
            let mut segments = ipv6_for(v4).segments();
            segments[2] = CLIENT_SIDE6.segments()[2];
            Ipv6Addr::from(segments)
        };
        self.director.add_ipv6(ipv6_for(DIRECTOR_REAL_SIDE), 64)?;
        let director_client_side = client_side(DIRECTOR_CLIENT_SIDE);
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
            real.add_route("default", IpAddr::V6(ipv6_for(DIRECTOR_REAL_SIDE)))?;
        }
        self.client.add_ipv6(client_side(CLIENT), 64)?;
        self.client
            .add_route(VIP6_PREFIX, IpAddr::V6(director_client_side))?;
        Ok(SocketAddr::from((VIP6, VIP_PORT)))
    }

    /// Starts an HTTP server on port 8080 of every real, answering with the real's name.
    pub fn start_http_servers(&self) -> anyhow::Result<Vec<HttpServer>> {
        reals::start_http_servers(&self.reals, REAL_PORT)
    }

    /// Starts `xlb run` on the director, attached to all its interfaces, and returns it
    /// with its run directory once the client's first request through the VIP is answered.
    pub fn start_xlb(&self, config: &str) -> anyhow::Result<(Child, PathBuf)> {
        self.start_xlb_for(config, self.vip)
    }

    /// [`NatTopology::start_xlb`], waiting for an answer through `vip` instead.
    pub fn start_xlb_for(&self, config: &str, vip: SocketAddr) -> anyhow::Result<(Child, PathBuf)> {
        director::start_xlb(&self.director, &self.interfaces, config, || {
            self.client.http_get(vip)
        })
    }
}
