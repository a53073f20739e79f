//! Running the commands of the LVS part of keepalived.conf (MISC_CHECK's `misc_path`, a
//! real's `notify_up` / `notify_down`) the way keepalived runs them: as their user, in a
//! process group of their own so that a timeout ends the script and everything it started,
//! and not at all when `enable_script_security` finds that someone other than root could
//! change a script run as root.

use std::{
    io,
    os::unix::process::ExitStatusExt,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::{Group, Pid, User},
};
use tokio::process::Command as Process;

use crate::{
    config::{Command, GlobalDefs},
    vrrp::script::{Unsafe, check_secure},
};

/// The user keepalived runs scripts as when none is configured, if it exists.
const DEFAULT_USER: &str = "keepalived_script";
/// How long a script that was asked to stop (SIGTERM) has before it is killed.
const GRACE: Duration = Duration::from_secs(2);

/// Why a command is not run at all.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("script user '{0}' does not exist")]
    NoUser(String),
    #[error("script group '{0}' does not exist")]
    NoGroup(String),
    #[error("looking up '{0}': {1}")]
    Lookup(String, nix::Error),
    #[error("enable_script_security refuses it: {0}")]
    Insecure(#[from] Unsafe),
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signalled(i32),
    /// It outlived its timeout and was stopped.
    TimedOut,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exited(status) => write!(f, "exited with status {status}"),
            Ending::Signalled(signal) => write!(f, "due to signal {signal}"),
            Ending::TimedOut => f.write_str("timed out"),
        }
    }
}

impl From<ExitStatus> for Ending {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(signal)) => Ending::Signalled(signal),
            (None, None) => Ending::Exited(-1),
        }
    }
}

/// A command with the identity it runs under.
#[derive(Clone, Debug)]
pub struct Script {
    argv: Vec<String>,
    /// `None`: as xlb itself (root).
    ids: Option<(u32, u32)>,
}

impl Script {
    /// Resolves who runs `command` (its own user, else `script_user`, else
    /// `keepalived_script` when that user exists, else root) and, under
    /// `enable_script_security`, whether it may run as root.
    pub fn new(command: &Command, global: &GlobalDefs) -> Result<Self, Refused> {
        let configured = command.user.as_ref().or(global.script_user.as_ref());
        let ids = match configured {
            Some(who) => Some(ids(&who.user, who.group.as_deref())?),
            None => match ids(DEFAULT_USER, None) {
                Ok(ids) => Some(ids),
                Err(Refused::NoUser(_)) => None,
                Err(err) => return Err(err),
            },
        };
        let as_root = ids.is_none_or(|(uid, _)| uid == 0);
        if as_root && global.enable_script_security {
            check_secure(command.program())?;
        }
        Ok(Self {
            argv: command.argv.clone(),
            ids,
        })
    }

    pub fn program(&self) -> &str {
        &self.argv[0]
    }

    /// Runs the command to its end, or until `timeout`: then its process group gets
    /// SIGTERM, and SIGKILL if it is still there [`GRACE`] later.
    pub async fn run(&self, timeout: Option<Duration>) -> io::Result<Ending> {
        let (program, args) = self
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let mut process = Process::new(program);
        process
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.ids {
            process.gid(gid).uid(uid);
        }
        let mut child = process.spawn()?;
        let Some(timeout) = timeout else {
            return Ok(child.wait().await?.into());
        };
        if let Ok(status) = tokio::time::timeout(timeout, child.wait()).await {
            return Ok(status?.into());
        }
        if let Some(pid) = child.id() {
            let group = Pid::from_raw(pid as i32);
            let _ = killpg(group, Signal::SIGTERM);
            if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
                let _ = killpg(group, Signal::SIGKILL);
            }
        }
        child.wait().await?;
        Ok(Ending::TimedOut)
    }
}

/// A user's uid and gid: the named group's, or else the user's own.
fn ids(user: &str, group: Option<&str>) -> Result<(u32, u32), Refused> {
    let found = User::from_name(user)
        .map_err(|e| Refused::Lookup(user.to_owned(), e))?
        .ok_or_else(|| Refused::NoUser(user.to_owned()))?;
    let gid = match group {
        Some(name) => {
            Group::from_name(name)
                .map_err(|e| Refused::Lookup(name.to_owned(), e))?
                .ok_or_else(|| Refused::NoGroup(name.to_owned()))?
                .gid
        }
        None => found.gid,
    };
    Ok((found.uid.as_raw(), gid.as_raw()))
}

#[cfg(test)]
mod tests {
    use std::{path::PathBuf, sync::Arc, time::Instant};

    use super::*;
    use crate::config::{Pos, ScriptUser};

    fn command(argv: &[&str], user: Option<&str>) -> Command {
        Command {
            pos: Pos {
                file: Arc::new(PathBuf::from("t.conf")),
                line: 1,
                col: 1,
            },
            argv: argv.iter().map(|a| a.to_string()).collect(),
            user: user.map(|u| ScriptUser {
                user: u.to_owned(),
                group: None,
            }),
        }
    }

    #[tokio::test]
    async fn exit_codes_and_signals_are_reported() {
        let global = GlobalDefs::default();
        let run = |argv: &[&str]| {
            let script = Script::new(&command(argv, None), &global).unwrap();
            async move { script.run(Some(Duration::from_secs(5))).await.unwrap() }
        };
        assert_eq!(run(&["/bin/sh", "-c", "exit 0"]).await, Ending::Exited(0));
        assert_eq!(run(&["/bin/sh", "-c", "exit 7"]).await, Ending::Exited(7));
        assert_eq!(
            run(&["/bin/sh", "-c", "kill -9 $$"]).await,
            Ending::Signalled(9)
        );
    }

    #[tokio::test]
    async fn a_script_past_its_timeout_is_stopped_with_its_children() {
        let script = Script::new(
            &command(&["/bin/sh", "-c", "sleep 30 & sleep 30; wait"], None),
            &GlobalDefs::default(),
        )
        .unwrap();
        let started = Instant::now();
        let ending = script.run(Some(Duration::from_millis(200))).await.unwrap();
        assert_eq!(ending, Ending::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn unknown_users_are_refused() {
        let err = Script::new(
            &command(&["/bin/true"], Some("no-such-user-xlb")),
            &GlobalDefs::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Refused::NoUser(u) if u == "no-such-user-xlb"));
    }

    #[tokio::test]
    async fn scripts_run_as_their_user() {
        if !nix::unistd::Uid::effective().is_root() {
            return crate::check::tests::skip("switching users needs root");
        }
        let script = Script::new(
            &command(
                &["/bin/sh", "-c", "test \"$(id -u)\" = 65534"],
                Some("nobody"),
            ),
            &GlobalDefs::default(),
        )
        .unwrap();
        assert_eq!(
            script.run(Some(Duration::from_secs(5))).await.unwrap(),
            Ending::Exited(0)
        );
    }

    #[test]
    fn script_security_refuses_writable_scripts_run_as_root() {
        let dir = std::env::temp_dir().join(format!("xlb-misc-secure-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("check.sh");
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let global = GlobalDefs {
            enable_script_security: true,
            ..GlobalDefs::default()
        };
        let refused = Script::new(&command(&[path.to_str().unwrap()], None), &global);
        let allowed = Script::new(
            &command(&[path.to_str().unwrap()], None),
            &GlobalDefs::default(),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        if User::from_name(DEFAULT_USER).ok().flatten().is_some() {
            return crate::check::tests::skip(
                "keepalived_script exists: scripts do not run as root",
            );
        }
        assert!(matches!(refused, Err(Refused::Insecure(_))), "{refused:?}");
        assert!(allowed.is_ok());
    }
}
