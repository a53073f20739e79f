//! The entry program: finds a packet's service and forwards the packets of established
//! flows; everything else goes to the stage that deals with it.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    maps::{FlowKey, Real, Service, VipKey, service_flags, stage::Stage},
    stats::Event,
};

use crate::{
    clock, conn_count,
    flow::{self, Pin},
    forward,
    maps::{self, VIPS},
    packet::{self, NoFlow},
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
        Err(NoFlow::Fragment(_)) => return stage::enter(ctx, Stage::Fragment),
        Err(NoFlow::Pass(event)) => return maps::pass(event),
    };
    let segment = conn_count::segment(ctx, packet.flow.proto, packet.l4);
    let now = clock::now();
    // An established flow first: its packets, most of all, go without the service.
    let pin = flow::pinned(&packet, segment, now);
    if let Pin::Held(pinned, real) = pin {
        // SAFETY: a live flow-table value (see `flow::pinned`).
        let index = unsafe {
            flow::follow(&mut *pinned, segment, now);
            (*pinned).real
        };
        return forward::to_real(ctx, &packet, index, &real, false);
    }
    let Some(service) = service(&packet.flow) else {
        return stage::enter(ctx, Stage::Answer);
    };
    match pin {
        Pin::Lost if service.flags & service_flags::DROP_NODEST != 0 => maps::drop(Event::NoDest),
        _ => schedule(ctx, service),
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
