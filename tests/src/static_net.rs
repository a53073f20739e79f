//! A namespace whose routing answers are fixed: what fixtures and benchmarks run the XDP
//! program's test-run in.
//!
//! BPF test-run looks next hops up in the namespace of the thread that runs it, on the
//! interface the frame claims to arrive on. Interfaces with permanent neighbour entries make
//! those lookups exact and free of timing: no ARP ever runs. (This kernel has no dummy
//! driver, so each interface is a veth whose peer stays in the namespace, unused.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::Context;

use crate::{MacAddr, Netns};

/// A namespace of interfaces, addresses, permanent neighbours and routes.
pub struct StaticNet {
    ns: Netns,
}

impl StaticNet {
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        Ok(Self {
            ns: Netns::new(tag)?,
        })
    }

    /// The namespace, e.g. to [`Netns::run`] test-runs in.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// Adds interface `name` with `addr/prefix_len`, the MAC the test bed gives that
    /// address, and forwarding on (which `bpf_fib_lookup` requires); returns its index.
    pub fn add_interface(&self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> anyhow::Result<u32> {
        let mac = MacAddr::for_ipv4(addr).to_string();
        let peer = format!("{name}-peer");
        self.ns.ip(&[
            "link", "add", name, "address", &mac, "type", "veth", "peer", "name", &peer,
        ])?;
        self.ns.ip(&["link", "set", &peer, "up"])?;
        self.ns.ip(&["link", "set", name, "up"])?;
        self.add_address(name, IpAddr::V4(addr), prefix_len)?;
        let index = self.ns.run(|| nix::net::if_::if_nametoindex(name))?;
        index.with_context(|| format!("index of {name}"))
    }

    /// Makes `addr` resolved on `iface` for good, with the test bed's MAC for it.
    pub fn add_neighbour(&self, iface: &str, addr: Ipv4Addr) -> anyhow::Result<()> {
        self.permanent_neighbour(iface, IpAddr::V4(addr), MacAddr::for_ipv4(addr))
    }

    /// Adds IPv6 `addr/prefix_len` to interface `name` (usable at once: no duplicate address
    /// detection) and switches IPv6 forwarding on there.
    pub fn add_ipv6_address(
        &self,
        name: &str,
        addr: Ipv6Addr,
        prefix_len: u8,
    ) -> anyhow::Result<()> {
        self.add_address(name, IpAddr::V6(addr), prefix_len)
    }

    /// Adds `addr/prefix_len` to interface `name` (IPv6 without duplicate address
    /// detection) and switches forwarding of its family on there.
    fn add_address(&self, name: &str, addr: IpAddr, prefix_len: u8) -> anyhow::Result<()> {
        let cidr = format!("{addr}/{prefix_len}");
        let (family, nodad) = match addr {
            IpAddr::V4(_) => ("ipv4", None),
            IpAddr::V6(_) => ("ipv6", Some("nodad")),
        };
        let mut args = vec!["address", "add", &cidr, "dev", name];
        args.extend(nodad);
        self.ns.ip(&args)?;
        self.ns
            .sysctl(&format!("net.{family}.conf.{name}.forwarding"), "1")
    }

    /// Makes IPv6 `addr` resolved on `iface` for good, with the test bed's MAC for it.
    pub fn add_ipv6_neighbour(&self, iface: &str, addr: Ipv6Addr) -> anyhow::Result<()> {
        self.permanent_neighbour(iface, IpAddr::V6(addr), MacAddr::for_ipv6(addr))
    }

    fn permanent_neighbour(&self, iface: &str, addr: IpAddr, mac: MacAddr) -> anyhow::Result<()> {
        let (addr, mac) = (addr.to_string(), mac.to_string());
        self.ns.ip(&[
            "neigh",
            "add",
            &addr,
            "lladdr",
            &mac,
            "dev",
            iface,
            "nud",
            "permanent",
        ])?;
        Ok(())
    }

    /// Routes `dest` (a prefix) through `gateway`.
    pub fn add_route(&self, dest: &str, gateway: IpAddr) -> anyhow::Result<()> {
        self.ns
            .ip(&["route", "add", dest, "via", &gateway.to_string()])?;
        Ok(())
    }
}
