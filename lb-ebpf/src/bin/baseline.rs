//! The trivial XDP program the balancer is measured against: `tx` bounces every frame back
//! unchanged, the floor any XDP_TX program pays, which benchmarks put next to the
//! balancer's cost.
#![no_std]
#![no_main]

#[path = "../runtime.rs"]
mod runtime;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub fn tx(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_TX
}
