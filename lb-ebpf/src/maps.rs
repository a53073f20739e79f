//! The maps, named as `lb_common::maps::name` expects; layouts come from lb-common.

use aya_ebpf::{
    bindings::{BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, xdp_action},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use lb_common::{
    conn_count::RealConns,
    maps::{
        DEFAULT_FLOWS, Flow, FlowKey, FragmentKey, MAX_FRAGMENTED, MAX_LOCALITIES, MAX_PERSIST,
        MAX_REALS, MAX_SERVICES, NEIGH_MISSES_BYTES, NatConn, Real, Service, TABLE_SIZE, VipKey,
        stage,
    },
    persist::{Persist, PersistKey},
    sched::locality::{Locality, LocalityKey},
    stats::{Counters, Event},
    timeouts::Timeouts,
    tunnel::TunnelSource,
};

/// Not preallocated so that replacing a service is atomic for readers: the agent switches
/// selection tables by rewriting this value.
#[map]
pub static VIPS: HashMap<VipKey, Service> =
    HashMap::with_max_entries(MAX_SERVICES, BPF_F_NO_PREALLOC);

#[map]
pub static TABLES: Array<u32> = Array::with_max_entries(MAX_SERVICES * 2 * TABLE_SIZE, 0);

/// Per service: the next step along its ring, shared by all CPUs so rr stays exact. 64 bits
/// because that is the width BPF atomics come in.
#[map]
pub static RING_POS: Array<u64> = Array::with_max_entries(MAX_SERVICES, 0);

#[map]
pub static REALS: Array<Real> = Array::with_max_entries(MAX_REALS, 0);

/// The agent sizes this at load time from the configuration.
/// Per real slot: its connections, for the least-connection schedulers. The agent zeroes a
/// slot when it gives it to a new real.
#[map]
pub static CONNS: Array<RealConns> = Array::with_max_entries(MAX_REALS, 0);

#[map]
pub static PERSIST: LruHashMap<PersistKey, Persist> = LruHashMap::with_max_entries(MAX_PERSIST, 0);

/// lblc's and lblcr's memory of which reals serve a destination.
#[map]
pub static LOCALITY: LruHashMap<LocalityKey, Locality> =
    LruHashMap::with_max_entries(MAX_LOCALITIES, 0);

/// Each CPU keeps its own LRU list (the entries are every CPU's): new flows do not contend
/// for one list's lock, and a CPU evicts only flows it inserted. The table is sized whole
/// (`--flows`), each CPU's list a share of it, as receive-side scaling spreads new flows.
#[map]
pub static FLOWS: LruHashMap<FlowKey, Flow> =
    LruHashMap::with_max_entries(DEFAULT_FLOWS, BPF_F_NO_COMMON_LRU);

/// Fragmented datagrams by their IP identity, with the flow their first fragment belongs
/// to: later fragments carry no ports, and follow it to its real.
#[map]
pub static FRAGMENTS: LruHashMap<FragmentKey, FlowKey> =
    LruHashMap::with_max_entries(MAX_FRAGMENTED, 0);

/// NAT connections by the real's side of them; sized like `FLOWS`.
#[map]
pub static NAT_CONNS: LruHashMap<FlowKey, NatConn> = LruHashMap::with_max_entries(DEFAULT_FLOWS, 0);

/// The programs the balancer hands packets to by tail call; the agent fills it at load.
#[map]
pub static STAGES: ProgramArray = ProgramArray::with_max_entries(stage::COUNT, 0);

/// One entry, written by the agent before it installs any service.
#[map]
pub static TIMEOUTS: Array<Timeouts> = Array::with_max_entries(1, 0);

#[map]
pub static REAL_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(MAX_REALS, 0);

#[map]
pub static EVENTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Event::COUNT, 0);

#[map]
pub static NEIGH_MISSES: RingBuf = RingBuf::with_byte_size(NEIGH_MISSES_BYTES, 0);

/// Per family (`tunnel_source_index`): where outer TUN headers come from.
#[map]
pub static TUNNEL_SOURCES: Array<TunnelSource> = Array::with_max_entries(2, 0);

#[inline(always)]
pub fn count(event: Event) {
    if let Some(counter) = EVENTS.get_ptr_mut(event as u32) {
        // SAFETY: per-CPU slot, and XDP programs do not preempt each other on one CPU.
        unsafe { *counter += 1 };
    }
}

/// The connection timeouts the agent set (IPVS's until it does).
#[inline(always)]
pub fn timeouts() -> Timeouts {
    TIMEOUTS.get(0).copied().unwrap_or(Timeouts::IPVS)
}

/// Leaves the packet to the kernel, counted as `event`.
#[inline(always)]
pub fn pass(event: Event) -> u32 {
    count(event);
    xdp_action::XDP_PASS
}

/// Drops the packet, counted as `event`.
#[inline(always)]
pub fn drop(event: Event) -> u32 {
    count(event);
    xdp_action::XDP_DROP
}

/// Accounts a forwarded packet to its real; a service's counters are its reals' (the
/// agent adds them up), which spares every packet a lookup.
#[inline(always)]
pub fn account(real: u32, bytes: u64, new_flow: bool) {
    if let Some(c) = REAL_STATS.get_ptr_mut(real) {
        // SAFETY: as in `count`.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
            (*c).new_flows += u64::from(new_flow);
        }
    }
}
