//! `xlb run` on a director node, as the end-to-end topologies start it.

use std::{path::PathBuf, time::Duration};

use anyhow::bail;

use crate::{Child, Node, wait_until};

/// How long `xlb run` may take to load, check the reals and answer through the VIP.
const XLB_START: Duration = Duration::from_secs(15);

/// Starts `xlb run` on `director`, attached to `interfaces`, with `config` as its
/// keepalived.conf, and returns it with its run directory (where `xlb status` finds it)
/// once `ready` succeeds (a client's first answer through the VIP). Fails as soon as xlb
/// exits, as it does when the kernel refuses its XDP program.
pub(crate) fn start_xlb<T>(
    director: &Node,
    interfaces: &[&str],
    config: &str,
    mut ready: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(Child, PathBuf)> {
    let (mut xlb, run_dir) = director.spawn_xlb("xlb", config, interfaces)?;
    // Done when the VIP answers (true) or when nothing will any more (false).
    let answered = wait_until(
        "the first answer through the VIP",
        XLB_START,
        Duration::from_millis(50),
        || -> anyhow::Result<bool> {
            if !xlb.is_running()? {
                return Ok(false);
            }
            ready().map(|_| true)
        },
    )?;
    if !answered {
        bail!("xlb exited before the first answer through the VIP");
    }
    Ok((xlb, run_dir))
}
