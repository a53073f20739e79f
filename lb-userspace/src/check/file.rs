//! `FILE_CHECK`: a real follows the number in a `track_file`.
//!
//! With weight 0 the real is down while the number is not 0 (or, with `reverse`, while it
//! is 0). Otherwise the number times the weight (negated by `reverse`) is added to the
//! real's weight, and the real is down when that sum reaches -2^31, keepalived's fault
//! value. The file is read when the checker starts and every second after; keepalived
//! watches it with inotify.

use std::{path::PathBuf, time::Duration};

use tokio::sync::mpsc;
use tracing::info;

use super::{CheckId, Transition, Verdict, report};
use crate::{
    config::{Config, FileCheck, TrackWeight},
    vrrp::script::read_track_file,
};

const PERIOD: Duration = Duration::from_secs(1);

pub struct Watcher {
    id: CheckId,
    name: String,
    path: PathBuf,
    weight: TrackWeight,
    verdict: Verdict,
}

impl Watcher {
    /// A watcher of `check`'s file, with the verdict the file gives now.
    pub fn new(config: &Config, check: &FileCheck, id: CheckId) -> Result<Self, String> {
        let track = config
            .track_file(&check.track_file)
            .ok_or_else(|| format!("track_file '{}' is not defined", check.track_file))?;
        let weight = check.weight.unwrap_or(track.weight);
        Ok(Self {
            id,
            name: track.name.clone(),
            verdict: verdict(read_track_file(&track.file), weight),
            path: track.file.clone(),
            weight,
        })
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Reads the file every [`PERIOD`], sending every change of verdict; returns when
    /// nobody listens.
    pub async fn run(mut self, events: mpsc::Sender<Transition>) {
        let mut tick = tokio::time::interval(PERIOD);
        loop {
            tick.tick().await;
            let verdict = verdict(read_track_file(&self.path), self.weight);
            if verdict == self.verdict {
                continue;
            }
            if verdict.is_up() != self.verdict.is_up() {
                let change = if verdict.is_up() { "leaving" } else { "now" };
                info!(
                    "({}): tracked file {} {change} FAULT state",
                    self.id.real, self.name
                );
            }
            self.verdict = verdict;
            if !report(&events, self.id, verdict).await {
                return;
            }
        }
    }
}

/// What the number `value` in the file makes of the real.
fn verdict(value: i64, weight: TrackWeight) -> Verdict {
    if weight.weight == 0 {
        return if (value != 0) != weight.reverse {
            Verdict::Down
        } else {
            Verdict::UP
        };
    }
    let sign = if weight.reverse { -1 } else { 1 };
    let delta = value
        .saturating_mul(i64::from(weight.weight))
        .saturating_mul(sign)
        .clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    if delta == i64::from(i32::MIN) {
        Verdict::Down
    } else {
        Verdict::Up {
            weight_delta: delta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(weight: i32, reverse: bool) -> TrackWeight {
        TrackWeight { weight, reverse }
    }

    #[test]
    fn weight_zero_is_up_or_down() {
        assert_eq!(verdict(0, weight(0, false)), Verdict::UP);
        assert_eq!(verdict(3, weight(0, false)), Verdict::Down);
        assert_eq!(verdict(0, weight(0, true)), Verdict::Down);
        assert_eq!(verdict(-1, weight(0, true)), Verdict::UP);
    }

    #[test]
    fn weights_multiply_and_fault_at_the_bottom() {
        assert_eq!(
            verdict(5, weight(2, false)),
            Verdict::Up { weight_delta: 10 }
        );
        assert_eq!(
            verdict(5, weight(2, true)),
            Verdict::Up { weight_delta: -10 }
        );
        assert_eq!(verdict(0, weight(2, false)), Verdict::UP);
        assert_eq!(
            verdict(i64::from(i32::MIN), weight(1, false)),
            Verdict::Down
        );
        assert_eq!(
            verdict(i64::MAX, weight(254, false)),
            Verdict::Up {
                weight_delta: i64::from(i32::MAX)
            }
        );
    }

    #[tokio::test]
    async fn the_file_is_followed() {
        let dir = std::env::temp_dir().join(format!("xlb-file-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("weight");
        std::fs::write(&path, "0\n").unwrap();
        let text = format!(
            "track_file tf {{\n file {}\n weight 0\n}}\nvirtual_server 203.0.113.10 80 {{\n \
             real_server 192.0.2.11 80 {{\n  FILE_CHECK {{\n   track_file tf\n  }}\n }}\n}}\n",
            path.display()
        );
        let config = crate::config::parse_str("t.conf", &text).unwrap().config;
        let crate::config::Check::File(check) =
            &config.virtual_servers[0].real_servers[0].checks[0]
        else {
            panic!("FILE_CHECK")
        };
        let id = CheckId {
            real: crate::config::ServiceKey {
                addr: "203.0.113.10:80".parse().unwrap(),
                protocol: crate::config::Protocol::Tcp,
            }
            .real("192.0.2.11:80".parse().unwrap()),
            index: 0,
        };
        let watcher = Watcher::new(&config, check, id).unwrap();
        assert_eq!(watcher.verdict(), Verdict::UP);
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(watcher.run(tx));
        std::fs::write(&path, "1\n").unwrap();
        let changed = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        task.abort();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(changed.unwrap().unwrap().verdict, Verdict::Down);
    }
}
