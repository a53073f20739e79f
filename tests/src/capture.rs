//! What is on the wire, as tcpdump sees it: gratuitous ARPs, NAs and VRRP adverts.

use std::time::Duration;

use anyhow::bail;

use crate::{Child, Netns, wait_until};

/// How long tcpdump may take to open its socket.
const START: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// tcpdump on one interface of a namespace, one decoded frame per line with its MAC
/// addresses (`-e`), so a test can tell which host sent a gratuitous ARP. Stopped when
/// dropped; a failing test shows what it saw.
pub struct Capture {
    tcpdump: Child,
}

/// A point in a [`Capture`]: frames seen after it are those [`Capture::wait_for`] looks at.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mark(usize);

impl Capture {
    /// Starts capturing on `iface` in `ns` what matches the pcap `filter` (`"arp"`,
    /// `"icmp6"`, `"vrrp"`), and returns once tcpdump listens. `label` names its log.
    pub fn start(ns: &Netns, label: &str, iface: &str, filter: &str) -> anyhow::Result<Self> {
        let mut command = ns.command("tcpdump");
        command.args(["-l", "-n", "-e", "--immediate-mode", "-i", iface, filter]);
        let tcpdump = ns.spawn(label, command)?;
        wait_until(
            &format!("tcpdump to listen on {iface} in {}", ns.name()),
            START,
            POLL,
            || tcpdump.stderr().contains("listening on"),
        )?;
        Ok(Self { tcpdump })
    }

    /// Where the capture is now.
    pub fn mark(&self) -> Mark {
        Mark(self.lines().len())
    }

    /// The frames seen since `since` whose line contains every one of `words`.
    pub fn matching(&self, since: Mark, words: &[&str]) -> Vec<String> {
        self.lines()
            .into_iter()
            .skip(since.0)
            .filter(|line| words.iter().all(|w| line.contains(w)))
            .collect()
    }

    /// Waits at most `timeout` for a frame after `since` whose line contains every one of
    /// `words` (say `["Request who-has 192.0.2.100 tell 192.0.2.100"]`), and returns it.
    pub fn wait_for(
        &self,
        what: &str,
        since: Mark,
        words: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<String> {
        wait_until(what, timeout, POLL, || {
            match self.matching(since, words).into_iter().next() {
                Some(line) => Ok(line),
                None => bail!(
                    "not among the {} frames seen",
                    self.lines().len().saturating_sub(since.0)
                ),
            }
        })
    }

    fn lines(&self) -> Vec<String> {
        let text = self.tcpdump.stdout();
        // The last line may still be half written.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete.lines().map(str::to_owned).collect()
    }
}
