//! Sending a packet on to its real: by its service's method, to the next hop the kernel's
//! FIB names; and direct routing, the simplest method.

use aya_ebpf::{
    EbpfContext as _,
    bindings::{
        BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS,
        bpf_fib_lookup as FibLookup, xdp_action,
    },
    helpers::{bpf_fib_lookup, bpf_redirect},
    programs::XdpContext,
};
use lb_common::{
    Addr, Family,
    conn_count::Segment,
    maps::{FlowKey, FragmentKey, NeighMiss, Real, Service, method},
    stats::Event,
};

use crate::{
    balance, clock,
    flow::{self, Pin},
    headers::{self, EthHdr},
    maps::{self, FRAGMENTS, NEIGH_MISSES},
    nat,
    packet::{self, NoFlow, Packet},
    stage::{self, NEW_FLOW},
    tunnel::{self, Tunnelled},
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// The forwarding stage: the first packet of a flow that a scheduling stage has just
/// pinned, sent on to the real it chose.
#[inline(always)]
pub fn stage(ctx: &XdpContext) -> u32 {
    let packet = match packet::reparse(ctx) {
        Ok(packet) => packet,
        Err(verdict) => return verdict,
    };
    let Some(new) = NEW_FLOW.get(0) else {
        return maps::drop(Event::NoStage);
    };
    to_real(ctx, &packet, &new.service, new.index, &new.real, true)
}

/// Sends a client's packet on to `real` (in slot `index`), which its flow is pinned to, by
/// `service`'s method, and accounts it to both.
///
/// Each method is a function of its own, out of line, called from here and from nowhere
/// else: a function's frame adds to its caller's, and a program's whole chain of frames
/// must fit in 512 bytes.
#[inline(always)]
pub fn to_real(
    ctx: &XdpContext,
    packet: &Packet,
    service: &Service,
    index: u32,
    real: &Real,
    new_flow: bool,
) -> u32 {
    // What the client sent, before any encapsulation.
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let verdict = match service.method {
        method::DR => direct(ctx, packet, real),
        method::NAT => nat::forward(ctx, packet, real),
        method::TUN => match tunnel::encapsulate(ctx, packet, real) {
            Tunnelled::Verdict(verdict) => verdict,
            // An answer to the client, not traffic for the real.
            Tunnelled::TooBig { family, route_mtu } => {
                return stage::answer_too_big(ctx, family, route_mtu);
            }
        },
        _ => {
            maps::count(Event::UnknownMethod);
            xdp_action::XDP_DROP
        }
    };
    if verdict == xdp_action::XDP_TX || verdict == xdp_action::XDP_REDIRECT {
        maps::account(service.id, index, bytes, new_flow);
        if service.method == method::NAT {
            nat::track(ctx, packet, real);
        }
        if packet.fragment_id.is_some() {
            remember_datagram(packet);
        }
    }
    verdict
}

/// Puts in `flow` the flow whose first fragment of `datagram` was forwarded, if one was.
/// Out of line, with the flow written to the caller's stack rather than returned (which
/// BPF cannot do for a struct), so that the lookup's copies stay off the stack of the
/// forwarding path.
#[inline(never)]
fn first_fragment_flow(datagram: &FragmentKey, flow: &mut FlowKey) -> bool {
    // SAFETY: entries are written whole and only read here.
    match unsafe { FRAGMENTS.get(datagram) } {
        Some(found) => {
            *flow = *found;
            true
        }
        None => false,
    }
}

/// Records where the datagram whose first fragment `packet` is went, for its later
/// fragments. Out of line: its keys would add to the stack of every caller's path.
#[inline(never)]
fn remember_datagram(packet: &Packet) {
    if let Some(datagram) = packet::datagram(packet) {
        // Full, the LRU forgets its oldest datagram; failing otherwise only leaves this
        // one's later fragments to the kernel.
        let _ = FRAGMENTS.insert(&datagram, &packet.flow, 0);
    }
}

/// The fragmentation stage: a later fragment of a datagram goes where its first went,
/// by the same method. Its flow is in `FRAGMENTS` once the first fragment was forwarded;
/// until then, and for fragments of no VIP's datagram, it is the kernel's.
#[inline(always)]
pub fn fragment_stage(ctx: &XdpContext) -> u32 {
    let Err(NoFlow::Fragment(datagram)) = packet::parse(ctx) else {
        return maps::pass(Event::Fragment);
    };
    let mut flow = FlowKey::default();
    if !first_fragment_flow(&datagram, &mut flow) {
        return maps::pass(Event::Fragment);
    }
    let (Some(eth), Some(service)) = (headers::at::<EthHdr>(ctx, 0), balance::service(&flow))
    else {
        return maps::pass(Event::Fragment);
    };
    // A later fragment has no L4 header to translate.
    if service.method == method::NAT {
        return maps::drop(Event::FragmentDropped);
    }
    let packet = Packet {
        eth,
        l4: 0,
        flow,
        fragment_id: None,
    };
    match flow::pinned(&packet, &service, Segment::Datagram, clock::now()) {
        Pin::Held(pinned, real) => {
            // SAFETY: a live flow-table value (see `flow::pinned`).
            let index = unsafe { (*pinned).real };
            to_real(ctx, &packet, &service, index, &real, false)
        }
        Pin::Lost | Pin::None => maps::pass(Event::Fragment),
    }
}

/// Direct routing: the IP packet is left as the client sent it (the real owns the VIP too);
/// only the Ethernet header changes, to the real's MAC as the kernel's neighbour table
/// knows it.
#[inline(never)]
pub fn direct(ctx: &XdpContext, packet: &Packet, real: &Real) -> u32 {
    let hop = match next_hop(ctx, &real.addr, real.family, 0, 0) {
        Ok(hop) => hop,
        Err(no_hop) => return no_hop.verdict(),
    };
    if next_hop_addr(&hop) != real.addr {
        maps::count(Event::NotOnLink);
        return xdp_action::XDP_DROP;
    }
    send(ctx, packet.eth, &hop)
}

/// Why a packet has no next hop.
pub enum NoHop {
    /// Nothing to do but return this verdict, already counted.
    Verdict(u32),
    /// The packet would exceed the route's MTU, this one.
    TooBig(u16),
}

impl NoHop {
    /// The verdict for a caller that has nothing better to do, counted.
    #[inline(always)]
    pub fn verdict(self) -> u32 {
        match self {
            Self::Verdict(verdict) => verdict,
            Self::TooBig(_) => {
                maps::count(Event::TooBigDropped);
                xdp_action::XDP_DROP
            }
        }
    }
}

/// The kernel's answer for reaching `dst` (of family byte `family`): egress interface and
/// MACs (and with `BPF_FIB_LOOKUP_SRC` in `flags`, the source address). A packet of
/// `tot_len` bytes (not checked when zero) must fit the route's MTU.
///
/// A missing neighbour entry is reported to the agent, which has the kernel resolve it,
/// and the packet dropped: passed, it would reach the director's own stack, which holds
/// the VIP and would answer a SYN with a RST. The client retransmits.
#[inline(always)]
pub fn next_hop(
    ctx: &XdpContext,
    dst: &Addr,
    family: u8,
    flags: u32,
    tot_len: u16,
) -> Result<FibLookup, NoHop> {
    // SAFETY: an all-zero `bpf_fib_lookup` is the documented "no hints" request. Zeroed as
    // words, which LLVM stores one by one, where `mem::zeroed` becomes a call to a
    // byte-by-byte `memset` (a frame of its own on the stack, and 64 loop turns).
    let mut fib: FibLookup = unsafe { core::mem::transmute([0u64; 8]) };
    fib.ifindex = ctx.ingress_ifindex() as u32;
    fib.__bindgen_anon_1.tot_len = tot_len;
    if family == Family::V6 as u8 {
        fib.family = AF_INET6;
        fib.__bindgen_anon_4.ipv6_dst = dst.0;
    } else {
        fib.family = AF_INET;
        fib.__bindgen_anon_4.ipv4_dst = dst.0[0];
    }
    // SAFETY: `fib` is a valid request of the size we pass.
    let rc = unsafe { bpf_fib_lookup(ctx.as_ptr(), &mut fib, size_of::<FibLookup>() as i32, flags) }
        as u32;
    match rc {
        BPF_FIB_LKUP_RET_SUCCESS => Ok(fib),
        BPF_FIB_LKUP_RET_NO_NEIGH => {
            let miss = NeighMiss {
                addr: next_hop_addr(&fib),
                ifindex: fib.ifindex,
                family: next_hop_family(&fib) as u8,
                _pad: [0; 3],
            };
            // A full ring only means the agent already has plenty to resolve.
            let _ = NEIGH_MISSES.output::<NeighMiss>(&miss, 0);
            Err(NoHop::Verdict(maps::drop(Event::NeighMiss)))
        }
        // SAFETY: the kernel reports the MTU in the field it read the length from.
        BPF_FIB_LKUP_RET_FRAG_NEEDED => {
            Err(NoHop::TooBig(unsafe { fib.__bindgen_anon_1.mtu_result }))
        }
        _ => {
            maps::count(Event::NoRoute);
            Err(NoHop::Verdict(xdp_action::XDP_DROP))
        }
    }
}

/// Where the kernel left the next hop: in the field it read the destination from, in the
/// family it reports (an IPv4 route may have an IPv6 gateway).
#[inline(always)]
fn next_hop_family(fib: &FibLookup) -> Family {
    if fib.family == AF_INET6 {
        Family::V6
    } else {
        Family::V4
    }
}

#[inline(always)]
fn next_hop_addr(fib: &FibLookup) -> Addr {
    // SAFETY: both union members are plain words; the request was zeroed first.
    unsafe {
        match next_hop_family(fib) {
            Family::V6 => Addr(fib.__bindgen_anon_4.ipv6_dst),
            Family::V4 => Addr::from_v4_raw(fib.__bindgen_anon_4.ipv4_dst),
        }
    }
}

/// Addresses the frame to the next hop and sends it out of the interface the kernel chose.
#[inline(always)]
pub fn send(ctx: &XdpContext, eth: *mut EthHdr, hop: &FibLookup) -> u32 {
    // SAFETY: the caller bounds-checked the Ethernet header.
    unsafe {
        (*eth).dst = hop.dmac;
        (*eth).src = hop.smac;
    }
    if hop.ifindex == ctx.ingress_ifindex() as u32 {
        maps::count(Event::Tx);
        xdp_action::XDP_TX
    } else {
        maps::count(Event::Redirect);
        // SAFETY: plain helper call; it returns the XDP action to take.
        unsafe { bpf_redirect(hop.ifindex, 0) as u32 }
    }
}
