//! "Too big" answers to a client whose packet no longer fits once tunnelled: ICMP
//! fragmentation needed (IPv4, RFC 792 and RFC 1191) and ICMPv6 packet too big (RFC 4443).

use crate::inet_csum;

pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_ICMPV6: u8 = 58;

/// Bytes of the client's packet an IPv4 answer quotes: its (option-less) header and the
/// first 8 bytes of its payload, which hold the ports that find the socket.
pub const IPV4_QUOTE: usize = 20 + 8;
/// Bytes of the client's packet an IPv6 answer quotes: the fixed header and 8 bytes more.
pub const IPV6_QUOTE: usize = 40 + 8;
/// The smallest MTU an IPv6 link may have.
pub const IPV6_MIN_MTU: u16 = 1280;

/// The MTU to report: the route's, less what the tunnel adds. IPv6 never reports less
/// than its minimum link MTU, which hosts would ignore.
pub const fn reported_mtu(route_mtu: u16, overhead: u16, ipv6: bool) -> u16 {
    let mtu = route_mtu.saturating_sub(overhead);
    if ipv6 && mtu < IPV6_MIN_MTU {
        IPV6_MIN_MTU
    } else {
        mtu
    }
}

/// The first 8 bytes of an ICMP fragmentation-needed message, checksum zero, as words the
/// way the packet carries them.
pub fn frag_needed_header(mtu: u16) -> [u16; 4] {
    [
        u16::from_ne_bytes([ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED]),
        0,
        0,
        mtu.to_be(),
    ]
}

/// The first 8 bytes of an ICMPv6 packet-too-big message, checksum zero.
pub fn packet_too_big_header(mtu: u16) -> [u16; 4] {
    [
        u16::from_ne_bytes([ICMPV6_PACKET_TOO_BIG, 0]),
        0,
        0,
        mtu.to_be(),
    ]
}

/// Checksum of an ICMP message made of `header` and `quote`.
pub fn icmp_checksum(header: &[u16; 4], quote: &[u16]) -> u16 {
    inet_csum::finish(inet_csum::add_words(inet_csum::add_words(0, header), quote))
}

/// Checksum of an ICMPv6 message from `src` to `dst` (addresses as `Addr` words), made
/// of `header` and `quote`, pseudo-header included.
pub fn icmpv6_checksum(src: &[u32; 4], dst: &[u32; 4], header: &[u16; 4], quote: &[u16]) -> u16 {
    let len = (8 + 2 * quote.len()) as u32;
    let mut sum = 0;
    let mut i = 0;
    while i < 4 {
        sum += (src[i] & 0xffff) + (src[i] >> 16) + (dst[i] & 0xffff) + (dst[i] >> 16);
        i += 1;
    }
    let length_and_next = [(len >> 16) as u16, len as u16, 0, u16::from(IPPROTO_ICMPV6)];
    let mut pseudo = [0u16; 4];
    let mut j = 0;
    while j < 4 {
        pseudo[j] = length_and_next[j].to_be();
        j += 1;
    }
    sum = inet_csum::add_words(sum, &pseudo);
    inet_csum::finish(inet_csum::add_words(
        inet_csum::add_words(sum, header),
        quote,
    ))
}

#[cfg(test)]
mod tests {
    use core::net::IpAddr;

    use super::*;
    use crate::{Addr, inet_csum::words};

    #[test]
    fn reported_mtu_leaves_room_for_the_tunnel() {
        assert_eq!(reported_mtu(1500, 20, false), 1480);
        assert_eq!(reported_mtu(1500, 40, true), 1460);
        assert_eq!(reported_mtu(1300, 40, true), IPV6_MIN_MTU);
        assert_eq!(reported_mtu(10, 20, false), 0);
    }

    #[test]
    fn frag_needed_checksum_verifies() {
        let quote = words(&[0x45u8; IPV4_QUOTE]);
        let header = frag_needed_header(1480);
        let mut message = header;
        message[1] = icmp_checksum(&header, &quote);
        let total = inet_csum::add_words(inet_csum::add_words(0, &message), &quote);
        assert_eq!(inet_csum::finish(total), 0);
        let bytes: Vec<u8> = header.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(bytes, [3, 4, 0, 0, 0, 0, 0x05, 0xc8]);
    }

    #[test]
    fn packet_too_big_checksum_covers_the_pseudo_header() {
        let src = Addr::from("2001:db8::10".parse::<IpAddr>().unwrap()).0;
        let dst = Addr::from("2001:db8::7".parse::<IpAddr>().unwrap()).0;
        let quote = words(&[0x60u8; IPV6_QUOTE]);
        let header = packet_too_big_header(1460);
        let check = icmpv6_checksum(&src, &dst, &header, &quote);
        // The same sum over the pseudo-header, message and quote laid out as bytes.
        let mut bytes = Vec::new();
        for a in [src, dst] {
            bytes.extend(a.iter().flat_map(|w| w.to_ne_bytes()));
        }
        bytes.extend_from_slice(&(8 + IPV6_QUOTE as u32).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 58]);
        bytes.extend(header.iter().flat_map(|w| w.to_ne_bytes()));
        bytes.extend_from_slice(&[0x60u8; IPV6_QUOTE]);
        assert_eq!(check, inet_csum::checksum(&bytes));
    }
}
