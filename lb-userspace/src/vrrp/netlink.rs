//! The kernel's routing netlink (rtnetlink), for what VRRP changes on the host: adding
//! and removing virtual addresses, and hearing when links go up or down.

use std::{
    io,
    mem::size_of,
    net::{IpAddr, Ipv4Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

/// A virtual address as the kernel takes it, resolved from the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub ifindex: u32,
    /// `label`, for `ip addr` to show (IPv4 only).
    pub label: Option<String>,
    /// `rtm_scope`: 0 is global.
    pub scope: u8,
    pub broadcast: Option<Ipv4Addr>,
    /// Skip duplicate address detection (IPv6 `nodad`): a VIP that moves between
    /// routers must be usable at once.
    pub nodad: bool,
}

const NLMSG_HDR: usize = 16;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_F_NODAD: u8 = 0x02;
const RTMGRP_LINK: u32 = 1;

/// A request/acknowledge rtnetlink socket.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            fd: open_route_socket(0)?,
            seq: 0,
        })
    }

    /// Adds `a`; an address already there counts as added.
    pub fn add_addr(&mut self, a: &HostAddr) -> io::Result<()> {
        let flags = libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        match self.addr_request(libc::RTM_NEWADDR, flags, a) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Removes `a`; an address already gone counts as removed.
    pub fn del_addr(&mut self, a: &HostAddr) -> io::Result<()> {
        match self.addr_request(libc::RTM_DELADDR, 0, a) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            other => other,
        }
    }

    fn addr_request(&mut self, kind: u16, flags: libc::c_int, a: &HostAddr) -> io::Result<()> {
        let (family, octets): (u8, Vec<u8>) = match a.addr {
            IpAddr::V4(v4) => (libc::AF_INET as u8, v4.octets().to_vec()),
            IpAddr::V6(v6) => (libc::AF_INET6 as u8, v6.octets().to_vec()),
        };
        let mut body = vec![
            family,
            a.prefix_len,
            if a.nodad { IFA_F_NODAD } else { 0 },
            a.scope,
        ];
        body.extend_from_slice(&a.ifindex.to_ne_bytes());
        push_attr(&mut body, IFA_LOCAL, &octets);
        push_attr(&mut body, IFA_ADDRESS, &octets);
        if let (Some(label), IpAddr::V4(_)) = (&a.label, a.addr) {
            let mut l = label.as_bytes().to_vec();
            l.push(0);
            push_attr(&mut body, IFA_LABEL, &l);
        }
        if let Some(brd) = a.broadcast {
            push_attr(&mut body, IFA_BROADCAST, &brd.octets());
        }
        self.request(kind, flags, &body)
    }

    fn request(&mut self, kind: u16, flags: libc::c_int, body: &[u8]) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(NLMSG_HDR + body.len());
        let len = u32::try_from(NLMSG_HDR + body.len()).expect("small message");
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK | flags) as u16;
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(self.fd.as_raw_fd(), &msg)?;
        let mut buf = [0u8; 4096];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf)?;
            for (hdr, payload) in messages(&buf[..n]) {
                if hdr.seq != self.seq || hdr.kind != libc::NLMSG_ERROR as u16 {
                    continue;
                }
                let errno = payload
                    .get(..4)
                    .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .ok_or_else(|| io::Error::other("short netlink error message"))?;
                return if errno == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-errno))
                };
            }
        }
    }
}

/// A link's state as tracking needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    pub ifindex: u32,
    /// Administratively up and with carrier, as keepalived judges a tracked interface.
    pub up: bool,
}

/// A socket that hears every link change in the namespace.
pub struct LinkMonitor {
    fd: OwnedFd,
}

impl LinkMonitor {
    pub fn open() -> io::Result<Self> {
        let fd = open_route_socket(RTMGRP_LINK)?;
        set_nonblocking(fd.as_raw_fd())?;
        Ok(Self { fd })
    }

    /// Reads the link changes waiting on the socket; `WouldBlock` when there are none.
    pub fn read(&self) -> io::Result<Vec<LinkState>> {
        let mut buf = vec![0u8; 32 * 1024];
        let n = recv(self.fd.as_raw_fd(), &mut buf)?;
        Ok(messages(&buf[..n])
            .filter(|(hdr, _)| hdr.kind == libc::RTM_NEWLINK)
            .filter_map(|(_, body)| link_state(body))
            .collect())
    }
}

impl AsRawFd for LinkMonitor {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Whether the link `ifindex` is up now.
pub fn link_is_up(ifindex: u32) -> io::Result<bool> {
    let name = ifname(ifindex)?;
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = libc::c_int::from(unsafe { req.ifr_ifru.ifru_flags });
    Ok(running(flags as u32))
}

/// The index of interface `name`.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name}"),
        )),
        i => Ok(i),
    }
}

fn ifname(ifindex: u32) -> io::Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    if unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) }.is_null() {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

fn running(flags: u32) -> bool {
    let want = (libc::IFF_UP | libc::IFF_RUNNING) as u32;
    flags & want == want
}

fn link_state(body: &[u8]) -> Option<LinkState> {
    // struct ifinfomsg: family, pad, type (u16), index (i32), flags (u32), change (u32).
    let index = i32::from_ne_bytes(body.get(4..8)?.try_into().ok()?);
    let flags = u32::from_ne_bytes(body.get(8..12)?.try_into().ok()?);
    Some(LinkState {
        ifindex: u32::try_from(index).ok()?,
        up: running(flags),
    })
}

struct Header {
    kind: u16,
    seq: u32,
}

/// The netlink messages in one datagram, stopping at the first malformed one.
fn messages(mut buf: &[u8]) -> impl Iterator<Item = (Header, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::try_from(u32::from_ne_bytes(buf.get(..4)?.try_into().ok()?)).ok()?;
        if len < NLMSG_HDR || len > buf.len() {
            return None;
        }
        let hdr = Header {
            kind: u16::from_ne_bytes(buf[4..6].try_into().ok()?),
            seq: u32::from_ne_bytes(buf[8..12].try_into().ok()?),
        };
        let payload = &buf[NLMSG_HDR..len];
        buf = &buf[align(len).min(buf.len())..];
        Some((hdr, payload))
    })
}

fn push_attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = u16::try_from(4 + data.len()).expect("small attribute");
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(align(out.len()), 0);
}

const fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn open_route_socket(groups: u32) -> io::Result<OwnedFd> {
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    sa.nl_groups = groups;
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn send(fd: RawFd, msg: &[u8]) -> io::Result<()> {
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    let rc = unsafe {
        libc::sendto(
            fd,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&sa as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_to_four_bytes() {
        let mut out = Vec::new();
        push_attr(&mut out, IFA_LABEL, b"eth0:1\0");
        assert_eq!(out.len(), 12);
        assert_eq!(&out[..4], &[11, 0, 3, 0]);
    }

    #[test]
    fn messages_are_split_and_truncation_stops_the_walk() {
        let mut buf = Vec::new();
        for seq in [7u32, 8] {
            buf.extend_from_slice(&20u32.to_ne_bytes());
            buf.extend_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
            buf.extend_from_slice(&[0, 0]);
            buf.extend_from_slice(&seq.to_ne_bytes());
            buf.extend_from_slice(&[0; 8]);
        }
        let seqs: Vec<u32> = messages(&buf).map(|(h, _)| h.seq).collect();
        assert_eq!(seqs, [7, 8]);
        assert_eq!(messages(&buf[..30]).count(), 1);
    }
}
