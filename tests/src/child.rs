//! A process a test started, which must not outlive the test.

use std::{
    fmt,
    fs::File,
    io,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::{
    sys::{prctl, signal::Signal},
    unistd::Pid,
};

use crate::notify::NotifySocket;
use crate::scaled;

/// How long a process gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a SIGKILLed process may take to be reapable (it can be in the middle of a syscall).
const KILL_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(10);

/// A spawned process that is stopped (SIGTERM, then SIGKILL) and reaped when dropped.
///
/// Its stdout and stderr go to files so they survive the process, and the guard prints them
/// when dropped, which is usually the whole diagnosis of a failed test. The test harness
/// captures that output and shows it only for tests that fail (by panic or by returning an
/// error); outside tests, [`Child::quiet`] keeps it to the files.
pub struct Child {
    label: String,
    process: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
    print_logs_on_drop: bool,
    /// Where the process reports its state, if it was spawned with one; dropped after the
    /// process is stopped, so that it can say it is stopping.
    notify: Option<NotifySocket>,
}

impl Child {
    /// Spawns `command` with stdin closed and its output in `log_dir/label.{stdout,stderr}`.
    ///
    /// Should the test process die without unwinding (Ctrl-C, a harness timeout), the kernel
    /// kills the child too, so no server is left running. The kernel ties that to the thread
    /// that spawns, not the process: spawn from a thread that lives as long as the guard
    /// (a test's own thread does), never from a short-lived one such as [`Netns::run`]'s.
    ///
    /// [`Netns::run`]: crate::Netns::run
    pub fn spawn(label: &str, command: Command, log_dir: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(label, command, log_dir, None)
    }

    /// [`Child::spawn`], with a `NOTIFY_SOCKET` of its own at `log_dir/label.notify`, where
    /// a daemon that speaks systemd's notify protocol says when it is ready
    /// ([`Child::wait_notified`]).
    pub fn spawn_notifying(
        label: &str,
        mut command: Command,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let notify = NotifySocket::bind(log_dir.join(format!("{label}.notify")))?;
        command.env("NOTIFY_SOCKET", notify.path());
        Self::spawn_with(label, command, log_dir, Some(notify))
    }

    fn spawn_with(
        label: &str,
        mut command: Command,
        log_dir: &Path,
        notify: Option<NotifySocket>,
    ) -> anyhow::Result<Self> {
        let stdout = log_dir.join(format!("{label}.stdout"));
        let stderr = log_dir.join(format!("{label}.stderr"));
        let create =
            |path: &Path| File::create(path).with_context(|| format!("create {}", path.display()));
        let parent = nix::unistd::getpid();
        // SAFETY: runs between fork and exec and only makes syscalls.
        unsafe {
            command.pre_exec(move || {
                prctl::set_pdeathsig(Signal::SIGKILL)?;
                // The parent may have died before the line above took effect.
                if nix::unistd::getppid() != parent {
                    return Err(io::Error::other("the test process is gone"));
                }
                Ok(())
            });
        }
        command
            .stdin(Stdio::null())
            .stdout(create(&stdout)?)
            .stderr(create(&stderr)?);
        let process = command
            .spawn()
            .with_context(|| format!("start {label}: {command:?}"))?;
        Ok(Self {
            label: label.to_owned(),
            process,
            stdout,
            stderr,
            status: None,
            print_logs_on_drop: true,
            notify,
        })
    }

    /// Does not print the logs when dropped (for the demo and benchmarks, whose output is
    /// for people, not a test harness).
    pub fn quiet(mut self) -> Self {
        self.print_logs_on_drop = false;
        self
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> anyhow::Result<bool> {
        Ok(self.poll()?.is_none())
    }

    /// Waits for the process to exit by itself.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        match self.wait_up_to(timeout)? {
            Some(status) => Ok(status),
            None => bail!(
                "{} (pid {}) still running after {:?}",
                self.label,
                self.pid(),
                scaled(timeout)
            ),
        }
    }

    /// Waits at most `timeout` ([`scaled`]) for the process to notify `state` (such as
    /// `READY=1`), or to exit, whichever comes first. Either failure is an [`Ended`] that
    /// says how the process ended and what it wrote on stderr; a process still running is
    /// stopped first.
    pub fn wait_notified(&mut self, state: &str, timeout: Duration) -> anyhow::Result<()> {
        let timeout = scaled(timeout);
        let deadline = Instant::now() + timeout;
        loop {
            // Exit first, then the socket: whatever it sent before it exited is queued.
            let exited = self.poll()?.is_some();
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = if exited {
                Duration::ZERO
            } else {
                POLL.min(left)
            };
            let Some(notify) = &self.notify else {
                bail!("{} was not spawned with a notify socket", self.label);
            };
            if notify.received(state, wait)? {
                return Ok(());
            }
            if exited {
                return Err(self.failure(format!("{} exited before {state}", self.label)));
            }
            if left.is_zero() {
                return Err(self.failure(format!(
                    "timed out after {timeout:?} waiting for {} to notify {state}",
                    self.label
                )));
            }
        }
    }

    /// Stops the process and turns `reason`, a wait on it that failed, into an [`Ended`]
    /// that carries its account of things; its logs are not printed again when dropped.
    pub fn failure(&mut self, reason: impl fmt::Display) -> anyhow::Error {
        let status = self.stop();
        self.print_logs_on_drop = false;
        Ended {
            reason: reason.to_string(),
            label: self.label.clone(),
            pid: self.pid(),
            status: status.map_err(|err| format!("{err:#}")),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
        .into()
    }

    /// Sends `signal`, e.g. SIGHUP for a reload; a no-op once the process has exited.
    pub fn signal(&mut self, signal: Signal) -> anyhow::Result<()> {
        if self.poll()?.is_some() {
            return Ok(());
        }
        let pid = Pid::from_raw(i32::try_from(self.pid()).context("pid out of range")?);
        nix::sys::signal::kill(pid, signal)
            .with_context(|| format!("send {signal} to {} (pid {pid})", self.label))
    }

    /// Asks the process to exit (SIGTERM), and kills it if it has not within a few seconds.
    pub fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        if let Some(status) = self.wait_up_to(STOP_GRACE)? {
            return Ok(status);
        }
        self.kill()
    }

    /// Kills the process outright (SIGKILL): what a crash looks like to its peers.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGKILL)?;
        self.wait_for_exit(KILL_GRACE)
    }

    /// What the process has written to stdout so far.
    pub fn stdout(&self) -> String {
        read_log(&self.stdout)
    }

    /// What the process has written to stderr so far.
    pub fn stderr(&self) -> String {
        read_log(&self.stderr)
    }

    fn poll(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .process
                .try_wait()
                .with_context(|| format!("wait for {}", self.label))?;
        }
        Ok(self.status)
    }

    fn wait_up_to(&mut self, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = wait_timeout(&mut self.process, timeout)
                .with_context(|| format!("wait for {}", self.label))?;
        }
        Ok(self.status)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let stopped = self.stop();
        if self.print_logs_on_drop || stopped.is_err() {
            let ended = match stopped {
                Ok(status) => status.to_string(),
                Err(err) => format!("{err:#}"),
            };
            // eprint!, not a write to the raw stderr: libtest captures it per test.
            eprint!(
                "---- {label} (pid {pid}) ended: {ended}\n---- {label} stdout:\n{}\n\
                 ---- {label} stderr:\n{}\n",
                self.stdout(),
                self.stderr(),
                label = self.label,
                pid = self.pid(),
            );
        }
    }
}

/// A process the test needed could not be used, and how it ended: the whole diagnosis when
/// a daemon refuses to start, which tests of those refusals read.
#[derive(Debug)]
pub struct Ended {
    /// What the test was waiting for, and what happened instead.
    pub reason: String,
    pub label: String,
    pub pid: u32,
    /// How it exited, by itself or once stopped; why it would not stop otherwise.
    pub status: Result<ExitStatus, String>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            reason,
            label,
            pid,
            status,
            stdout,
            stderr,
        } = self;
        let ended = match status {
            Ok(status) => status.to_string(),
            Err(err) => format!("would not stop: {err}"),
        };
        write!(f, "{reason}\n---- {label} (pid {pid}) ended: {ended}\n")?;
        if !stdout.is_empty() {
            write!(f, "---- {label} stdout:\n{stdout}\n")?;
        }
        write!(f, "---- {label} stderr:\n{stderr}")
    }
}

impl std::error::Error for Ended {}

/// Waits at most `timeout` ([`scaled`]) for `process` to exit, reaping it if it did.
pub(crate) fn wait_timeout(
    process: &mut std::process::Child,
    timeout: Duration,
) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + scaled(timeout);
    loop {
        if let Some(status) = process.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL.min(deadline - now));
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|err| format!("<cannot read {}: {err}>", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory for one test's logs, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("xlb-child-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    fn ended(err: &anyhow::Error) -> &Ended {
        err.downcast_ref::<Ended>()
            .unwrap_or_else(|| panic!("not an Ended: {err:#}"))
    }

    #[test]
    fn an_exit_before_the_state_ends_the_wait_with_its_stderr() {
        let dir = Scratch::new("exit");
        let mut child =
            Child::spawn_notifying("early", shell("echo refused >&2; exit 3"), &dir.0).unwrap();
        let err = child
            .wait_notified("READY=1", Duration::from_secs(30))
            .unwrap_err();
        let ended = ended(&err);
        assert_eq!(ended.reason, "early exited before READY=1");
        assert_eq!(ended.status.as_ref().unwrap().code(), Some(3));
        assert_eq!(ended.stderr, "refused\n");
        assert!(
            err.to_string().contains("---- early stderr:\nrefused\n"),
            "{err}"
        );
    }

    #[test]
    fn a_process_that_never_notifies_times_out_and_is_stopped() {
        let dir = Scratch::new("silent");
        let mut child = Child::spawn_notifying("silent", shell("exec sleep 60"), &dir.0).unwrap();
        let err = child
            .wait_notified("READY=1", Duration::from_millis(100))
            .unwrap_err();
        let ended = ended(&err);
        assert_eq!(
            ended.reason,
            "timed out after 100ms waiting for silent to notify READY=1"
        );
        assert!(
            !child.is_running().unwrap(),
            "still running after the timeout"
        );
        assert_eq!(ended.status.as_ref().unwrap().code(), None, "{ended}");
    }
}
