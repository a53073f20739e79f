//! The least-connection family (lc, wlc, sed, nq, fo, ovf) and the locality schedulers
//! built on it (lblc, lblcr): every real a service lists compared by its connections for
//! each new flow.
//!
//! The loops over a service's reals run in the `bpf_loop` helper with `extern "C"` steps,
//! so the verifier checks a step once instead of every iteration of every caller (lblc
//! scans up to three times per new flow); what a scan keeps between steps is out of the
//! verifier's sight (see [`SCAN`]), so that once is enough.

use core::{ffi::c_void, num::NonZeroU32};

use aya_ebpf::{helpers::bpf_loop, macros::map, maps::PerCpuArray};

use lb_common::{
    maps::{FlowKey, Real, Service, service_flags},
    sched::{
        least::{Least, Load, MAX_LEAST_REALS, Picker, has_room, may_be_overloaded},
        locality::{Locality, LocalityKey},
    },
};

use super::Scheduler;
use crate::{
    clock, conn_count,
    maps::{CONNS, LOCALITY, REALS, TABLES},
};

/// The lc family: the reals the table lists (at most [`MAX_LEAST_REALS`]) compared by
/// their connection counts, as IPVS compares them.
pub struct LeastConnection;

impl Scheduler for LeastConnection {
    const COUNTS_CONNECTIONS: bool = true;

    #[inline(always)]
    fn choose(service: &Service, _key: &FlowKey) -> Option<(u32, Real)> {
        let len = NonZeroU32::new(service.table_len)?;
        let rule = Least::from_u8(service.least)?;
        let (position, _) = least_among(service, len, rule, EVERY_REAL)?;
        real_at(service, position)
    }
}

/// lblc and lblcr: the destination's real (or the least loaded of its set) unless it is
/// overloaded; otherwise wlc's pick, which becomes the destination's real (or joins its set).
pub struct LocalityBased;

impl Scheduler for LocalityBased {
    const COUNTS_CONNECTIONS: bool = true;

    #[inline(always)]
    fn choose(service: &Service, key: &FlowKey) -> Option<(u32, Real)> {
        let len = NonZeroU32::new(service.table_len)?;
        locality(service, len, key)
    }
}

/// Every position of a table, as a set.
const EVERY_REAL: u64 = u64::MAX;

/// A scan in progress: what its steps read, and what they found.
#[repr(C)]
struct Scan {
    table: u32,
    window: u32,
    members: u64,
    /// A [`Least`]: the rule the scan's picks follow.
    rule: u8,
    /// Set by [`room_step`] when it finds a real below half its weight.
    found: u8,
    /// [`pick_step`]'s pick so far.
    picker: Picker,
}

/// This CPU's scan. It lives in a map rather than on the stack because the verifier does
/// not follow what a map value holds: were the scan on the stack, every pick so far (and
/// every count the scan read) would be a state of the loop to verify the next step from.
#[map]
static SCAN: PerCpuArray<Scan> = PerCpuArray::with_max_entries(1, 0);

/// Runs `step` over the first `len` positions of `service`'s table (at most
/// [`MAX_LEAST_REALS`]) in `members`, comparing reals by `rule`, and returns the scan as it
/// ended.
#[inline(always)]
fn scan(service: &Service, len: NonZeroU32, rule: Least, members: u64, step: Step) -> Option<Scan> {
    let scan = SCAN.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot; the steps below are the only other users, and they run
    // before this returns.
    unsafe {
        scan.write(Scan {
            table: service.table,
            window: conn_count::now(),
            members,
            rule: rule as u8,
            found: 0,
            picker: Picker::default(),
        });
        bpf_loop(
            len.get().min(MAX_LEAST_REALS),
            step as *mut c_void,
            core::ptr::null_mut(),
            0,
        );
        Some(scan.read())
    }
}

/// A `bpf_loop` callback over positions of a table.
type Step = extern "C" fn(u64, *mut c_void) -> i64;

/// The scan a step works on, and the load of the real at `position` if it is a member.
#[inline(always)]
fn member(position: u64) -> Option<(&'static mut Scan, u32, Load)> {
    // SAFETY: this CPU's slot, written by `scan` before the loop started.
    let scan = unsafe { &mut *SCAN.get_ptr_mut(0)? };
    let position = position as u32;
    if position >= 64 || scan.members & (1 << position) == 0 {
        return None;
    }
    let load = load_at(scan.table, position, scan.window)?;
    Some((scan, position, load))
}

/// The position of the real `rule` picks among the table's positions in `members`, and its
/// load.
#[inline(always)]
fn least_among(
    service: &Service,
    len: NonZeroU32,
    rule: Least,
    members: u64,
) -> Option<(u32, Load)> {
    let picker = scan(service, len, rule, members, pick_step)?.picker;
    Some((picker.picked()?, picker.load))
}

/// One step of [`least_among`]: offers the real at `position`; 1 stops the loop.
extern "C" fn pick_step(position: u64, _: *mut c_void) -> i64 {
    let Some((scan, position, load)) = member(position) else {
        return 0;
    };
    match Least::from_u8(scan.rule) {
        Some(rule) => i64::from(scan.picker.offer(rule, position, &load)),
        None => 1,
    }
}

/// The position of the most loaded real by [`LOCALITY_RULE`] among the table's positions
/// in `members` (whom lblcr drops from a set).
#[inline(always)]
fn heaviest_among(service: &Service, len: NonZeroU32, members: u64) -> Option<u32> {
    scan(service, len, LOCALITY_RULE, members, heavy_step)?
        .picker
        .picked()
}

/// One step of [`heaviest_among`].
extern "C" fn heavy_step(position: u64, _: *mut c_void) -> i64 {
    if let Some((scan, position, load)) = member(position) {
        scan.picker.offer_heaviest(LOCALITY_RULE, position, &load);
    }
    0
}

/// What lblc and lblcr compare reals by, as IPVS does.
const LOCALITY_RULE: Least = Least::Wlc;

#[inline(always)]
fn locality(service: &Service, len: NonZeroU32, key: &FlowKey) -> Option<(u32, Real)> {
    let place = LocalityKey {
        service: service.id,
        dst: key.dst,
    };
    let now = clock::now();
    // SAFETY: entries are written whole and only read here.
    let known = unsafe { LOCALITY.get(&place) }
        .copied()
        .map(|set| shrunk(service, len, &place, set, now));
    if let Some(set) = known
        && let Some((position, load)) = least_among(service, len, LOCALITY_RULE, set.reals)
        && !overloaded(service, len, &load)
    {
        return real_at(service, position);
    }
    let (position, _) = least_among(service, len, LOCALITY_RULE, EVERY_REAL)?;
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
    place: &LocalityKey,
    set: Locality,
    now: u64,
) -> Locality {
    if !replicated(service) || !set.shrinks(now) {
        return set;
    }
    let Some(heaviest) = heaviest_among(service, len, set.reals) else {
        return set;
    };
    let smaller = set.without(heaviest, now);
    // Failing here only leaves the set as it was, to shrink on a later flow.
    let _ = LOCALITY.insert(place, &smaller, 0);
    smaller
}

/// IPVS's overload rule for lblc and lblcr (see `lb_common::sched::least::has_room`).
#[inline(always)]
fn overloaded(service: &Service, len: NonZeroU32, load: &Load) -> bool {
    may_be_overloaded(load)
        && scan(service, len, LOCALITY_RULE, EVERY_REAL, room_step).is_some_and(|s| s.found != 0)
}

/// One step of [`overloaded`]: 1 (stop) at a real below half its weight.
extern "C" fn room_step(position: u64, _: *mut c_void) -> i64 {
    match member(position) {
        Some((scan, _, load)) if has_room(&load) => {
            scan.found = 1;
            1
        }
        _ => 0,
    }
}

/// The load of the real at `position` of the table; `None` for a real that is gone.
#[inline(always)]
fn load_at(table: u32, position: u32, window: u32) -> Option<Load> {
    let index = *TABLES.get(table + position)?;
    let real = REALS.get(index)?;
    let conns = CONNS.get(index)?;
    real.is_present().then(|| Load {
        weight: real.weight,
        active: conns.active(),
        inactive: conns.inactive(window),
    })
}

#[inline(always)]
fn real_at(service: &Service, position: u32) -> Option<(u32, Real)> {
    let index = *TABLES.get(service.table + position)?;
    Some((index, *REALS.get(index)?))
}
