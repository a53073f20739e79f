//! Handing a packet from one program of the balancer to the next (see
//! `lb_common::maps::stage`), and what travels with it.
//!
//! A tail call runs the next program at once, on the same CPU, with nothing in between, so
//! a per-CPU slot written just before the call is what the next program reads.

use aya_ebpf::{macros::map, maps::PerCpuArray, programs::XdpContext};
use lb_common::{
    Family,
    maps::{Real, Service, stage},
    stats::Event,
};

use crate::maps::{self, STAGES};

/// A new flow on its way from the entry through its scheduling stage to the forwarding
/// stage: the entry writes the service, the scheduling stage the real it pinned.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NewFlow {
    pub service: Service,
    /// The real's slot in `REALS`, and the entry as it was when the flow was pinned.
    pub index: u32,
    pub real: Real,
}

#[map]
pub static NEW_FLOW: PerCpuArray<NewFlow> = PerCpuArray::with_max_entries(1, 0);

/// Why a client's packet is answered instead of forwarded, for [`stage::Stage::TooBig`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TooBig {
    /// The family of the client's packet.
    pub family: u8,
    pub _pad: u8,
    /// The MTU of the route to the real.
    pub route_mtu: u16,
}

#[map]
pub static TOO_BIG: PerCpuArray<TooBig> = PerCpuArray::with_max_entries(1, 0);

/// Runs `next` on the packet. Only when that program is missing does this return, with the
/// packet dropped and counted.
///
/// Call it from a program's own frame, not from a function it calls: the kernel refuses a
/// tail call below frames that hold more than 256 bytes of stack.
#[inline(always)]
pub fn enter(ctx: &XdpContext, next: stage::Stage) -> u32 {
    // SAFETY: every entry of `STAGES` is an XDP program of this object; a tail call that
    // succeeds does not return.
    let _ = unsafe { STAGES.tail_call(ctx, next as u32) };
    maps::drop(Event::NoStage)
}

/// Hands a client's packet that is too big once tunnelled to the stage that answers it.
#[inline(always)]
pub fn answer_too_big(ctx: &XdpContext, family: Family, route_mtu: u16) -> u32 {
    let Some(slot) = TOO_BIG.get_ptr_mut(0) else {
        return maps::drop(Event::NoStage);
    };
    // SAFETY: this CPU's slot, read by the stage entered next.
    unsafe {
        slot.write(TooBig {
            family: family as u8,
            _pad: 0,
            route_mtu,
        })
    };
    enter(ctx, stage::Stage::TooBig)
}
