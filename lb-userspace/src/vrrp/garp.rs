//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) telling the
//! LAN that a virtual address now lives at this interface's MAC address.

use std::{
    io,
    mem::size_of,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use socket2::{Domain, Protocol, Socket, Type};

const ETH_P_ARP: u16 = 0x0806;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Sends announcements out of one interface.
pub struct Announcements {
    ifindex: u32,
    mac: [u8; 6],
    arp: OwnedFd,
    na: Socket,
}

impl Announcements {
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<Self> {
        // SAFETY: plain socket(2); the descriptor is owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is not owned elsewhere.
        let arp = unsafe { OwnedFd::from_raw_fd(fd) };
        let na = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        na.bind_device(Some(ifname.as_bytes()))?;
        na.set_multicast_hops_v6(255)?;
        na.set_multicast_if_v6(ifindex)?;
        na.set_recv_buffer_size(0)?;
        na.set_nonblocking(true)?;
        Ok(Self {
            ifindex,
            mac: hardware_address(ifname)?,
            arp,
            na,
        })
    }

    /// Announces `addr` once.
    pub fn announce(&self, addr: IpAddr) -> io::Result<()> {
        match addr {
            IpAddr::V4(a) => self.send_arp(&arp_frame(self.mac, a)),
            IpAddr::V6(a) => {
                let to = SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex);
                self.na
                    .send_to(&neighbour_advert(self.mac, a), &SocketAddr::V6(to).into())
                    .map(drop)
            }
        }
    }

    fn send_arp(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr_ll is valid; the fields set make it a broadcast.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_protocol = ETH_P_ARP.to_be();
        to.sll_ifindex = self.ifindex as i32;
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        // SAFETY: frame and to are live for the call.
        let rc = unsafe {
            libc::sendto(
                self.arp.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&to as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
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

/// The interface's MAC address, asked of the kernel in the caller's network namespace
/// (sysfs shows the namespace it was mounted in, which need not be ours).
fn hardware_address(ifname: &str) -> io::Result<[u8; 6]> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    // SAFETY: an all-zero ifreq is valid; the name is copied in within bounds.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(ifname.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR writes into the ifreq passed.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    Ok(std::array::from_fn(|i| data[i] as u8))
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
