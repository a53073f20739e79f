//! Answers to a client whose packet no longer fits the route to its real once tunnelled:
//! ICMP fragmentation needed (IPv4 with Don't Fragment) or ICMPv6 packet too big, from the
//! VIP, sent back the way the packet came with XDP_TX. The client's path MTU discovery
//! then sends smaller packets, as it would behind an IPVS director.

use aya_ebpf::{
    EbpfContext as _,
    bindings::xdp_action,
    helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use lb_common::{
    Family,
    stats::Event,
    too_big::{
        IPPROTO_ICMP, IPPROTO_ICMPV6, IPV4_QUOTE, IPV6_QUOTE, frag_needed_header, icmp_checksum,
        icmpv6_checksum, packet_too_big_header, reported_mtu,
    },
    tunnel::ipv4_header_checksum,
};

use crate::{
    headers::{self, ETH_P_IP, ETH_P_IPV6, EthHdr, Ipv4Hdr, Ipv6Hdr},
    maps,
    stage::{TOO_BIG, TooBig},
    tunnel,
};

const TTL: u8 = 64;
/// An ICMP or ICMPv6 header as far as these answers use it: type, code, checksum and the
/// 32-bit field that holds the MTU.
const ICMP_LEN: usize = 8;

/// The stage: answers the packet in `ctx`, which exceeds the route's MTU once tunnelled
/// (see [`crate::stage::answer_too_big`]).
#[inline(always)]
pub fn stage(ctx: &XdpContext) -> u32 {
    let Some(&TooBig {
        family, route_mtu, ..
    }) = TOO_BIG.get(0)
    else {
        return maps::drop(Event::NoStage);
    };
    let family = Family::from_raw(family).unwrap_or(Family::V4);
    let overhead = tunnel::overhead(family);
    let answered = match family {
        Family::V4 => frag_needed(ctx, reported_mtu(route_mtu, overhead, false)),
        Family::V6 => packet_too_big(ctx, reported_mtu(route_mtu, overhead, true)),
    };
    match answered {
        Some(()) => {
            maps::count(Event::TooBig);
            xdp_action::XDP_TX
        }
        None => maps::drop(Event::TooBigDropped),
    }
}

#[inline(always)]
fn frag_needed(ctx: &XdpContext, mtu: u16) -> Option<()> {
    let eth = headers::at::<EthHdr>(ctx, 0)?;
    let ip = headers::at::<Ipv4Hdr>(ctx, EthHdr::LEN)?;
    headers::at::<[u8; IPV4_QUOTE]>(ctx, EthHdr::LEN)?;
    // SAFETY: bounds checked by `at`; read before the packet changes shape.
    let (client_mac, our_mac, client, vip, df, header_len) = unsafe {
        (
            (*eth).src,
            (*eth).dst,
            (*ip).src,
            (*ip).dst,
            (*ip).frag_off & Ipv4Hdr::DF,
            (*ip).header_len(),
        )
    };
    // Without Don't Fragment the client did not ask to hear; with options, the quote
    // would not hold the ports.
    if df == 0 || header_len != Ipv4Hdr::MIN_LEN {
        return None;
    }
    let headers = Ipv4Hdr::MIN_LEN + ICMP_LEN;
    reshape(ctx, EthHdr::LEN + IPV4_QUOTE, headers)?;
    let eth = headers::at::<EthHdr>(ctx, 0)?;
    let ip = headers::at::<Ipv4Hdr>(ctx, EthHdr::LEN)?;
    let icmp = headers::at::<[u16; 4]>(ctx, EthHdr::LEN + Ipv4Hdr::MIN_LEN)?;
    let quote = headers::at::<[u16; IPV4_QUOTE / 2]>(ctx, EthHdr::LEN + headers)?;
    let mut message = frag_needed_header(mtu);
    // SAFETY: bounds checked by `at`.
    message[1] = icmp_checksum(&message, unsafe { &*quote });
    let mut header = Ipv4Hdr {
        version_ihl: 0x45,
        tos: 0,
        tot_len: ((headers + IPV4_QUOTE) as u16).to_be(),
        id: 0,
        frag_off: 0,
        ttl: TTL,
        proto: IPPROTO_ICMP,
        check: 0,
        src: vip,
        dst: client,
    };
    // SAFETY: `Ipv4Hdr` is ten plain 16-bit words without padding.
    header.check = ipv4_header_checksum(unsafe { &*(&header as *const Ipv4Hdr).cast() });
    // SAFETY: bounds checked by `at`.
    unsafe {
        eth.write(EthHdr {
            dst: client_mac,
            src: our_mac,
            proto: ETH_P_IP.to_be(),
        });
        ip.write(header);
        icmp.write(message);
    }
    Some(())
}

/// Everything it needs after reshaping is still in the frame: the old Ethernet header just
/// ahead of the quote, the addresses in the quote itself.
#[inline(always)]
fn packet_too_big(ctx: &XdpContext, mtu: u16) -> Option<()> {
    headers::at::<[u8; IPV6_QUOTE]>(ctx, EthHdr::LEN)?;
    let headers = Ipv6Hdr::LEN + ICMP_LEN;
    reshape(ctx, EthHdr::LEN + IPV6_QUOTE, headers)?;
    let eth = headers::at::<EthHdr>(ctx, 0)?;
    let old_eth = headers::at::<EthHdr>(ctx, headers)?;
    let ip = headers::at::<Ipv6Hdr>(ctx, EthHdr::LEN)?;
    let icmp = headers::at::<[u16; 4]>(ctx, EthHdr::LEN + Ipv6Hdr::LEN)?;
    let quoted = headers::at::<Ipv6Hdr>(ctx, EthHdr::LEN + headers)?;
    let quote = headers::at::<[u16; IPV6_QUOTE / 2]>(ctx, EthHdr::LEN + headers)?;
    // SAFETY: bounds checked by `at`. The new Ethernet header does not overlap the old one,
    // which is read before the IP and ICMP headers overwrite it.
    unsafe {
        (*eth).dst = (*old_eth).src;
        (*eth).src = (*old_eth).dst;
        (*eth).proto = ETH_P_IPV6.to_be();
        (*ip).version_class_flow = (6u32 << 28).to_be();
        (*ip).payload_len = ((ICMP_LEN + IPV6_QUOTE) as u16).to_be();
        (*ip).next_header = IPPROTO_ICMPV6;
        (*ip).hop_limit = TTL;
        (*ip).src = (*quoted).dst;
        (*ip).dst = (*quoted).src;
        let mut message = packet_too_big_header(mtu);
        message[1] = icmpv6_checksum(&(*ip).src, &(*ip).dst, &message, &*quote);
        icmp.write(message);
    }
    Some(())
}

/// Cuts the frame to its first `keep` bytes (Ethernet header and quote), and makes room
/// for `headers` bytes of answer headers after a new Ethernet header, before the quote.
#[inline(always)]
fn reshape(ctx: &XdpContext, keep: usize, headers: usize) -> Option<()> {
    let cut = (ctx.data_end() - ctx.data()) as i32 - keep as i32;
    // SAFETY: plain helper calls; the caller re-derives every packet pointer after them.
    unsafe {
        if bpf_xdp_adjust_tail(ctx.as_ptr().cast(), -cut) != 0 {
            return None;
        }
        if bpf_xdp_adjust_head(ctx.as_ptr().cast(), -(headers as i32)) != 0 {
            return None;
        }
    }
    Some(())
}
