//! `xlb run` on a director node, as the end-to-end topologies start it.

use std::{path::PathBuf, time::Duration};

use crate::{Child, Node, wait_until};

/// How long `xlb run` may take to load, check the reals and answer through the VIP.
const XLB_START: Duration = Duration::from_secs(15);

/// Starts `xlb run` on `director`, attached to `interfaces`, with `config` as its
/// keepalived.conf, and returns it with its run directory (where `xlb status` finds it)
/// once `ready` succeeds (a client's first answer through the VIP).
pub(crate) fn start_xlb<T>(
    director: &Node,
    interfaces: &[&str],
    config: &str,
    mut ready: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(Child, PathBuf)> {
    let (xlb, run_dir) = director.spawn_xlb("xlb", config, interfaces)?;
    wait_until(
        "the first answer through the VIP",
        XLB_START,
        Duration::from_millis(50),
        &mut ready,
    )?;
    Ok((xlb, run_dir))
}
