//! Resolving next hops: the data plane takes MAC addresses from the kernel's neighbour
//! table and cannot start ARP or neighbour discovery itself, so the agent asks the kernel to
//! resolve (`NTF_USE`) what the program could not send to, and every real it installs.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use futures::TryStreamExt as _;
use netlink_packet_route::{
    neighbour::{NeighbourFlags, NeighbourState},
    route::{RouteAttribute, RouteMessage},
};
use rtnetlink::RouteMessageBuilder;
use tracing::debug;

use super::{Error, Netlink};

/// Asks the kernel to resolve neighbours, at most once per address per `cooldown`: the
/// program reports a miss for every packet until the entry appears.
pub struct Resolver {
    netlink: Netlink,
    recent: Vec<(IpAddr, Instant)>,
    cooldown: Duration,
}

impl Resolver {
    /// Opens a netlink connection driven by a task on the current runtime.
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            netlink: Netlink::open()?,
            recent: Vec::new(),
            cooldown: Duration::from_secs(1),
        })
    }

    /// Starts resolution of `addr` on `ifindex`, or on the interface the kernel routes it
    /// through when `ifindex` is unknown.
    pub async fn resolve(&mut self, addr: IpAddr, ifindex: Option<u32>) -> Result<(), Error> {
        let now = Instant::now();
        self.recent
            .retain(|(_, at)| now.duration_since(*at) < self.cooldown);
        if self.recent.iter().any(|(a, _)| *a == addr) {
            return Ok(());
        }
        self.recent.push((addr, now));
        let ifindex = match ifindex {
            Some(ifindex) => ifindex,
            None => match self.output_interface(addr).await? {
                Some(ifindex) => ifindex,
                None => return Ok(()),
            },
        };
        debug!("Resolving neighbour {addr} on interface {ifindex}");
        self.netlink
            .handle
            .neighbours()
            .add(ifindex, addr)
            .state(NeighbourState::None)
            .flags(NeighbourFlags::Use)
            .replace()
            .execute()
            .await
            .map_err(|err| Error::request(format!("resolving {addr} on interface {ifindex}"), err))
    }

    async fn output_interface(&self, addr: IpAddr) -> Result<Option<u32>, Error> {
        let mut routes = self.netlink.handle.route().get(host_route(addr)).execute();
        let what = || format!("looking up the route to {addr}");
        while let Some(route) = routes
            .try_next()
            .await
            .map_err(|err| Error::request(what(), err))?
        {
            if let Some(oif) = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(oif) => Some(*oif),
                _ => None,
            }) {
                return Ok(Some(oif));
            }
        }
        Ok(None)
    }
}

/// A query for the route to `addr` alone.
fn host_route(addr: IpAddr) -> RouteMessage {
    match addr {
        IpAddr::V4(a) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(a, 32)
            .build(),
        IpAddr::V6(a) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(a, 128)
            .build(),
    }
}
