//! The addresses a host holds, and IPv6 on a [`Node`]: what VRRP tests assert on.

use std::{
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use anyhow::Context;

use crate::{Node, wait_until};

/// Duplicate address detection is off on test hosts, but the kernel still needs a moment to
/// bring up the link-local address after the link comes up.
const LINK_LOCAL_READY: Duration = Duration::from_secs(5);

impl Node {
    /// The addresses on `eth0` now, IPv4 and IPv6, without their prefix lengths.
    pub fn addresses(&self) -> anyhow::Result<Vec<IpAddr>> {
        let text = self.ip(&["-o", "address", "show", "dev", self.iface()])?;
        text.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.find(|w| *w == "inet" || *w == "inet6")?;
                words.next()
            })
            .map(|cidr| {
                let addr = cidr.split('/').next().unwrap_or(cidr);
                addr.parse()
                    .with_context(|| format!("address {addr:?} in `ip address` output"))
            })
            .collect()
    }

    /// Whether `eth0` holds `addr` now (a VIP, say).
    pub fn has_address(&self, addr: IpAddr) -> anyhow::Result<bool> {
        Ok(self.addresses()?.contains(&addr))
    }

    /// Gives `eth0` the IPv6 address `addr/prefix_len` as well, usable at once, and returns
    /// its link-local address (the source of VRRPv3 IPv6 adverts) once that is usable too.
    ///
    /// Duplicate address detection is turned off: on a test segment nothing can collide,
    /// and it would hold both addresses back for a second or more.
    pub fn add_ipv6(&self, addr: Ipv6Addr, prefix_len: u8) -> anyhow::Result<Ipv6Addr> {
        let iface = self.iface();
        for scope in ["all", iface] {
            self.sysctl(&format!("net.ipv6.conf.{scope}.accept_dad"), "0")?;
        }
        self.ip(&[
            "address",
            "add",
            &format!("{addr}/{prefix_len}"),
            "dev",
            iface,
            "nodad",
        ])?;
        wait_until(
            &format!("a usable link-local address on {}", self.name()),
            LINK_LOCAL_READY,
            Duration::from_millis(20),
            || self.link_local(),
        )
    }

    /// The link-local address of `eth0` once it is no longer tentative.
    fn link_local(&self) -> anyhow::Result<Ipv6Addr> {
        let text = self.ip(&[
            "-o",
            "-6",
            "address",
            "show",
            "dev",
            self.iface(),
            "scope",
            "link",
        ])?;
        let line = text
            .lines()
            .find(|line| !line.contains("tentative"))
            .context("no usable link-local address yet")?;
        let cidr = line
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .context("no address after inet6")?;
        let addr = cidr.split('/').next().unwrap_or(cidr);
        addr.parse()
            .with_context(|| format!("link-local address {addr:?}"))
    }
}
