//! Resolving real servers' MAC addresses for the program.
//!
//! The program takes next hops from the kernel's neighbour table and cannot start ARP or
//! neighbour discovery itself. When it meets an unresolved next hop it reports it on a ring
//! buffer; the agent has the kernel resolve it ([`net::Resolver`]), so the following packets
//! find the entry. The agent also asks up front for every real it installs.

use std::{io, net::IpAddr};

use aya::maps::{MapData, RingBuf};
use lb_common::{Family, maps::NeighMiss};
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tracing::warn;

use crate::net;

/// Unresolved next hops reported by the program.
pub struct Misses {
    ring: AsyncFd<RingBuf<MapData>>,
}

/// One next hop the program could not send to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Miss {
    pub addr: IpAddr,
    pub ifindex: u32,
}

impl Misses {
    pub(super) fn new(ring: RingBuf<MapData>) -> io::Result<Self> {
        // SAFETY: the ring owns its map fd, and `AsyncFd` owns the ring until it is dropped.
        Ok(Self {
            ring: unsafe { AsyncFd::register(ring)? },
        })
    }

    /// Waits for the next batch of misses.
    pub async fn next_batch(&mut self) -> io::Result<Vec<Miss>> {
        loop {
            let mut guard = self.ring.readable_mut().await?;
            let ring = guard.get_inner_mut();
            let mut batch = Vec::new();
            while let Some(item) = ring.next() {
                batch.extend(decode(&item));
            }
            guard.clear_ready();
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }
}

fn decode(bytes: &[u8]) -> Option<Miss> {
    if bytes.len() < size_of::<NeighMiss>() {
        return None;
    }
    // SAFETY: the program writes whole `NeighMiss` records; any bit pattern is valid.
    let raw: NeighMiss = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    let family = Family::from_raw(raw.family)?;
    Some(Miss {
        addr: raw.addr.to_ip(family),
        ifindex: raw.ifindex,
    })
}

/// Resolves what the program reports and what the agent asks for, until both stop.
pub async fn serve(
    mut misses: Misses,
    mut resolver: net::Resolver,
    mut requests: mpsc::Receiver<Vec<IpAddr>>,
) {
    loop {
        let wanted: Vec<(IpAddr, Option<u32>)> = tokio::select! {
            batch = misses.next_batch() => match batch {
                Ok(batch) => batch.into_iter().map(|m| (m.addr, Some(m.ifindex))).collect(),
                Err(err) => {
                    warn!("Reading unresolved next hops: {err}");
                    return;
                }
            },
            request = requests.recv() => match request {
                Some(addrs) => addrs.into_iter().map(|a| (a, None)).collect(),
                None => return,
            },
        };
        for (addr, ifindex) in wanted {
            if let Err(err) = resolver.resolve(addr, ifindex).await {
                warn!("Cannot resolve a next hop: {err}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use lb_common::Addr;

    use super::*;

    #[test]
    fn decodes_what_the_program_writes() {
        let ip: IpAddr = "192.0.2.11".parse().unwrap();
        let raw = NeighMiss {
            addr: Addr::from(ip),
            ifindex: 7,
            family: Family::V4 as u8,
            _pad: [0; 3],
        };
        // SAFETY: `raw` is a live `repr(C)` value whose padding is an explicit field, so all
        // `size_of::<NeighMiss>()` of its bytes are initialised, for as long as `bytes` lives.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&raw as *const NeighMiss).cast::<u8>(),
                size_of::<NeighMiss>(),
            )
        };
        assert_eq!(
            decode(bytes),
            Some(Miss {
                addr: ip,
                ifindex: 7
            })
        );
    }

    #[test]
    fn short_or_garbled_records_are_ignored() {
        assert_eq!(decode(&[0u8; 4]), None);
        assert_eq!(decode(&[0u8; size_of::<NeighMiss>()]), None);
    }
}
