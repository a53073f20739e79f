//! xlb's balancer: the XDP program attached to a director's ingress interfaces.
#![no_std]
#![no_main]
// Atomic fetch-add, which the BPF target only offers as an intrinsic.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod balance;
mod conns;
mod forward;
mod headers;
mod icmp;
mod icmp_reply;
mod maps;
mod nat;
mod persist;
mod runtime;
mod select;
mod tunnel;

use aya_ebpf::{macros::xdp, programs::XdpContext};

#[xdp]
pub fn xlb(ctx: XdpContext) -> u32 {
    balance::packet::<false>(&ctx)
}

/// The NAT stage, entered from `xlb` by tail call (see `balance::packet`).
#[xdp]
pub fn xlb_nat(ctx: XdpContext) -> u32 {
    balance::packet::<true>(&ctx)
}
