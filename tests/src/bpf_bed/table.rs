//! Stateless fixtures as a table, in Katran's manner: each case a frame in, the action and
//! the frame expected out, and the counters it moves. One loop runs them all and reports
//! every failing case by name.

use std::{fmt::Write as _, net::Ipv4Addr};

use lb_common::stats::Event;
use xlb::dataplane::xdp::TestRunOutcome;

use super::{Bed, every_real_up};

/// What a case expects of the frame the program leaves.
#[derive(Debug)]
pub enum Out {
    /// Exactly these bytes.
    Frame(Vec<u8>),
    /// The frame as it came in.
    Unchanged,
    /// Not looked at (a dropped frame).
    Any,
}

/// One frame through the program, and what must come of it.
pub struct Case {
    /// What the case shows, as a test name would say it.
    pub name: &'static str,
    pub frame: Vec<u8>,
    /// Arrives on the clients' side (`lb1`) rather than the reals' (`lb0`).
    pub from_clients: bool,
    /// Once the configuration is applied with every real up, reals become healthy as this
    /// says.
    pub then_healthy: Option<fn(Ipv4Addr) -> bool>,
    pub action: u32,
    pub out: Out,
    /// Counters that must read so afterwards.
    pub counts: Vec<(Event, u64)>,
    /// Every counter must read zero afterwards.
    pub uncounted: bool,
}

/// A case for `frame`, arriving on `lb0`; what it expects comes next.
pub fn case(name: &'static str, frame: Vec<u8>) -> Case {
    Case {
        name,
        frame,
        from_clients: false,
        then_healthy: None,
        action: u32::MAX,
        out: Out::Any,
        counts: Vec::new(),
        uncounted: false,
    }
}

impl Case {
    /// Expects `action` and exactly the frame `out`.
    pub fn gives(self, action: u32, out: Vec<u8>) -> Self {
        Self {
            action,
            out: Out::Frame(out),
            ..self
        }
    }

    /// Expects `action` on the frame left untouched.
    pub fn leaves(self, action: u32) -> Self {
        Self {
            action,
            out: Out::Unchanged,
            ..self
        }
    }

    /// Expects `action`, whatever the frame.
    pub fn ends(self, action: u32) -> Self {
        Self {
            action,
            out: Out::Any,
            ..self
        }
    }

    /// Expects `event` counted `n` times.
    pub fn counts(mut self, event: Event, n: u64) -> Self {
        self.counts.push((event, n));
        self
    }

    /// Expects no counter to move.
    pub fn counts_nothing(self) -> Self {
        Self {
            uncounted: true,
            ..self
        }
    }

    /// The frame arrives on the clients' side.
    pub fn sent_by_a_client(self) -> Self {
        Self {
            from_clients: true,
            ..self
        }
    }

    /// Once every real was up, reals become healthy as `healthy` says.
    pub fn then_healthy(self, healthy: fn(Ipv4Addr) -> bool) -> Self {
        Self {
            then_healthy: Some(healthy),
            ..self
        }
    }

    /// What is wrong with `outcome` and the counters `events` after it, if anything.
    fn check(&self, outcome: &TestRunOutcome, events: &[(Event, u64)]) -> Option<String> {
        let mut wrong = String::new();
        if outcome.action != self.action {
            let _ = write!(wrong, " action {} (not {});", outcome.action, self.action);
        }
        let expected = match &self.out {
            Out::Frame(frame) => Some(frame),
            Out::Unchanged => Some(&self.frame),
            Out::Any => None,
        };
        if let Some(expected) = expected.filter(|e| **e != outcome.frame) {
            let _ = write!(wrong, " frame {}", differs(&outcome.frame, expected));
        }
        let count = |event| events.iter().find(|(e, _)| *e == event).map(|(_, n)| *n);
        for &(event, n) in &self.counts {
            if count(event) != Some(n) {
                let _ = write!(wrong, " {event:?} counted {:?} (not {n});", count(event));
            }
        }
        if self.uncounted && events.iter().any(|(_, n)| *n != 0) {
            let _ = write!(wrong, " counted {events:?} (not nothing);");
        }
        (!wrong.is_empty()).then_some(wrong)
    }
}

/// Where `got` departs from `expected`, both in full, in hex.
fn differs(got: &[u8], expected: &[u8]) -> String {
    let at = got
        .iter()
        .zip(expected)
        .position(|(g, e)| g != e)
        .unwrap_or(got.len().min(expected.len()));
    let hex = |frame: &[u8]| frame.iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!(
        "differs from byte {at}:\n      got      {}\n      expected {};",
        hex(got),
        hex(expected)
    )
}

/// Runs each case through `run` (the outcome and the counters after it), then fails naming
/// every case that went wrong and how.
pub fn check(cases: &[Case], mut run: impl FnMut(&Case) -> (TestRunOutcome, Vec<(Event, u64)>)) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let (outcome, events) = run(case);
            let wrong = case.check(&outcome, &events)?;
            Some(format!("{}:{wrong}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Runs the balancer cases in a bed named after `tag` (skipped, with a note, when not
/// root), each on a balancer of its own with `config` applied, every real up (no flows,
/// counters or scheduler state from another case), and fails naming every case that went
/// wrong.
pub fn run_balancer(tag: &str, config: &str, cases: &[Case]) {
    let Some(mut bed) = Bed::empty(tag) else {
        return;
    };
    let mut fresh = true;
    check(cases, |case| {
        if !std::mem::take(&mut fresh) {
            bed.reload();
        }
        bed.apply(config, every_real_up);
        if let Some(healthy) = case.then_healthy {
            bed.apply(config, healthy);
        }
        let ingress = if case.from_clients { bed.lb1 } else { bed.lb0 };
        (bed.run_on(ingress, &case.frame), bed.events())
    });
}
