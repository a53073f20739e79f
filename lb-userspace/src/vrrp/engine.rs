//! The event loop that runs every instance: one task owns all state machines, fed by
//! socket readers, the link monitor and tracking tasks, and by its own timers.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use tokio::{
    io::unix::AsyncFd,
    sync::{mpsc, oneshot},
    task::JoinSet,
};
use tracing::{info, warn};

use super::{
    StartError,
    accept::{Reject, Rejections},
    fsm::State,
    instance::{Change, Instance, Plan},
    notify::{self, Notice, Reported, Scripts},
    script::{self, FileSpec, ScriptSpec},
    socket::{Received, Receiver},
    track::{self, Status, Track, Tracked},
    types::Vrid,
};
use crate::net::{LinkEvents, LinkState, Netlink};

/// How often each rejection reason may be logged per instance.
const REJECT_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Everything the engine runs, resolved from the configuration.
#[derive(Debug, Default)]
pub struct Spec {
    pub instances: Vec<InstanceSpec>,
    /// Sync groups by name, with the indexes of their members in `instances`.
    pub sync_groups: Vec<SyncGroupSpec>,
    pub scripts: Vec<ScriptSpec>,
    pub files: Vec<FileSpec>,
    pub notify_fifo: Option<std::path::PathBuf>,
}

#[derive(Debug)]
pub struct InstanceSpec {
    pub plan: Plan,
    pub tracks: Vec<Track>,
    pub notify: Scripts,
}

#[derive(Debug)]
pub struct SyncGroupSpec {
    pub name: String,
    pub members: Vec<usize>,
    pub notify: Scripts,
}

/// A state change the rest of xlb follows: the data plane serves `vips` only while
/// `state` is MASTER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub instance: String,
    pub state: State,
    pub vips: Vec<IpAddr>,
}

/// The running engine.
pub struct Handle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops every instance as keepalived does on SIGTERM: masters send priority 0,
    /// VIPs are removed, notify_stop runs. Returns once all of that is done.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = (&mut self.task).await {
            warn!("VRRP engine ended abnormally: {e}");
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

enum Input {
    Packet {
        ifindex: u32,
        packet: Result<Received, Reject>,
    },
    Link(LinkState),
    Track(Tracked, Status),
}

/// Opens every socket and starts the engine, changing addresses through `netlink`; events
/// arrive on the returned channel.
pub async fn start(
    spec: Spec,
    netlink: Netlink,
) -> Result<(Handle, mpsc::UnboundedReceiver<Event>), StartError> {
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let mut readers = JoinSet::new();
    let mut opened = HashSet::new();
    for i in &spec.instances {
        let p = &i.plan;
        if opened.insert((p.ifindex, p.is_v6())) {
            let rx = if p.is_v6() {
                Receiver::open_v6(&p.ifname, p.ifindex)?
            } else {
                Receiver::open_v4(&p.ifname, p.ifindex)?
            };
            readers.spawn(read_packets(async_fd(rx)?, p.ifindex, input_tx.clone()));
        }
    }
    // Before the engine asks for the links' states, so no change falls in between.
    readers.spawn(read_links(LinkEvents::open()?, input_tx.clone()));
    let (track_tx, mut track_rx) = mpsc::unbounded_channel();
    for s in &spec.scripts {
        readers.spawn(script::run_script(s.clone(), track_tx.clone()));
    }
    for f in &spec.files {
        readers.spawn(script::watch_file(f.clone(), track_tx.clone()));
    }
    drop(track_tx);
    let to_inputs = input_tx.clone();
    readers.spawn(async move {
        while let Some((what, status)) = track_rx.recv().await {
            if to_inputs.send(Input::Track(what, status)).is_err() {
                return;
            }
        }
    });
    drop(input_tx);

    let mut engine = Engine::new(spec, netlink).await?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        engine.run(input_rx, stop_rx, &events_tx).await;
        readers.shutdown().await;
        engine.stop(&events_tx).await;
    });
    Ok((
        Handle {
            stop: Some(stop_tx),
            task,
        },
        events_rx,
    ))
}

struct Engine {
    instances: Vec<Instance>,
    tracks: Vec<Vec<Track>>,
    notify: Vec<Arc<Scripts>>,
    groups: Vec<SyncGroupSpec>,
    group_notify: Vec<Arc<Scripts>>,
    status: HashMap<Tracked, Status>,
    notices: mpsc::UnboundedSender<Notice>,
    notifier: tokio::task::JoinHandle<()>,
    /// Rejections of packets for VRIDs no instance on the interface has.
    strays: HashMap<u32, Rejections>,
}

impl Engine {
    async fn new(spec: Spec, netlink: Netlink) -> Result<Self, StartError> {
        let (notices, notifier) = notify::spawn(spec.notify_fifo);
        let mut status = HashMap::new();
        let mut instances = Vec::new();
        let mut tracks = Vec::new();
        let mut notify = Vec::new();
        for i in spec.instances {
            for t in &i.tracks {
                if let Tracked::Interface(ifindex) = t.what {
                    let link = netlink.link_state(ifindex).await?;
                    status.insert(t.what.clone(), Status::Up(link.up));
                }
            }
            let rejections = Rejections::new(REJECT_LOG_PERIOD);
            instances.push(Instance::open(i.plan, rejections, netlink.clone()).await?);
            tracks.push(i.tracks);
            notify.push(Arc::new(i.notify));
        }
        let group_notify = spec
            .sync_groups
            .iter()
            .map(|g| Arc::new(g.notify.clone()))
            .collect();
        Ok(Self {
            instances,
            tracks,
            notify,
            groups: spec.sync_groups,
            group_notify,
            status,
            notices,
            notifier,
            strays: HashMap::new(),
        })
    }

    async fn run(
        &mut self,
        mut inputs: mpsc::UnboundedReceiver<Input>,
        mut stop: oneshot::Receiver<()>,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let now = Instant::now();
        for i in 0..self.instances.len() {
            self.apply_tracking(i, now, events).await;
        }
        for i in 0..self.instances.len() {
            let actions = self.instances[i].machine.start(now);
            let changes = self.instances[i].carry_out(actions, now).await;
            self.after(i, changes, now, events).await;
        }
        loop {
            let deadline = self.instances.iter().filter_map(Instance::deadline).min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                input = inputs.recv() => match input {
                    Some(input) => self.on_input(input, events).await,
                    None => return,
                },
                () = sleep => {
                    let now = Instant::now();
                    for i in 0..self.instances.len() {
                        let changes = self.instances[i].on_timer(now).await;
                        self.after(i, changes, now, events).await;
                    }
                }
            }
        }
    }

    async fn on_input(&mut self, input: Input, events: &mpsc::UnboundedSender<Event>) {
        let now = Instant::now();
        match input {
            Input::Packet { ifindex, packet } => {
                self.on_packet(ifindex, packet, now, events).await;
            }
            Input::Link(link) => {
                let key = Tracked::Interface(link.ifindex);
                if self.status.contains_key(&key) {
                    self.track_changed(key, Status::Up(link.up), now, events)
                        .await;
                }
            }
            Input::Track(what, status) => self.track_changed(what, status, now, events).await,
        }
    }

    async fn on_packet(
        &mut self,
        ifindex: u32,
        packet: Result<Received, Reject>,
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let received = match packet {
            Ok(r) => r,
            Err(reject) => return self.stray(ifindex, &reject, now),
        };
        if self
            .instances
            .iter()
            .any(|i| i.plan.settings.primary == received.src)
        {
            return;
        }
        let vrid = received.payload.get(1).copied().and_then(Vrid::new);
        let target = self.instances.iter().position(|i| {
            i.plan.ifindex == ifindex
                && Some(i.plan.vrid) == vrid
                && i.plan.is_v6() == received.src.is_ipv6()
        });
        match target {
            Some(i) => {
                let changes = self.instances[i].on_packet(&received, now).await;
                self.after(i, changes, now, events).await;
            }
            None => {
                let reject = vrid.map_or(Reject::ZeroVrid, Reject::UnknownVrid);
                self.stray(ifindex, &reject, now);
            }
        }
    }

    fn stray(&mut self, ifindex: u32, reject: &Reject, now: Instant) {
        let log = self
            .strays
            .entry(ifindex)
            .or_insert_with(|| Rejections::new(REJECT_LOG_PERIOD))
            .record(reject, now);
        if let Some(log) = log {
            info!("VRRP packet on interface {ifindex} dropped: {log}");
        }
    }

    async fn track_changed(
        &mut self,
        what: Tracked,
        status: Status,
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        if self.status.insert(what.clone(), status) == Some(status) {
            return;
        }
        for i in 0..self.instances.len() {
            if self.tracks[i].iter().any(|t| t.what == what) {
                self.apply_tracking(i, now, events).await;
            }
        }
    }

    async fn apply_tracking(
        &mut self,
        i: usize,
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let verdict = track::evaluate(&self.tracks[i], |w| self.status.get(w).copied());
        let inst = &mut self.instances[i];
        let mut actions = inst.machine.set_priority_delta(verdict.delta, now);
        actions.extend(inst.machine.set_fault(verdict.fault, now));
        let changes = inst.carry_out(actions, now).await;
        self.after(i, changes, now, events).await;
    }

    /// Reports `changes` of instance `i` and moves its sync group along.
    async fn after(
        &mut self,
        i: usize,
        changes: Vec<Change>,
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        for change in changes {
            self.report(i, change.to, events);
            if change.to == State::Initialize {
                continue;
            }
            let Some(g) = self.groups.iter().position(|g| g.members.contains(&i)) else {
                continue;
            };
            let members = self.groups[g].members.clone();
            for &m in members.iter().filter(|&&m| m != i) {
                let actions = self.instances[m].machine.follow(change.to, now);
                let follow = self.instances[m].carry_out(actions, now).await;
                for c in follow {
                    self.report(m, c.to, events);
                }
            }
            if let Some(state) = reported(change.to) {
                let _ = self.notices.send(Notice {
                    kind: "GROUP",
                    name: self.groups[g].name.clone(),
                    state,
                    priority: 0,
                    scripts: self.group_notify[g].clone(),
                });
            }
        }
    }

    fn report(&self, i: usize, to: State, events: &mpsc::UnboundedSender<Event>) {
        let inst = &self.instances[i];
        let _ = events.send(Event {
            instance: inst.plan.name().to_owned(),
            state: to,
            vips: inst.plan.covered(),
        });
        if let Some(state) = reported(to) {
            let _ = self.notices.send(Notice {
                kind: "INSTANCE",
                name: inst.plan.name().to_owned(),
                state,
                priority: inst.machine.priority().get(),
                scripts: self.notify[i].clone(),
            });
        }
    }

    /// Shuts every instance down and waits for the last notify scripts.
    async fn stop(mut self, events: &mpsc::UnboundedSender<Event>) {
        let now = Instant::now();
        for i in 0..self.instances.len() {
            let actions = self.instances[i].machine.shutdown();
            let changes = self.instances[i].carry_out(actions, now).await;
            for c in changes {
                self.report(i, c.to, events);
            }
        }
        let Engine {
            notices, notifier, ..
        } = self;
        drop(notices);
        if let Err(e) = notifier.await {
            warn!("notify runner ended abnormally: {e}");
        }
    }
}

/// What notify scripts are told of a state; Initialize is reached only by stopping.
fn reported(state: State) -> Option<Reported> {
    Some(match state {
        State::Master => Reported::Master,
        State::Backup => Reported::Backup,
        State::Fault => Reported::Fault,
        State::Initialize => Reported::Stop,
    })
}

/// Registers a receiving socket with the reactor.
fn async_fd(rx: Receiver) -> std::io::Result<AsyncFd<Receiver>> {
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
    while let Some(link) = links.next().await {
        if tx.send(Input::Link(link)).is_err() {
            return;
        }
    }
    warn!("Link monitor ended: link changes are no longer tracked");
}
