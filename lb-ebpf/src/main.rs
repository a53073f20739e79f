//! xlb's balancer: the entry program attached to a director's ingress interfaces, and the
//! stages it hands packets on to by tail call (see `lb_common::maps::stage`).
#![no_std]
#![no_main]
// Atomic fetch-add, which the BPF target only offers as an intrinsic.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod balance;
mod clock;
mod conn_count;
mod flow;
mod forward;
mod headers;
mod hop;
mod maps;
mod nat;
mod packet;
mod relay;
mod runtime;
mod schedule;
mod stage;
mod too_big;
mod tunnel;

use aya_ebpf::{macros::xdp, programs::XdpContext};

use schedule::{Hash, LeastConnection, LocalityBased, Ring};

#[xdp]
pub fn xlb(ctx: XdpContext) -> u32 {
    balance::entry(&ctx)
}

#[xdp]
pub fn xlb_forward(ctx: XdpContext) -> u32 {
    forward::stage(&ctx)
}

#[xdp]
pub fn xlb_answer(ctx: XdpContext) -> u32 {
    nat::stage(&ctx)
}

#[xdp]
pub fn xlb_relay(ctx: XdpContext) -> u32 {
    relay::stage(&ctx)
}

#[xdp]
pub fn xlb_too_big(ctx: XdpContext) -> u32 {
    too_big::stage(&ctx)
}

#[xdp]
pub fn xlb_fragment(ctx: XdpContext) -> u32 {
    forward::fragment_stage(&ctx)
}

#[xdp]
pub fn xlb_ring(ctx: XdpContext) -> u32 {
    schedule::stage::<Ring>(&ctx)
}

#[xdp]
pub fn xlb_hash(ctx: XdpContext) -> u32 {
    schedule::stage::<Hash>(&ctx)
}

#[xdp]
pub fn xlb_least(ctx: XdpContext) -> u32 {
    schedule::stage::<LeastConnection>(&ctx)
}

#[xdp]
pub fn xlb_locality(ctx: XdpContext) -> u32 {
    schedule::stage::<LocalityBased>(&ctx)
}
