//! From a received frame to a verdict: parse, find the service, pin the flow to a real.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    Addr, Family,
    conn::Segment,
    maps::{Flow, FlowKey, Real, Service, VipKey, service_flags},
    stats::Event,
};

use crate::{
    conns, forward,
    headers::{self, ETH_P_IP, EthHdr, IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr, Ports},
    maps::{self, FLOWS, REALS, VIPS},
    persist,
};

/// The verdict for one frame. Anything that is not traffic for a virtual service leaves
/// untouched with `XDP_PASS`.
#[inline(always)]
pub fn packet(ctx: &XdpContext) -> u32 {
    let Some(eth) = headers::at::<EthHdr>(ctx, 0) else {
        return pass(Event::Truncated);
    };
    // SAFETY: `at` checked that the header lies inside the packet.
    match u16::from_be(unsafe { (*eth).proto }) {
        ETH_P_IP => ipv4(ctx, eth),
        _ => xdp_action::XDP_PASS,
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, eth: *mut EthHdr) -> u32 {
    let Some(ip) = headers::at::<Ipv4Hdr>(ctx, EthHdr::LEN) else {
        return pass(Event::Truncated);
    };
    // SAFETY: bounds checked by `at`; the header is only read here.
    let ip = unsafe { &*ip };
    let header_len = ip.header_len();
    if header_len < Ipv4Hdr::MIN_LEN {
        return pass(Event::Truncated);
    }
    if ip.is_fragment() {
        return pass(Event::Fragment);
    }
    if ip.proto != IPPROTO_TCP && ip.proto != IPPROTO_UDP {
        return pass(Event::NotVip);
    }
    let Some(ports) = headers::at::<Ports>(ctx, EthHdr::LEN + header_len) else {
        return pass(Event::Truncated);
    };
    // SAFETY: bounds checked by `at`.
    let ports = unsafe { &*ports };

    let vip = VipKey {
        addr: Addr::from_v4_raw(ip.dst),
        port: ports.dst,
        proto: ip.proto,
        family: Family::V4 as u8,
    };
    // SAFETY: services are never updated in place (see `VIPS`), so the value stays coherent.
    let Some(service) = (unsafe { VIPS.get(&vip) }) else {
        return pass(Event::NotVip);
    };
    let flow = FlowKey {
        src: Addr::from_v4_raw(ip.src),
        dst: vip.addr,
        sport: ports.src,
        dport: ports.dst,
        proto: ip.proto,
        family: Family::V4 as u8,
        _pad: [0; 2],
    };
    let segment = conns::segment(ctx, ip.proto, EthHdr::LEN + header_len);
    let found = match pinned_real(&flow, segment) {
        Some(found) => Ok(found),
        None => schedule(service, &flow, segment),
    };
    let (index, real, new_flow) = match found {
        Ok(found) => found,
        Err(event) => {
            maps::count(event);
            return xdp_action::XDP_DROP;
        }
    };
    let verdict = forward::direct(ctx, eth, &real);
    if verdict == xdp_action::XDP_TX || verdict == xdp_action::XDP_REDIRECT {
        let bytes = (ctx.data_end() - ctx.data()) as u64;
        maps::account(service.id, index, bytes, new_flow);
    }
    verdict
}

/// The real an established flow is pinned to, if that real still exists as it did when the
/// flow was scheduled.
#[inline(always)]
fn pinned_real(key: &FlowKey, segment: Segment) -> Option<(u32, Real, bool)> {
    // SAFETY: flow values are written whole by `schedule`; after that only their state
    // changes, here, on the CPU the flow's packets arrive on.
    let flow = unsafe { &mut *FLOWS.get_ptr_mut(key)? };
    let real = *REALS.get(flow.real)?;
    if !real.is_present() || real.generation != flow.generation {
        return None;
    }
    conns::follow(flow, segment);
    Some((flow.real, real, false))
}

/// Picks a real for a new flow by the client's persistence or the service's scheduler,
/// and pins the flow to it; or says why the packet is dropped.
///
/// A flow that is in the table but was not pinned has lost its real; the service says
/// whether it is rescheduled or dropped.
#[inline(always)]
fn schedule(
    service: &Service,
    key: &FlowKey,
    segment: Segment,
) -> Result<(u32, Real, bool), Event> {
    // SAFETY: only whether an entry exists is read.
    if service.flags & service_flags::DROP_NODEST != 0 && unsafe { FLOWS.get(key) }.is_some() {
        return Err(Event::NoDest);
    }
    let (index, real) = persist::choose(service, key).ok_or(Event::NoReal)?;
    let flow = Flow {
        real: index,
        generation: real.generation,
        state: conns::start(service, index, segment) as u8,
        _pad: [0; 3],
    };
    // A full LRU evicts its oldest flow, so this only fails on kernel memory pressure; the
    // packet is still delivered and the next one schedules again.
    let _ = FLOWS.insert(key, &flow, 0);
    Ok((index, real, true))
}

#[inline(always)]
fn pass(event: Event) -> u32 {
    maps::count(event);
    xdp_action::XDP_PASS
}
