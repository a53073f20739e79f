//! `MISC_CHECK`: a real is alive while a script says so.
//!
//! Exit status 0 passes. With `misc_dynamic`, 2 to 255 pass too and set the real's weight
//! to the status minus 2 (keepalived adds `status - 2 - configured weight` to the real, so
//! several weight sources add up). Anything else fails, as does a script killed by a
//! signal or stopped at `misc_timeout` (the service's `delay_loop` by default).

use std::time::Duration;

use super::{
    CheckId,
    runner::Failure,
    script::{Ending, Script},
};
use crate::config::{Config, MiscCheck, RealServer};

pub struct Probe {
    script: Script,
    timeout: Duration,
    dynamic: bool,
    /// The real's configured weight, which `misc_dynamic` statuses replace.
    weight: u32,
}

impl Probe {
    pub fn new(check: &MiscCheck, config: &Config, rs: &RealServer) -> Result<Self, String> {
        let script = Script::new(&check.command, &config.global)
            .map_err(|err| format!("misc script {}: {err}", check.command.program()))?;
        Ok(Self {
            script,
            timeout: check.timeout,
            dynamic: check.dynamic,
            weight: rs.weight.get(),
        })
    }

    /// Runs the script once: the weight it gives the real, or why it failed.
    pub async fn run(&self) -> Result<i64, Failure> {
        match self.script.run(Some(self.timeout)).await {
            Ok(ending) => judge(ending, self.dynamic, self.weight),
            Err(err) => Err(Failure::with_reason(
                "failed",
                format!("cannot run it: {err}"),
            )),
        }
    }

    /// keepalived's subject of its misc check lines.
    pub fn who(&self, label: &str, id: &CheckId) -> String {
        format!(
            "Misc check for [{label} VS {}] by [{}]",
            id.real.service,
            self.script.program()
        )
    }
}

/// keepalived's reading of how the script ended.
fn judge(ending: Ending, dynamic: bool, weight: u32) -> Result<i64, Failure> {
    match ending {
        Ending::Exited(0) => Ok(0),
        Ending::Exited(status @ 2..=255) if dynamic => {
            Ok(i64::from(status) - 2 - i64::from(weight))
        }
        Ending::Exited(_) | Ending::Signalled(_) => {
            Err(Failure::with_reason("failed", ending.to_string()))
        }
        Ending::TimedOut => Err(Failure::new(ending.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_map_as_keepalived_s() {
        assert_eq!(judge(Ending::Exited(0), false, 5), Ok(0));
        assert_eq!(judge(Ending::Exited(0), true, 5), Ok(0));
        assert_eq!(
            judge(Ending::Exited(1), true, 5).unwrap_err().to_string(),
            "failed (exited with status 1)"
        );
        assert_eq!(
            judge(Ending::Exited(12), false, 5).unwrap_err().to_string(),
            "failed (exited with status 12)"
        );
        // misc_dynamic: status 12 makes weight 10 out of a configured 5.
        assert_eq!(judge(Ending::Exited(12), true, 5), Ok(5));
        assert_eq!(judge(Ending::Exited(2), true, 5), Ok(-5), "weight 0");
        assert_eq!(judge(Ending::Exited(255), true, 1), Ok(252));
        assert_eq!(
            judge(Ending::Signalled(9), true, 1)
                .unwrap_err()
                .to_string(),
            "failed (due to signal 9)"
        );
        assert_eq!(
            judge(Ending::TimedOut, false, 1).unwrap_err().to_string(),
            "timed out"
        );
    }
}
