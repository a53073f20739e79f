//! Telling the service manager how start-up, reloads and stopping go: systemd's notify
//! protocol (sd_notify(3)), one datagram of `KEY=VALUE` lines to the unix socket named by
//! `$NOTIFY_SOCKET`, abstract when the name starts with '@'.
//!
//! Written here rather than taken from the `sd-notify` crate, which connects to the name as
//! a path and so cannot reach the abstract sockets that service managers also hand out.

use std::{
    ffi::{OsStr, OsString},
    io,
    os::{
        linux::net::SocketAddrExt as _,
        unix::{
            ffi::OsStrExt as _,
            net::{SocketAddr, UnixDatagram},
        },
    },
};

use nix::time::{ClockId, clock_gettime};
use tracing::warn;

const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Where the service manager listens; nowhere when xlb was not started by one, and then
/// every notification is a no-op.
#[derive(Debug)]
pub struct Notifier {
    target: Option<SocketAddr>,
}

impl Notifier {
    /// The service manager of `$NOTIFY_SOCKET`. A name that is not a socket address is
    /// logged and ignored: a service manager that set it is not one xlb can talk to.
    pub fn from_env() -> Self {
        let name = std::env::var_os(NOTIFY_SOCKET);
        match Self::to(name.as_deref()) {
            Ok(notifier) => notifier,
            Err(err) => {
                warn!(
                    "Ignoring {NOTIFY_SOCKET}={:?}: {err}",
                    name.unwrap_or_default()
                );
                Self { target: None }
            }
        }
    }

    fn to(name: Option<&OsStr>) -> io::Result<Self> {
        let target = match name.map(OsStr::as_bytes) {
            None | Some(b"") => None,
            Some([b'@', abstract_name @ ..]) => {
                Some(SocketAddr::from_abstract_name(abstract_name)?)
            }
            Some(path @ [b'/', ..]) => Some(SocketAddr::from_pathname(OsStr::from_bytes(path))?),
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither an absolute path nor an abstract name ('@...')",
                ));
            }
        };
        Ok(Self { target })
    }

    /// The data plane is attached, the first plan applied, VRRP and the checkers run and the
    /// control socket answers.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// A SIGHUP reload begins; [`Notifier::ready`] says that it is over. systemd's
    /// `Type=notify-reload` wants the monotonic time with it, to tell this reload's end
    /// from an earlier one's.
    pub fn reloading(&self) {
        match clock_gettime(ClockId::CLOCK_MONOTONIC) {
            Ok(now) => {
                let usec = now.tv_sec() * 1_000_000 + now.tv_nsec() / 1_000;
                self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
            }
            Err(err) => warn!("Cannot read the monotonic clock for the service manager: {err}"),
        }
    }

    /// The agent is shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Sends `states`; a service manager that cannot be told is logged, never fatal: xlb
    /// keeps balancing, and the service manager's own timeout says the rest.
    fn send(&self, states: &str) {
        let Some(target) = &self.target else {
            return;
        };
        let sent = UnixDatagram::unbound()
            .and_then(|socket| socket.send_to_addr(format!("{states}\n").as_bytes(), target));
        if let Err(err) = sent {
            warn!(
                "Cannot notify the service manager at {} of {}: {err}",
                shown(target),
                states.replace('\n', " ")
            );
        }
    }
}

/// `$NOTIFY_SOCKET`'s spelling of `addr`.
fn shown(addr: &SocketAddr) -> String {
    match (addr.as_pathname(), addr.as_abstract_name()) {
        (Some(path), _) => path.display().to_string(),
        (None, Some(name)) => {
            let mut shown = OsString::from("@");
            shown.push(OsStr::from_bytes(name));
            shown.to_string_lossy().into_owned()
        }
        (None, None) => "an unnamed socket".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::{path::PathBuf, time::Duration};

    use super::*;

    /// The service manager's end: a datagram socket bound at `addr`.
    fn listen(addr: &SocketAddr) -> UnixDatagram {
        let socket = UnixDatagram::bind_addr(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    fn received(socket: &UnixDatagram) -> String {
        let mut buf = [0; 256];
        let len = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }

    fn scratch_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("xlb-notify-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_path_receives_ready_and_stopping() {
        let path = scratch_path("path");
        let _ = std::fs::remove_file(&path);
        let manager = listen(&SocketAddr::from_pathname(&path).unwrap());
        let notifier = Notifier::to(Some(path.as_os_str())).unwrap();
        notifier.ready();
        notifier.stopping();
        assert_eq!(received(&manager), "READY=1\n");
        assert_eq!(received(&manager), "STOPPING=1\n");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_at_sign_names_an_abstract_socket() {
        let name = format!("xlb-notify-test-{}", std::process::id());
        let manager = listen(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap());
        let notifier = Notifier::to(Some(OsStr::new(&format!("@{name}")))).unwrap();
        notifier.reloading();
        let message = received(&manager);
        let mut lines = message.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"), "{message:?}");
        let usec = lines.next().and_then(|l| l.strip_prefix("MONOTONIC_USEC="));
        assert!(
            usec.is_some_and(|usec| usec.parse::<u64>().is_ok_and(|usec| usec > 0)),
            "{message:?}"
        );
        assert_eq!(lines.next(), None, "{message:?}");
    }

    #[test]
    fn no_socket_means_no_service_manager() {
        assert!(Notifier::to(None).unwrap().target.is_none());
        assert!(Notifier::to(Some(OsStr::new(""))).unwrap().target.is_none());
    }

    #[test]
    fn a_relative_path_is_refused() {
        let err = Notifier::to(Some(OsStr::new("run/notify"))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn addresses_are_shown_as_notify_socket_spells_them() {
        let name = SocketAddr::from_abstract_name(b"xlb").unwrap();
        assert_eq!(shown(&name), "@xlb");
        let path = SocketAddr::from_pathname("/run/notify").unwrap();
        assert_eq!(shown(&path), "/run/notify");
    }
}
