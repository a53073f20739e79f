//! Which real a new flow goes to, by the service's scheduler.

use core::{
    ffi::c_void,
    intrinsics::{AtomicOrdering, atomic_xadd},
    num::{NonZeroU32, NonZeroU64},
};

use aya_ebpf::helpers::{bpf_ktime_get_ns, bpf_loop};

use lb_common::{
    maps::{FlowKey, Real, Service, select, service_flags},
    sched::{
        hash::{FALLBACK_PROBES, FLOW_SEED, flow_bucket, hash_addr},
        least::{Least, Load, MAX_LEAST_REALS, Picker, has_room, may_be_overloaded},
        locality::{Locality, LocalityKey},
    },
};

use crate::{
    conns,
    maps::{CONNS, LOCALITY, REALS, RING_POS, TABLES},
};

/// The real slot and entry a new flow of `service` should take, or `None` when no real
/// may take it.
#[inline(never)]
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
        select::LOCALITY => locality(service, len, key),
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
    let (position, _) = least_among(service, len, rule, EVERY_REAL)?;
    real_at(service, position)
}

/// Every position of a table, as a set.
const EVERY_REAL: u64 = u64::MAX;

/// What a step of a loop over a service's table needs, passed to `bpf_loop` callbacks.
#[repr(C)]
struct Scan {
    table: u32,
    window: u32,
    members: u64,
    rule: u8,
    /// Set by [`room_step`] when it finds a real below half its weight.
    found: u8,
    /// [`pick_step`]'s pick so far.
    picker: Picker,
}

impl Scan {
    /// A scan of `service`'s table positions in `members`, by `rule`, as of now.
    #[inline(always)]
    fn new(service: &Service, rule: Least, members: u64) -> Self {
        Self {
            table: service.table,
            window: conns::now(),
            members,
            rule: rule as u8,
            found: 0,
            picker: Picker::default(),
        }
    }
}

/// The position of the real `rule` picks among the table's positions in `members`, and its
/// load.
///
/// The loop runs in `bpf_loop`, so the verifier checks one step once instead of every
/// iteration of every caller (lblc alone scans up to three times per new flow).
#[inline(always)]
fn least_among(
    service: &Service,
    len: NonZeroU32,
    rule: Least,
    members: u64,
) -> Option<(u32, Load)> {
    let mut scan = Scan::new(service, rule, members);
    run(len, pick_step, &mut scan);
    Some((scan.picker.picked()?, scan.picker.load))
}

/// One step of [`least_among`]: offers the real at `position`; 1 stops the loop.
extern "C" fn pick_step(position: u64, scan: *mut c_void) -> i64 {
    // SAFETY: `bpf_loop` passes the `Scan` [`least_among`] gave it.
    let scan = unsafe { &mut *(scan as *mut Scan) };
    let position = position as u32;
    match member(scan, position) {
        Some((rule, load)) => i64::from(scan.picker.offer(rule, position, &load)),
        None => 0,
    }
}

/// The position of the most loaded real among the table's positions in `members`
/// (whom lblcr drops from a set).
#[inline(always)]
fn heaviest_among(service: &Service, len: NonZeroU32, rule: Least, members: u64) -> Option<u32> {
    let mut scan = Scan::new(service, rule, members);
    run(len, heavy_step, &mut scan);
    scan.picker.picked()
}

/// One step of [`heaviest_among`].
extern "C" fn heavy_step(position: u64, scan: *mut c_void) -> i64 {
    // SAFETY: `bpf_loop` passes the `Scan` [`heaviest_among`] gave it.
    let scan = unsafe { &mut *(scan as *mut Scan) };
    let position = position as u32;
    if let Some((rule, load)) = member(scan, position) {
        scan.picker.offer_heaviest(rule, position, &load);
    }
    0
}

/// The scan's rule and the load of the real at `position`, if that real is in the scan.
#[inline(always)]
fn member(scan: &Scan, position: u32) -> Option<(Least, Load)> {
    if position >= 64 || scan.members & (1 << position) == 0 {
        return None;
    }
    let rule = Least::from_u8(scan.rule)?;
    Some((rule, load_at(scan.table, position, scan.window)))
}

/// Runs `step` over the first `len` positions of a table (at most [`MAX_LEAST_REALS`]).
#[inline(always)]
fn run(len: NonZeroU32, step: extern "C" fn(u64, *mut c_void) -> i64, scan: &mut Scan) {
    // SAFETY: `step` only touches `scan`, which outlives the call.
    unsafe {
        bpf_loop(
            len.get().min(MAX_LEAST_REALS),
            step as *mut c_void,
            scan as *mut Scan as *mut c_void,
            0,
        );
    }
}

/// lblc and lblcr: the destination's real (or the least loaded of its set) unless it is
/// overloaded; otherwise wlc's pick, which becomes the destination's real (or joins its set).
#[inline(always)]
fn locality(service: &Service, len: NonZeroU32, key: &FlowKey) -> Option<(u32, Real)> {
    let rule = Least::from_u8(service.least)?;
    let place = LocalityKey {
        service: service.id,
        dst: key.dst,
    };
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: entries are written whole and only read here.
    let known = unsafe { LOCALITY.get(&place) }
        .copied()
        .map(|set| shrunk(service, len, rule, &place, set, now));
    if let Some(set) = known
        && let Some((position, load)) = least_among(service, len, rule, set.reals)
        && !overloaded(service, len, rule, &load)
    {
        return real_at(service, position);
    }
    let (position, _) = least_among(service, len, rule, EVERY_REAL)?;
    let set = match known {
        Some(set) if replicated(service) => set.with(position, now),
        _ => Locality::of(position, now),
    };
    // A full LRU forgets its oldest destination; failing here only loses locality.
    let _ = LOCALITY.insert(&place, &set, 0);
    real_at(service, position)
}

#[inline(always)]
fn replicated(service: &Service) -> bool {
    service.flags & service_flags::REPLICATED != 0
}

/// lblcr's set at `place`, less its most loaded member when it has been left alone long
/// enough (see [`Locality::shrinks`]).
#[inline(always)]
fn shrunk(
    service: &Service,
    len: NonZeroU32,
    rule: Least,
    place: &LocalityKey,
    set: Locality,
    now: u64,
) -> Locality {
    if !replicated(service) || !set.shrinks(now) {
        return set;
    }
    let Some(heaviest) = heaviest_among(service, len, rule, set.reals) else {
        return set;
    };
    let smaller = set.without(heaviest, now);
    // Failing here only leaves the set as it was, to shrink on a later flow.
    let _ = LOCALITY.insert(place, &smaller, 0);
    smaller
}

/// IPVS's overload rule for lblc and lblcr (see `lb_common::sched::least::has_room`).
#[inline(always)]
fn overloaded(service: &Service, len: NonZeroU32, rule: Least, load: &Load) -> bool {
    if !may_be_overloaded(load) {
        return false;
    }
    let mut scan = Scan::new(service, rule, EVERY_REAL);
    run(len, room_step, &mut scan);
    scan.found != 0
}

/// One step of [`overloaded`]: 1 (stop) at a real below half its weight.
extern "C" fn room_step(position: u64, scan: *mut c_void) -> i64 {
    // SAFETY: `bpf_loop` passes the `Scan` [`overloaded`] gave it.
    let scan = unsafe { &mut *(scan as *mut Scan) };
    if has_room(&load_at(scan.table, position as u32, scan.window)) {
        scan.found = 1;
        return 1;
    }
    0
}

/// The load of the real at `position` of the table; a real that is gone has no weight.
#[inline(always)]
fn load_at(table: u32, position: u32, window: u32) -> Load {
    let Some(index) = TABLES.get(table + position).copied() else {
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
}

#[inline(always)]
fn real_at(service: &Service, position: u32) -> Option<(u32, Real)> {
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
