//! Real servers on a [`Lan`], shared by the topologies with directors.

use std::net::{IpAddr, Ipv4Addr};

use crate::{HttpServer, Lan, Node};

impl Lan {
    /// Attaches real servers `real1`, `real2`... at `addrs`.
    pub fn attach_reals(&self, addrs: &[Ipv4Addr]) -> anyhow::Result<Vec<Node>> {
        addrs
            .iter()
            .enumerate()
            .map(|(i, &addr)| self.attach(&format!("real{}", i + 1), addr))
            .collect()
    }

    /// [`Lan::attach_reals`], each an LVS-DR real server for `vip` (the VIP on `lo`, ARP
    /// kept quiet about it).
    pub fn attach_dr_reals(&self, addrs: &[Ipv4Addr], vip: IpAddr) -> anyhow::Result<Vec<Node>> {
        let reals = self.attach_reals(addrs)?;
        for real in &reals {
            real.accept_vip_directly(vip)?;
        }
        Ok(reals)
    }
}

/// Starts an HTTP server on `port` of every real, answering with the real's name.
pub(crate) fn start_http_servers(reals: &[Node], port: u16) -> anyhow::Result<Vec<HttpServer>> {
    reals
        .iter()
        .map(|real| real.start_http_server(real.name(), port))
        .collect()
}
