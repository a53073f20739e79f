//! The `bpf` syscall, for what the test bed loads without aya: the switch ports' pass
//! program ([`crate::xdp_pass`]) and the verifier's measurements ([`crate::verifier`]).

use std::{
    io,
    os::fd::{FromRawFd as _, OwnedFd, RawFd},
};

pub(crate) const BPF_PROG_LOAD: libc::c_long = 5;
pub(crate) const BPF_BTF_LOAD: libc::c_long = 18;
pub(crate) const BPF_LINK_CREATE: libc::c_long = 28;
pub(crate) const BPF_PROG_TYPE_XDP: u32 = 6;
pub(crate) const BPF_XDP: u32 = 37;

/// `BPF_PROG_LOAD`'s attributes, as far as the test bed sets them (`union bpf_attr`).
#[repr(C)]
#[derive(Default)]
pub(crate) struct ProgLoad {
    pub prog_type: u32,
    pub insn_cnt: u32,
    pub insns: u64,
    pub license: u64,
    pub log_level: u32,
    pub log_size: u32,
    pub log_buf: u64,
    pub kern_version: u32,
    pub prog_flags: u32,
    pub prog_name: [u8; 16],
    pub prog_ifindex: u32,
    pub expected_attach_type: u32,
    pub prog_btf_fd: u32,
    pub func_info_rec_size: u32,
    pub func_info: u64,
    pub func_info_cnt: u32,
    pub line_info_rec_size: u32,
    pub line_info: u64,
    pub line_info_cnt: u32,
    /// The rest of the union, zero.
    pub _rest: [u32; 31],
}

/// Calls `bpf(cmd, attr)` for a command that returns a new file descriptor.
pub(crate) fn bpf<T>(cmd: libc::c_long, attr: &T) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a `#[repr(C)]` prefix of `union bpf_attr` of the size passed, with
    // every pointer in it valid for the call; the kernel reads what the size covers and
    // writes only into the buffers the attributes point to.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr),
            size_of::<T>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a file descriptor the kernel just made for this process, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
