//! Health checkers of real servers: one task per checker, results as events.
//!
//! Every checker keepalived has, but BFD_CHECK, runs here with keepalived 2.2.7's meaning:
//! TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, UDP_CHECK, DNS_CHECK, PING_CHECK, SMTP_CHECK
//! and FILE_CHECK, one module each. A checker reports only changes of its [`Verdict`]: down,
//! or up with an adjustment of its real's weight (MISC_CHECK's `misc_dynamic`, FILE_CHECK's
//! weight). Whether a failed probe changes the verdict is decided by [`Tracker`], which
//! follows keepalived's `retry` / `delay_before_retry` / `delay_loop` rules and is tested
//! without any clock.
//!
//! Where xlb departs from keepalived, on purpose:
//! - HTTP_GET and SSL_GET fetch all of a checker's URLs in one round, where keepalived
//!   fetches one URL per `delay_loop`; `fast_recovery` is thus always in effect.
//! - A response is read until the server closes or its `Content-Length` is reached.
//! - SSL_GET accepts any server certificate, as keepalived does without a global `SSL`
//!   block (which xlb does not support).
//! - While a checker is down, a failed probe is followed by `delay_loop`, never by retries.
//! - xlb never removes a real from the data plane: one that fails takes no new flows and
//!   keeps those it has, with or without `inhibit_on_failure` (which only changes how the
//!   change is logged).

mod connect;
mod dns;
mod file;
mod http;
mod misc;
mod ping;
mod runner;
pub mod script;
mod smtp;
mod ssl;
mod tcp;
mod tracker;
mod udp;

use tokio::{sync::mpsc, task::JoinSet};
use tracing::{info, warn};

use self::runner::Runner;
pub use self::tracker::{Start, Step, Tracker};
use crate::config::{Check, Config, Diagnostics, RealKey};

/// Which checker of which real a report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckId {
    pub real: RealKey,
    /// Position of the checker in the real's block.
    pub index: usize,
}

/// What a checker makes of its real.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Down,
    /// Up, adding `weight_delta` to the real's configured weight (keepalived's per-checker
    /// weight: 0 but for `misc_dynamic` and weighted FILE_CHECKs).
    Up {
        weight_delta: i64,
    },
}

impl Verdict {
    pub const UP: Verdict = Verdict::Up { weight_delta: 0 };

    pub fn is_up(self) -> bool {
        matches!(self, Verdict::Up { .. })
    }
}

/// A checker changed its verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub id: CheckId,
    pub verdict: Verdict,
}

/// Reports, at their lines, the checkers xlb cannot run as written: BFD_CHECK (xlb runs
/// no `bfd_instance`, and a real it cannot check must not pass for healthy) and regular
/// expressions it cannot compile.
pub fn supports(config: &Config, diags: &mut Diagnostics) {
    for check in config
        .virtual_servers
        .iter()
        .flat_map(|vs| &vs.real_servers)
        .flat_map(|rs| &rs.checks)
    {
        match check {
            Check::Bfd(bfd) => diags.error(
                &bfd.pos,
                "BFD_CHECK is not supported by xlb (it runs no bfd_instance), so this real \
                 would go unchecked; use another checker",
            ),
            Check::Http(http) | Check::Ssl(http) => {
                for url in &http.urls {
                    if let Err(err) = http::compile_regex(url) {
                        diags.error(&url.pos, err);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Starts every checker of `config` on `tasks`; later changes of verdict arrive on
/// `events`. A checker `known` has a verdict for (one kept across a reload) starts from
/// it; the others start as keepalived starts them (down under `alpha`, a FILE_CHECK as
/// its file says). Starting verdicts that differ from what is `known` are returned, so
/// that the caller has them before any checker runs.
pub fn spawn_all(
    config: &Config,
    known: impl Fn(CheckId) -> Option<Verdict>,
    tasks: &mut JoinSet<()>,
    events: &mpsc::Sender<Transition>,
) -> Vec<Transition> {
    let mut starting = Vec::new();
    for vs in &config.virtual_servers {
        let Some(service) = vs.key() else {
            continue;
        };
        for rs in &vs.real_servers {
            for (index, check) in rs.checks.iter().enumerate() {
                let id = CheckId {
                    real: service.real(rs.addr),
                    index,
                };
                let known = known(id);
                let started = match check {
                    // Refused by `supports` before the agent starts.
                    Check::Bfd(_) => continue,
                    Check::File(file) => file::Watcher::new(config, file, id).map(|watcher| {
                        let verdict = watcher.verdict();
                        tasks.spawn(watcher.run(events.clone()));
                        verdict
                    }),
                    _ => Runner::new(config, rs, check, id, known).map(|runner| {
                        let verdict = runner.verdict();
                        tasks.spawn(runner.run(events.clone()));
                        verdict
                    }),
                };
                let verdict = match started {
                    Ok(verdict) => {
                        info!(
                            "Activating healthchecker for service {} for VS {service}",
                            id.real
                        );
                        verdict
                    }
                    Err(why) => {
                        // keepalived drops such a checker: it holds its real down no more.
                        warn!(
                            "{}: {} of real {} is not run: {why}",
                            check.pos(),
                            check.keyword(),
                            rs.addr
                        );
                        Verdict::UP
                    }
                };
                if known != Some(verdict) {
                    starting.push(Transition { id, verdict });
                }
            }
        }
    }
    starting
}

/// Sends a checker's new verdict; false once nobody listens.
async fn report(events: &mpsc::Sender<Transition>, id: CheckId, verdict: Verdict) -> bool {
    events.send(Transition { id, verdict }).await.is_ok()
}

/// Random bits from the kernel, for query ids and start-up jitter.
fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // getrandom(2) on 8 bytes does not fail short once the pool is ready; if it ever does,
    // the zeros left only make the value predictable, which nothing here depends on.
    // SAFETY: `buf` is valid for writes of its length.
    unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    u64::from_ne_bytes(buf)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::parse_str;

    #[tokio::test]
    async fn checkers_start_as_keepalived_starts_them_or_as_they_were() {
        let text = "virtual_server 127.0.0.1 8 {\n real_server 127.0.0.1 9 {\n  \
                    TCP_CHECK {\n  }\n  TCP_CHECK {\n   alpha\n  }\n  MISC_CHECK {\n   \
                    misc_path /bin/true\n   user no-such-user-xlb\n  }\n  BFD_CHECK {\n  }\n }\n}\n";
        let config = parse_str("t.conf", text).unwrap().config;
        let mut diags = Diagnostics::default();
        supports(&config, &mut diags);
        assert!(
            diags
                .to_string()
                .contains("t.conf:12:3: error: BFD_CHECK is not supported")
        );
        let (events, _rx) = mpsc::channel(8);
        let mut tasks = JoinSet::new();
        let starting = spawn_all(&config, |_| None, &mut tasks, &events);
        let verdicts: Vec<_> = starting.iter().map(|t| (t.id.index, t.verdict)).collect();
        assert_eq!(
            verdicts,
            [(0, Verdict::UP), (1, Verdict::Down), (2, Verdict::UP)],
            "a checker that cannot run holds nothing down"
        );
        assert_eq!(tasks.len(), 2);
        tasks.shutdown().await;

        let kept = spawn_all(
            &config,
            |id| {
                Some(if id.index == 0 {
                    Verdict::Down
                } else {
                    Verdict::UP
                })
            },
            &mut tasks,
            &events,
        );
        assert_eq!(kept, [], "kept verdicts are not reported again");
        tasks.shutdown().await;
    }

    /// The checker `block` describes, read as keepalived.conf text for real
    /// 192.0.2.11:80 of service 203.0.113.10:80.
    pub fn checker(block: &str) -> Check {
        let text = format!(
            "virtual_server 203.0.113.10 80 {{\n real_server 192.0.2.11 80 {{\n{block}\n }}\n}}\n"
        );
        let loaded = parse_str("t.conf", &text).unwrap_or_else(|diags| panic!("{diags}"));
        loaded.config.virtual_servers[0].real_servers[0].checks[0].clone()
    }

    /// Says on the test's output that it checked nothing here, and why.
    pub fn skip(why: &str) {
        eprintln!("skipped: {why}");
    }
}
