//! A do-nothing XDP program for switch ports, so they receive what a host sends with XDP_TX.
//!
//! A veth only takes frames its peer transmits from XDP (XDP_TX or a redirect) when it runs
//! an XDP program itself; turning GRO on, which older kernels accepted instead, does not do
//! it on the kernels xlb is tested on. The test bed cannot use xlb's own objects (it is built
//! before them, and xtask depends on it), so it loads this two-instruction program through
//! the `bpf` syscall directly.

use std::{ffi::CString, io, os::fd::OwnedFd};

use anyhow::Context;

use crate::{
    Netns,
    bpf_sys::{BPF_LINK_CREATE, BPF_PROG_LOAD, BPF_PROG_TYPE_XDP, BPF_XDP, ProgLoad, bpf},
};

/// `r0 = XDP_PASS (2); exit`, as `struct bpf_insn`s (code, regs, off, imm; little endian).
const PROGRAM: [u64; 2] = [0x0000_0002_0000_00b7, 0x0000_0000_0000_0095];
const LICENSE: &[u8] = b"GPL\0";

/// The head of `union bpf_attr` for BPF_LINK_CREATE.
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// The loaded program; attachments hold their own reference to it.
pub(crate) struct XdpPass {
    program: OwnedFd,
}

impl XdpPass {
    pub(crate) fn load() -> anyhow::Result<Self> {
        let mut name = [0u8; 16];
        name[..8].copy_from_slice(b"xlb_pass");
        let attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: PROGRAM.len() as u32,
            insns: PROGRAM.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            prog_name: name,
            expected_attach_type: BPF_XDP,
            ..ProgLoad::default()
        };
        let program = bpf(BPF_PROG_LOAD, &attr).context("load the XDP pass program")?;
        Ok(Self { program })
    }

    /// Attaches the program to `iface` in `ns` until the returned link is closed or the
    /// interface goes away.
    pub(crate) fn attach(&self, ns: &Netns, iface: &str) -> anyhow::Result<OwnedFd> {
        let name = CString::new(iface)?;
        let raw_program = std::os::fd::AsRawFd::as_raw_fd(&self.program);
        // Interface indexes are per namespace, and so is the lookup the kernel does for them.
        ns.run(|| {
            // SAFETY: `name` is a valid NUL-terminated string.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if ifindex == 0 {
                return Err(io::Error::last_os_error()).context(format!("no interface {iface}"));
            }
            let attr = LinkCreateAttr {
                prog_fd: raw_program as u32,
                target_ifindex: ifindex,
                attach_type: BPF_XDP,
                flags: 0,
            };
            bpf(BPF_LINK_CREATE, &attr).with_context(|| format!("attach XDP pass to {iface}"))
        })?
    }
}
