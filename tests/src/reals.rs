//! LVS-DR real servers on a [`Lan`], shared by the topologies with directors.

use std::net::{IpAddr, Ipv4Addr};

use crate::{HttpServer, Lan, Node};

impl Lan {
    /// Attaches real servers `real1`, `real2`... at `addrs`, each holding `vip` on `lo` and
    /// keeping quiet about it in ARP, as LVS-DR wants.
    pub fn attach_reals(&self, addrs: &[Ipv4Addr], vip: IpAddr) -> anyhow::Result<Vec<Node>> {
        addrs
            .iter()
            .enumerate()
            .map(|(i, &addr)| {
                let real = self.attach(&format!("real{}", i + 1), addr)?;
                real.accept_vip_directly(vip)?;
                Ok(real)
            })
            .collect()
    }
}

/// Starts an HTTP server on `port` of every real, answering with the real's name.
pub(crate) fn start_http_servers(reals: &[Node], port: u16) -> anyhow::Result<Vec<HttpServer>> {
    reals
        .iter()
        .map(|real| real.start_http_server(real.name(), port))
        .collect()
}
