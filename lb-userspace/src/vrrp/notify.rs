//! Notify scripts and the notify FIFO, run off the protocol's path and strictly in the
//! order the transitions happened: one queue, one runner.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::PathBuf, process::Stdio, sync::Arc};

use tokio::{process::Command, sync::mpsc};
use tracing::warn;

/// An instance's or sync group's notify commands, each a program and its arguments.
#[derive(Clone, Debug, Default)]
pub struct Scripts {
    pub master: Option<Vec<String>>,
    pub backup: Option<Vec<String>>,
    pub fault: Option<Vec<String>>,
    pub stop: Option<Vec<String>>,
    /// `notify`: run on every change with TYPE NAME STATE PRIORITY appended.
    pub any: Option<Vec<String>>,
}

/// The state names notify scripts and the FIFO see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    Master,
    Backup,
    Fault,
    Stop,
}

impl Reported {
    fn name(self) -> &'static str {
        match self {
            Reported::Master => "MASTER",
            Reported::Backup => "BACKUP",
            Reported::Fault => "FAULT",
            Reported::Stop => "STOP",
        }
    }
}

/// One change to report.
#[derive(Clone, Debug)]
pub struct Notice {
    /// "INSTANCE" or "GROUP", keepalived's first argument.
    pub kind: &'static str,
    pub name: String,
    pub state: Reported,
    pub priority: u8,
    pub scripts: Arc<Scripts>,
}

impl Notice {
    /// The argument lists to run for this notice, in keepalived's order: the
    /// state's own script, then `notify`.
    fn commands(&self) -> Vec<Vec<String>> {
        let own = match self.state {
            Reported::Master => &self.scripts.master,
            Reported::Backup => &self.scripts.backup,
            Reported::Fault => &self.scripts.fault,
            Reported::Stop => &self.scripts.stop,
        };
        let any = self.scripts.any.clone().map(|mut argv| {
            argv.extend([
                self.kind.to_owned(),
                self.name.clone(),
                self.state.name().to_owned(),
                self.priority.to_string(),
            ]);
            argv
        });
        own.iter().cloned().chain(any).collect()
    }

    /// The line keepalived writes to its notify FIFO.
    fn fifo_line(&self) -> String {
        format!(
            "{} \"{}\" {} {}\n",
            self.kind,
            self.name,
            self.state.name(),
            self.priority
        )
    }
}

/// Starts the runner; notices sent to the returned queue are carried out in order.
/// Dropping every sender ends it once the queue is drained.
pub fn spawn(
    fifo: Option<PathBuf>,
) -> (mpsc::UnboundedSender<Notice>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Notice>();
    let task = tokio::spawn(async move {
        while let Some(notice) = rx.recv().await {
            if let Some(path) = &fifo {
                write_fifo(path, &notice.fifo_line());
            }
            for argv in notice.commands() {
                run(&argv).await;
            }
        }
    });
    (tx, task)
}

async fn run(argv: &[String]) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .await;
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => warn!("notify script {program} exited with {s}"),
        Err(e) => warn!("cannot run notify script {program}: {e}"),
    }
}

fn write_fifo(path: &PathBuf, line: &str) {
    // O_NONBLOCK: with no reader there is nobody to tell, and a full pipe means a
    // reader that stopped reading; the agent must wait for neither.
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    match opened {
        Ok(mut f) => {
            if let Err(e) = f.write_all(line.as_bytes()) {
                warn!("cannot write notify fifo {}: {e}", path.display());
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {}
        Err(e) => warn!("cannot open notify fifo {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Option<Vec<String>> {
        Some(s.split(' ').map(String::from).collect())
    }

    #[test]
    fn notify_gets_keepalived_arguments_after_the_state_script() {
        let scripts = Arc::new(Scripts {
            master: argv("/bin/m arg"),
            any: argv("/bin/n"),
            ..Scripts::default()
        });
        let n = Notice {
            kind: "INSTANCE",
            name: "VI_1".into(),
            state: Reported::Master,
            priority: 150,
            scripts,
        };
        assert_eq!(
            n.commands(),
            [
                argv("/bin/m arg").unwrap(),
                argv("/bin/n INSTANCE VI_1 MASTER 150").unwrap()
            ]
        );
        assert_eq!(n.fifo_line(), "INSTANCE \"VI_1\" MASTER 150\n");
        let backup = Notice {
            state: Reported::Backup,
            ..n
        };
        assert_eq!(
            backup.commands(),
            [argv("/bin/n INSTANCE VI_1 BACKUP 150").unwrap()]
        );
    }

    #[tokio::test]
    async fn notices_run_in_the_order_they_were_sent() {
        let dir = std::env::temp_dir().join(format!("xlb-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let script = dir.join("n.sh");
        // The first notice sleeps: a runner that did not keep order would log it last.
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$3\" = MASTER ] && sleep 0.2\necho \"$3\" >> {}\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let scripts = Arc::new(Scripts {
            any: Some(vec![script.display().to_string()]),
            ..Scripts::default()
        });
        let (tx, task) = spawn(None);
        for state in [Reported::Master, Reported::Backup, Reported::Fault] {
            tx.send(Notice {
                kind: "INSTANCE",
                name: "VI_1".into(),
                state,
                priority: 100,
                scripts: scripts.clone(),
            })
            .unwrap();
        }
        drop(tx);
        task.await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "MASTER\nBACKUP\nFAULT\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
