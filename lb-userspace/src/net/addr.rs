//! Host addresses: adding and removing the addresses xlb owns (VRRP's virtual addresses, a
//! real server's VIPs), and listing what an interface has.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt as _;
use netlink_packet_route::{
    AddressFamily,
    address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope},
};

use super::{Error, Netlink};

/// An address as the kernel takes it, resolved from the configuration.
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

impl Netlink {
    /// Adds `a`; an address already there counts as added, so a restart finds its VIPs
    /// as it would have set them.
    pub async fn add_addr(&self, a: &HostAddr) -> Result<(), Error> {
        let mut request = self.handle.address().add(a.ifindex, a.addr, a.prefix_len);
        // The crate's own message also adds a broadcast address to IPv4 prefixes, which the
        // configuration did not ask for.
        *request.message_mut() = message(a);
        settled(request.execute().await, &[libc::EEXIST], || {
            format!("adding {}", describe(a))
        })
    }

    /// Removes `a`; an address already gone counts as removed, as does one whose
    /// interface is gone (it took its addresses with it).
    pub async fn del_addr(&self, a: &HostAddr) -> Result<(), Error> {
        let result = self.handle.address().del(message(a)).execute().await;
        settled(result, &[libc::EADDRNOTAVAIL, libc::ENODEV], || {
            format!("removing {}", describe(a))
        })
    }

    /// The addresses of interface `ifindex`, in the kernel's order (for IPv4, primary
    /// addresses before secondary ones).
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<IpAddr>, Error> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect()
            .await
            .map_err(|err| {
                Error::request(format!("listing the addresses of interface {ifindex}"), err)
            })?;
        Ok(messages.iter().filter_map(local).collect())
    }
}

/// `result` of asking for `what`, where the kernel's `done` errnos mean the address already
/// is as asked.
fn settled(
    result: Result<(), rtnetlink::Error>,
    done: &[i32],
    what: impl FnOnce() -> String,
) -> Result<(), Error> {
    match result.map_err(|err| Error::request(what(), err)) {
        Err(e) if e.errno().is_some_and(|errno| done.contains(&errno)) => Ok(()),
        other => other,
    }
}

fn describe(a: &HostAddr) -> String {
    format!("{}/{} on interface {}", a.addr, a.prefix_len, a.ifindex)
}

/// The request for `a`, attribute for attribute as `ip addr add` words it: local and
/// (peer) address alike, then label and broadcast when given.
fn message(a: &HostAddr) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = match a.addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.prefix_len = a.prefix_len;
    if a.nodad {
        m.header.flags = AddressHeaderFlags::Nodad;
    }
    m.header.scope = AddressScope::from(a.scope);
    m.header.index = a.ifindex;
    m.attributes.push(AddressAttribute::Local(a.addr));
    m.attributes.push(AddressAttribute::Address(a.addr));
    if let (Some(label), IpAddr::V4(_)) = (&a.label, a.addr) {
        m.attributes.push(AddressAttribute::Label(label.clone()));
    }
    if let Some(brd) = a.broadcast {
        m.attributes.push(AddressAttribute::Broadcast(brd));
    }
    m
}

/// The interface's own address in `m`: the local address where there is one (IPv4, and
/// point-to-point links, whose `Address` is the peer's), as `getifaddrs` reports it.
fn local(m: &AddressMessage) -> Option<IpAddr> {
    let find = |local: bool| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if local => Some(*ip),
            AddressAttribute::Address(ip) if !local => Some(*ip),
            _ => None,
        })
    };
    find(true).or_else(|| find(false))
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_core::Emitable as _;

    use super::*;

    fn vip() -> HostAddr {
        HostAddr {
            addr: "203.0.113.10".parse().unwrap(),
            prefix_len: 24,
            ifindex: 7,
            label: Some("eth0:1".into()),
            scope: 253,
            broadcast: Some(Ipv4Addr::new(203, 0, 113, 255)),
            nodad: false,
        }
    }

    fn bytes(m: &AddressMessage) -> Vec<u8> {
        let mut out = vec![0; m.buffer_len()];
        m.emit(&mut out);
        out
    }

    #[test]
    fn an_ipv4_vip_is_asked_for_as_before() {
        let mut want = vec![2, 24, 0, 253];
        want.extend_from_slice(&7u32.to_ne_bytes());
        // IFA_LOCAL, IFA_ADDRESS, IFA_LABEL (NUL-terminated, padded), IFA_BROADCAST.
        want.extend_from_slice(&[8, 0, 2, 0, 203, 0, 113, 10]);
        want.extend_from_slice(&[8, 0, 1, 0, 203, 0, 113, 10]);
        want.extend_from_slice(&[11, 0, 3, 0, b'e', b't', b'h', b'0', b':', b'1', 0, 0]);
        want.extend_from_slice(&[8, 0, 4, 0, 203, 0, 113, 255]);
        assert_eq!(bytes(&message(&vip())), want);
    }

    #[test]
    fn an_ipv6_vip_skips_dad_and_carries_no_label() {
        let a = HostAddr {
            addr: "2001:db8::10".parse().unwrap(),
            prefix_len: 64,
            scope: 0,
            broadcast: None,
            nodad: true,
            ..vip()
        };
        let m = message(&a);
        assert_eq!(m.header.flags, AddressHeaderFlags::Nodad);
        assert_eq!(
            m.attributes,
            [
                AddressAttribute::Local(a.addr),
                AddressAttribute::Address(a.addr)
            ]
        );
    }

    #[test]
    fn the_local_address_is_the_interfaces_own() {
        let peer: IpAddr = "192.0.2.2".parse().unwrap();
        let own: IpAddr = "192.0.2.1".parse().unwrap();
        let mut m = AddressMessage::default();
        m.attributes.push(AddressAttribute::Address(peer));
        assert_eq!(local(&m), Some(peer));
        m.attributes.push(AddressAttribute::Local(own));
        assert_eq!(local(&m), Some(own));
    }
}
