//! From a received frame to a verdict: parse, find the service, pin the flow to a real.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    Addr, Family,
    conn::Segment,
    maps::{Flow, FlowKey, Real, Service, VipKey, method, service_flags, stage},
    stats::Event,
};

use crate::{
    conns, forward,
    headers::{
        self, ETH_P_IP, ETH_P_IPV6, EthHdr, IPPROTO_FRAGMENT, IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr,
        Ipv6Hdr, Ports,
    },
    icmp, icmp_reply,
    maps::{self, FLOWS, REALS, STAGES, VIPS},
    nat, persist,
    tunnel::{self, Tunnelled},
};

/// A client packet that may be for a virtual service, as far as the balancer parsed it.
pub struct Packet {
    pub eth: *mut EthHdr,
    /// Offset of the TCP or UDP header from the start of the frame.
    pub l4: usize,
    /// The connection, in either family; its destination is the VIP.
    pub flow: FlowKey,
}

/// The verdict for one frame. Anything that is not traffic for a virtual service leaves
/// untouched with `XDP_PASS`.
///
/// The object has two programs, as one would exceed BPF's 512 bytes of stack: the
/// balancer (`NAT_STAGE` false), attached to interfaces, forwards DR and TUN services and
/// hands everything else to the NAT stage by tail call, which starts with a stack of its
/// own. The NAT stage forwards NAT services, translates the reals' answers and relays ICMP
/// errors; what is none of these passes there, counted.
#[inline(always)]
pub fn packet<const NAT_STAGE: bool>(ctx: &XdpContext) -> u32 {
    let Some(eth) = headers::at::<EthHdr>(ctx, 0) else {
        return pass(Event::Truncated);
    };
    // SAFETY: `at` checked that the header lies inside the packet.
    let parsed = match u16::from_be(unsafe { (*eth).proto }) {
        ETH_P_IP => ipv4(ctx, eth),
        ETH_P_IPV6 => ipv6(ctx, eth),
        _ => return xdp_action::XDP_PASS,
    };
    // What is no TCP or UDP flow may still be an ICMP error about one. Each arm balances
    // its own packet: gathering them into one first costs copies of it on the stack.
    match parsed {
        Ok(packet) => balance::<NAT_STAGE>(ctx, &packet, None),
        Err(event) if !NAT_STAGE => hand_over(ctx, event),
        Err(event) => match icmp::error(ctx, eth) {
            Some((packet, error)) => balance::<NAT_STAGE>(ctx, &packet, Some(error)),
            None => pass(event),
        },
    }
}

/// Tail-calls the NAT stage; when it cannot run (not loaded), the packet passes as `event`.
#[inline(always)]
fn hand_over(ctx: &XdpContext, event: Event) -> u32 {
    // SAFETY: the stage is an XDP program of this object; a tail call does not return
    // when it succeeds.
    unsafe { STAGES.tail_call(ctx, stage::NAT) };
    pass(event)
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, eth: *mut EthHdr) -> Result<Packet, Event> {
    let ip = headers::at::<Ipv4Hdr>(ctx, EthHdr::LEN).ok_or(Event::Truncated)?;
    // SAFETY: bounds checked by `at`; the header is only read here.
    let ip = unsafe { &*ip };
    let header_len = ip.header_len();
    if header_len < Ipv4Hdr::MIN_LEN {
        return Err(Event::Truncated);
    }
    if ip.is_fragment() {
        return Err(Event::Fragment);
    }
    let l4 = EthHdr::LEN + header_len;
    let flow = flow_key(
        ctx,
        Family::V4,
        ip.proto,
        Addr::from_v4_raw(ip.src),
        Addr::from_v4_raw(ip.dst),
        l4,
    )?;
    Ok(Packet { eth, l4, flow })
}

/// Only the fixed header is read: a packet whose ports lie behind extension headers is
/// left to the kernel, counted, rather than walked with a bounded loop on every packet.
#[inline(always)]
fn ipv6(ctx: &XdpContext, eth: *mut EthHdr) -> Result<Packet, Event> {
    let ip = headers::at::<Ipv6Hdr>(ctx, EthHdr::LEN).ok_or(Event::Truncated)?;
    // SAFETY: bounds checked by `at`; the header is only read here.
    let ip = unsafe { &*ip };
    match ip.next_header {
        IPPROTO_FRAGMENT => return Err(Event::Fragment),
        next if headers::is_ipv6_extension(next) => return Err(Event::ExtensionHeader),
        _ => {}
    }
    let l4 = EthHdr::LEN + Ipv6Hdr::LEN;
    let flow = flow_key(
        ctx,
        Family::V6,
        ip.next_header,
        Addr(ip.src),
        Addr(ip.dst),
        l4,
    )?;
    Ok(Packet { eth, l4, flow })
}

/// The connection a TCP or UDP packet belongs to; any other protocol is not for a VIP.
#[inline(always)]
fn flow_key(
    ctx: &XdpContext,
    family: Family,
    proto: u8,
    src: Addr,
    dst: Addr,
    l4: usize,
) -> Result<FlowKey, Event> {
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return Err(Event::NotVip);
    }
    let ports = headers::at::<Ports>(ctx, l4).ok_or(Event::Truncated)?;
    // SAFETY: bounds checked by `at`.
    let ports = unsafe { &*ports };
    Ok(FlowKey {
        src,
        dst,
        sport: ports.src,
        dport: ports.dst,
        proto,
        family: family as u8,
        _pad: [0; 2],
    })
}

/// Finds the packet's service and real, and hands it to the service's forwarding method.
/// An ICMP `error` about the packet's flow goes to the flow's real, if it has one.
#[inline(always)]
fn balance<const NAT_STAGE: bool>(
    ctx: &XdpContext,
    packet: &Packet,
    error: Option<icmp::Error>,
) -> u32 {
    let flow = &packet.flow;
    let vip = VipKey {
        addr: flow.dst,
        port: flow.dport,
        proto: flow.proto,
        family: flow.family,
    };
    // SAFETY: services are never updated in place (see `VIPS`), so the value stays coherent.
    let Some(service) = (unsafe { VIPS.get(&vip) }) else {
        if !NAT_STAGE {
            return hand_over(ctx, Event::NotVip);
        }
        if error.is_some() {
            return pass(Event::NotVip);
        }
        return nat::answer(ctx, packet).unwrap_or_else(|| pass(Event::NotVip));
    };
    let nat = service.method == method::NAT;
    // The balancer pins every flow, NAT ones too, before handing those over: the NAT stage
    // only follows pins, so scheduling's stack stays out of it. An ICMP error is no packet
    // of its flow, and never pins one.
    let segment = match error {
        Some(_) => None,
        None if NAT_STAGE => None,
        None => Some(conns::segment(ctx, flow.proto, packet.l4)),
    };
    let followed = NAT_STAGE && error.is_none();
    let pinned = pinned_real(flow, segment)
        .filter(|(_, real, _)| !nat || followed || nat::is_live(flow, real));
    let (index, real, new_flow) = match (pinned, segment) {
        (Some(found), _) => found,
        (None, Some(segment)) => match schedule(service, flow, segment) {
            Ok(found) => found,
            Err(event) => {
                maps::count(event);
                return xdp_action::XDP_DROP;
            }
        },
        // An error about a flow no real owns is the kernel's to handle.
        (None, None) if error.is_some() => return pass(Event::IcmpUnplaced),
        // Pinned by the balancer an instant ago, gone since (evicted or replaced).
        (None, None) => {
            maps::count(Event::NoReal);
            return xdp_action::XDP_DROP;
        }
    };
    if nat && !NAT_STAGE {
        if new_flow {
            maps::account_new_flow(service.id, index);
        }
        return hand_over(ctx, Event::UnknownMethod);
    }
    // What the client sent, before any encapsulation.
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let verdict = match service.method {
        method::DR => forward::direct(ctx, packet, &real),
        method::NAT if NAT_STAGE => match error {
            Some(error) => nat::error_to_real(ctx, packet, &real, error),
            None => nat::forward(ctx, packet, &real),
        },
        // The flow's packets, and in the NAT stage ICMP errors about it: tunnelled to the
        // real, as IPVS does.
        method::TUN => match tunnel::encapsulate(ctx, packet, &real) {
            Tunnelled::Verdict(verdict) => verdict,
            // The error itself too big to tunnel: the kernel may still deliver it to the
            // director.
            Tunnelled::TooBig { .. } if NAT_STAGE => pass(Event::IcmpUnplaced),
            // An answer to the client, not traffic for the real.
            Tunnelled::TooBig {
                family,
                route_mtu,
                overhead,
            } => return icmp_reply::too_big(ctx, family, route_mtu, overhead),
        },
        _ => {
            maps::count(Event::UnknownMethod);
            xdp_action::XDP_DROP
        }
    };
    let forwarded = verdict == xdp_action::XDP_TX || verdict == xdp_action::XDP_REDIRECT;
    if forwarded && error.is_none() {
        maps::account(service.id, index, bytes, new_flow);
    }
    verdict
}

/// The real an established flow is pinned to, if that real still exists as it did when the
/// flow was scheduled. The flow's connection state follows `segment`, when the packet is one
/// of the flow's own.
#[inline(always)]
fn pinned_real(key: &FlowKey, segment: Option<Segment>) -> Option<(u32, Real, bool)> {
    // SAFETY: flow values are written whole by `schedule`; after that only their state
    // changes, here, on the CPU the flow's packets arrive on.
    let flow = unsafe { &mut *FLOWS.get_ptr_mut(key)? };
    let real = *REALS.get(flow.real)?;
    if !real.is_present() || real.generation != flow.generation {
        return None;
    }
    if let Some(segment) = segment {
        conns::follow(flow, segment);
    }
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
pub fn pass(event: Event) -> u32 {
    maps::count(event);
    xdp_action::XDP_PASS
}
