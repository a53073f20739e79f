//! A do-nothing XDP program for switch ports, so they receive what a host sends with XDP_TX.
//!
//! A veth only takes frames its peer transmits from XDP (XDP_TX or a redirect) when it runs
//! an XDP program itself; turning GRO on, which older kernels accepted instead, does not do
//! it on the kernels xlb is tested on. The test bed cannot use xlb's own objects (it is built
//! before them, and xtask depends on it), so it loads this two-instruction program through
//! the `bpf` syscall directly.

use std::{
    ffi::CString,
    io,
    mem::size_of,
    os::fd::{FromRawFd, OwnedFd},
};

use anyhow::Context;

use crate::Netns;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;

/// `r0 = XDP_PASS (2); exit`, as `struct bpf_insn`s (code, regs, off, imm; little endian).
const PROGRAM: [u64; 2] = [0x0000_0002_0000_00b7, 0x0000_0000_0000_0095];
const LICENSE: &[u8] = b"GPL\0";

/// The head of `union bpf_attr` for BPF_PROG_LOAD; the kernel zero-fills the rest.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

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
        let attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: PROGRAM.len() as u32,
            insns: PROGRAM.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level: 0,
            log_size: 0,
            log_buf: 0,
            kern_version: 0,
            prog_flags: 0,
            prog_name: name,
            prog_ifindex: 0,
            expected_attach_type: BPF_XDP,
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

/// The `bpf` syscall for commands that return a new file descriptor.
fn bpf<T>(command: libc::c_long, attr: &T) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a live, fully initialised `#[repr(C)]` prefix of `union bpf_attr`
    // whose pointers (instructions, license) are 'static, and its size is passed with it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            std::ptr::from_ref(attr),
            size_of::<T>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
