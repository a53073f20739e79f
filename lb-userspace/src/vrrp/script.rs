//! Tracking scripts (`vrrp_script`) and track files: each runs in its own task and
//! reports only changes, so a slow script never holds up the protocol.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{process::Command, sync::mpsc, time};
use tracing::{info, warn};

use super::track::{Status, Tracked};

/// A `vrrp_script` as its runner needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSpec {
    pub name: String,
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// Counts consecutive results until `rise` successes or `fall` failures flip the state,
/// as keepalived does; the first result sets the state directly.
#[derive(Debug)]
pub struct Hysteresis {
    up: Option<bool>,
    streak: u32,
    rise: u32,
    fall: u32,
}

impl Hysteresis {
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            up: None,
            streak: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    /// Takes one result; returns the new state when it changed.
    pub fn result(&mut self, ok: bool) -> Option<bool> {
        match self.up {
            None => {
                self.up = Some(ok);
                return Some(ok);
            }
            Some(up) if up == ok => self.streak = 0,
            Some(_) => {
                self.streak += 1;
                let needed = if ok { self.rise } else { self.fall };
                if self.streak >= needed {
                    self.up = Some(ok);
                    self.streak = 0;
                    return Some(ok);
                }
            }
        }
        None
    }
}

/// Why a script may not run under `enable_script_security`.
#[derive(Debug, thiserror::Error)]
pub enum Unsafe {
    #[error("cannot find {0}")]
    Missing(String),
    #[error("{0} is writable by a non-root user")]
    Writable(PathBuf),
}

/// keepalived's `enable_script_security`: a script run as root must not be replaceable
/// by anyone else, so it and every directory above it must be root's and not writable
/// by group or others.
pub fn check_secure(program: &str) -> Result<(), Unsafe> {
    let path = resolve(program).ok_or_else(|| Unsafe::Missing(program.to_owned()))?;
    for p in path.ancestors() {
        let Ok(meta) = std::fs::metadata(p) else {
            return Err(Unsafe::Missing(p.display().to_string()));
        };
        let sticky_dir = meta.is_dir() && meta.mode() & 0o1000 != 0;
        if meta.uid() != 0 || (meta.mode() & 0o022 != 0 && !sticky_dir) {
            return Err(Unsafe::Writable(p.to_path_buf()));
        }
    }
    Ok(())
}

fn resolve(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// Runs `spec` every interval for ever, sending its status when it changes.
pub async fn run_script(spec: ScriptSpec, tx: mpsc::UnboundedSender<(Tracked, Status)>) {
    let mut h = Hysteresis::new(spec.rise, spec.fall);
    if spec.init_fail {
        h.result(false);
        let _ = tx.send((Tracked::Script(spec.name.clone()), Status::Up(false)));
    }
    let mut tick = time::interval(spec.interval);
    tick.set_missed_tick_behavior(time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ok = run_once(&spec).await;
        if let Some(up) = h.result(ok) {
            info!(
                "VRRP_Script({}) {}",
                spec.name,
                if up { "succeeded" } else { "failed" }
            );
            if tx
                .send((Tracked::Script(spec.name.clone()), Status::Up(up)))
                .is_err()
            {
                return;
            }
        }
    }
}

async fn run_once(spec: &ScriptSpec) -> bool {
    let Some((program, args)) = spec.argv.split_first() else {
        return false;
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            warn!("VRRP_Script({}) cannot run {program}: {e}", spec.name);
            return false;
        }
    };
    match time::timeout(spec.timeout, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        Ok(Err(e)) => {
            warn!("VRRP_Script({}) wait failed: {e}", spec.name);
            false
        }
        Err(_) => {
            warn!("VRRP_Script({}) timed out", spec.name);
            false
        }
    }
}

/// A `track_file` as its watcher needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub name: String,
    pub path: PathBuf,
    /// How often the file is read.
    pub interval: Duration,
}

/// Reads the number in a track file: keepalived takes a missing or unreadable file, or
/// one that does not start with a number, as 0.
pub fn read_track_file(path: &Path) -> i64 {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let t = text.trim_start();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse().unwrap_or(0)
}

/// Watches `spec`'s file, sending its value when it changes.
pub async fn watch_file(spec: FileSpec, tx: mpsc::UnboundedSender<(Tracked, Status)>) {
    let mut last = None;
    let mut tick = time::interval(spec.interval);
    loop {
        tick.tick().await;
        let v = read_track_file(&spec.path);
        if last != Some(v) {
            last = Some(v);
            if tx
                .send((Tracked::File(spec.name.clone()), Status::Value(v)))
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_need_consecutive_results() {
        let mut h = Hysteresis::new(2, 3);
        assert_eq!(h.result(true), Some(true));
        assert_eq!(h.result(false), None);
        assert_eq!(h.result(false), None);
        assert_eq!(h.result(true), None, "a success resets the failure streak");
        assert_eq!(h.result(false), None);
        assert_eq!(h.result(false), None);
        assert_eq!(h.result(false), Some(false));
        assert_eq!(h.result(true), None);
        assert_eq!(h.result(true), Some(true));
    }

    #[test]
    fn track_files_read_a_leading_number() {
        let dir = std::env::temp_dir().join(format!("xlb-trackfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        for (text, want) in [("-5\n", -5), ("  12 trailing", 12), ("x", 0), ("", 0)] {
            std::fs::write(&f, text).unwrap();
            assert_eq!(read_track_file(&f), want, "{text:?}");
        }
        assert_eq!(read_track_file(&dir.join("missing")), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn script_security_refuses_writable_scripts() {
        let dir = std::env::temp_dir().join(format!("xlb-secure-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = dir.join("s.sh");
        std::fs::write(&s, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&s, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        assert!(matches!(
            check_secure(s.to_str().unwrap()),
            Err(Unsafe::Writable(p)) if p == s
        ));
        assert!(check_secure("/bin/sh").is_ok());
        assert!(matches!(
            check_secure("no-such-program-xlb"),
            Err(Unsafe::Missing(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
