//! What the XDP program and the agent must agree on, defined once.
//!
//! Everything here is `no_std` so the same code runs in the kernel (through `lb-ebpf`) and in
//! user space, where unit tests exercise exactly the logic the data plane relies on.
#![cfg_attr(not(test), no_std)]

pub mod addr;
pub mod conn;
pub mod icmp_reply;
pub mod inet_csum;
pub mod maps;
pub mod nat;
pub mod persist;
pub mod sched;
pub mod stats;
pub mod tunnel;

pub use addr::{Addr, Family};
