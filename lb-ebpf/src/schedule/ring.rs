//! rr and wrr: the next step along the service's table, which the agent lays out with the
//! weights interleaved.

use core::{
    intrinsics::{AtomicOrdering, atomic_xadd},
    num::{NonZeroU32, NonZeroU64},
};

use lb_common::maps::{FlowKey, Real, Service};

use super::Scheduler;
use crate::maps::{REALS, RING_POS, TABLES};

pub struct Ring;

impl Scheduler for Ring {
    const COUNTS_CONNECTIONS: bool = false;

    #[inline(always)]
    fn choose(service: &Service, _key: &FlowKey) -> Option<(u32, Real)> {
        let len = NonZeroU32::new(service.table_len)?;
        let position = RING_POS.get_ptr_mut(service.id)?;
        // SAFETY: a live map value; kernels from 5.12 run atomic fetch-add.
        let step = unsafe { step_ring(position) };
        let index = *TABLES.get(service.table + (step % NonZeroU64::from(len)) as u32)?;
        let real = *REALS.get(index)?;
        real.is_present().then_some((index, real))
    }
}

/// Takes the next step along a ring shared by all CPUs.
///
/// The BPF target's `AtomicU64` has loads and stores only, so the fetch-add comes from the
/// intrinsic; LLVM emits it for BPF v3 CPUs, which is what the object is built for. The
/// ordering must not be relaxed: LLVM lowers a relaxed add to BPF's legacy XADD, which
/// returns nothing, and silently hands back the addend instead. BPF atomics are full
/// barriers anyway, so the stronger ordering costs nothing.
#[inline(always)]
unsafe fn step_ring(position: *mut u64) -> u64 {
    // SAFETY: the caller passes a valid map value pointer.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::SeqCst }>(position, 1) }
}
