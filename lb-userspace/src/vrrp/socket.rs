//! Raw VRRP sockets (IP protocol 112) on one interface: a receiving socket that joins
//! the VRRP group and reports each packet's TTL / hop limit and destination, and a
//! sending socket that puts adverts on the wire with TTL 255.

use std::{
    io::{self, IoSliceMut, Read as _},
    mem::size_of,
    net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6},
    os::fd::{AsRawFd, RawFd},
};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg, setsockopt, sockopt::Ipv6RecvPacketInfo,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use super::accept::Reject;
use super::packet::{IPPROTO_VRRP, Ipv4Datagram, MCAST_V4, MCAST_V6, VRRP_TTL};

/// Offset of the checksum in a VRRP message, for the kernel to fill and verify on IPv6.
const V6_CHECKSUM_OFFSET: libc::c_int = 6;

/// A packet as it arrived.
#[derive(Debug)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL / hop limit, when the kernel reported it.
    pub ttl: Option<u8>,
    /// The VRRP message.
    pub payload: Vec<u8>,
}

impl Received {
    pub fn multicast(&self) -> bool {
        self.dst.is_multicast()
    }
}

/// Receives VRRP packets of one family arriving on one interface.
pub struct Receiver {
    sock: Socket,
    v6: bool,
}

impl Receiver {
    pub fn open_v4(ifname: &str, ifindex: u32) -> io::Result<Self> {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))?;
        sock.bind_device(Some(ifname.as_bytes()))?;
        sock.join_multicast_v4_n(&MCAST_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        sock.set_nonblocking(true)?;
        Ok(Self { sock, v6: false })
    }

    pub fn open_v6(ifname: &str, ifindex: u32) -> io::Result<Self> {
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(112)))?;
        sock.bind_device(Some(ifname.as_bytes()))?;
        set_checksum_offset(&sock)?;
        sock.set_recv_hoplimit_v6(true)?;
        setsockopt(&sock, Ipv6RecvPacketInfo, &true)?;
        sock.join_multicast_v6(&MCAST_V6, ifindex)?;
        sock.set_nonblocking(true)?;
        Ok(Self { sock, v6: true })
    }

    /// The next waiting packet, or why its IP header was refused; `WouldBlock` when
    /// there is none.
    pub fn recv(&self) -> io::Result<Result<Received, Reject>> {
        if self.v6 {
            return recv_v6(&self.sock).map(Ok);
        }
        let mut buf = [0u8; 2048];
        let n = (&self.sock).read(&mut buf)?;
        Ok(Ipv4Datagram::parse(&buf[..n]).map(|d| Received {
            src: d.src.into(),
            dst: d.dst.into(),
            ttl: Some(d.ttl),
            payload: d.payload.to_vec(),
        }))
    }
}

impl AsRawFd for Receiver {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

/// Sends adverts out of one interface from one source address.
pub struct Sender {
    sock: Socket,
    src: IpAddr,
    ifindex: u32,
}

impl Sender {
    pub fn open(ifname: &str, ifindex: u32, src: IpAddr) -> io::Result<Self> {
        let sock = match src {
            IpAddr::V4(_) => {
                // IPPROTO_RAW sockets only send, and take the IP header from us.
                let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))?;
                s.set_header_included_v4(true)?;
                s
            }
            IpAddr::V6(v6) => {
                let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(112)))?;
                set_checksum_offset(&s)?;
                s.set_multicast_hops_v6(u32::from(VRRP_TTL))?;
                s.set_unicast_hops_v6(u32::from(VRRP_TTL))?;
                s.set_multicast_if_v6(ifindex)?;
                s.set_multicast_loop_v6(false)?;
                s.bind(
                    &SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, scope_of(&v6, ifindex))).into(),
                )?;
                // Nothing is read from it: a receive buffer would only fill.
                s.set_recv_buffer_size(0)?;
                s
            }
        };
        sock.bind_device(Some(ifname.as_bytes()))?;
        sock.set_nonblocking(true)?;
        Ok(Self { sock, src, ifindex })
    }

    pub fn src(&self) -> IpAddr {
        self.src
    }

    /// Sends `payload` (a VRRP message built for this source and `dst`) to `dst`.
    pub fn send(&self, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
        match (self.src, dst) {
            (IpAddr::V4(src), IpAddr::V4(d)) => {
                let pkt = Ipv4Datagram::build(src, d, payload);
                self.sock
                    .send_to(&pkt, &SocketAddr::new(dst, u16::from(IPPROTO_VRRP)).into())?;
            }
            (IpAddr::V6(_), IpAddr::V6(d)) => {
                let to = SocketAddrV6::new(d, 0, 0, scope_of(&d, self.ifindex));
                self.sock.send_to(payload, &SocketAddr::V6(to).into())?;
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot send from {} to {dst}", self.src),
                ));
            }
        }
        Ok(())
    }
}

/// Link-local and multicast IPv6 addresses need the interface as their scope.
fn scope_of(addr: &Ipv6Addr, ifindex: u32) -> u32 {
    if addr.is_unicast_link_local() || addr.is_multicast() {
        ifindex
    } else {
        0
    }
}

/// Has the kernel fill in (and check) the VRRP checksum of IPv6 packets, which covers a
/// pseudo-header only the kernel knows when sending (`IPV6_CHECKSUM`; neither socket2 nor
/// nix offers it).
fn set_checksum_offset(sock: &Socket) -> io::Result<()> {
    // SAFETY: `IPV6_CHECKSUM` takes a `c_int`: the pointer is to a constant one, with its
    // size, and the kernel only reads it; the descriptor is `sock`'s, open for the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_CHECKSUM,
            (&V6_CHECKSUM_OFFSET as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// recvmsg on an IPv6 raw socket, reading the hop limit and destination the kernel
/// reports in control messages.
fn recv_v6(sock: &Socket) -> io::Result<Received> {
    let mut buf = [0u8; 2048];
    let mut cmsgs = nix::cmsg_space!(libc::c_int, libc::in6_pktinfo);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<SockaddrIn6>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsgs),
        MsgFlags::empty(),
    )?;
    let mut ttl = None;
    let mut dst = Ipv6Addr::UNSPECIFIED;
    for c in msg.cmsgs()? {
        match c {
            ControlMessageOwned::Ipv6HopLimit(hops) => ttl = u8::try_from(hops).ok(),
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                dst = Ipv6Addr::from(info.ipi6_addr.s6_addr)
            }
            _ => {}
        }
    }
    let src = msg.address.map_or(Ipv6Addr::UNSPECIFIED, |a| a.ip());
    let n = msg.bytes;
    Ok(Received {
        src: src.into(),
        dst: dst.into(),
        ttl,
        payload: buf[..n].to_vec(),
    })
}
