//! Starting `xlb run` in a namespace, as a test or benchmark would on a host.

use std::{fs, path::PathBuf, time::Duration};

use crate::{Child, Netns, Signal, workspace_binary};

/// How long `xlb run` may take to say READY=1: loading the XDP program waits for the
/// verifier, which takes seconds on a busy machine. An xlb that exits ends the wait at once.
const XLB_READY: Duration = Duration::from_secs(60);
/// How long a reload may take, from SIGHUP to READY=1: reading the configuration and
/// applying it, with nothing to verify.
const XLB_RELOADED: Duration = Duration::from_secs(10);

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
        let file = self.xlb_config(run.label);
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

    /// Rewrites the configuration of `xlb`, an `xlb run` started here, to `config`, and
    /// reloads it with SIGHUP: returns once it has notified RELOADING=1 and then READY=1,
    /// the whole configuration applied.
    pub fn reload_xlb(&self, xlb: &mut Child, config: &str) -> anyhow::Result<()> {
        fs::write(self.xlb_config(xlb.label()), config)?;
        xlb.signal(Signal::SIGHUP)?;
        xlb.wait_notified("RELOADING=1", XLB_RELOADED)?;
        xlb.wait_notified("READY=1", XLB_RELOADED)
    }

    /// Where the `xlb run` labelled `label` reads its configuration.
    fn xlb_config(&self, label: &str) -> PathBuf {
        self.dir().join(format!("{label}.conf"))
    }
}
