//! One Ethernet segment: a switch namespace holding a Linux bridge, with hosts plugged in.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    ops::Deref,
    os::fd::OwnedFd,
    sync::{Mutex, PoisonError},
};

use anyhow::{Context, ensure};

use crate::{Netns, xdp_pass::XdpPass};

const BRIDGE: &str = "br0";
/// Every host sees the segment as this interface.
const HOST_IFACE: &str = "eth0";
/// Longest host name whose switch port name (`p-<name>`) fits in IFNAMSIZ.
const MAX_HOST_NAME: usize = 13;

/// A MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The MAC the test bed gives the host with IPv4 address `addr`: `02:00` (locally
    /// administered, unicast) followed by the address, so tests can predict every frame.
    pub fn for_ipv4(addr: Ipv4Addr) -> Self {
        let [a, b, c, d] = addr.octets();
        Self([0x02, 0x00, a, b, c, d])
    }

    /// The MAC the test bed gives a neighbour known only by IPv6 `addr`: `02:06` followed
    /// by the address's last four bytes.
    pub fn for_ipv6(addr: Ipv6Addr) -> Self {
        let o = addr.octets();
        Self([0x02, 0x06, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// An L2 segment that hosts join with [`Lan::attach`].
///
/// It behaves like a wire and a switch, so that what works here works on real hardware:
/// the bridge floods link-local multicast (VRRP adverts) and learns MACs, so failover and ARP
/// behave as on a real segment; hosts send complete checksums, as a NIC puts them on the
/// wire (an XDP program forwarding a frame cannot complete a checksum left to offload); and
/// every switch port runs a pass-through XDP program, without which a veth drops what its
/// peer sends with XDP_TX.
pub struct Lan {
    tag: String,
    prefix_len: u8,
    /// Closing a link detaches its program, so they live as long as the segment.
    port_links: Mutex<Vec<OwnedFd>>,
    xdp_pass: XdpPass,
    switch: Netns,
}

impl Lan {
    /// A segment whose hosts get addresses with the given prefix length (24 for 192.0.2.0/24).
    pub fn new(tag: &str, prefix_len: u8) -> anyhow::Result<Self> {
        ensure!(prefix_len <= 32, "IPv4 prefix length {prefix_len}");
        let switch = Netns::new(&format!("{tag}-switch"))?;
        // The switch is no host: keep its ports from sending IPv6 chatter into the tests.
        for scope in ["all", "default"] {
            switch.sysctl(&format!("net.ipv6.conf.{scope}.disable_ipv6"), "1")?;
        }
        switch.ip(&[
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        switch.ip(&["link", "set", BRIDGE, "up"])?;
        Ok(Self {
            tag: tag.to_owned(),
            prefix_len,
            port_links: Mutex::new(Vec::new()),
            xdp_pass: XdpPass::load()?,
            switch,
        })
    }

    /// The namespace of the switch, e.g. to capture on its bridge `br0`.
    pub fn switch(&self) -> &Netns {
        &self.switch
    }

    /// Creates host `name` in its own namespace, cabled to the switch, with `addr` and the
    /// MAC [`MacAddr::for_ipv4`] on its `eth0`, link up.
    ///
    /// Its switch port is `p-<name>` in [`Lan::switch`].
    pub fn attach(&self, name: &str, addr: Ipv4Addr) -> anyhow::Result<Node> {
        ensure!(
            !name.is_empty() && name.len() <= MAX_HOST_NAME,
            "host name {name:?} must have 1 to {MAX_HOST_NAME} characters"
        );
        let ns = Netns::new(&format!("{}-{name}", self.tag))?;
        let mac = self.cable(&ns, name, HOST_IFACE, addr)?;
        Ok(Node {
            ns,
            name: name.to_owned(),
            addr,
            mac,
        })
    }

    /// Cables interface `iface` of `host` to the switch, as `name` (its switch port is
    /// `p-<name>`), with `addr` and the MAC [`MacAddr::for_ipv4`], link up. A host on two
    /// segments (a director between clients and reals) is attached to one and cabled to
    /// the other.
    pub fn cable(
        &self,
        host: &Netns,
        name: &str,
        iface: &str,
        addr: Ipv4Addr,
    ) -> anyhow::Result<MacAddr> {
        let port = format!("p-{name}");
        let mac = MacAddr::for_ipv4(addr);
        let mac_text = mac.to_string();
        // Created from inside the host so no interface ever appears in the root namespace.
        host.ip(&[
            "link",
            "add",
            "name",
            iface,
            "address",
            &mac_text,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            self.switch.name(),
        ])?;
        self.switch
            .ip(&["link", "set", &port, "master", BRIDGE, "up"])?;
        let link = self.xdp_pass.attach(&self.switch, &port)?;
        self.port_links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(link);
        host.output("ethtool", &["--offload", iface, "tx", "off"])
            .context("ethtool is needed to turn checksum offload off (`cargo xtask setup`)")?;
        let cidr = format!("{addr}/{}", self.prefix_len);
        host.ip(&["address", "add", &cidr, "dev", iface])?;
        host.ip(&["link", "set", iface, "up"])?;
        Ok(mac)
    }
}

/// A host on a [`Lan`]: a namespace with one interface, `eth0`.
///
/// It dereferences to its [`Netns`], so everything a namespace can do, a host can.
pub struct Node {
    ns: Netns,
    name: String,
    addr: Ipv4Addr,
    mac: MacAddr,
}

impl Node {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address on the segment.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Its interface on the segment.
    pub fn iface(&self) -> &str {
        HOST_IFACE
    }

    /// Routes `dest` (a prefix such as `203.0.113.0/24`) through `gateway` on the segment.
    pub fn add_route(&self, dest: &str, gateway: IpAddr) -> anyhow::Result<()> {
        self.ip(&["route", "add", dest, "via", &gateway.to_string()])?;
        Ok(())
    }

    /// Lets the kernel forward (and so `bpf_fib_lookup` resolve next hops) for packets
    /// arriving on `eth0`: what a director needs.
    pub fn enable_forwarding(&self) -> anyhow::Result<()> {
        self.sysctl(&format!("net.ipv4.conf.{HOST_IFACE}.forwarding"), "1")
    }

    /// Makes this host an LVS-DR real server for `vip`: the VIP on `lo`, and ARP tuned so it
    /// never answers for or announces the VIP on the segment (that is the director's job).
    pub fn accept_vip_directly(&self, vip: IpAddr) -> anyhow::Result<()> {
        let host_prefix = if vip.is_ipv4() { 32 } else { 128 };
        self.ip(&[
            "address",
            "add",
            &format!("{vip}/{host_prefix}"),
            "dev",
            "lo",
        ])?;
        for scope in ["all", HOST_IFACE] {
            self.sysctl(&format!("net.ipv4.conf.{scope}.arp_ignore"), "1")?;
            self.sysctl(&format!("net.ipv4.conf.{scope}.arp_announce"), "2")?;
        }
        Ok(())
    }
}

impl Deref for Node {
    type Target = Netns;

    fn deref(&self) -> &Netns {
        &self.ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_follows_the_ipv4_address() {
        let mac = MacAddr::for_ipv4(Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(mac.0, [0x02, 0x00, 192, 0, 2, 11]);
        assert_eq!(mac.to_string(), "02:00:c0:00:02:0b");
    }
}
