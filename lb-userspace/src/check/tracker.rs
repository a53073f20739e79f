//! keepalived's retry rules for one checker, without a clock.

use std::time::Duration;

use crate::config::CheckTiming;

/// What to do after a probe: report a transition (true = up) and wait before the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub transition: Option<bool>,
    pub wait: Duration,
}

/// Where a checker starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// New to this run: down under `alpha`, else up with its first failure decisive, as
    /// keepalived starts its checkers.
    Fresh,
    /// Restarted by a reload: keeps its verdict and counts failures from scratch.
    Kept { up: bool },
}

/// The state of one checker: a failed probe of a real that is up is retried `retry`
/// times, `delay_before_retry` apart, before the real is declared down; one success brings
/// it back up. Between rounds, and after any failure while down, the checker waits
/// `delay_loop`.
#[derive(Clone, Debug)]
pub struct Tracker {
    retry: u32,
    delay_before_retry: Duration,
    delay_loop: Duration,
    failed: u32,
    up: bool,
}

impl Tracker {
    pub fn new(timing: &CheckTiming, delay_loop: Duration, start: Start) -> Self {
        let (up, failed) = match start {
            Start::Fresh => (!timing.alpha, timing.retry),
            Start::Kept { up } => (up, 0),
        };
        Self {
            retry: timing.retry,
            delay_before_retry: timing.delay_before_retry,
            delay_loop,
            failed,
            up,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn success(&mut self) -> Step {
        self.failed = 0;
        let transition = (!self.up).then_some(true);
        self.up = true;
        Step {
            transition,
            wait: self.delay_loop,
        }
    }

    pub fn failure(&mut self) -> Step {
        let wait = self.delay_loop;
        if !self.up {
            return Step {
                transition: None,
                wait,
            };
        }
        self.failed += 1;
        if self.failed <= self.retry {
            return Step {
                transition: None,
                wait: self.delay_before_retry,
            };
        }
        self.failed = 0;
        self.up = false;
        Step {
            transition: Some(false),
            wait,
        }
    }

    pub fn retries(&self) -> u32 {
        self.retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(retry: u32) -> Tracker {
        let timing = CheckTiming {
            retry,
            delay_before_retry: RETRY,
            ..CheckTiming::default()
        };
        Tracker::new(&timing, LOOP, Start::Kept { up: true })
    }

    const LOOP: Duration = Duration::from_secs(6);
    const RETRY: Duration = Duration::from_secs(2);

    /// The steps a tracker can answer with, named by what the runner then does.
    const IDLE: Step = Step {
        transition: None,
        wait: LOOP,
    };
    const RETRYING: Step = Step {
        transition: None,
        wait: RETRY,
    };
    const GOES_DOWN: Step = Step {
        transition: Some(false),
        wait: LOOP,
    };
    const COMES_UP: Step = Step {
        transition: Some(true),
        wait: LOOP,
    };

    #[test]
    fn without_retries_one_failure_is_down() {
        let mut t = tracker(0);
        assert_eq!(t.failure(), GOES_DOWN);
        assert_eq!(t.failure(), IDLE);
        assert_eq!(t.success(), COMES_UP);
    }

    #[test]
    fn retries_come_before_the_verdict() {
        let mut t = tracker(2);
        assert_eq!(t.failure(), RETRYING);
        assert_eq!(t.failure(), RETRYING);
        assert_eq!(t.failure(), GOES_DOWN);
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        let mut t = tracker(1);
        assert_eq!(t.failure(), RETRYING);
        assert_eq!(t.success(), IDLE);
        assert_eq!(t.failure(), RETRYING);
        assert_eq!(t.failure().transition, Some(false));
    }

    #[test]
    fn a_tracker_restarted_down_reports_recovery() {
        let timing = CheckTiming {
            retry: 0,
            ..CheckTiming::default()
        };
        let mut t = Tracker::new(&timing, LOOP, Start::Kept { up: false });
        assert_eq!(t.failure().transition, None);
        assert_eq!(t.success().transition, Some(true));
    }

    #[test]
    fn a_real_that_is_down_is_not_retried() {
        let mut t = tracker(2);
        t.failure();
        t.failure();
        assert_eq!(t.failure().transition, Some(false));
        assert_eq!(t.failure(), IDLE);
    }

    #[test]
    fn a_fresh_checker_goes_down_on_its_first_failure() {
        let timing = CheckTiming {
            retry: 3,
            delay_before_retry: RETRY,
            ..CheckTiming::default()
        };
        let mut t = Tracker::new(&timing, LOOP, Start::Fresh);
        assert!(t.is_up());
        assert_eq!(t.failure(), GOES_DOWN);
        assert_eq!(t.success().transition, Some(true));
        assert_eq!(t.failure().wait, RETRY, "retries once it has been up");
    }

    #[test]
    fn alpha_starts_down_until_a_success() {
        let timing = CheckTiming {
            alpha: true,
            ..CheckTiming::default()
        };
        let mut t = Tracker::new(&timing, LOOP, Start::Fresh);
        assert!(!t.is_up());
        assert_eq!(t.failure().transition, None);
        assert_eq!(t.success().transition, Some(true));
    }

    #[test]
    fn steady_success_reports_nothing() {
        let mut t = tracker(1);
        assert_eq!(t.success(), IDLE);
    }
}
