//! LVS-TUN: the client's packet, whole, inside an IPIP (IPv4) or IP6IP6 (IPv6) header
//! addressed to the real, which unwraps it and answers the client directly.

use aya_ebpf::{
    EbpfContext as _, bindings::xdp_action, helpers::bpf_xdp_adjust_head, programs::XdpContext,
};
use lb_common::{
    Addr, Family,
    maps::{Real, tunnel_source_index},
    stats::Event,
    tunnel::{TunnelSource, flow_hash, ipv4_header_checksum},
};

use crate::{
    headers::{self, ETH_P_IP, ETH_P_IPV6, EthHdr, IPPROTO_IPIP, IPPROTO_IPV6, Ipv4Hdr, Ipv6Hdr},
    hop::{self, Hop},
    maps::{self, TUNNEL_SOURCES},
    packet::Packet,
};

/// TTL / hop limit of outer headers: the tunnel is a new hop-by-hop journey.
const OUTER_TTL: u8 = 64;

/// What the outer header copies from the client's packet.
struct Inner {
    /// The whole IP packet, headers included, without any Ethernet padding.
    len: u16,
    /// IPv4: the type-of-service byte.
    tos: u8,
    /// IPv4: the Don't Fragment bit, where `frag_off` holds it.
    df: u16,
    /// IPv6: the first word (version, traffic class, flow label), host order.
    first_word: u32,
}

/// What became of a packet to tunnel.
pub enum Tunnelled {
    /// Wrapped and sent on, or not: the verdict, counted.
    Verdict(u32),
    /// Too big for the route to the real, of this MTU, once wrapped: the client is to be
    /// answered instead.
    TooBig { family: Family, route_mtu: u16 },
}

/// Bytes the outer header adds to a packet of `family`.
#[inline(always)]
pub const fn overhead(family: Family) -> u16 {
    match family {
        Family::V4 => Ipv4Hdr::MIN_LEN as u16,
        Family::V6 => Ipv6Hdr::LEN as u16,
    }
}

/// Whether a tunnelled packet of family byte `family` takes its outer source from the
/// route to its real, no `--tunnel-source` being set for the family.
#[inline(always)]
pub fn needs_route_source(family: u8) -> bool {
    let family = Family::from_raw(family).unwrap_or(Family::V4);
    !configured(family).is_some_and(|s| s.is_set())
}

#[inline(always)]
fn configured(family: Family) -> Option<&'static TunnelSource> {
    TUNNEL_SOURCES.get(tunnel_source_index(family))
}

/// Out of line, as the other forwarding methods, so that each has its own stack frame.
#[inline(never)]
pub fn encapsulate(ctx: &XdpContext, packet: &Packet, real: &Real, hop: &Hop) -> Tunnelled {
    let family = if packet.flow.family == Family::V6 as u8 {
        Family::V6
    } else {
        Family::V4
    };
    let Some(inner) = inner(ctx, family) else {
        return Tunnelled::Verdict(maps::pass(Event::Truncated));
    };
    if inner.len + overhead(family) > hop.mtu {
        return Tunnelled::TooBig {
            family,
            route_mtu: hop.mtu,
        };
    }
    let hash = flow_hash(&packet.flow);
    let source = match configured(family).filter(|s| s.is_set()) {
        Some(prefix) => prefix.for_flow(hash),
        None => hop.src,
    };
    Tunnelled::Verdict(match family {
        Family::V4 => ipv4(ctx, real, hop, source, &inner),
        Family::V6 => ipv6(ctx, real, hop, source, hash, &inner),
    })
}

/// The client's IP packet as the outer header needs it, or `None` when its length field
/// claims more than the frame holds.
#[inline(always)]
fn inner(ctx: &XdpContext, family: Family) -> Option<Inner> {
    let frame = ctx.data_end() - ctx.data();
    // SAFETY: headers are bounds-checked by `at` and only read.
    let inner = unsafe {
        match family {
            Family::V4 => {
                let ip = &*headers::at::<Ipv4Hdr>(ctx, EthHdr::LEN)?;
                Inner {
                    len: u16::from_be(ip.tot_len),
                    tos: ip.tos,
                    df: ip.frag_off & Ipv4Hdr::DF,
                    first_word: 0,
                }
            }
            Family::V6 => {
                let ip = &*headers::at::<Ipv6Hdr>(ctx, EthHdr::LEN)?;
                Inner {
                    len: u16::from_be(ip.payload_len).saturating_add(Ipv6Hdr::LEN as u16),
                    tos: 0,
                    df: 0,
                    first_word: u32::from_be(ip.version_class_flow),
                }
            }
        }
    };
    (EthHdr::LEN + usize::from(inner.len) <= frame).then_some(inner)
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, real: &Real, hop: &Hop, source: Addr, inner: &Inner) -> u32 {
    let Some((eth, outer)) = grow::<Ipv4Hdr>(ctx, ETH_P_IP) else {
        return drop_no_headroom();
    };
    let mut header = Ipv4Hdr {
        version_ihl: 0x45,
        tos: inner.tos,
        tot_len: (inner.len + Ipv4Hdr::MIN_LEN as u16).to_be(),
        id: 0,
        // Path MTU discovery keeps working when the client asked for it, as in IPVS.
        frag_off: inner.df,
        ttl: OUTER_TTL,
        proto: IPPROTO_IPIP,
        check: 0,
        src: source.0[0],
        dst: real.addr.0[0],
    };
    // SAFETY: `Ipv4Hdr` is ten plain 16-bit words without padding.
    header.check = ipv4_header_checksum(unsafe { &*(&header as *const Ipv4Hdr).cast() });
    // SAFETY: `grow` bounds-checked the new header.
    unsafe { outer.write(header) };
    hop::send(ctx, eth, hop)
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, real: &Real, hop: &Hop, source: Addr, hash: u32, inner: &Inner) -> u32 {
    let Some((eth, outer)) = grow::<Ipv6Hdr>(ctx, ETH_P_IPV6) else {
        return drop_no_headroom();
    };
    let traffic_class = inner.first_word & 0x0ff0_0000;
    // The flow label carries the hash too, for ECMP and RSS that read it.
    let header = Ipv6Hdr {
        version_class_flow: ((6 << 28) | traffic_class | (hash & 0x000f_ffff)).to_be(),
        payload_len: inner.len.to_be(),
        next_header: IPPROTO_IPV6,
        hop_limit: OUTER_TTL,
        src: source.0,
        dst: real.addr.0,
    };
    // SAFETY: `grow` bounds-checked the new header.
    unsafe { outer.write(header) };
    hop::send(ctx, eth, hop)
}

/// Makes room for an `H` between the Ethernet header and the packet, and returns the new
/// Ethernet header (its type set to `proto`, MACs left for `hop::send`) and the room.
#[inline(always)]
fn grow<H>(ctx: &XdpContext, proto: u16) -> Option<(*mut EthHdr, *mut H)> {
    let room = size_of::<H>() as i32;
    // SAFETY: plain helper call; every packet pointer is re-derived after it.
    if unsafe { bpf_xdp_adjust_head(ctx.as_ptr().cast(), -room) } != 0 {
        return None;
    }
    let eth = headers::at::<EthHdr>(ctx, 0)?;
    let outer = headers::at::<H>(ctx, EthHdr::LEN)?;
    // SAFETY: bounds checked by `at`.
    unsafe { (*eth).proto = proto.to_be() };
    Some((eth, outer))
}

#[inline(always)]
fn drop_no_headroom() -> u32 {
    maps::count(Event::NoHeadroom);
    xdp_action::XDP_DROP
}
