//! keepalived as a VRRP peer of xlb: the interoperability half of the VRRP tests.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use nix::{sys::signal::kill, unistd::Pid};

use crate::{Child, Netns, Signal, wait_until};

/// How long keepalived may take to write its VRRP process's pidfile.
const VRRP_CHILD_START: Duration = Duration::from_secs(10);

/// Who runs a VRRP router in a test: xlb, or keepalived as the reference it must
/// interoperate with. Printed with `{:?}` in reports (`Xlb`, `Keepalived`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Xlb,
    Keepalived,
}

/// keepalived (Debian's package) running only its VRRP subsystem in a namespace, with its
/// own configuration file and pidfiles in the namespace's scratch directory so that
/// several can run on one host. Stopped and reaped when dropped, like any [`Child`].
///
/// keepalived runs VRRP in a child process of its own: a graceful stop (SIGTERM to the
/// parent) lets that child send priority-0 adverts, and [`Keepalived::crash`] kills both
/// so that nothing is sent at all.
pub struct Keepalived {
    vrrp_pidfile: PathBuf,
    parent: Child,
}

impl Keepalived {
    /// Starts `keepalived --vrrp` in `ns` with `config` as its keepalived.conf, named
    /// `label` (its files are `label.conf`, `label.*.pid`, and its logs `label.std*`).
    pub fn start(ns: &Netns, label: &str, config: &str) -> anyhow::Result<Self> {
        let dir = ns.dir();
        let file = dir.join(format!("{label}.conf"));
        fs::write(&file, config).with_context(|| format!("write {}", file.display()))?;
        let pidfile = |which: &str| dir.join(format!("{label}.{which}.pid"));
        let vrrp_pidfile = pidfile("vrrp");
        let mut command = ns.command("keepalived");
        command
            .args([
                "--vrrp",
                "--dont-fork",
                "--log-console",
                "--log-detail",
                "--no-syslog",
            ])
            .arg("--use-file")
            .arg(&file)
            .arg("--pid")
            .arg(pidfile("main"))
            .arg("--vrrp_pid")
            .arg(&vrrp_pidfile)
            .arg("--checkers_pid")
            .arg(pidfile("checkers"));
        let parent = ns
            .spawn(label, command)
            .context("keepalived is needed as the VRRP peer (`cargo xtask setup`)")?;
        Ok(Self {
            vrrp_pidfile,
            parent,
        })
    }

    /// Does not print its logs when dropped (see [`Child::quiet`]).
    pub fn quiet(self) -> Self {
        Self {
            parent: self.parent.quiet(),
            ..self
        }
    }

    /// The PID of the process that runs VRRP, once keepalived has started it.
    pub fn vrrp_pid(&self) -> anyhow::Result<Pid> {
        wait_until(
            &format!("{}'s VRRP process", self.parent.label()),
            VRRP_CHILD_START,
            Duration::from_millis(20),
            || read_pid(&self.vrrp_pidfile),
        )
    }

    /// Stops keepalived as an operator would (SIGTERM): its masters send priority 0.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.parent.stop()?;
        Ok(())
    }

    /// Kills keepalived outright, VRRP process and parent, as a power cut would: no
    /// priority-0 advert, the VIPs left where they were.
    ///
    /// The parent is frozen first: it would restart a VRRP process that died, and its
    /// VRRP process stops gracefully when the parent dies.
    pub fn crash(&mut self) -> anyhow::Result<()> {
        let vrrp = self.vrrp_pid()?;
        self.parent.signal(Signal::SIGSTOP)?;
        kill(vrrp, Signal::SIGKILL)
            .with_context(|| format!("kill keepalived's VRRP process {vrrp}"))?;
        self.parent.kill()?;
        Ok(())
    }
}

fn read_pid(path: &Path) -> anyhow::Result<Pid> {
    let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let pid = text
        .trim()
        .parse()
        .with_context(|| format!("pid {text:?} in {}", path.display()))?;
    Ok(Pid::from_raw(pid))
}
