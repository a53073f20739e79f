//! Which real a new flow goes to, by the service's scheduler.

use core::{
    intrinsics::{AtomicOrdering, atomic_xadd},
    num::{NonZeroU32, NonZeroU64},
};

use lb_common::{
    maps::{FlowKey, Real, Service, select, service_flags},
    sched::{
        hash::{FALLBACK_PROBES, FLOW_SEED, flow_bucket, hash_addr},
        least::{Least, Load, MAX_LEAST_REALS, Picker},
    },
};

use crate::{
    conns,
    maps::{CONNS, LEAST_PICK, REALS, RING_POS, TABLES},
};

/// The real slot and entry a new flow of `service` should take, or `None` when no real
/// may take it.
#[inline(always)]
pub fn choose(service: &Service, key: &FlowKey) -> Option<(u32, Real)> {
    let len = NonZeroU32::new(service.table_len)?;
    match service.select {
        select::RING => ring(service, len),
        select::SOURCE_HASH => {
            let port = if service.flags & service_flags::PORT != 0 {
                key.sport
            } else {
                0
            };
            hashed(service, len, hash_addr(FLOW_SEED, &key.src, port))
        }
        select::DESTINATION_HASH => hashed(service, len, hash_addr(FLOW_SEED, &key.dst, 0)),
        select::LEAST => least(service, len),
        _ => None,
    }
}

/// rr and wrr: the next step along the table.
#[inline(always)]
fn ring(service: &Service, len: NonZeroU32) -> Option<(u32, Real)> {
    let position = RING_POS.get_ptr_mut(service.id)?;
    // SAFETY: a live map value; kernels from 5.12 run atomic fetch-add.
    let step = unsafe { step_ring(position) };
    let index = *TABLES.get(service.table + (step % NonZeroU64::from(len)) as u32)?;
    let real = *REALS.get(index)?;
    real.is_present().then_some((index, real))
}

/// sh, dh, mh: the bucket the hash lands on; with fallback, further probes until one holds
/// a real that can take the flow.
#[inline(always)]
fn hashed(service: &Service, len: NonZeroU32, hash: u32) -> Option<(u32, Real)> {
    let probes = if service.flags & service_flags::FALLBACK != 0 {
        FALLBACK_PROBES
    } else {
        1
    };
    for probe in 0..probes {
        let bucket = flow_bucket(hash, probe, len);
        let index = *TABLES.get(service.table + bucket)?;
        let real = *REALS.get(index)?;
        if real.is_available() {
            return Some((index, real));
        }
    }
    None
}

/// The lc family: the reals the table lists (at most [`MAX_LEAST_REALS`]) compared by
/// their connection counts, as IPVS compares them.
#[inline(always)]
fn least(service: &Service, len: NonZeroU32) -> Option<(u32, Real)> {
    let rule = Least::from_u8(service.least)?;
    let window = conns::now();
    let count = len.get().min(MAX_LEAST_REALS);
    let load = |i: u32| -> Load {
        let Some(index) = TABLES.get(service.table + i).copied() else {
            return Load::default();
        };
        match (REALS.get(index), CONNS.get(index)) {
            (Some(real), Some(conns)) if real.is_present() => Load {
                weight: real.weight,
                active: conns.active(),
                inactive: conns.inactive(window),
            },
            _ => Load::default(),
        }
    };
    // SAFETY: a per-CPU scratch value, and XDP programs do not preempt each other on one
    // CPU.
    let picker = unsafe { &mut *LEAST_PICK.get_ptr_mut(0)? };
    *picker = Picker::default();
    for i in 0..MAX_LEAST_REALS {
        if i >= count || picker.offer(rule, i, &load(i)) {
            break;
        }
    }
    let position = picker.picked()?;
    let index = *TABLES.get(service.table + position)?;
    Some((index, *REALS.get(index)?))
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
