//! The entry program: finds a packet's service and forwards the packets of established
//! flows; everything else goes to the stage that deals with it.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    maps::{Flow, FlowKey, Real, Service, VipKey, method, service_flags, stage::Stage},
    stats::Event,
};

use crate::{
    conn_count, forward,
    maps::{self, FLOWS, REALS, VIPS},
    nat,
    packet::{self, NoFlow, Packet},
    stage::{self, NEW_FLOW, NewFlow},
};

/// The verdict for one frame. Anything that is no traffic for a virtual service leaves
/// untouched with `XDP_PASS`.
#[inline(always)]
pub fn entry(ctx: &XdpContext) -> u32 {
    let packet = match packet::parse(ctx) {
        Ok(packet) => packet,
        Err(NoFlow::NotIp) => return xdp_action::XDP_PASS,
        Err(NoFlow::Icmp) => return stage::enter(ctx, Stage::Relay),
        Err(NoFlow::Pass(event)) => return maps::pass(event),
    };
    let Some(service) = service(&packet.flow) else {
        return stage::enter(ctx, Stage::Answer);
    };
    match pinned(&packet, &service) {
        Pin::Held(flow, real) => {
            // SAFETY: a live flow-table value (see `pinned`).
            let index = unsafe {
                conn_count::follow(ctx, &packet, &mut *flow);
                (*flow).real
            };
            forward::to_real(ctx, &packet, &service, index, &real, false)
        }
        Pin::Lost if service.flags & service_flags::DROP_NODEST != 0 => maps::drop(Event::NoDest),
        Pin::Lost | Pin::None => schedule(ctx, service),
    }
}

/// The service a client's packet is addressed to.
#[inline(always)]
pub fn service(flow: &FlowKey) -> Option<Service> {
    let vip = VipKey {
        addr: flow.dst,
        port: flow.dport,
        proto: flow.proto,
        family: flow.family,
    };
    // SAFETY: services are never updated in place (see `VIPS`), so the value stays coherent.
    unsafe { VIPS.get(&vip) }.copied()
}

/// What the flow table says of a packet's flow.
pub enum Pin {
    /// Pinned to this real, whose slot still holds it.
    Held(*mut Flow, Real),
    /// Pinned to a real that was removed since (or, for NAT, to a connection that expired).
    Lost,
    /// Not in the table.
    None,
}

#[inline(always)]
pub fn pinned(packet: &Packet, service: &Service) -> Pin {
    let Some(flow) = FLOWS.get_ptr_mut(&packet.flow) else {
        return Pin::None;
    };
    // SAFETY: flow values are written whole by the scheduling stages; after that only their
    // connection state changes, on the CPU the flow's packets arrive on.
    let (index, generation) = unsafe { ((*flow).real, (*flow).generation) };
    let Some(real) = REALS.get(index).copied() else {
        return Pin::Lost;
    };
    if !real.is_present() || real.generation != generation {
        return Pin::Lost;
    }
    if service.method == method::NAT && !nat::is_live(&packet.flow, &real) {
        return Pin::Lost;
    }
    Pin::Held(flow, real)
}

/// Hands a new flow to the stage of its service's scheduler, which pins it to a real.
#[inline(always)]
fn schedule(ctx: &XdpContext, service: Service) -> u32 {
    let (Some(next), Some(slot)) = (Stage::scheduling(service.select), NEW_FLOW.get_ptr_mut(0))
    else {
        return maps::drop(Event::NoStage);
    };
    // SAFETY: this CPU's slot, read by the stage entered next.
    unsafe {
        slot.write(NewFlow {
            service,
            index: 0,
            real: Real::default(),
        })
    };
    stage::enter(ctx, next)
}
