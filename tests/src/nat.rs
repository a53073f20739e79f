//! The LVS-NAT topology: clients and reals on two segments, the director between them.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
};

use crate::{Child, HttpServer, Lan, Node, director, reals};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const DIRECTOR_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const DIRECTOR_REAL_SIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
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
/// director on both: `eth0` 192.0.2.2 towards the reals, `eth1` 198.51.100.2 towards the
/// client. The VIP is 203.0.113.10:80; the reals serve on port 8080.
///
/// The client routes 203.0.113.0/24 via the director, and the reals route everything via
/// it, so their answers come back through the director as LVS-NAT needs. The director has
/// no route to the VIP, so the client reaches a real only through the XDP program, and the
/// program is attached to both interfaces, since answers arrive on `eth0`.
pub struct NatTopology {
    pub client: Node,
    pub director: Node,
    pub reals: Vec<Node>,
    /// Where clients connect.
    pub vip: SocketAddr,
    /// Where the reals listen.
    pub real_port: u16,
    pub client_lan: Lan,
    pub real_lan: Lan,
}

impl NatTopology {
    /// Builds the topology; `tag` (letters, digits, '-') names its namespaces.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let real_lan = Lan::new(&format!("{tag}-r"), 24)?;
        let client_lan = Lan::new(&format!("{tag}-c"), 24)?;
        let director = real_lan.attach("director", DIRECTOR_REAL_SIDE)?;
        client_lan.cable(&director, "director", "eth1", DIRECTOR_CLIENT_SIDE)?;
        let client = client_lan.attach("client", CLIENT)?;
        client.add_route(VIP_PREFIX, IpAddr::V4(DIRECTOR_CLIENT_SIDE))?;
        let reals = real_lan.attach_reals(&REALS)?;
        for real in &reals {
            real.add_route("default", IpAddr::V4(DIRECTOR_REAL_SIDE))?;
        }
        Ok(Self {
            client,
            director,
            reals,
            vip: SocketAddr::from((VIP, VIP_PORT)),
            real_port: REAL_PORT,
            client_lan,
            real_lan,
        })
    }

    /// Starts an HTTP server on port 8080 of every real, answering with the real's name.
    pub fn start_http_servers(&self) -> anyhow::Result<Vec<HttpServer>> {
        reals::start_http_servers(&self.reals, REAL_PORT)
    }

    /// Starts `xlb run` on the director, attached to both its interfaces, and returns it
    /// with its run directory once the client's first request through the VIP is answered.
    pub fn start_xlb(&self, config: &str) -> anyhow::Result<(Child, PathBuf)> {
        director::start_xlb(&self.director, &["eth0", "eth1"], config, || {
            self.client.http_get(self.vip)
        })
    }
}
