//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) telling the
//! LAN that a virtual address now lives at this interface's MAC address.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6},
};

use socket2::{Domain, Protocol, Socket, Type};

use crate::net::PacketSocket;

const ETH_P_ARP: u16 = 0x0806;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Sends announcements out of one interface.
pub struct Announcements {
    ifindex: u32,
    mac: [u8; 6],
    arp: PacketSocket,
    na: Socket,
}

impl Announcements {
    /// Opens the sockets announcing `mac`, the Ethernet address of interface `ifname`
    /// (index `ifindex`).
    pub fn open(ifname: &str, ifindex: u32, mac: [u8; 6]) -> io::Result<Self> {
        let na = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        na.bind_device(Some(ifname.as_bytes()))?;
        na.set_multicast_hops_v6(255)?;
        na.set_multicast_if_v6(ifindex)?;
        na.set_recv_buffer_size(0)?;
        na.set_nonblocking(true)?;
        Ok(Self {
            ifindex,
            mac,
            arp: PacketSocket::open(ifindex)?,
            na,
        })
    }

    /// Announces `addr` once.
    pub fn announce(&self, addr: IpAddr) -> io::Result<()> {
        match addr {
            IpAddr::V4(a) => self.arp.send(&arp_frame(self.mac, a)),
            IpAddr::V6(a) => {
                let to = SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex);
                self.na
                    .send_to(&neighbour_advert(self.mac, a), &SocketAddr::V6(to).into())
                    .map(drop)
            }
        }
    }
}

/// A broadcast ARP request for `addr` from `addr`, the form keepalived sends.
fn arp_frame(mac: [u8; 6], addr: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    // Ethernet, IPv4, 6-byte and 4-byte addresses, request.
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&addr.octets());
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&addr.octets());
    f
}

/// An unsolicited neighbour advertisement (RFC 4861 §7.2.6) with the override flag and
/// our MAC as target link-layer address; the kernel fills in the checksum.
fn neighbour_advert(mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    // Type 136, code 0, checksum 0, flags: override.
    m.extend_from_slice(&[136, 0, 0, 0, 0x20, 0, 0, 0]);
    m.extend_from_slice(&target.octets());
    // Option 2 (target link-layer address), length 1 (8 bytes).
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&mac);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn arp_announces_the_address_as_its_own_sender_and_target() {
        let f = arp_frame(MAC, Ipv4Addr::new(203, 0, 113, 10));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "request");
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..32], &[203, 0, 113, 10]);
        assert_eq!(&f[38..42], &[203, 0, 113, 10]);
    }

    #[test]
    fn neighbour_advert_overrides_and_carries_the_mac() {
        let m = neighbour_advert(MAC, "2001:db8::10".parse().unwrap());
        assert_eq!(m.len(), 32);
        assert_eq!((m[0], m[4]), (136, 0x20));
        assert_eq!(&m[24..26], &[2, 1]);
        assert_eq!(&m[26..], &MAC);
    }
}
