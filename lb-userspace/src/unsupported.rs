//! What this host lacks for xlb's XDP programs, said in one line with the remedy: an
//! interface that is not there, a driver without native XDP, no BPF. The errno alone, at
//! the end of a chain of aya's errors, leaves an operator guessing.

use std::{error::Error, io, iter};

use anyhow::bail;

use crate::dataplane::xdp::{Mode, XdpError};

/// Fails unless `interface` exists (in this network namespace). Checked before loading a
/// program, which waits for the verifier, and before writing the interface's sysctls,
/// whose "no such file" would name a path rather than the interface.
pub(crate) fn interface_exists(interface: &str) -> anyhow::Result<()> {
    if crate::net::index(interface).is_err() {
        bail!("--interface {interface}: no such interface");
    }
    Ok(())
}

/// A load that failed, led by what the host lacks when the errno that ends it says so, else
/// by `doing`.
pub(crate) fn load_failed(err: XdpError, doing: &'static str) -> anyhow::Error {
    let lead = match errno(&err) {
        Some(libc::EPERM) => {
            "BPF is not permitted to xlb here: run it as root (or with CAP_BPF, \
             CAP_NET_ADMIN and CAP_PERFMON), outside any sandbox that forbids bpf()"
        }
        Some(libc::ENOSYS) => "this kernel has no BPF (CONFIG_BPF_SYSCALL)",
        _ => doing,
    };
    anyhow::Error::from(err).context(lead)
}

/// An attachment that failed, led by the remedy when the driver refused native mode.
pub(crate) fn attach_failed(err: XdpError) -> anyhow::Error {
    let lead = match &err {
        XdpError::Attach {
            interface,
            mode: Mode::Native,
            ..
        } if errno(&err) == Some(libc::EOPNOTSUPP) => format!(
            "--interface {interface}: its driver has no native XDP: use --xdp-mode auto or skb"
        ),
        XdpError::Attach { interface, .. } if errno(&err) == Some(libc::EBUSY) => format!(
            "--interface {interface} already has an XDP program: another tool's, or the data \
             plane an xlb left pinned for another run directory (start xlb with that run \
             directory to take it over, or detach it: ip link set dev {interface} xdp off)"
        ),
        _ => return err.into(),
    };
    anyhow::Error::from(err).context(lead)
}

/// The errno of the system call that `err` comes down to, if any.
fn errno(err: &(dyn Error + 'static)) -> Option<i32> {
    iter::successors(Some(err), |&err| err.source())
        .filter_map(|err| err.downcast_ref::<io::Error>())
        .find_map(io::Error::raw_os_error)
}

#[cfg(test)]
mod tests {
    use aya::{programs::ProgramError, sys::SyscallError};

    use super::*;

    const LOADING: &str = "loading the XDP data plane";

    fn refused(call: &'static str, errno: i32) -> ProgramError {
        ProgramError::SyscallError(SyscallError {
            call,
            io_error: io::Error::from_raw_os_error(errno),
        })
    }

    fn attach(mode: Mode, errno: i32) -> XdpError {
        XdpError::Attach {
            interface: "br0".to_owned(),
            mode,
            source: refused("bpf_link_create", errno),
        }
    }

    #[test]
    fn a_missing_interface_is_named() {
        let err = interface_exists("xlb-absent0").unwrap_err().to_string();
        assert_eq!(err, "--interface xlb-absent0: no such interface");
        interface_exists("lo").unwrap();
    }

    #[test]
    fn a_driver_without_native_xdp_is_named_with_the_remedy() {
        let err = format!(
            "{:#}",
            attach_failed(attach(Mode::Native, libc::EOPNOTSUPP))
        );
        assert!(
            err.starts_with(
                "--interface br0: its driver has no native XDP: use --xdp-mode auto or skb: \
                 cannot attach to br0 in Native mode: "
            ),
            "{err}"
        );
    }

    #[test]
    fn other_attach_failures_are_left_as_they_are() {
        for (mode, errno) in [(Mode::Auto, libc::EOPNOTSUPP), (Mode::Native, libc::EPERM)] {
            let plain = format!("{:#}", anyhow::Error::from(attach(mode, errno)));
            assert_eq!(format!("{:#}", attach_failed(attach(mode, errno))), plain);
        }
    }

    #[test]
    fn an_interface_with_a_program_says_how_to_free_it() {
        let err = format!("{:#}", attach_failed(attach(Mode::Native, libc::EBUSY)));
        assert!(
            err.starts_with("--interface br0 already has an XDP program: "),
            "{err}"
        );
        assert!(err.contains("ip link set dev br0 xdp off"), "{err}");
    }

    #[test]
    fn bpf_not_permitted_says_what_xlb_needs() {
        let err = format!(
            "{:#}",
            load_failed(refused("bpf_map_create", libc::EPERM).into(), LOADING)
        );
        assert!(
            err.starts_with("BPF is not permitted to xlb here: "),
            "{err}"
        );
        assert!(err.ends_with("(os error 1)"), "{err}");
    }

    #[test]
    fn a_kernel_without_bpf_says_so() {
        let err = format!(
            "{:#}",
            load_failed(refused("bpf_prog_load", libc::ENOSYS).into(), LOADING)
        );
        assert!(err.starts_with("this kernel has no BPF"), "{err}");
    }

    #[test]
    fn other_load_failures_say_what_failed() {
        let err = format!(
            "{:#}",
            load_failed(refused("bpf_prog_load", libc::E2BIG).into(), LOADING)
        );
        assert!(
            err.starts_with("loading the XDP data plane: XDP program: "),
            "{err}"
        );
    }
}
