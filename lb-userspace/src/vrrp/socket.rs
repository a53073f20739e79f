//! Raw VRRP sockets (IP protocol 112) on one interface: a receiving socket that joins
//! the VRRP group and reports each packet's TTL / hop limit and destination, and a
//! sending socket that puts adverts on the wire with TTL 255.

use std::{
    io,
    mem::{MaybeUninit, size_of},
    net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6},
    os::fd::{AsRawFd, RawFd},
};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use super::check::Reject;
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
        setsockopt_int(
            &sock,
            libc::IPPROTO_IPV6,
            libc::IPV6_CHECKSUM,
            V6_CHECKSUM_OFFSET,
        )?;
        setsockopt_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        setsockopt_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        sock.join_multicast_v6(&MCAST_V6, ifindex)?;
        sock.set_nonblocking(true)?;
        Ok(Self { sock, v6: true })
    }

    /// The next waiting packet, or why its IP header was refused; `WouldBlock` when
    /// there is none.
    pub fn recv(&self) -> io::Result<Result<Received, Reject>> {
        if self.v6 {
            return recv_v6(self.sock.as_raw_fd()).map(Ok);
        }
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        let n = self.sock.recv(&mut buf)?;
        // SAFETY: recv initialised the first n bytes.
        let bytes: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        Ok(Ipv4Datagram::parse(&bytes).map(|d| Received {
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
                setsockopt_int(
                    &s,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_CHECKSUM,
                    V6_CHECKSUM_OFFSET,
                )?;
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

fn setsockopt_int(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
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
fn recv_v6(fd: RawFd) -> io::Result<Received> {
    let mut buf = [0u8; 2048];
    let mut cbuf = [0u64; 64];
    // SAFETY: an all-zero sockaddr_in6 is valid.
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg describes live buffers.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let mut ttl = None;
    let mut dst = Ipv6Addr::UNSPECIFIED;
    // SAFETY: walks the control messages recvmsg wrote, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    let hops = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    ttl = u8::try_from(hops).ok();
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Received {
        src: Ipv6Addr::from(from.sin6_addr.s6_addr).into(),
        dst: dst.into(),
        ttl,
        payload: buf[..n].to_vec(),
    })
}
