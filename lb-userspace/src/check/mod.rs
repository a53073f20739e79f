//! Health checkers of real servers: one task per checker, results as events.
//!
//! Each checker probes on its own schedule and reports only transitions (up → down,
//! down → up). Whether a transition happens after a failed probe is decided by
//! [`Tracker`], which follows keepalived's `retry` / `delay_before_retry` / `delay_loop`
//! rules and is tested without any clock.

mod tcp;
mod tracker;

use std::{net::SocketAddr, time::Duration};

use tokio::{sync::mpsc, task::JoinSet};
use tracing::{info, warn};

pub use self::tracker::{Step, Tracker};
use crate::{
    config::{Check, Config, ServiceTarget, TcpCheck},
    dataplane::ServiceKey,
};

/// Which checker of which real a report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckId {
    pub service: ServiceKey,
    pub real: SocketAddr,
    /// Position of the checker in the real's block.
    pub index: usize,
}

/// A checker changed its mind about its real.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub id: CheckId,
    pub up: bool,
}

/// Starts every checker of `config` on `tasks`, each believing its real up or down as
/// `up` says; transitions arrive on `events`.
pub fn spawn_all(
    config: &Config,
    up: impl Fn(CheckId) -> bool,
    tasks: &mut JoinSet<()>,
    events: &mpsc::Sender<Transition>,
) {
    for vs in &config.virtual_servers {
        let ServiceTarget::Addr(addr) = vs.target else {
            continue;
        };
        let service = ServiceKey {
            addr,
            protocol: vs.protocol,
        };
        for rs in &vs.real_servers {
            for (index, check) in rs.checks.iter().enumerate() {
                let Check::Tcp(check) = check else {
                    warn!(
                        "{}: {} of real {} is not run: only TCP_CHECK is implemented",
                        check.pos(),
                        check.keyword(),
                        rs.addr
                    );
                    continue;
                };
                let id = CheckId {
                    service,
                    real: rs.addr,
                    index,
                };
                let run = Runner {
                    id,
                    check: check.clone(),
                    delay_loop: vs.delay_loop,
                    up: up(id),
                };
                tasks.spawn(run.run(events.clone()));
            }
        }
    }
}

struct Runner {
    id: CheckId,
    check: TcpCheck,
    delay_loop: Duration,
    up: bool,
}

impl Runner {
    async fn run(self, events: mpsc::Sender<Transition>) {
        let tcp = &self.check;
        let target = SocketAddr::new(
            tcp.connect.ip.unwrap_or(self.id.real.ip()),
            tcp.connect.port.unwrap_or(self.id.real.port()),
        );
        let delay_loop = tcp.timing.delay_loop.unwrap_or(self.delay_loop);
        let mut tracker = Tracker::new(&tcp.timing, delay_loop, self.up);
        loop {
            let result = tcp::probe(target, tcp.connect.bind_ip, tcp.timing.connect_timeout).await;
            let step = match &result {
                Ok(()) => tracker.success(),
                Err(err) => {
                    info!(
                        "TCP connection to [{}]:tcp:{} failed: {err}",
                        target.ip(),
                        target.port()
                    );
                    tracker.failure()
                }
            };
            if let Some(up) = step.transition {
                if up {
                    info!(
                        "TCP connection to [{}]:tcp:{} success.",
                        target.ip(),
                        target.port()
                    );
                } else {
                    info!(
                        "TCP_CHECK on service [{}]:tcp:{} failed after {} retries.",
                        target.ip(),
                        target.port(),
                        tracker.retries()
                    );
                }
                if events.send(Transition { id: self.id, up }).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(step.wait).await;
        }
    }
}
