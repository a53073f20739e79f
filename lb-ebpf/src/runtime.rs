//! What every BPF object of this crate needs besides its programs: a panic handler for
//! `no_std`, and the license the kernel reads to allow GPL-only helpers.

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program with a reachable panic, so this is never called.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
