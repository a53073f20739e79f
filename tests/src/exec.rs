//! Short helper commands (`ip`, `ethtool`) run to completion, with a deadline.

use std::{
    io::Read,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::{Context, bail};

use crate::{child::wait_timeout, scaled};

/// Long enough for any `ip`/`ethtool` call on a busy two-core machine, short enough that a
/// hung one fails the test instead of the CI run.
pub(crate) const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `command`, returning its stdout; a nonzero exit or a timeout is an error quoting stderr.
pub(crate) fn output(mut command: Command) -> anyhow::Result<String> {
    let mut process = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {command:?}"))?;
    // Drained on threads so a chatty command cannot block on a full pipe while we wait.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(process.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(process.stderr.take().map(|p| Box::new(p) as _));
    let status = match wait_timeout(&mut process, HELPER_TIMEOUT)? {
        Some(status) => status,
        None => {
            let _ = process.kill();
            let _ = process.wait();
            bail!(
                "{command:?} did not finish within {:?}",
                scaled(HELPER_TIMEOUT)
            );
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        bail!("{command:?} failed ({status}): {}", stderr.trim());
    }
    Ok(stdout)
}
