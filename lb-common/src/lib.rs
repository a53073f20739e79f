//! What the XDP program and the agent must agree on, defined once.
//!
//! Everything here is `no_std` so the same code runs in the kernel (through `lb-ebpf`) and in
//! user space, where unit tests exercise exactly the logic the data plane relies on.
#![cfg_attr(not(test), no_std)]

/// Declares `$t` a layout of BPF map keys or values, of `$size` bytes.
///
/// The size is checked at compile time: hash keys are compared byte for byte, so a layout
/// may have no padding the compiler adds unseen (each has explicit padding fields). In user
/// space, aya may then read and write the type in maps.
macro_rules! map_layout {
    ($($t:ty = $size:expr),+ $(,)?) => {
        $(
            const _: () = assert!(core::mem::size_of::<$t>() == $size);
            // SAFETY: plain `#[repr(C)]` data whose size shows no hidden padding; every bit
            // pattern is a valid value.
            #[cfg(feature = "user")]
            unsafe impl aya::Pod for $t {}
        )+
    };
}

pub mod addr;
pub mod conn_count;
pub mod inet_csum;
pub mod maps;
pub mod persist;
pub mod sched;
pub mod stats;
pub mod timeouts;
pub mod too_big;
pub mod tunnel;

pub use addr::{Addr, Family};
