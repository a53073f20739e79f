//! Trivial XDP programs the balancer is measured against and tested with.
//!
//! `tx` bounces every frame back unchanged: the floor any XDP_TX program pays, which
//! benchmarks put next to the balancer's cost. `pass` hands every frame to the stack: on
//! veth, the peer of an interface that sends with XDP_TX only polls for those frames when
//! it runs an XDP program itself, so test topologies attach this one there.
#![no_std]
#![no_main]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub fn tx(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_TX
}

#[xdp]
pub fn pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
