//! ICMP errors about a virtual service's flows (destination unreachable, fragmentation
//! needed, time exceeded, packet too big) go to the real that owns the flow: it sent the
//! packet the error is about, and it is the host that must act on it (lower its path MTU,
//! give up on the client).
//!
//! Such an error is addressed to the VIP and quotes the headers of the real's answer (from
//! the VIP to the client), so the flow is the quote reversed.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    Addr, Family,
    conn_count::Segment,
    maps::{FlowKey, method},
    stats::Event,
    too_big::{ICMP_DEST_UNREACH, ICMPV6_PACKET_TOO_BIG, IPPROTO_ICMP, IPPROTO_ICMPV6},
};

use crate::{
    balance, clock,
    flow::{self, Pin},
    forward,
    headers::{
        self, ETH_P_IP, ETH_P_IPV6, EthHdr, IPPROTO_TCP, IPPROTO_UDP, IcmpHdr, Ipv4Hdr, Ipv6Hdr,
        Ports,
    },
    maps, nat,
    packet::Packet,
    tunnel::{self, Tunnelled},
};

/// The stage: an ICMP error about a flow goes to the flow's real, the way its method
/// reaches it; any other ICMP message, and an error about a flow no real owns, is the
/// kernel's.
#[inline(always)]
pub fn stage(ctx: &XdpContext) -> u32 {
    let Some(eth) = headers::at::<EthHdr>(ctx, 0) else {
        return maps::pass(Event::Truncated);
    };
    let Some((packet, error)) = error(ctx, eth) else {
        return maps::pass(Event::NotVip);
    };
    if balance::service(&packet.flow).is_none() {
        return maps::pass(Event::NotVip);
    }
    // The error is no packet of the flow: it tells nothing of the flow's state.
    let Pin::Held(pinned, real) = flow::pinned(&packet, Segment::Datagram, clock::now()) else {
        return maps::pass(Event::IcmpUnplaced);
    };
    // SAFETY: a live flow-table value (see `flow::pinned`).
    let index = unsafe { (*pinned).real };
    let Some(hop) = forward::to_hop(ctx, index, &real) else {
        return xdp_action::XDP_DROP;
    };
    match real.method {
        method::DR => forward::direct(ctx, &packet, hop),
        method::NAT => nat::error_to_real(ctx, &packet, &real, hop, &error),
        method::TUN => match tunnel::encapsulate(ctx, &packet, &real, hop) {
            Tunnelled::Verdict(verdict) => verdict,
            // The kernel may still deliver the error to the director.
            Tunnelled::TooBig { .. } => maps::pass(Event::IcmpUnplaced),
        },
        _ => maps::drop(Event::UnknownMethod),
    }
}

const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMPV6_DEST_UNREACH: u8 = 1;
const ICMPV6_TIME_EXCEEDED: u8 = 3;

/// Where an ICMP error's parts lie in the frame.
#[derive(Clone, Copy)]
pub struct Error {
    /// Offset of the ICMP header.
    pub icmp: usize,
    /// Offset of the quoted IP header.
    pub quote: usize,
}

/// The flow an ICMP error is about, as a client's packet of it (its `l4` the quoted ports),
/// and where the error's parts are; `None` when the frame is no ICMP error about a TCP or
/// UDP packet.
#[inline(always)]
fn error(ctx: &XdpContext, eth: *mut EthHdr) -> Option<(Packet, Error)> {
    // SAFETY: the caller bounds-checked the Ethernet header.
    let (family, icmp) = match u16::from_be(unsafe { (*eth).proto }) {
        ETH_P_IP => (Family::V4, icmp_v4(ctx)?),
        ETH_P_IPV6 => (Family::V6, icmp_v6(ctx)?),
        _ => return None,
    };
    let quote = icmp + IcmpHdr::LEN;
    let (flow, l4) = quoted_flow(ctx, family, quote)?;
    let packet = Packet {
        eth,
        l4,
        flow,
        fragment_id: None,
    };
    Some((packet, Error { icmp, quote }))
}

/// Offset of the ICMP header of an IPv4 ICMP error that is no fragment.
#[inline(always)]
fn icmp_v4(ctx: &XdpContext) -> Option<usize> {
    let ip = headers::at::<Ipv4Hdr>(ctx, EthHdr::LEN)?;
    // SAFETY: bounds checked by `at`.
    let ip = unsafe { &*ip };
    let header_len = ip.header_len();
    if ip.proto != IPPROTO_ICMP || header_len < Ipv4Hdr::MIN_LEN || ip.is_fragment() {
        return None;
    }
    let at = EthHdr::LEN + header_len;
    let icmp = headers::at::<IcmpHdr>(ctx, at)?;
    // SAFETY: bounds checked by `at`.
    matches!(
        unsafe { (*icmp).kind },
        ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED
    )
    .then_some(at)
}

/// Offset of the ICMPv6 header of an ICMPv6 error right after the fixed IPv6 header.
#[inline(always)]
fn icmp_v6(ctx: &XdpContext) -> Option<usize> {
    let ip = headers::at::<Ipv6Hdr>(ctx, EthHdr::LEN)?;
    // SAFETY: bounds checked by `at`.
    if unsafe { (*ip).next_header } != IPPROTO_ICMPV6 {
        return None;
    }
    let at = EthHdr::LEN + Ipv6Hdr::LEN;
    let icmp = headers::at::<IcmpHdr>(ctx, at)?;
    // SAFETY: bounds checked by `at`.
    matches!(
        unsafe { (*icmp).kind },
        ICMPV6_DEST_UNREACH | ICMPV6_PACKET_TOO_BIG | ICMPV6_TIME_EXCEEDED
    )
    .then_some(at)
}

/// The client's flow that the quoted TCP or UDP packet at `quote` answers, and the offset of
/// the quoted ports.
#[inline(always)]
fn quoted_flow(ctx: &XdpContext, family: Family, quote: usize) -> Option<(FlowKey, usize)> {
    let (src, dst, proto, l4) = match family {
        Family::V4 => {
            let ip = headers::at::<Ipv4Hdr>(ctx, quote)?;
            // SAFETY: bounds checked by `at`.
            let ip = unsafe { &*ip };
            let header_len = ip.header_len();
            if header_len < Ipv4Hdr::MIN_LEN {
                return None;
            }
            let addr = Addr::from_v4_raw;
            (addr(ip.src), addr(ip.dst), ip.proto, quote + header_len)
        }
        Family::V6 => {
            let ip = headers::at::<Ipv6Hdr>(ctx, quote)?;
            // SAFETY: bounds checked by `at`.
            let ip = unsafe { &*ip };
            (
                Addr(ip.src),
                Addr(ip.dst),
                ip.next_header,
                quote + Ipv6Hdr::LEN,
            )
        }
    };
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return None;
    }
    let ports = headers::at::<Ports>(ctx, l4)?;
    // SAFETY: bounds checked by `at`.
    let ports = unsafe { &*ports };
    let flow = FlowKey {
        src: dst,
        dst: src,
        sport: ports.dst,
        dport: ports.src,
        proto,
        family: family as u8,
        _pad: [0; 2],
    };
    Some((flow, l4))
}
