//! The loop of every checker that probes: probe, let the [`Tracker`] judge, report a
//! changed verdict, wait; with each kind's probe and keepalived's wording for its logs.

use std::{fmt, time::Duration};

use tokio::sync::mpsc;
use tracing::{debug, info};

use super::{
    CheckId, Start, Tracker, Transition, Verdict, connect::Endpoint, dns, http, misc, ping,
    random_u64, report, smtp, tcp, udp,
};
use crate::config::{Check, Config, RealServer};

/// Why a probe failed, worded for the log: what happened, and for scripts, the exit
/// status or signal keepalived puts in parentheses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    what: String,
    reason: Option<String>,
}

impl Failure {
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            reason: None,
        }
    }

    pub fn with_reason(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            reason: Some(reason.into()),
        }
    }

    /// The reason in keepalived's parentheses, with a leading space; empty when none.
    fn reason(&self) -> String {
        self.reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.what, self.reason())
    }
}

/// One probe of one kind of checker.
enum Probe {
    Tcp(Endpoint),
    /// HTTP_GET, and SSL_GET when it carries TLS.
    Http(http::Probe),
    Misc(misc::Probe),
    Udp(udp::Probe),
    Dns(dns::Probe),
    Ping(ping::Probe),
    Smtp(smtp::Probe),
}

impl Probe {
    fn new(config: &Config, rs: &RealServer, check: &Check) -> Result<Self, String> {
        let real = rs.addr;
        Ok(match check {
            Check::Tcp(c) => Probe::Tcp(Endpoint::new(&c.connect, real, c.timing.connect_timeout)),
            Check::Http(c) => Probe::Http(http::Probe::new(c, real, false)?),
            Check::Ssl(c) => Probe::Http(http::Probe::new(c, real, true)?),
            Check::Misc(c) => Probe::Misc(misc::Probe::new(c, config, rs)?),
            Check::Udp(c) => Probe::Udp(udp::Probe::new(c, real)),
            Check::Dns(c) => Probe::Dns(dns::Probe::new(c, real)?),
            Check::Ping(c) => Probe::Ping(ping::Probe::new(c, real)),
            Check::Smtp(c) => Probe::Smtp(smtp::Probe::new(c, real)),
            Check::File(_) | Check::Bfd(_) => {
                return Err(format!("{} does not probe", check.keyword()));
            }
        })
    }

    /// Probes once: the weight the real gets from this checker, or why it failed.
    async fn run(&self, label: &str) -> Result<i64, Failure> {
        match self {
            Probe::Tcp(endpoint) => tcp::probe(endpoint, label).await.map(|()| 0),
            Probe::Http(probe) => probe.run(label).await.map(|()| 0),
            Probe::Misc(probe) => probe.run().await,
            Probe::Udp(probe) => probe.run(label).await.map(|()| 0),
            Probe::Dns(probe) => probe.run(label).await.map(|()| 0),
            Probe::Ping(probe) => probe.run(label).await.map(|()| 0),
            Probe::Smtp(probe) => probe.run().await.map(|()| 0),
        }
    }
}

/// A checker that probes, with what it last reported.
pub struct Runner {
    id: CheckId,
    /// The real as keepalived names it in checker logs.
    label: String,
    probe: Probe,
    tracker: Tracker,
    /// The first probe waits a random time up to this.
    warmup: Duration,
    weight_delta: i64,
    verdict: Verdict,
}

impl Runner {
    /// A runner for `check`, starting from the `known` verdict, or as keepalived starts a
    /// checker; an error says why the checker cannot run.
    pub fn new(
        config: &Config,
        rs: &RealServer,
        check: &Check,
        id: CheckId,
        known: Option<Verdict>,
    ) -> Result<Self, String> {
        let probe = Probe::new(config, rs, check)?;
        let timing = check
            .timing()
            .ok_or_else(|| format!("{} has no timing", check.keyword()))?;
        let delay_loop = timing.delay_loop;
        let start = match known {
            Some(verdict) => Start::Kept {
                up: verdict.is_up(),
            },
            None => Start::Fresh,
        };
        let tracker = Tracker::new(timing, delay_loop, start);
        let (weight_delta, verdict) = match known {
            Some(verdict @ Verdict::Up { weight_delta }) => (weight_delta, verdict),
            Some(Verdict::Down) => (0, Verdict::Down),
            None if tracker.is_up() => (0, Verdict::UP),
            None => (0, Verdict::Down),
        };
        Ok(Self {
            id,
            label: id.real.to_string(),
            probe,
            tracker,
            warmup: timing.warmup,
            weight_delta,
            verdict,
        })
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Probes for ever, sending every change of verdict; returns when nobody listens.
    pub async fn run(mut self, events: mpsc::Sender<Transition>) {
        tokio::time::sleep(jitter(self.warmup)).await;
        loop {
            let step = match self.probe.run(&self.label).await {
                Ok(weight_delta) => {
                    self.weight_delta = weight_delta;
                    self.tracker.success()
                }
                Err(failure) => {
                    let was_up = self.tracker.is_up();
                    let step = self.tracker.failure();
                    let decisive = step.transition == Some(false);
                    // A script's verdict line says why; a failure alone is worth a line
                    // while its real is up, as the reason behind a coming verdict.
                    let says_why = matches!(self.probe, Probe::Misc(_));
                    if !(decisive && says_why) {
                        let line = self.failure_line(&failure);
                        if was_up {
                            info!("{line}");
                        } else {
                            debug!("{line}");
                        }
                    }
                    if decisive {
                        info!("{}", self.down_line(&failure));
                    }
                    step
                }
            };
            if step.transition == Some(true) {
                info!("{}", self.up_line());
            }
            let verdict = if self.tracker.is_up() {
                Verdict::Up {
                    weight_delta: self.weight_delta,
                }
            } else {
                Verdict::Down
            };
            if verdict != self.verdict {
                self.verdict = verdict;
                if !report(&events, self.id, verdict).await {
                    return;
                }
            }
            tokio::time::sleep(step.wait).await;
        }
    }

    fn failure_line(&self, failure: &Failure) -> String {
        match &self.probe {
            Probe::Misc(probe) => format!("{} {failure}.", probe.who(&self.label, &self.id)),
            _ => failure.to_string(),
        }
    }

    fn up_line(&self) -> String {
        let label = &self.label;
        match &self.probe {
            Probe::Tcp(_) => format!("TCP connection to {label} success."),
            Probe::Http(_) => format!("Remote Web server {label} succeed on service."),
            Probe::Misc(probe) => format!("{} succeeded.", probe.who(label, &self.id)),
            Probe::Udp(_) => format!("UDP connection to {label} success."),
            Probe::Dns(_) => format!("DNS_CHECK ({label}) succeed on service."),
            Probe::Ping(_) => format!("ICMP connection to {label} success."),
            Probe::Smtp(_) => format!("Remote SMTP server {label} succeed on service."),
        }
    }

    fn down_line(&self, failure: &Failure) -> String {
        let label = &self.label;
        let retry = self.tracker.retries();
        let after = if retry > 0 {
            format!(" after {retry} retries")
        } else {
            String::new()
        };
        match &self.probe {
            Probe::Tcp(_) => format!("TCP_CHECK on service {label} failed{after}."),
            Probe::Http(_) => format!("HTTP_CHECK on service {label} failed{after}."),
            Probe::Misc(probe) => {
                let retries = match retry {
                    0 => " with retry disabled".to_owned(),
                    1 => " after 1 retry".to_owned(),
                    n => format!(" after {n} retries"),
                };
                format!(
                    "{} {}{retries}{}.",
                    probe.who(label, &self.id),
                    failure.what,
                    failure.reason()
                )
            }
            Probe::Udp(_) => format!("UDP_CHECK on service {label} failed{after}."),
            Probe::Dns(_) => format!("DNS_CHECK ({label}) failed{after}."),
            Probe::Ping(_) => format!(
                "ICMP CHECK on service {label} of {} failed{after}.",
                self.id.real.service
            ),
            Probe::Smtp(_) => format!("SMTP_CHECK on service {label} failed{after}."),
        }
    }
}

/// A random wait up to `warmup`, so that checkers started together spread out.
fn jitter(warmup: Duration) -> Duration {
    let nanos = u64::try_from(warmup.as_nanos()).unwrap_or(u64::MAX);
    match nanos.checked_add(1) {
        Some(span) => Duration::from_nanos(random_u64() % span),
        None => warmup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_warmup() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(5)) <= Duration::from_millis(5));
        }
    }
}
