//! Interfaces: looking them up, asking whether they are up and for their Ethernet address,
//! and hearing when they come, go, change or gain an address.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures::{Stream, StreamExt as _, TryStreamExt as _, channel::mpsc::UnboundedReceiver};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkFlags, LinkMessage},
};
use rtnetlink::{MulticastGroup, packet_core::NetlinkMessage, packet_core::NetlinkPayload};
use tracing::warn;

use super::{Error, Netlink};

/// The index of interface `name` in this network namespace.
pub fn index(name: &str) -> Result<u32, Error> {
    nix::net::if_::if_nametoindex(name).map_err(|_| Error::NoInterface(name.to_owned()))
}

/// A link's state as tracking needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkState {
    pub ifindex: u32,
    /// Its name: what the configuration knows it by, and what a re-created interface
    /// shares with the one it replaces (the index does not).
    pub name: String,
    /// Administratively up and with carrier, as keepalived judges a tracked interface.
    pub up: bool,
}

impl LinkState {
    /// `None` for a message without a name, which the kernel never sends.
    fn of(link: &LinkMessage) -> Option<Self> {
        let name = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        })?;
        Some(Self {
            ifindex: link.header.index,
            name,
            up: link
                .header
                .flags
                .contains(LinkFlags::Up | LinkFlags::Running),
        })
    }
}

/// A change the kernel announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// A link appeared, or its flags, carrier or name changed.
    Changed(LinkState),
    /// A link was deleted (as it last was, so down). Its index is gone for good; an
    /// interface of the same name that comes back is a new link.
    Removed(LinkState),
    /// Interface `ifindex` gained or lost an address (the source of VRRP adverts, say).
    Addressed(u32),
}

impl LinkEvent {
    fn of(message: RouteNetlinkMessage) -> Option<Self> {
        match message {
            RouteNetlinkMessage::NewLink(link) => LinkState::of(&link).map(Self::Changed),
            RouteNetlinkMessage::DelLink(link) => {
                LinkState::of(&link).map(|state| Self::Removed(LinkState { up: false, ..state }))
            }
            RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
                Some(Self::Addressed(a.header.index))
            }
            _ => None,
        }
    }
}

impl Netlink {
    /// Whether interface `ifindex` is up now.
    pub async fn link_state(&self, ifindex: u32) -> Result<LinkState, Error> {
        LinkState::of(&self.link(ifindex).await?)
            .ok_or_else(|| Error::NoInterface(ifindex.to_string()))
    }

    /// The Ethernet address of interface `ifindex`, which gratuitous ARPs announce. An
    /// interface without one (a tunnel) gets zeros, as `SIOCGIFHWADDR` reports it.
    pub async fn hardware_address(&self, ifindex: u32) -> Result<[u8; 6], Error> {
        let link = self.link(ifindex).await?;
        let addr = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(bytes) => Some(bytes.as_slice()),
            _ => None,
        });
        Ok(std::array::from_fn(|i| {
            addr.and_then(|a| a.get(i)).copied().unwrap_or(0)
        }))
    }

    async fn link(&self, ifindex: u32) -> Result<LinkMessage, Error> {
        let what = || format!("asking for interface {ifindex}");
        self.handle
            .link()
            .get()
            .match_index(ifindex)
            .execute()
            .try_next()
            .await
            .map_err(|err| Error::request(what(), err))?
            .ok_or_else(|| Error::NoInterface(ifindex.to_string()))
    }
}

/// Every link change and address change in this network namespace, as the kernel announces
/// it, from the moment [`LinkEvents::open`] returns. The stream ends if the netlink socket
/// fails.
pub struct LinkEvents {
    messages: UnboundedReceiver<(
        NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
    /// The task reading the socket, which would otherwise outlive the stream (and warn of
    /// every message it can no longer hand over).
    connection: tokio::task::AbortHandle,
}

impl LinkEvents {
    /// Subscribes to link and address changes; must be called within a tokio runtime,
    /// whose task then reads the socket until the stream is dropped.
    pub fn open() -> Result<Self, Error> {
        let groups = [
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ];
        let (connection, _, messages) =
            rtnetlink::new_multicast_connection(&groups).map_err(Error::Open)?;
        let connection = tokio::spawn(connection).abort_handle();
        Ok(Self {
            messages,
            connection,
        })
    }
}

impl Drop for LinkEvents {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Stream for LinkEvents {
    type Item = LinkEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LinkEvent>> {
        loop {
            let Some((message, _)) = ready!(self.messages.poll_next_unpin(cx)) else {
                return Poll::Ready(None);
            };
            match message.payload {
                NetlinkPayload::InnerMessage(message) => {
                    if let Some(event) = LinkEvent::of(message) {
                        return Poll::Ready(Some(event));
                    }
                }
                NetlinkPayload::Overrun(_) => {
                    warn!("Link monitor: the kernel dropped link changes (socket buffer full)");
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, flags: LinkFlags) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.header.flags = flags;
        link.attributes.push(LinkAttribute::IfName("eth0".into()));
        link
    }

    #[test]
    fn up_needs_both_admin_up_and_carrier() {
        assert_eq!(
            LinkState::of(&link(3, LinkFlags::Up)),
            Some(LinkState {
                ifindex: 3,
                name: "eth0".into(),
                up: false
            })
        );
        let running = LinkState::of(&link(3, LinkFlags::Up | LinkFlags::Running));
        assert!(running.is_some_and(|l| l.up));
    }

    #[test]
    fn a_deleted_link_is_removed_and_down() {
        let deleted = RouteNetlinkMessage::DelLink(link(3, LinkFlags::Up | LinkFlags::Running));
        assert_eq!(
            LinkEvent::of(deleted),
            Some(LinkEvent::Removed(LinkState {
                ifindex: 3,
                name: "eth0".into(),
                up: false
            }))
        );
        let mut address = netlink_packet_route::address::AddressMessage::default();
        address.header.index = 3;
        assert_eq!(
            LinkEvent::of(RouteNetlinkMessage::NewAddress(address)),
            Some(LinkEvent::Addressed(3))
        );
    }

    #[test]
    fn a_missing_interface_is_named() {
        assert_eq!(
            index("xlb-absent0").unwrap_err().to_string(),
            "no interface xlb-absent0"
        );
        assert_eq!(index("lo").unwrap(), 1);
    }
}
