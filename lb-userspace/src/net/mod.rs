//! The host's network configuration, as xlb changes and watches it: host addresses (VRRP's
//! virtual addresses, a real server's VIPs on `lo`), interfaces and their state, next hops
//! for the data plane, and whole Ethernet frames (gratuitous ARP).
//!
//! One module so that VRRP, the data plane and `xlb realserver` share one way of talking to
//! the kernel: routing netlink through the `rtnetlink` crate (a [`Netlink`] connection, whose
//! requests each file extends with its own kind), interface names through `nix`, and
//! `AF_PACKET` through `socket2`.

mod addr;
mod link;
mod neigh;
mod packet;

use std::io;

pub use addr::HostAddr;
pub use link::{LinkEvent, LinkEvents, LinkState, index};
pub use neigh::Resolver;
pub use packet::PacketSocket;

/// A routing netlink connection. Its socket is served by a task on the tokio runtime it was
/// opened on, which ends once every clone is dropped; clones share the socket.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: rtnetlink::Handle,
}

impl Netlink {
    /// Opens a connection; must be called within a tokio runtime.
    pub fn open() -> Result<Self, Error> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(Error::Open)?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }
}

/// Why a request about the host's network failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening a netlink socket: {0}")]
    Open(#[source] io::Error),
    #[error("no interface {0}")]
    NoInterface(String),
    /// `what` says what was asked ("adding 192.0.2.1/24 to interface 2").
    #[error("{what}: {source}")]
    Request {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps a failed request: the kernel's refusal as its errno, so callers can tell
    /// "already there" from real failures, anything else as it came.
    fn request(what: String, err: rtnetlink::Error) -> Self {
        let source = match err {
            rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
            other => io::Error::other(other),
        };
        Self::Request { what, source }
    }

    /// The errno the kernel refused the request with.
    fn errno(&self) -> Option<i32> {
        match self {
            Self::Request { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
