//! New flows: a scheduler picks the real, and the flow is pinned to it.
//!
//! Each scheduler family is a stage of its own (`lb_common::maps::stage`), so the entry
//! program carries none of them, and each stage only the one it runs: the least-connection
//! family's scans alone would take a large share of what the verifier allows a program.

mod hash;
mod least;
mod persist;
mod ring;

use aya_ebpf::programs::XdpContext;
use lb_common::{
    maps::{FlowKey, Real, Service, stage::Stage},
    stats::Event,
};

pub use self::{
    hash::Hash,
    least::{LeastConnection, LocalityBased},
    ring::Ring,
};
use crate::{
    clock, conn_count, flow, maps, packet,
    stage::{self, NEW_FLOW},
};

/// How one family of schedulers picks a real for a new flow.
pub trait Scheduler {
    /// Whether the family weighs reals by their connections, so that the flows it pins
    /// must count in them.
    const COUNTS_CONNECTIONS: bool;

    /// The real slot and entry a new flow of `service` should take, or `None` when no real
    /// may take it.
    fn choose(service: &Service, key: &FlowKey) -> Option<(u32, Real)>;
}

/// A scheduling stage: picks the real for the new flow the entry handed over, by the
/// client's persistence or by `S`, pins the flow to it and hands the packet on to be
/// forwarded.
#[inline(always)]
pub fn stage<S: Scheduler>(ctx: &XdpContext) -> u32 {
    let packet = match packet::reparse(ctx) {
        Ok(packet) => packet,
        Err(verdict) => return verdict,
    };
    let Some(new) = NEW_FLOW.get_ptr_mut(0) else {
        return maps::drop(Event::NoStage);
    };
    // SAFETY: this CPU's slot, written by the entry just before it entered this stage.
    let service = unsafe { (*new).service };
    let Some((index, real)) = persist::choose::<S>(&service, &packet.flow) else {
        return maps::drop(Event::NoReal);
    };
    let segment = conn_count::segment(ctx, packet.flow.proto, packet.l4);
    flow::pin(
        &packet.flow,
        index,
        &real,
        segment,
        S::COUNTS_CONNECTIONS,
        clock::now(),
    );
    // SAFETY: as above; the forwarding stage entered next reads it.
    unsafe {
        (*new).index = index;
        (*new).real = real;
    }
    stage::enter(ctx, Stage::Forward)
}
