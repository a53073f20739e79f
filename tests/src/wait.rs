//! Bounded polling: the only way a test waits for the network or a process to get somewhere.
//!
//! Every timeout of the test bed goes through [`scaled`], so that one environment variable,
//! [`TIME_SCALE_VAR`], stretches them all where everything runs slower than on the machines
//! they were chosen on (`cargo xtask vm` sets it in its emulated guest). Poll intervals are
//! not scaled, nor the periods [`holds_for`] asserts something for.

use std::{
    env,
    fmt::Display,
    sync::OnceLock,
    thread,
    time::{Duration, Instant},
};

use anyhow::bail;

/// A positive number that multiplies every timeout; 1 when unset.
pub const TIME_SCALE_VAR: &str = "XLB_TEST_TIME_SCALE";

/// `timeout` multiplied by [`TIME_SCALE_VAR`].
///
/// # Panics
///
/// If the variable is set to something else than a positive number, so that a typo cannot
/// silently leave the timeouts as they are.
pub fn scaled(timeout: Duration) -> Duration {
    static SCALE: OnceLock<f64> = OnceLock::new();
    let scale = *SCALE.get_or_init(|| match env::var(TIME_SCALE_VAR) {
        Err(_) => 1.0,
        Ok(value) => parse_scale(&value)
            .unwrap_or_else(|| panic!("{TIME_SCALE_VAR}={value:?} is not a positive number")),
    });
    timeout.mul_f64(scale)
}

fn parse_scale(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|scale| scale.is_finite() && *scale > 0.0)
}

/// What a polled check reports: done with a value, or not yet (maybe with the reason, which a
/// timeout quotes so the failure says what was last seen).
pub trait Ready {
    type Value;
    fn ready(self) -> Result<Self::Value, Option<String>>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Ready for Option<T> {
    type Value = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Ready for Result<T, E> {
    type Value = T;
    fn ready(self) -> Result<T, Option<String>> {
        // `{:#}` keeps an anyhow chain on one line.
        self.map_err(|err| Some(format!("{err:#}")))
    }
}

/// Calls `check` every `poll` until it is ready, for at most `timeout` ([`scaled`]).
///
/// The error names `what` was awaited and the last reason `check` gave, so a test that times
/// out says why without extra logging.
pub fn wait_until<R: Ready>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut check: impl FnMut() -> R,
) -> anyhow::Result<R::Value> {
    let timeout = scaled(timeout);
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().ready() {
            Ok(value) => return Ok(value),
            Err(reason) => reason,
        };
        let now = Instant::now();
        if now >= deadline {
            match last {
                Some(reason) => bail!("timed out after {timeout:?} waiting for {what}: {reason}"),
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        thread::sleep(poll.min(deadline - now));
    }
}

/// Checks `check` every `poll` for `period` and fails as soon as it does not hold: how a
/// test asserts that something stays true (a backup keeps off a live master's VIP) rather
/// than that it becomes true.
pub fn holds_for<R: Ready>(
    what: &str,
    period: Duration,
    poll: Duration,
    mut check: impl FnMut() -> R,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if let Err(reason) = check().ready() {
            let after = start.elapsed();
            match reason {
                Some(reason) => bail!("{what} stopped holding after {after:?}: {reason}"),
                None => bail!("{what} stopped holding after {after:?}"),
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= period {
            return Ok(());
        }
        thread::sleep(poll.min(period - elapsed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_millis(1);

    #[test]
    fn returns_the_value_once_ready() {
        let mut calls = 0;
        let value = wait_until("the third call", Duration::from_secs(5), POLL, || {
            calls += 1;
            (calls == 3).then_some(calls * 10)
        })
        .unwrap();
        assert_eq!(value, 30);
    }

    #[test]
    fn timeout_names_what_and_the_last_reason() {
        let err = wait_until("a miracle", Duration::from_millis(20), POLL, || {
            Err::<(), _>("still nothing")
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("a miracle"), "{err}");
        assert!(err.contains("still nothing"), "{err}");
        assert!(err.contains("20ms"), "{err}");
    }

    #[test]
    fn holds_for_fails_once_the_condition_breaks() {
        let mut calls = 0;
        let err = holds_for("the first two calls", Duration::from_secs(5), POLL, || {
            calls += 1;
            calls < 3
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("the first two calls stopped holding"), "{err}");
        assert_eq!(calls, 3);
    }

    #[test]
    fn holds_for_passes_when_the_condition_lasts() {
        holds_for("truth", Duration::from_millis(20), POLL, || true).unwrap();
    }

    #[test]
    fn the_scale_is_a_positive_number() {
        assert_eq!(parse_scale("20"), Some(20.0));
        assert_eq!(parse_scale(" 2.5\n"), Some(2.5));
        for bad in ["", "0", "-3", "ten", "inf", "NaN"] {
            assert_eq!(parse_scale(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_false_condition_times_out() {
        assert!(wait_until("never", Duration::from_millis(5), POLL, || false).is_err());
    }
}
