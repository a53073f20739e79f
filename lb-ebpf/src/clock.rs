//! The one clock every program reads: the kernel's coarse monotonic clock, a few
//! nanoseconds to read where the precise one costs tens on every packet. Its ticks (a
//! jiffy, a few milliseconds) are far finer than any timeout it measures. The agent reads
//! the same clock (`CLOCK_MONOTONIC_COARSE`).

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;

/// Now, in nanoseconds.
#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_ktime_get_coarse_ns() }
}
