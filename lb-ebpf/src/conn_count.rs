//! Counting each real's connections for the least-connection schedulers, from the flags of
//! the segments clients send (see `lb_common::conn_count`).

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::programs::XdpContext;
use lb_common::{
    conn_count::{ConnState, Count, RealConns, Segment, window},
    maps::Flow,
};

use crate::{
    clock,
    headers::{self, IPPROTO_TCP},
    maps::CONNS,
};

/// Offset of the flags byte in a TCP header.
const TCP_FLAGS: usize = 13;

/// What the L4 header at `offset` tells the tracker. A TCP header too short to carry flags
/// is taken as a segment without any.
#[inline(always)]
pub fn segment(ctx: &XdpContext, proto: u8, offset: usize) -> Segment {
    if proto != IPPROTO_TCP {
        return Segment::Datagram;
    }
    // SAFETY: `at` checked that the byte lies inside the packet.
    let flags = headers::at::<u8>(ctx, offset + TCP_FLAGS).map_or(0, |f| unsafe { *f });
    Segment::Tcp(flags)
}

/// The state of a new flow on real slot `real` that starts with `segment`, counted.
#[inline(always)]
pub fn start(real: u32, segment: Segment) -> ConnState {
    let (state, count) = ConnState::start(segment);
    apply(real, count);
    state
}

/// Moves an established flow on by `segment`, counting the change.
#[inline(always)]
pub fn follow(flow: &mut Flow, segment: Segment) {
    if let Some((state, count)) = ConnState::from_u8(flow.state).next(segment) {
        flow.state = state as u8;
        apply(flow.real, count);
    }
}

/// Takes a flow that is forgotten (expired, or its tuple reused) out of its real's active
/// connections; it counts nowhere any more.
#[inline(always)]
pub fn forget(flow: &mut Flow) {
    if ConnState::from_u8(flow.state) == ConnState::Open
        && let Some(conns) = CONNS.get_ptr_mut(flow.real)
    {
        // SAFETY: a live map value (see `apply`).
        unsafe { add_active(conns, u32::MAX) };
    }
    flow.state = ConnState::Untracked as u8;
}

#[inline(always)]
fn apply(real: u32, count: Count) {
    let Some(conns) = CONNS.get_ptr_mut(real) else {
        return;
    };
    // SAFETY: a live map value. Active counts change by atomic adds (SeqCst, for the reason
    // `select::step_ring` gives); inactive ones are approximate by design and may lose an
    // update when two CPUs close connections of one real at once.
    unsafe {
        match count {
            Count::Opened => add_active(conns, 1),
            Count::Closed => {
                add_active(conns, u32::MAX);
                add_inactive(conns);
            }
            Count::Inactive => add_inactive(conns),
        }
    }
}

#[inline(always)]
unsafe fn add_active(conns: *mut RealConns, delta: u32) {
    // SAFETY: the caller passes a live map value.
    unsafe {
        atomic_xadd::<u32, u32, { AtomicOrdering::SeqCst }>(&raw mut (*conns).active, delta);
    }
}

#[inline(always)]
unsafe fn add_inactive(conns: *mut RealConns) {
    // SAFETY: as in `add_active`.
    unsafe { (*conns).add_inactive(now()) }
}

/// The inactive-count window of this instant.
#[inline(always)]
pub fn now() -> u32 {
    window(clock::now())
}
