//! What runs beside the engine and feeds it: a socket reader per interface and family, a
//! runner per track script and track file, and the link monitor. Each is kept under what
//! it serves, so that a reload, or an interface that comes back, starts and stops exactly
//! the ones that changed, and an unchanged script keeps its rise/fall count.

use std::{
    collections::{HashMap, HashSet},
    io,
};

use futures::StreamExt as _;
use tokio::{
    io::unix::AsyncFd,
    sync::mpsc,
    task::{AbortHandle, JoinSet},
};
use tracing::{info, warn};

use crate::{
    net::{self, LinkEvent, LinkEvents},
    vrrp::{
        accept::Reject,
        script::{self, FileSpec, ScriptSpec},
        socket::{Received, Receiver},
        track::{Status, Tracked},
    },
};

/// What the engine hears from its tasks.
pub(super) enum Input {
    Packet {
        ifindex: u32,
        packet: Result<Received, Reject>,
    },
    Link(LinkEvent),
    Track(Tracked, Status),
}

/// Where a receiving socket listens: one per interface and family, shared by the
/// instances there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Listen {
    pub ifindex: u32,
    pub ifname: String,
    pub v6: bool,
}

pub(super) struct Tasks {
    set: JoinSet<()>,
    inputs: mpsc::UnboundedSender<Input>,
    /// Where scripts and files report, forwarded to `inputs`.
    tracked: mpsc::UnboundedSender<(Tracked, Status)>,
    receivers: HashMap<Listen, AbortHandle>,
    scripts: HashMap<String, (ScriptSpec, AbortHandle)>,
    files: HashMap<String, (FileSpec, AbortHandle)>,
}

impl Tasks {
    pub fn new(inputs: mpsc::UnboundedSender<Input>) -> Self {
        let mut set = JoinSet::new();
        let (tracked, mut reports) = mpsc::unbounded_channel();
        let to_inputs = inputs.clone();
        set.spawn(async move {
            while let Some((what, status)) = reports.recv().await {
                if to_inputs.send(Input::Track(what, status)).is_err() {
                    return;
                }
            }
        });
        Self {
            set,
            inputs,
            tracked,
            receivers: HashMap::new(),
            scripts: HashMap::new(),
            files: HashMap::new(),
        }
    }

    pub fn watch_links(&mut self) -> Result<(), net::Error> {
        self.set
            .spawn(read_links(LinkEvents::open()?, self.inputs.clone()));
        Ok(())
    }

    /// Reads adverts exactly where `wanted` says: opens the sockets that are missing and
    /// closes the others. Every missing one is tried; the first that could not be opened
    /// is the error, and is tried again by the next call.
    pub fn listen(&mut self, wanted: impl IntoIterator<Item = Listen>) -> io::Result<()> {
        let wanted: HashSet<Listen> = wanted.into_iter().collect();
        self.receivers.retain(|at, task| {
            let keep = wanted.contains(at);
            if !keep {
                task.abort();
            }
            keep
        });
        let mut first_error = None;
        for at in wanted {
            if self.receivers.contains_key(&at) {
                continue;
            }
            match open_receiver(&at) {
                Ok(fd) => {
                    let task = self
                        .set
                        .spawn(read_packets(fd, at.ifindex, self.inputs.clone()));
                    self.receivers.insert(at, task);
                }
                Err(e) => {
                    let e = io::Error::new(
                        e.kind(),
                        format!("opening a VRRP socket on {}: {e}", at.ifname),
                    );
                    first_error.get_or_insert(e);
                }
            }
        }
        self.reap();
        first_error.map_or(Ok(()), Err)
    }

    /// Runs exactly `scripts` and `files`: those unchanged keep running, changed ones start
    /// over and removed ones stop. A changed script that `was_up` starts without
    /// `init_fail`, as keepalived considers it successful on reload.
    pub fn track(
        &mut self,
        scripts: &[ScriptSpec],
        files: &[FileSpec],
        was_up: impl Fn(&str) -> bool,
    ) {
        let Self {
            set,
            tracked,
            scripts: running_scripts,
            files: running_files,
            ..
        } = self;
        keep_running(
            running_scripts,
            scripts,
            |s| &s.name,
            |s| {
                let mut run = s.clone();
                if run.init_fail && was_up(&s.name) {
                    info!("VRRP_Script({}) considered successful on reload", s.name);
                    run.init_fail = false;
                }
                set.spawn(script::run_script(run, tracked.clone()))
            },
        );
        keep_running(
            running_files,
            files,
            |f| &f.name,
            |f| set.spawn(script::watch_file(f.clone(), tracked.clone())),
        );
        self.reap();
    }

    /// Whether a script or file of that name runs.
    pub fn runs(&self, what: &Tracked) -> bool {
        match what {
            Tracked::Script(name) => self.scripts.contains_key(name),
            Tracked::File(name) => self.files.contains_key(name),
            Tracked::Interface(_) => false,
        }
    }

    pub async fn shutdown(&mut self) {
        self.set.shutdown().await;
    }

    /// Forgets the tasks that ended (aborted ones included).
    fn reap(&mut self) {
        while self.set.try_join_next().is_some() {}
    }
}

/// Leaves `running` with a task for each of `specs`: one whose spec is unchanged keeps its
/// task, the others get one from `spawn`, and tasks for specs no longer there are aborted.
fn keep_running<S: PartialEq + Clone>(
    running: &mut HashMap<String, (S, AbortHandle)>,
    specs: &[S],
    name: impl Fn(&S) -> &String,
    mut spawn: impl FnMut(&S) -> AbortHandle,
) {
    let mut old = std::mem::take(running);
    for spec in specs {
        let task = match old.remove(name(spec)) {
            Some((was, task)) if was == *spec => task,
            stale => {
                if let Some((_, task)) = stale {
                    task.abort();
                }
                spawn(spec)
            }
        };
        running.insert(name(spec).clone(), (spec.clone(), task));
    }
    for (_, task) in old.into_values() {
        task.abort();
    }
}

fn open_receiver(at: &Listen) -> io::Result<AsyncFd<Receiver>> {
    let rx = if at.v6 {
        Receiver::open_v6(&at.ifname, at.ifindex)?
    } else {
        Receiver::open_v4(&at.ifname, at.ifindex)?
    };
    // SAFETY: the receiver owns its socket's descriptor and closes it only when dropped,
    // which the AsyncFd does after deregistering it.
    unsafe { AsyncFd::register(rx) }.map_err(|e| e.into_parts().1)
}

async fn read_packets(fd: AsyncFd<Receiver>, ifindex: u32, tx: mpsc::UnboundedSender<Input>) {
    loop {
        let mut guard = match fd.readable().await {
            Ok(g) => g,
            Err(e) => {
                warn!("VRRP socket on interface {ifindex} failed: {e}");
                return;
            }
        };
        match guard.try_io(|inner| inner.get_ref().recv()) {
            Ok(Ok(packet)) => {
                if tx.send(Input::Packet { ifindex, packet }).is_err() {
                    return;
                }
            }
            Ok(Err(e)) => warn!("VRRP receive on interface {ifindex}: {e}"),
            Err(_would_block) => {}
        }
    }
}

async fn read_links(mut links: LinkEvents, tx: mpsc::UnboundedSender<Input>) {
    while let Some(event) = links.next().await {
        if tx.send(Input::Link(event)).is_err() {
            return;
        }
    }
    warn!("Link monitor ended: link changes are no longer tracked");
}
