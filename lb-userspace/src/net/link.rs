//! Interfaces: looking them up, asking whether they are up and for their Ethernet address,
//! and hearing when they go up or down.

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    pub ifindex: u32,
    /// Administratively up and with carrier, as keepalived judges a tracked interface.
    pub up: bool,
}

impl LinkState {
    fn of(link: &LinkMessage) -> Self {
        Self {
            ifindex: link.header.index,
            up: link
                .header
                .flags
                .contains(LinkFlags::Up | LinkFlags::Running),
        }
    }
}

impl Netlink {
    /// Whether interface `ifindex` is up now.
    pub async fn link_state(&self, ifindex: u32) -> Result<LinkState, Error> {
        Ok(LinkState::of(&self.link(ifindex).await?))
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

/// Every link change in this network namespace, as the kernel announces it, from the moment
/// [`LinkEvents::open`] returns. The stream ends if the netlink socket fails.
pub struct LinkEvents {
    messages: UnboundedReceiver<(
        NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
}

impl LinkEvents {
    /// Subscribes to link changes; must be called within a tokio runtime, whose task then
    /// reads the socket until the stream is dropped.
    pub fn open() -> Result<Self, Error> {
        let (connection, _, messages) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link]).map_err(Error::Open)?;
        tokio::spawn(connection);
        Ok(Self { messages })
    }
}

impl Stream for LinkEvents {
    type Item = LinkState;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LinkState>> {
        loop {
            let Some((message, _)) = ready!(self.messages.poll_next_unpin(cx)) else {
                return Poll::Ready(None);
            };
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    return Poll::Ready(Some(LinkState::of(&link)));
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

    #[test]
    fn up_needs_both_admin_up_and_carrier() {
        let mut link = LinkMessage::default();
        link.header.index = 3;
        link.header.flags = LinkFlags::Up;
        assert_eq!(
            LinkState::of(&link),
            LinkState {
                ifindex: 3,
                up: false
            }
        );
        link.header.flags |= LinkFlags::Running;
        assert!(LinkState::of(&link).up);
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
