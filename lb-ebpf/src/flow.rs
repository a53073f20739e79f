//! A connection's entry in the flow table: the real it is pinned to, how long it may still
//! live (IPVS's timeouts, by protocol and TCP close state), and how it counts for the
//! least-connection schedulers.

use lb_common::{
    conn_count::{ConnState, Segment, tcp},
    maps::{Flow, FlowKey, Real, method},
};

use crate::{
    conn_count,
    maps::{self, FLOWS, REALS},
    nat,
    packet::Packet,
};

/// What the flow table says of a packet's flow.
pub enum Pin {
    /// Pinned to this real, whose slot still holds it.
    Held(*mut Flow, Real),
    /// Pinned to a real that was removed since (`expire_nodest_conn` decides), or whose
    /// service is on standby.
    Lost,
    /// Not in the table, or as good as absent: idle past its timeout, or a closed TCP
    /// connection whose tuple a client opens again. A new flow.
    None,
}

/// The packet's flow, as the flow table has it at `now`; `segment` is what the packet
/// tells of it. Its service need not be looked up: the real it is pinned to says how to
/// reach it and whether its service forwards (see `Real::ACTIVE`).
#[inline(always)]
pub fn pinned(packet: &Packet, segment: Segment, now: u64) -> Pin {
    let Some(flow) = FLOWS.get_ptr_mut(&packet.flow) else {
        return Pin::None;
    };
    // SAFETY: flow values are written whole by the scheduling stages; after that only their
    // connection state and times change, on the CPU the flow's packets arrive on.
    let (index, generation, seen, closing) = unsafe {
        (
            (*flow).real,
            (*flow).generation,
            (*flow).seen,
            (*flow).closing,
        )
    };
    let Some(real) = REALS.get(index).copied() else {
        return Pin::Lost;
    };
    if !real.is_active() || real.generation != generation {
        return Pin::Lost;
    }
    // A NAT connection lives as long as either side talks (`NAT_CONNS` sees both); the
    // others only show the client's side.
    let live = if real.method == method::NAT {
        nat::is_live(&packet.flow, &real)
    } else {
        !maps::timeouts().expired(packet.flow.proto, closing != 0, seen, now)
    };
    if !live || (closing != 0 && opens(segment)) {
        // SAFETY: as above.
        unsafe { conn_count::forget(&mut *flow) };
        return Pin::None;
    }
    Pin::Held(flow, real)
}

/// Moves an established flow on by its packet at `now`.
#[inline(always)]
pub fn follow(flow: &mut Flow, segment: Segment, now: u64) {
    flow.seen = now;
    if closes(segment) {
        flow.closing = 1;
    }
    conn_count::follow(flow, segment);
}

/// Pins the new flow `key` to the real in slot `index`, as of `now`; a flow of a service
/// that compares connections (`counted`) counts in its real's.
#[inline(always)]
pub fn pin(key: &FlowKey, index: u32, real: &Real, segment: Segment, counted: bool, now: u64) {
    let state = if counted {
        conn_count::start(index, segment)
    } else {
        ConnState::Untracked
    };
    let flow = Flow {
        real: index,
        generation: real.generation,
        seen: now,
        state: state as u8,
        closing: u8::from(closes(segment)),
        _pad: [0; 6],
    };
    // A full LRU evicts its oldest flow, so this only fails on kernel memory pressure; the
    // packet is still delivered and the next one schedules again.
    let _ = FLOWS.insert(key, &flow, 0);
}

/// The segment is the client's FIN or RST.
#[inline(always)]
fn closes(segment: Segment) -> bool {
    matches!(segment, Segment::Tcp(flags) if flags & (tcp::FIN | tcp::RST) != 0)
}

/// The segment opens a new TCP connection: a bare SYN.
#[inline(always)]
fn opens(segment: Segment) -> bool {
    matches!(segment, Segment::Tcp(flags) if flags & (tcp::SYN | tcp::ACK | tcp::FIN | tcp::RST) == tcp::SYN)
}
