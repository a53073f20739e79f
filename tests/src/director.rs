//! `xlb run` on a director node, as the end-to-end topologies start it.

use std::{path::PathBuf, time::Duration};

use crate::{Child, Node, wait_until};

/// How long a ready xlb may take to check the reals and answer through the VIP.
const FIRST_ANSWER: Duration = Duration::from_secs(15);

/// Starts `xlb run` on `director`, attached to `interfaces`, with `config` as its
/// keepalived.conf, and returns it with its run directory (where `xlb status` finds it)
/// once it is ready and `ready` succeeds (a client's first answer through the VIP). A
/// failure says how xlb ended and what it wrote on stderr.
pub(crate) fn start_xlb<T>(
    director: &Node,
    interfaces: &[&str],
    config: &str,
    mut ready: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(Child, PathBuf)> {
    let (mut xlb, run_dir) = director.spawn_xlb("xlb", config, interfaces)?;
    if let Err(err) = wait_until(
        "the first answer through the VIP",
        FIRST_ANSWER,
        Duration::from_millis(50),
        &mut ready,
    ) {
        return Err(xlb.failure(format!("{err:#}")));
    }
    Ok((xlb, run_dir))
}
