//! xlb's decapsulation program, for LVS-TUN real servers whose kernel has no ipip or
//! ip6tnl driver (or should not need one): it strips the outer IPIP or IP6IP6 header of a
//! packet whose inner destination is one of this host's VIPs, and passes the client's
//! packet to the kernel as if it had arrived unwrapped. Everything else passes untouched.
#![no_std]
#![no_main]

#[path = "../runtime.rs"]
mod runtime;

// Shared with the balancer; this program reads only part of it.
#[allow(dead_code, unused_imports)]
#[path = "../headers.rs"]
mod headers;

use aya_ebpf::{
    EbpfContext as _,
    bindings::xdp_action,
    helpers::bpf_xdp_adjust_head,
    macros::{map, xdp},
    maps::HashMap,
    programs::XdpContext,
};
use headers::{ETH_P_IP, ETH_P_IPV6, EthHdr, IPPROTO_IPIP, IPPROTO_IPV6, Ipv4Hdr, Ipv6Hdr};
use lb_common::{
    Addr, Family,
    maps::{DecapKey, MAX_DECAP_VIPS},
};

/// The VIPs this real server serves through tunnels; the value is unused.
#[map]
static DECAP_VIPS: HashMap<DecapKey, u8> = HashMap::with_max_entries(MAX_DECAP_VIPS, 0);

#[xdp]
pub fn decap(ctx: XdpContext) -> u32 {
    match outer_len(&ctx) {
        Some(len) => strip(&ctx, len),
        None => xdp_action::XDP_PASS,
    }
}

/// Length of the outer header to strip, when the frame is a tunnelled packet for a VIP.
#[inline(always)]
fn outer_len(ctx: &XdpContext) -> Option<usize> {
    let eth = headers::at::<EthHdr>(ctx, 0)?;
    // SAFETY: every header is bounds-checked by `at` and only read.
    unsafe {
        match u16::from_be((*eth).proto) {
            ETH_P_IP => {
                let outer = &*headers::at::<Ipv4Hdr>(ctx, EthHdr::LEN)?;
                let len = outer.header_len();
                if outer.proto != IPPROTO_IPIP || len < Ipv4Hdr::MIN_LEN || outer.is_fragment() {
                    return None;
                }
                let inner = &*headers::at::<Ipv4Hdr>(ctx, EthHdr::LEN + len)?;
                is_vip(Addr::from_v4_raw(inner.dst), Family::V4).then_some(len)
            }
            ETH_P_IPV6 => {
                let outer = &*headers::at::<Ipv6Hdr>(ctx, EthHdr::LEN)?;
                if outer.next_header != IPPROTO_IPV6 {
                    return None;
                }
                let inner = &*headers::at::<Ipv6Hdr>(ctx, EthHdr::LEN + Ipv6Hdr::LEN)?;
                is_vip(Addr(inner.dst), Family::V6).then_some(Ipv6Hdr::LEN)
            }
            _ => None,
        }
    }
}

#[inline(always)]
fn is_vip(addr: Addr, family: Family) -> bool {
    let key = DecapKey {
        addr,
        family: family as u8,
        _pad: [0; 3],
    };
    // SAFETY: only the presence of the key is read.
    unsafe { DECAP_VIPS.get(&key).is_some() }
}

/// Moves the Ethernet header forward over the outer header and drops what lies before it.
/// The inner packet is of the outer's family, so the Ethernet type stays.
#[inline(always)]
fn strip(ctx: &XdpContext, len: usize) -> u32 {
    let Some(eth) = headers::at::<EthHdr>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: bounds checked by `at`.
    let (dst, src, proto) = unsafe { ((*eth).dst, (*eth).src, (*eth).proto) };
    // SAFETY: plain helper call; the packet is re-read after it.
    if unsafe { bpf_xdp_adjust_head(ctx.as_ptr().cast(), len as i32) } != 0 {
        return xdp_action::XDP_PASS;
    }
    let Some(eth) = headers::at::<EthHdr>(ctx, 0) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: bounds checked by `at`.
    unsafe { eth.write(EthHdr { dst, src, proto }) };
    xdp_action::XDP_PASS
}
