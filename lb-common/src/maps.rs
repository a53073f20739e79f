//! Layouts of the BPF maps, their names and capacities.
//!
//! Every key and value is `#[repr(C)]` with explicit padding fields: hash keys are compared
//! byte for byte, so no byte of a key may be left uninitialised by either side.

use crate::{Addr, Family};

/// Map names as they appear in the object file; the statics in `lb-ebpf` carry these names.
pub mod name {
    pub const VIPS: &str = "VIPS";
    pub const TABLES: &str = "TABLES";
    pub const RING_POS: &str = "RING_POS";
    pub const REALS: &str = "REALS";
    pub const FLOWS: &str = "FLOWS";
    pub const REAL_STATS: &str = "REAL_STATS";
    pub const EVENTS: &str = "EVENTS";
    pub const NEIGH_MISSES: &str = "NEIGH_MISSES";
    pub const NAT_CONNS: &str = "NAT_CONNS";
    pub const TIMEOUTS: &str = "TIMEOUTS";
    pub const STAGES: &str = "STAGES";
    pub const TUNNEL_SOURCES: &str = "TUNNEL_SOURCES";
    /// In the decapsulation program's object.
    pub const DECAP_VIPS: &str = "DECAP_VIPS";
    pub const CONNS: &str = "CONNS";
    pub const PERSIST: &str = "PERSIST";
    pub const LOCALITY: &str = "LOCALITY";
    pub const FRAGMENTS: &str = "FRAGMENTS";
}

/// Virtual services the data plane can hold at once.
pub const MAX_SERVICES: u32 = 512;
/// Real servers across all services.
pub const MAX_REALS: u32 = 4096;
/// Entries of one selection table. A service owns two, so the agent can fill one while the
/// XDP program reads the other and then switch with a single map update.
pub const TABLE_SIZE: u32 = 4096;
/// Persistence templates (client networks stuck to a real) across all services.
pub const MAX_PERSIST: u32 = 65_536;
/// Destinations lblc and lblcr remember, across all services.
pub const MAX_LOCALITIES: u32 = 65_536;
/// Flow-table entries unless the operator asks for another size.
pub const DEFAULT_FLOWS: u32 = 262_144;
/// Fragmented datagrams whose later fragments the program can still place.
pub const MAX_FRAGMENTED: u32 = 16_384;
/// Bytes of the ring buffer that carries unresolved next hops to the agent.
pub const NEIGH_MISSES_BYTES: u32 = 64 * 1024;

/// First `TABLES` index of a service's selection table in `slot` (0 or 1).
pub const fn table_base(service: u32, slot: u32) -> u32 {
    (service * 2 + slot) * TABLE_SIZE
}

/// IP protocol numbers of what the balancer forwards.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// Key of `VIPS`: what a client packet is addressed to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VipKey {
    pub addr: Addr,
    /// Network byte order, as in the L4 header.
    pub port: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    pub family: u8,
}

impl VipKey {
    pub fn new(addr: Addr, family: Family, port: u16, proto: u8) -> Self {
        Self {
            addr,
            port: port.to_be(),
            proto,
            family: family as u8,
        }
    }
}

/// How a service hands packets to its reals (`lb_kind`).
pub mod method {
    /// Direct routing: rewrite the Ethernet header only.
    pub const DR: u8 = 0;
    /// Masquerading: rewrite the destination to the real's address and port, and the
    /// real's answers back to the VIP's.
    pub const NAT: u8 = 1;
    /// Tunnelling: wrap the packet in an IPIP (IPv4) or IP6IP6 (IPv6) header to the real.
    pub const TUN: u8 = 2;
}

/// The balancer's programs. The entry program, attached to interfaces, forwards the packets
/// of established flows itself and hands everything else to a stage by tail call through
/// `STAGES`. The kernel verifies each program on its own and gives each a stack of its own,
/// so a packet's program never carries the branches of work it does not do: a new flow's
/// scheduler runs in that scheduler family's stage, a NAT answer in its stage.
pub mod stage {
    use super::select;

    /// Name of the entry program in the object.
    pub const ENTRY: &str = "xlb";

    /// A program the entry (or another stage) tail-calls, by its index in `STAGES`.
    #[repr(u32)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Stage {
        /// The first packet of a flow a scheduling stage has just pinned, forwarded by the
        /// service's method (the real in `NEW_FLOW`).
        Forward = 0,
        /// Not for a VIP: a NAT real's answer to a client, or traffic for the kernel.
        Answer = 1,
        /// ICMP errors about a service's flows, relayed to the flow's real.
        Relay = 2,
        /// The answer to a client whose packet no longer fits the route once tunnelled.
        TooBig = 3,
        /// New flows of rr and wrr services.
        Ring = 4,
        /// New flows of sh, dh and mh services.
        Hash = 5,
        /// New flows of the least-connection family (lc, wlc, sed, nq, fo, ovf).
        Least = 6,
        /// New flows of lblc and lblcr services.
        Locality = 7,
        /// Later fragments of a datagram, which carry no ports: they follow the first.
        Fragment = 8,
    }

    impl Stage {
        pub const ALL: [Stage; 9] = [
            Stage::Forward,
            Stage::Answer,
            Stage::Relay,
            Stage::TooBig,
            Stage::Ring,
            Stage::Hash,
            Stage::Least,
            Stage::Locality,
            Stage::Fragment,
        ];

        /// Its program in the object.
        pub const fn program(self) -> &'static str {
            match self {
                Stage::Forward => "xlb_forward",
                Stage::Answer => "xlb_answer",
                Stage::Relay => "xlb_relay",
                Stage::TooBig => "xlb_too_big",
                Stage::Ring => "xlb_ring",
                Stage::Hash => "xlb_hash",
                Stage::Least => "xlb_least",
                Stage::Locality => "xlb_locality",
                Stage::Fragment => "xlb_fragment",
            }
        }

        /// The stage that schedules new flows of a service whose [`super::Service::select`]
        /// is `select`.
        pub const fn scheduling(select: u8) -> Option<Stage> {
            match select {
                select::RING => Some(Stage::Ring),
                select::SOURCE_HASH | select::DESTINATION_HASH => Some(Stage::Hash),
                select::LEAST => Some(Stage::Least),
                select::LOCALITY => Some(Stage::Locality),
                _ => None,
            }
        }
    }

    /// Entries of `STAGES`.
    pub const COUNT: u32 = Stage::ALL.len() as u32;
}

/// How the XDP program picks a real for a new flow.
pub mod select {
    /// Walk the service's table in order, one step per new flow (rr and wrr: the agent lays
    /// out the order, including weights).
    pub const RING: u8 = 0;
    /// Index the table by a hash of the client's address (sh, mh), and of its port too
    /// with [`super::service_flags::PORT`].
    pub const SOURCE_HASH: u8 = 1;
    /// Index the table by a hash of the destination address (dh).
    pub const DESTINATION_HASH: u8 = 2;
    /// Compare the loads of the reals the table lists, by [`super::Service::least`] (the
    /// least-connection family).
    pub const LEAST: u8 = 3;
    /// lblc, and lblcr with [`super::service_flags::REPLICATED`]: a destination's real (or
    /// set of reals) from `LOCALITY` while not overloaded, else as [`LEAST`] by
    /// [`super::Service::least`].
    pub const LOCALITY: u8 = 4;
}

/// Bits of [`Service::flags`].
pub mod service_flags {
    /// sh-fallback / mh-fallback: when the hashed real cannot take the flow, probe on.
    pub const FALLBACK: u8 = 1;
    /// sh-port / mh-port: the source port is part of the hash.
    pub const PORT: u8 = 2;
    /// lblcr: a destination keeps a set of reals rather than one.
    pub const REPLICATED: u8 = 4;
    /// Packets of a flow whose real was removed are dropped, not rescheduled (IPVS's
    /// `expire_nodest_conn` 0).
    pub const DROP_NODEST: u8 = 8;
}

/// Value of `VIPS`: where to find everything else about the service.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// Index into the per-service arrays (`RING_POS`), and the `service` of its reals.
    pub id: u32,
    /// First `TABLES` index of the active selection table.
    pub table: u32,
    /// Entries in use in that table; zero when no real may take new flows.
    pub table_len: u32,
    /// One of [`method`].
    pub method: u8,
    /// One of [`select`].
    pub select: u8,
    /// Bits of [`service_flags`].
    pub flags: u8,
    /// A [`crate::sched::least::Least`], when `select` is [`select::LEAST`].
    pub least: u8,
    /// `persistence_timeout` in seconds; 0 for a service without persistence.
    pub persistence: u32,
    /// `persistence_granularity`: the mask applied to a client's address.
    pub granularity: Addr,
}

/// Value of `REALS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Real {
    pub addr: Addr,
    /// Network byte order.
    pub port: u16,
    pub family: u8,
    /// [`Real::PRESENT`] while the real exists in the configuration.
    pub flags: u8,
    /// Bumped whenever the slot is given to another real, so flows pinned to the previous
    /// occupant are not delivered to the new one.
    pub generation: u32,
    /// The weight schedulers see now: 0 while the real is down or quiesced, when it takes
    /// no new flows (its established ones keep going to it).
    pub weight: u32,
    /// The slot of the service the real belongs to: its counters' and an adopting agent's
    /// way back to it.
    pub service: u32,
    /// One of [`method`]: how the real's service reaches it.
    pub method: u8,
    pub _pad: [u8; 3],
}

impl Real {
    /// The slot holds a real of the configuration.
    pub const PRESENT: u8 = 1;
    /// Its service forwards now (not on VRRP standby): the packets of its established
    /// flows go to it without the service being looked up.
    pub const ACTIVE: u8 = 2;

    /// A slot whose real is gone. It keeps its generation, so that the slot's next real
    /// gets a new one even after an agent restart, and no flow of the old one follows it.
    pub const fn vacant(generation: u32) -> Self {
        Self {
            addr: Addr([0; 4]),
            port: 0,
            family: 0,
            flags: 0,
            generation,
            weight: 0,
            service: 0,
            method: 0,
            _pad: [0; 3],
        }
    }

    /// Whether the packets of flows pinned to the real go to it.
    pub const fn is_active(&self) -> bool {
        self.flags & (Self::PRESENT | Self::ACTIVE) == Self::PRESENT | Self::ACTIVE
    }

    pub const fn is_present(&self) -> bool {
        self.flags & Self::PRESENT != 0
    }

    /// Whether the real may take a new flow.
    pub const fn is_available(&self) -> bool {
        self.is_present() && self.weight > 0
    }
}

/// Key of `FLOWS` (a connection as the client sent it) and of `NAT_CONNS` (a connection as
/// the real answers it): source and destination as one packet carries them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: Addr,
    pub dst: Addr,
    /// Network byte order.
    pub sport: u16,
    /// Network byte order.
    pub dport: u16,
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

/// Value of `FLOWS`: the real a connection is pinned to, and how long it may live.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub real: u32,
    /// [`Real::generation`] when the flow was scheduled.
    pub generation: u32,
    /// When the client last sent a packet of it (the kernel's coarse monotonic clock, ns):
    /// a flow idle past its [`crate::timeouts::Timeouts`] is forgotten, as IPVS forgets
    /// a connection.
    pub seen: u64,
    /// A [`crate::conn_count::ConnState`]: how the flow counts in its real's `CONNS`.
    pub state: u8,
    /// 1 once the client sent FIN or RST: the `tcpfin` timeout applies.
    pub closing: u8,
    pub _pad: [u8; 6],
}

/// Key of `FRAGMENTS`: a fragmented datagram, as IP identifies it (its source,
/// destination, protocol and identification; IPv4's is 16 bits, IPv6's 32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: Addr,
    pub dst: Addr,
    /// Network byte order.
    pub id: u32,
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

/// Value of `NAT_CONNS`, keyed by a real's answer (real → client): what to rewrite its
/// source back to, and how long the connection may live (see [`crate::nat`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatConn {
    /// The VIP the client addressed.
    pub vip: Addr,
    /// Network byte order.
    pub vport: u16,
    /// One of [`crate::timeouts::state`].
    pub state: u8,
    pub _pad: [u8; 5],
    /// `bpf_ktime_get_ns` when a packet of the connection last passed, either way.
    pub last_seen: u64,
}

/// A next hop the XDP program found no neighbour entry for; the agent asks the kernel to
/// resolve it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighMiss {
    pub addr: Addr,
    pub ifindex: u32,
    pub family: u8,
    pub _pad: [u8; 3],
}

/// Index of a family's entry in `TUNNEL_SOURCES`.
pub const fn tunnel_source_index(family: Family) -> u32 {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// Key of `DECAP_VIPS`: a VIP a real server takes tunnelled packets for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DecapKey {
    pub addr: Addr,
    pub family: u8,
    pub _pad: [u8; 3],
}

/// VIPs one real server's decapsulation program holds at most.
pub const MAX_DECAP_VIPS: u32 = 256;

map_layout!(
    VipKey = 16 + 2 + 1 + 1,
    Service = 4 * 3 + 4 + 4 + 16,
    Real = 16 + 4 + 4 + 4 + 4 + 4,
    FlowKey = 16 * 2 + 2 * 2 + 4,
    Flow = 4 + 4 + 8 + 1 + 1 + 6,
    NeighMiss = 16 + 8,
    NatConn = 16 + 2 + 1 + 5 + 8,
    DecapKey = 16 + 4,
    FragmentKey = 16 * 2 + 4 + 4,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_of_the_last_service_fit_in_the_map() {
        let last = table_base(MAX_SERVICES - 1, 1) + TABLE_SIZE;
        assert_eq!(last, MAX_SERVICES * 2 * TABLE_SIZE);
    }
}
