//! Where a VIP is: which node holds it, and its announcement on the wire. What the VRRP
//! tests assert on, whichever router moved it.

use std::{net::IpAddr, time::Duration};

use anyhow::ensure;

use crate::{Capture, Mark, Node, holds_for, wait_until};

const POLL: Duration = Duration::from_millis(10);

impl Node {
    /// Whether this node holds `vip` as `wanted`: an error that says otherwise, for
    /// [`wait_until`] and [`holds_for`].
    pub fn holding(&self, vip: IpAddr, wanted: bool) -> anyhow::Result<()> {
        let held = self.has_address(vip)?;
        ensure!(
            held == wanted,
            "{} {} {vip}",
            self.name(),
            if held { "holds" } else { "lacks" }
        );
        Ok(())
    }
}

/// Waits at most `within` until `master` holds `vip` and `backup` does not (after the
/// moment a preempted master needs to hear its better), then checks that it stays so for
/// `lasting`.
pub fn wait_sole_holder(
    master: &Node,
    backup: &Node,
    vip: IpAddr,
    within: Duration,
    lasting: Duration,
) -> anyhow::Result<()> {
    let what = format!("{} alone holding {vip}", master.name());
    let alone = || {
        master
            .holding(vip, true)
            .and_then(|()| backup.holding(vip, false))
    };
    wait_until(&what, within, POLL, alone)?;
    holds_for(&what, lasting, POLL, alone)
}

impl Capture {
    /// Waits at most `timeout` for `node`'s announcement of `vip` (gratuitous ARP or
    /// unsolicited NA) seen after `since`.
    pub fn wait_announced(
        &self,
        node: &Node,
        vip: IpAddr,
        since: Mark,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let from = format!("{} > ", node.mac());
        // tcpdump shows a gratuitous ARP as a request for the VIP from the VIP.
        let words = match vip {
            IpAddr::V4(_) => vec![
                from,
                format!("Request who-has {vip} "),
                format!("tell {vip},"),
            ],
            IpAddr::V6(_) => vec![from, format!("neighbor advertisement, tgt is {vip},")],
        };
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        self.wait_for(
            &format!("{}'s announcement of {vip}", node.name()),
            since,
            &words,
            timeout,
        )
        .map(drop)
    }
}
