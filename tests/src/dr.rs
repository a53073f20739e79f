//! The LVS-DR topology of the foundation's end-to-end tests and of the demo.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use crate::{Child, HttpServer, Lan, Node, reals, wait_until};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DIRECTOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const REALS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 11),
    Ipv4Addr::new(192, 0, 2, 12),
    Ipv4Addr::new(192, 0, 2, 13),
];
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VIP_PREFIX: &str = "203.0.113.0/24";
const HTTP_PORT: u16 = 80;
/// How long `xlb run` may take to load, check the reals and answer through the VIP.
const XLB_START: Duration = Duration::from_secs(15);

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
        let lan = Lan::new(tag, 24)?;
        let client = lan.attach("client", CLIENT)?;
        client.add_route(VIP_PREFIX, IpAddr::V4(DIRECTOR))?;
        let director = lan.attach("director", DIRECTOR)?;
        director.enable_forwarding()?;
        let reals = lan.attach_reals(&REALS, IpAddr::V4(VIP))?;
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
        reals::start_http_servers(&self.reals, HTTP_PORT)
    }

    /// Starts `xlb run` on the director, forwarding on its `eth0` with `config` as its
    /// keepalived.conf, and returns it with its run directory (where `xlb status` finds
    /// it) once the client's first request through the VIP is answered.
    pub fn start_xlb(&self, config: &str) -> anyhow::Result<(Child, PathBuf)> {
        let (xlb, run_dir) = self.director.spawn_xlb("xlb", config, &["eth0"])?;
        wait_until(
            "the first answer through the VIP",
            XLB_START,
            Duration::from_millis(50),
            || self.client.http_get(self.vip),
        )?;
        Ok((xlb, run_dir))
    }
}
