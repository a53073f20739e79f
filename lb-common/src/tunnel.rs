//! LVS-TUN: the outer header's source address, and the checksum of an outer IPv4 header.

use crate::{Addr, inet_csum, maps::FlowKey};

/// A 32-bit hash of a client connection, the same on every packet of it.
///
/// Words are taken as the packet carries them (network byte order read natively), so the
/// value is only meaningful on the host that computed it; the kernel and the agent share it.
pub fn flow_hash(key: &FlowKey) -> u32 {
    let words = [
        key.src.0[0],
        key.src.0[1],
        key.src.0[2],
        key.src.0[3],
        key.dst.0[0],
        key.dst.0[1],
        key.dst.0[2],
        key.dst.0[3],
        (u32::from(key.sport) << 16) | u32::from(key.dport),
        u32::from(key.proto),
    ];
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < words.len() {
        hash = (hash ^ words[i]).rotate_left(13).wrapping_mul(0x9e37_79b1);
        i += 1;
    }
    finish(hash)
}

/// murmur3's finaliser: every input bit reaches every output bit, so low bits taken from
/// the hash spread as well as high ones.
const fn finish(mut hash: u32) -> u32 {
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^ (hash >> 16)
}

/// Value of `TUNNEL_SOURCES` (one per family): the prefix outer source addresses are taken
/// from (`xlb run --tunnel-source`).
///
/// The low bits vary with the client connection so that a real's receive-side scaling, which
/// hashes the outer header of IPIP and IP6IP6 packets, spreads connections over its queues
/// instead of putting every one from this director on one queue.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelSource {
    pub addr: Addr,
    /// Bits taken from the flow hash: the host part of the prefix.
    pub host_mask: Addr,
    /// [`TunnelSource::SET`] when configured; otherwise the route's source address is used.
    pub flags: u8,
    pub _pad: [u8; 3],
}

impl TunnelSource {
    pub const SET: u8 = 1;

    /// `addr/prefix_len` in a family whose addresses have `bits` bits (32 or 128).
    pub fn new(addr: Addr, prefix_len: u8, bits: u8) -> Self {
        let mut host_mask = [0u32; 4];
        let words = usize::from(bits / 32);
        for (i, word) in host_mask.iter_mut().enumerate().take(words) {
            let first_bit = i as u32 * 32;
            let network_bits = u32::from(prefix_len).saturating_sub(first_bit).min(32);
            let host = u32::MAX.checked_shr(network_bits).unwrap_or(0);
            // Stored the way the packet carries it, like `addr`.
            *word = host.to_be();
        }
        Self {
            addr,
            host_mask: Addr(host_mask),
            flags: Self::SET,
            _pad: [0; 3],
        }
    }

    pub const fn is_set(&self) -> bool {
        self.flags & Self::SET != 0
    }

    /// The source address for a connection with `hash`.
    pub fn for_flow(&self, hash: u32) -> Addr {
        let mut out = [0u32; 4];
        let mut i = 0;
        while i < 4 {
            let bits = hash.rotate_left(i as u32 * 8);
            out[i] = (self.addr.0[i] & !self.host_mask.0[i]) | (bits & self.host_mask.0[i]);
            i += 1;
        }
        Addr(out)
    }
}

/// The checksum of an IPv4 header given as ten 16-bit words as the packet carries them,
/// its own checksum field zero; returned the same way, ready to store.
pub fn ipv4_header_checksum(words: &[u16; 10]) -> u16 {
    inet_csum::finish(inet_csum::add_words(0, words))
}

map_layout!(TunnelSource = 16 * 2 + 4);

#[cfg(test)]
mod tests {
    use core::net::IpAddr;

    use super::*;
    use crate::Family;

    fn key(sport: u16) -> FlowKey {
        FlowKey {
            src: Addr::from("198.51.100.7".parse::<IpAddr>().unwrap()),
            dst: Addr::from("203.0.113.10".parse::<IpAddr>().unwrap()),
            sport: sport.to_be(),
            dport: 80u16.to_be(),
            proto: 6,
            family: Family::V4 as u8,
            _pad: [0; 2],
        }
    }

    fn ip(addr: &str) -> Addr {
        Addr::from(addr.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn a_flow_always_hashes_the_same() {
        assert_eq!(flow_hash(&key(40000)), flow_hash(&key(40000)));
        assert_ne!(flow_hash(&key(40000)), flow_hash(&key(40001)));
    }

    #[test]
    fn neighbouring_ports_spread_over_the_low_bits() {
        let mut seen = [0u32; 16];
        for port in 40000..41600 {
            seen[(flow_hash(&key(port)) & 15) as usize] += 1;
        }
        // 100 each on average; a poor mix leaves buckets empty or crowded.
        assert!(seen.iter().all(|n| (60..=140).contains(n)), "{seen:?}");
    }

    #[test]
    fn an_ipv4_prefix_keeps_its_network_bits() {
        let source = TunnelSource::new(ip("192.0.2.64"), 26, 32);
        for port in 40000..40100 {
            let addr = source.for_flow(flow_hash(&key(port))).to_ip(Family::V4);
            let IpAddr::V4(v4) = addr else { panic!() };
            assert_eq!(v4.octets()[..3], [192, 0, 2]);
            assert_eq!(v4.octets()[3] & 0xc0, 64, "{addr}");
        }
    }

    #[test]
    fn a_host_address_is_used_as_is() {
        let source = TunnelSource::new(ip("192.0.2.2"), 32, 32);
        assert_eq!(source.for_flow(0xdead_beef), ip("192.0.2.2"));
        let v6 = TunnelSource::new(ip("2001:db8::2"), 128, 128);
        assert_eq!(v6.for_flow(0xdead_beef), ip("2001:db8::2"));
    }

    #[test]
    fn an_ipv6_prefix_varies_only_its_host_part() {
        let source = TunnelSource::new(ip("2001:db8:7::"), 112, 128);
        let a = source.for_flow(0x1234_5678).to_ip(Family::V6);
        let IpAddr::V6(a) = a else { panic!() };
        assert_eq!(a.segments()[..7], [0x2001, 0xdb8, 7, 0, 0, 0, 0]);
        let distinct: std::collections::BTreeSet<_> = (40000..40050)
            .map(|p| source.for_flow(flow_hash(&key(p))))
            .collect();
        assert!(distinct.len() > 40, "{}", distinct.len());
    }

    #[test]
    fn ipv4_checksum_matches_a_known_header() {
        let bytes = [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0,
            0xc7,
        ];
        let words: [u16; 10] = inet_csum::words(&bytes).try_into().unwrap();
        assert_eq!(ipv4_header_checksum(&words).to_ne_bytes(), [0xb8, 0x61]);
    }
}
