//! The service manager's end of systemd's notify protocol: how the test bed learns that a
//! daemon it started is ready (or reloading, or stopping) from the daemon itself, rather
//! than guessing from side effects that may lag or lead.

use std::{
    io,
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;

/// A datagram socket at a path, for one process's `NOTIFY_SOCKET`. The path is removed when
/// dropped.
#[derive(Debug)]
pub(crate) struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    pub(crate) fn bind(path: PathBuf) -> anyhow::Result<Self> {
        // A socket file left by an earlier process of the same name would refuse the bind.
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("remove {}", path.display()));
            }
            _ => {}
        }
        let socket =
            UnixDatagram::bind(&path).with_context(|| format!("bind {}", path.display()))?;
        Ok(Self { socket, path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a notification with `state` (a `KEY=VALUE` line such as `READY=1`) comes
    /// within `wait`, or is queued already. Notifications before it are consumed, those
    /// after it left for the next call.
    pub(crate) fn received(&self, state: &str, wait: Duration) -> anyhow::Result<bool> {
        let mut wait = wait;
        while let Some(states) = self.receive(wait)? {
            if states.iter().any(|s| s == state) {
                return Ok(true);
            }
            wait = Duration::ZERO;
        }
        Ok(false)
    }

    /// Waits at most `timeout` for a notification and returns its states; `None` when none
    /// came.
    fn receive(&self, timeout: Duration) -> anyhow::Result<Option<Vec<String>>> {
        // A zero timeout would mean "block forever" to the socket.
        self.socket
            .set_read_timeout(Some(timeout.max(Duration::from_micros(1))))
            .context("set the notify socket's timeout")?;
        let mut buf = [0; 4096];
        match self.socket.recv(&mut buf) {
            Ok(len) => Ok(Some(
                String::from_utf8_lossy(&buf[..len])
                    .lines()
                    .map(str::to_owned)
                    .collect(),
            )),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(err).with_context(|| format!("receive on {}", self.path.display())),
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
