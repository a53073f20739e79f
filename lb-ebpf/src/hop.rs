//! The next hop to each real, looked up in the kernel's FIB once and kept for a while: a FIB
//! and neighbour lookup is the dearest thing on the packet path, and a real's next hop
//! rarely changes.
//!
//! Each CPU keeps its own copy per real slot (`HOPS`), so nothing is shared between CPUs
//! and nothing is torn. A copy serves packets for [`HOP_TTL_NS`], and only while its slot
//! holds the same real (its generation); then the next packet looks again. A neighbour
//! whose MAC changes is followed within that time.

use aya_ebpf::{
    EbpfContext as _,
    bindings::{
        BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS,
        BPF_FIB_LOOKUP_SRC, bpf_fib_lookup as FibLookup, xdp_action,
    },
    helpers::{bpf_fib_lookup, bpf_redirect},
    macros::map,
    maps::PerCpuArray,
    programs::XdpContext,
};
use lb_common::{
    Addr, Family,
    maps::{MAX_REALS, NeighMiss, Real},
    stats::Event,
};

use crate::{
    clock,
    headers::EthHdr,
    maps::{self, NEIGH_MISSES},
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// How long a CPU forwards to a real without asking the FIB again.
pub const HOP_TTL_NS: u64 = 200_000_000;

/// How to reach a real.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Hop {
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
    /// The egress interface.
    pub ifindex: u32,
    /// The address the route to the real would send from: the outer source of tunnelled
    /// packets when no `--tunnel-source` is set. Looked up only for those.
    pub src: Addr,
    /// The route's MTU.
    pub mtu: u16,
    /// 1 when the next hop is the real itself, as direct routing needs.
    pub on_link: u8,
    /// 1 once `src` was looked up.
    pub has_src: u8,
    /// The generation of the real this is for (see `Real::generation`).
    pub generation: u32,
    /// When it was looked up (the coarse clock); 0 for never.
    pub at: u64,
}

#[map]
static HOPS: PerCpuArray<Hop> = PerCpuArray::with_max_entries(MAX_REALS, 0);

/// How to reach `real` (in slot `index`): this CPU's copy, looked up in the FIB again when
/// stale; with `source`, the route's source address too. It lives in the map, so that no
/// caller carries a copy on its stack.
///
/// `None` is a packet to drop, counted: a real whose MAC is not resolved yet is reported to
/// the agent and its packet dropped, since passed it would reach the director's own stack,
/// which holds the VIP and would answer a SYN with a RST; the client retransmits.
///
/// Out of line (the FIB request stays off the stack of the forwarding path); it returns a
/// map value's pointer, which BPF functions may, where they may return no struct.
#[inline(never)]
pub fn for_real(ctx: &XdpContext, index: u32, real: &Real, source: bool) -> Option<&'static Hop> {
    let now = clock::now();
    // SAFETY: this CPU's slot of a live map value, which lives as long as the program run.
    let cached = unsafe { &mut *HOPS.get_ptr_mut(index)? };
    if cached.at != 0
        && cached.generation == real.generation
        && now.wrapping_sub(cached.at) < HOP_TTL_NS
        && (cached.has_src != 0 || !source)
    {
        return Some(cached);
    }
    let mut fib = request(ctx, &real.addr, real.family, 0);
    // SAFETY: `fib` is a valid request of the size passed.
    match unsafe { lookup(ctx, &mut fib, 0) } {
        BPF_FIB_LKUP_RET_SUCCESS => {}
        BPF_FIB_LKUP_RET_NO_NEIGH => {
            report_miss(&fib);
            maps::count(Event::NeighMiss);
            return None;
        }
        _ => {
            maps::count(Event::NoRoute);
            return None;
        }
    }
    *cached = Hop {
        dmac: fib.dmac,
        smac: fib.smac,
        ifindex: fib.ifindex,
        src: Addr::default(),
        mtu: route_mtu(ctx, real),
        on_link: u8::from(next_hop_addr(&fib) == real.addr),
        has_src: 0,
        generation: real.generation,
        at: now,
    };
    if source {
        let mut fib = request(ctx, &real.addr, real.family, 0);
        // SAFETY: as above.
        if unsafe { lookup(ctx, &mut fib, BPF_FIB_LOOKUP_SRC) } != BPF_FIB_LKUP_RET_SUCCESS {
            // Not kept: the next packet asks again.
            cached.at = 0;
            maps::count(Event::NoRoute);
            return None;
        }
        cached.src = source_addr(&fib, real.family);
        cached.has_src = 1;
    }
    Some(cached)
}

/// The MTU of the route to `real`, as the FIB reports it to a packet too big for any.
#[inline(always)]
fn route_mtu(ctx: &XdpContext, real: &Real) -> u16 {
    let mut fib = request(ctx, &real.addr, real.family, u16::MAX);
    // SAFETY: `fib` is a valid request of the size passed; the kernel reports the MTU in
    // the field it read the length from.
    unsafe {
        match lookup(ctx, &mut fib, 0) {
            BPF_FIB_LKUP_RET_FRAG_NEEDED => fib.__bindgen_anon_1.mtu_result,
            _ => u16::MAX,
        }
    }
}

/// Addresses the frame to `hop` and sends it out of its interface.
#[inline(always)]
pub fn send(ctx: &XdpContext, eth: *mut EthHdr, hop: &Hop) -> u32 {
    send_to(ctx, eth, hop.dmac, hop.smac, hop.ifindex)
}

/// Addresses the frame to `dmac` from `smac` and sends it out of `ifindex`: back out of the
/// interface it came in on, or to another.
#[inline(always)]
pub fn send_to(
    ctx: &XdpContext,
    eth: *mut EthHdr,
    dmac: [u8; 6],
    smac: [u8; 6],
    ifindex: u32,
) -> u32 {
    // SAFETY: the caller bounds-checked the Ethernet header.
    unsafe {
        (*eth).dst = dmac;
        (*eth).src = smac;
    }
    if ifindex == ctx.ingress_ifindex() as u32 {
        maps::count(Event::Tx);
        xdp_action::XDP_TX
    } else {
        maps::count(Event::Redirect);
        // SAFETY: plain helper call; it returns the XDP action to take.
        unsafe { bpf_redirect(ifindex, 0) as u32 }
    }
}

/// A FIB request for `dst` (of family byte `family`) arriving on the packet's interface;
/// with `tot_len` (not 0), the route's MTU is checked against it.
#[inline(always)]
pub fn request(ctx: &XdpContext, dst: &Addr, family: u8, tot_len: u16) -> FibLookup {
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
    fib
}

/// Asks the kernel's FIB; returns its `BPF_FIB_LKUP_RET_*` answer.
///
/// # Safety
/// `fib` must be a request made by [`request`].
#[inline(always)]
pub unsafe fn lookup(ctx: &XdpContext, fib: &mut FibLookup, flags: u32) -> u32 {
    // SAFETY: the caller passes a valid request of the size passed.
    unsafe { bpf_fib_lookup(ctx.as_ptr(), fib, size_of::<FibLookup>() as i32, flags) as u32 }
}

/// Tells the agent that the next hop of `fib` has no neighbour entry, for it to have the
/// kernel resolve it.
#[inline(always)]
pub fn report_miss(fib: &FibLookup) {
    let miss = NeighMiss {
        addr: next_hop_addr(fib),
        ifindex: fib.ifindex,
        family: next_hop_family(fib) as u8,
        _pad: [0; 3],
    };
    // A full ring only means the agent already has plenty to resolve.
    let _ = NEIGH_MISSES.output::<NeighMiss>(&miss, 0);
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

/// The source address the kernel filled in for a `BPF_FIB_LOOKUP_SRC` request for a
/// destination of family byte `family`.
#[inline(always)]
fn source_addr(fib: &FibLookup, family: u8) -> Addr {
    // SAFETY: plain words; the kernel filled the member of the request's family.
    unsafe {
        if family == Family::V6 as u8 {
            Addr(fib.__bindgen_anon_3.ipv6_src)
        } else {
            Addr::from_v4_raw(fib.__bindgen_anon_3.ipv4_src)
        }
    }
}
