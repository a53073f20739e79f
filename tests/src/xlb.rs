//! Starting `xlb run` in a namespace, as a test or benchmark would on a host.

use std::{fs, path::PathBuf};

use crate::{Child, Netns, workspace_binary};

impl Netns {
    /// Starts `xlb run` here with `config` as its keepalived.conf, forwarding on
    /// `interfaces` (none for a VRRP-only router), and returns it with its run directory
    /// (where `xlb status` finds it). It does not wait for anything: what "ready" means
    /// depends on the test.
    ///
    /// The configuration and run directory are named after `label` in this namespace's
    /// scratch directory, so several agents can share a namespace.
    pub fn spawn_xlb(
        &self,
        label: &str,
        config: &str,
        interfaces: &[&str],
    ) -> anyhow::Result<(Child, PathBuf)> {
        let file = self.dir().join(format!("{label}.conf"));
        fs::write(&file, config)?;
        let run_dir = self.dir().join(format!("{label}-run"));
        let mut command = self.command(workspace_binary("xlb")?);
        command
            .args(["run", "-f"])
            .arg(&file)
            .arg("--run-dir")
            .arg(&run_dir);
        for interface in interfaces {
            command.args(["--interface", interface]);
        }
        Ok((self.spawn(label, command)?, run_dir))
    }
}
