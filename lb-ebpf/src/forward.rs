//! Sending a packet on to its real: by its service's method, to the real's next hop
//! (see [`crate::hop`]); and direct routing, the simplest method. Also the way to a
//! client, for what goes back to one.

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS,
        bpf_fib_lookup as FibLookup, xdp_action,
    },
    programs::XdpContext,
};
use lb_common::{
    Addr,
    conn_count::Segment,
    maps::{FlowKey, FragmentKey, Real, method},
    stats::Event,
};

use crate::{
    clock,
    flow::{self, Pin},
    headers::{self, EthHdr},
    hop::{self, Hop},
    maps::{self, FRAGMENTS},
    nat,
    packet::{self, NoFlow, Packet},
    stage::{self, NEW_FLOW},
    tunnel::{self, Tunnelled},
};

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
    to_real(ctx, &packet, new.index, &new.real, true)
}

/// Sends a client's packet on to `real` (in slot `index`), which its flow is pinned to, by
/// its service's method, and accounts it to the real.
///
/// Each method is a function of its own, out of line, called from here and from nowhere
/// else: a function's frame adds to its caller's, and a program's whole chain of frames
/// must fit in 512 bytes.
#[inline(always)]
pub fn to_real(ctx: &XdpContext, packet: &Packet, index: u32, real: &Real, new_flow: bool) -> u32 {
    // What the client sent, before any encapsulation.
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let Some(hop) = to_hop(ctx, index, real) else {
        return xdp_action::XDP_DROP;
    };
    let verdict = match real.method {
        method::DR => direct(ctx, packet, hop),
        method::NAT => nat::forward(ctx, packet, real, hop),
        method::TUN => match tunnel::encapsulate(ctx, packet, real, hop) {
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
        maps::account(index, bytes, new_flow);
        if real.method == method::NAT {
            nat::track(ctx, packet, real);
        }
        if packet.fragment_id.is_some() {
            remember_datagram(packet);
        }
    }
    verdict
}

/// How to reach `real` (in slot `index`); `None` for a packet to drop, counted (see
/// [`hop::for_real`]).
#[inline(always)]
pub fn to_hop(ctx: &XdpContext, index: u32, real: &Real) -> Option<&'static Hop> {
    let source = real.method == method::TUN && tunnel::needs_route_source(real.family);
    hop::for_real(ctx, index, real, source)
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
    let Some(eth) = headers::at::<EthHdr>(ctx, 0) else {
        return maps::pass(Event::Truncated);
    };
    // The packet of the flow the datagram belongs to, but for its offsets: a later
    // fragment has no L4 header.
    let mut packet = Packet {
        eth,
        l4: 0,
        flow: FlowKey::default(),
        fragment_id: None,
    };
    let Err(NoFlow::Fragment(datagram)) = packet::parse(ctx) else {
        return maps::pass(Event::Fragment);
    };
    if !first_fragment_flow(&datagram, &mut packet.flow) {
        return maps::pass(Event::Fragment);
    }
    match flow::pinned(&packet, Segment::Datagram, clock::now()) {
        // A later fragment has no L4 header to translate.
        Pin::Held(_, real) if real.method == method::NAT => maps::drop(Event::FragmentDropped),
        Pin::Held(pinned, real) => {
            // SAFETY: a live flow-table value (see `flow::pinned`).
            let index = unsafe { (*pinned).real };
            to_real(ctx, &packet, index, &real, false)
        }
        Pin::Lost | Pin::None => maps::pass(Event::Fragment),
    }
}

/// Direct routing: the IP packet is left as the client sent it (the real owns the VIP too);
/// only the Ethernet header changes, to the real's MAC as the kernel's neighbour table
/// knows it.
#[inline(never)]
pub fn direct(ctx: &XdpContext, packet: &Packet, hop: &Hop) -> u32 {
    if hop.on_link == 0 {
        return maps::drop(Event::NotOnLink);
    }
    hop::send(ctx, packet.eth, hop)
}

/// Why a packet has no next hop.
pub enum NoHop {
    /// Nothing to do but return this verdict, already counted.
    Verdict(u32),
    /// The packet would exceed the route's MTU.
    TooBig,
}

impl NoHop {
    /// The verdict for a caller that has nothing better to do, counted.
    #[inline(always)]
    pub fn verdict(self) -> u32 {
        match self {
            Self::Verdict(verdict) => verdict,
            Self::TooBig => maps::drop(Event::TooBigDropped),
        }
    }
}

/// The kernel's answer for reaching `dst` (of family byte `family`), a host that is no real
/// (a client): egress interface and MACs. A packet of `tot_len` bytes (not checked when
/// zero) must fit the route's MTU. An unresolved neighbour is reported and the packet
/// dropped, as for a real (see [`hop::for_real`]).
#[inline(always)]
pub fn next_hop(
    ctx: &XdpContext,
    dst: &Addr,
    family: u8,
    tot_len: u16,
) -> Result<FibLookup, NoHop> {
    let mut fib = hop::request(ctx, dst, family, tot_len);
    // SAFETY: a request made by `hop::request`.
    match unsafe { hop::lookup(ctx, &mut fib, 0) } {
        BPF_FIB_LKUP_RET_SUCCESS => Ok(fib),
        BPF_FIB_LKUP_RET_NO_NEIGH => {
            hop::report_miss(&fib);
            Err(NoHop::Verdict(maps::drop(Event::NeighMiss)))
        }
        BPF_FIB_LKUP_RET_FRAG_NEEDED => Err(NoHop::TooBig),
        _ => Err(NoHop::Verdict(maps::drop(Event::NoRoute))),
    }
}

/// Addresses the frame to the next hop `fib` names and sends it out of its interface.
#[inline(always)]
pub fn send(ctx: &XdpContext, eth: *mut EthHdr, fib: &FibLookup) -> u32 {
    hop::send_to(ctx, eth, fib.dmac, fib.smac, fib.ifindex)
}
