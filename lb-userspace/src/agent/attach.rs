//! Bringing up the XDP data plane on the `--interface`s, and saying in one line what about
//! this host stops it: an interface it lacks, a driver without native XDP, no BPF.

use std::{error::Error, io, iter, net::IpAddr};

use anyhow::{Context as _, anyhow, bail};
use tokio::sync::mpsc;

use super::Options;
use crate::dataplane::xdp::{Mode, XdpDataPlane, XdpError, neigh};

/// Loads the XDP balancer, attaches it to the `--interface`s and starts resolving the next
/// hops it asks for.
///
/// The interfaces are looked up first: loading waits for the verifier, which takes seconds,
/// and an interface that is not there is the likeliest mistake.
pub fn start(
    options: &Options,
    resolve: mpsc::Receiver<Vec<IpAddr>>,
) -> anyhow::Result<XdpDataPlane> {
    for interface in &options.interfaces {
        if nix::net::if_::if_nametoindex(interface.as_str()).is_err() {
            bail!("--interface {interface}: no such interface");
        }
    }
    let mut dataplane = XdpDataPlane::load(options.flows).map_err(load_failed)?;
    for (i, source) in options.tunnel_sources.iter().enumerate() {
        if options.tunnel_sources[..i]
            .iter()
            .any(|s| s.family() == source.family())
        {
            return Err(anyhow!(
                "--tunnel-source {source}: one {} source prefix at most",
                source.family().name()
            ));
        }
        dataplane.set_tunnel_source(source)?;
    }
    dataplane.set_nodest(options.nodest);
    for interface in &options.interfaces {
        dataplane
            .attach(interface, options.xdp_mode)
            .map_err(attach_failed)?;
    }
    let misses = dataplane
        .take_neigh_misses()?
        .context("neighbour ring already taken")?;
    let resolver = neigh::Resolver::new().context("opening a netlink socket")?;
    tokio::spawn(neigh::serve(misses, resolver, resolve));
    Ok(dataplane)
}

/// A load that failed, led by what the host lacks when the errno that ends it says so: the
/// errno alone, after a chain of aya's errors, leaves an operator guessing.
fn load_failed(err: XdpError) -> anyhow::Error {
    let lead = match errno(&err) {
        Some(libc::EPERM) => {
            "BPF is not permitted to xlb here: run it as root (or with CAP_BPF, \
             CAP_NET_ADMIN and CAP_PERFMON), outside any sandbox that forbids bpf()"
        }
        Some(libc::ENOSYS) => "this kernel has no BPF (CONFIG_BPF_SYSCALL)",
        _ => "loading the XDP data plane",
    };
    anyhow::Error::from(err).context(lead)
}

/// An attachment that failed, led by the remedy when the driver refused native mode.
fn attach_failed(err: XdpError) -> anyhow::Error {
    let lead = match &err {
        XdpError::Attach {
            interface,
            mode: Mode::Native,
            ..
        } if errno(&err) == Some(libc::EOPNOTSUPP) => format!(
            "--interface {interface}: its driver has no native XDP: use --xdp-mode auto or skb"
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
        for (mode, errno) in [(Mode::Auto, libc::EOPNOTSUPP), (Mode::Native, libc::EBUSY)] {
            let plain = format!("{:#}", anyhow::Error::from(attach(mode, errno)));
            assert_eq!(format!("{:#}", attach_failed(attach(mode, errno))), plain);
        }
    }

    #[test]
    fn bpf_not_permitted_says_what_xlb_needs() {
        let err = format!(
            "{:#}",
            load_failed(refused("bpf_map_create", libc::EPERM).into())
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
            load_failed(refused("bpf_prog_load", libc::ENOSYS).into())
        );
        assert!(err.starts_with("this kernel has no BPF"), "{err}");
    }

    #[test]
    fn other_load_failures_say_what_failed() {
        let err = format!(
            "{:#}",
            load_failed(refused("bpf_prog_load", libc::E2BIG).into())
        );
        assert!(
            err.starts_with("loading the XDP data plane: XDP program: "),
            "{err}"
        );
    }
}
