//! Two LVS-DR directors sharing a VIP by VRRP: the topology of the failover test and
//! benchmark.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use crate::{
    HttpServer, Lan, Node,
    addrs::{DIRECTOR, DIRECTOR2, HTTP_PORT, REALS, SEGMENT_CLIENT, SEGMENT_VIP},
    reals,
};

const DIRECTORS: [Ipv4Addr; 2] = [DIRECTOR, DIRECTOR2];
/// Two reals are enough to see a director forward.
const REALS_USED: [Ipv4Addr; 2] = [REALS[0], REALS[1]];
/// On the segment itself, so the client finds whichever director holds it by ARP.
const VIP: Ipv4Addr = SEGMENT_VIP;

/// A client, directors `dir1` and `dir2`, and real servers `real1` and `real2` on one
/// segment (192.0.2.0/24), with the VIP 192.0.2.100:80 on the segment too.
///
/// The VIP is on no host until a director's VRRP instance puts it on its `eth0`; the client
/// reaches it through ARP (and the new master's gratuitous ARPs after a failover). The reals
/// hold it on `lo` and keep quiet about it, as in LVS-DR.
pub struct FailoverTopology {
    pub client: Node,
    pub directors: [Node; 2],
    pub reals: Vec<Node>,
    /// Where clients connect.
    pub vip: SocketAddr,
    pub lan: Lan,
}

/// A director's VRRP timers and rank.
#[derive(Clone, Copy, Debug)]
pub struct Vrrp {
    pub version: u8,
    pub advert_int: Duration,
    pub priority: u8,
}

impl FailoverTopology {
    /// Builds the topology; `tag` (letters, digits, '-') names its namespaces.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let lan = Lan::new(tag, 24)?;
        let client = lan.attach("client", SEGMENT_CLIENT)?;
        let director = |i: usize| -> anyhow::Result<Node> {
            let node = lan.attach(&format!("dir{}", i + 1), DIRECTORS[i])?;
            node.enable_forwarding()?;
            Ok(node)
        };
        let directors = [director(0)?, director(1)?];
        let reals = lan.attach_dr_reals(&REALS_USED, IpAddr::V4(VIP))?;
        Ok(Self {
            client,
            directors,
            reals,
            vip: SocketAddr::from((VIP, HTTP_PORT)),
            lan,
        })
    }

    /// Starts an HTTP server on port 80 of every real, answering with the real's name.
    pub fn start_http_servers(&self) -> anyhow::Result<Vec<HttpServer>> {
        reals::start_http_servers(&self.reals, HTTP_PORT)
    }

    /// The virtual server on the VIP, round robin over the reals, each TCP-checked every
    /// second: what every director forwards.
    pub fn virtual_server(&self) -> String {
        let reals: String = REALS_USED
            .iter()
            .map(|real| {
                format!(
                    "    real_server {real} {HTTP_PORT} {{\n        TCP_CHECK {{\n            \
                     connect_timeout 1\n        }}\n    }}\n"
                )
            })
            .collect();
        format!(
            "virtual_server {VIP} {HTTP_PORT} {{\n    delay_loop 1\n    lb_algo rr\n    \
             lb_kind DR\n    protocol TCP\n{reals}}}\n"
        )
    }

    /// The `vrrp_instance` that moves the VIP between the directors' `eth0`.
    pub fn vrrp_instance(&self, vrrp: Vrrp) -> String {
        format!(
            "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id 51\n    version {}\n    priority {}\n    advert_int {}\n    \
             virtual_ipaddress {{\n        {VIP}/24 dev eth0\n    }}\n}}\n",
            vrrp.version,
            vrrp.priority,
            vrrp.advert_int.as_secs_f64(),
        )
    }
}
