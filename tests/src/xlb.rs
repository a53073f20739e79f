//! Starting `xlb run` in a namespace, as a test or benchmark would on a host.

use std::{fs, path::PathBuf, time::Duration};

use crate::{Child, Netns, workspace_binary};

/// How long `xlb run` may take to say READY=1: loading the XDP program waits for the
/// verifier, which takes seconds on a busy machine. An xlb that exits ends the wait at once.
const XLB_READY: Duration = Duration::from_secs(60);

/// How a test starts `xlb run`.
#[derive(Clone, Copy, Debug, Default)]
pub struct XlbRun<'a> {
    /// Names its configuration, run directory, notify socket and logs in the namespace's
    /// scratch directory, so several agents can share a namespace.
    pub label: &'a str,
    /// Its keepalived.conf.
    pub config: &'a str,
    /// Arguments after `xlb run -f FILE --run-dir DIR`, such as `--interface eth0`.
    pub args: &'a [&'a str],
    /// A command line that xlb runs under, such as `setpriv` taking capabilities away;
    /// xlb runs directly when empty.
    pub under: &'a [&'a str],
}

impl Netns {
    /// Starts `xlb run` here with `config` as its keepalived.conf, forwarding on
    /// `interfaces` (none for a VRRP-only router): [`Netns::start_xlb`].
    pub fn spawn_xlb(
        &self,
        label: &str,
        config: &str,
        interfaces: &[&str],
    ) -> anyhow::Result<(Child, PathBuf)> {
        let args: Vec<&str> = interfaces
            .iter()
            .flat_map(|interface| ["--interface", interface])
            .collect();
        self.start_xlb(&XlbRun {
            label,
            config,
            args: &args,
            ..XlbRun::default()
        })
    }

    /// Starts `xlb run` here and returns it with its run directory (where `xlb status`
    /// finds it) once it has notified READY=1: its data plane attached, its first plan
    /// applied, VRRP and the checkers started, its control socket answering. Whether
    /// traffic flows yet is for the test to wait for.
    ///
    /// An xlb that exits first, or is not ready in time, is an [`Ended`] error with its
    /// exit status and stderr.
    ///
    /// [`Ended`]: crate::Ended
    pub fn start_xlb(&self, run: &XlbRun) -> anyhow::Result<(Child, PathBuf)> {
        let file = self.dir().join(format!("{}.conf", run.label));
        fs::write(&file, run.config)?;
        let run_dir = self.dir().join(format!("{}-run", run.label));
        let xlb = workspace_binary("xlb")?;
        let mut command = match run.under {
            [] => self.command(xlb),
            [program, args @ ..] => {
                let mut command = self.command(program);
                command.args(args).arg(xlb);
                command
            }
        };
        command
            .args(["run", "-f"])
            .arg(&file)
            .arg("--run-dir")
            .arg(&run_dir)
            .arg("--pin-dir")
            .arg(self.pin_dir().join(run.label))
            .args(run.args);
        let mut child = Child::spawn_notifying(run.label, command, self.dir())?;
        child.wait_notified("READY=1", XLB_READY)?;
        Ok((child, run_dir))
    }
}
