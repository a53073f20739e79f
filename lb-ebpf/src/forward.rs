//! Sending a packet on to its next hop.

use aya_ebpf::{
    EbpfContext as _,
    bindings::{
        BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup as FibLookup,
        xdp_action,
    },
    helpers::{bpf_fib_lookup, bpf_redirect},
    programs::XdpContext,
};
use lb_common::{Addr, Family, maps::NeighMiss, maps::Real, stats::Event};

use crate::{
    headers::EthHdr,
    maps::{self, NEIGH_MISSES},
};

const AF_INET: u8 = 2;

/// Why a packet cannot be sent on yet; counted where it is found.
pub enum NoHop {
    /// The next hop's MAC is unknown; the agent was asked to resolve it.
    Unresolved,
    /// Routing has no way there.
    Unroutable,
}

/// Direct routing: the IP packet is left as the client sent it (the real owns the VIP too);
/// only the Ethernet header changes, to the real's MAC as the kernel's neighbour table
/// knows it.
#[inline(always)]
pub fn direct(ctx: &XdpContext, eth: *mut EthHdr, real: &Real) -> u32 {
    let fib = match next_hop_v4(ctx, real.addr.0[0]) {
        Ok(fib) => fib,
        Err(NoHop::Unresolved) => return xdp_action::XDP_PASS,
        Err(NoHop::Unroutable) => return xdp_action::XDP_DROP,
    };
    // SAFETY: the kernel leaves the next hop in the field it read the destination from.
    if unsafe { fib.__bindgen_anon_4.ipv4_dst } != real.addr.0[0] {
        maps::count(Event::NotOnLink);
        return xdp_action::XDP_DROP;
    }
    send(ctx, eth, &fib)
}

/// The kernel's route and neighbour entry toward IPv4 `dst` (network byte order), as
/// `bpf_fib_lookup` finds them from the ingress interface.
#[inline(always)]
pub fn next_hop_v4(ctx: &XdpContext, dst: u32) -> Result<FibLookup, NoHop> {
    // SAFETY: an all-zero `bpf_fib_lookup` is the documented "no hints" request.
    let mut fib: FibLookup = unsafe { core::mem::zeroed() };
    fib.family = AF_INET;
    fib.ifindex = ctx.ingress_ifindex() as u32;
    fib.__bindgen_anon_4.ipv4_dst = dst;
    // SAFETY: `fib` is a valid request of the size we pass.
    let rc =
        unsafe { bpf_fib_lookup(ctx.as_ptr(), &mut fib, size_of::<FibLookup>() as i32, 0) } as u32;
    match rc {
        BPF_FIB_LKUP_RET_SUCCESS => Ok(fib),
        BPF_FIB_LKUP_RET_NO_NEIGH => {
            let miss = NeighMiss {
                // SAFETY: as in `direct`.
                addr: Addr::from_v4_raw(unsafe { fib.__bindgen_anon_4.ipv4_dst }),
                ifindex: fib.ifindex,
                family: Family::V4 as u8,
                _pad: [0; 3],
            };
            // A full ring only means the agent already has plenty to resolve.
            let _ = NEIGH_MISSES.output::<NeighMiss>(&miss, 0);
            maps::count(Event::NeighMiss);
            Err(NoHop::Unresolved)
        }
        _ => {
            maps::count(Event::NoRoute);
            Err(NoHop::Unroutable)
        }
    }
}

/// Addresses the frame to the next hop `fib` found and sends it out of that interface.
#[inline(always)]
pub fn send(ctx: &XdpContext, eth: *mut EthHdr, fib: &FibLookup) -> u32 {
    // SAFETY: the caller bounds-checked the Ethernet header.
    unsafe {
        (*eth).dst = fib.dmac;
        (*eth).src = fib.smac;
    }
    if fib.ifindex == ctx.ingress_ifindex() as u32 {
        maps::count(Event::Tx);
        xdp_action::XDP_TX
    } else {
        maps::count(Event::Redirect);
        // SAFETY: plain helper call; it returns the XDP action to take.
        unsafe { bpf_redirect(fib.ifindex, 0) as u32 }
    }
}
