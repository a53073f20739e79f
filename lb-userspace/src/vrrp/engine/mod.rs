//! The event loop that runs every instance: one task owns all state machines, fed by
//! socket readers, the link monitor and tracking tasks, by its own timers, and by reloads.

mod links;
mod reload;
mod tasks;

use std::{
    collections::HashMap,
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use self::tasks::{Input, Listen, Tasks};
use super::{
    StartError,
    accept::{Reject, Rejections},
    fsm::State,
    instance::{Change, Instance, Plan},
    notify::{self, Notice, Reported, Scripts},
    script::{FileSpec, ScriptSpec},
    socket::Received,
    track::{self, Status, Track, Tracked, Verdict},
    types::Vrid,
};
use crate::net::{self, Netlink};

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
    pub notify_fifo: Option<PathBuf>,
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

/// What the rest of xlb follows: the data plane serves `vips` only while `state` is
/// MASTER. Sent on every state change, and when a reload changes the VIPs of an instance
/// that keeps its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub instance: String,
    pub state: State,
    pub vips: Vec<IpAddr>,
}

/// The running engine. Dropping it stops the engine as [`Handle::shutdown`] does, without
/// waiting.
pub struct Handle {
    reloads: mpsc::UnboundedSender<(Spec, oneshot::Sender<()>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Runs `spec` from now on, as keepalived reloads: instances matched by name keep
    /// their state unless what names their virtual router changed (engine/reload.rs says
    /// what carries over). Returns once it is applied.
    pub async fn reload(&self, spec: Spec) {
        let (done, applied) = oneshot::channel();
        if self.reloads.send((spec, done)).is_ok() {
            let _ = applied.await;
        }
    }

    /// Stops every instance as keepalived does on SIGTERM: masters send priority 0,
    /// VIPs are removed, notify_stop runs. Returns once all of that is done.
    pub async fn shutdown(self) {
        let Handle { reloads, task } = self;
        drop(reloads);
        if let Err(e) = task.await {
            warn!("VRRP engine ended abnormally: {e}");
        }
    }
}

/// Opens every socket and starts the engine, changing addresses through `netlink`; events
/// arrive on the returned channel.
pub async fn start(
    spec: Spec,
    netlink: Netlink,
) -> Result<(Handle, mpsc::UnboundedReceiver<Event>), StartError> {
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let mut tasks = Tasks::new(input_tx);
    // Before the engine asks for the links' states, so no change falls in between.
    tasks.watch_links()?;
    let mut engine = Engine::new(spec, netlink, tasks).await?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (reloads_tx, reloads_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        engine.run(input_rx, reloads_rx, &events_tx).await;
        engine.stop(&events_tx).await;
    });
    Ok((
        Handle {
            reloads: reloads_tx,
            task,
        },
        events_rx,
    ))
}

/// An instance with what it tracks and whom it tells.
struct Running {
    instance: Instance,
    tracks: Vec<Track>,
    notify: Arc<Scripts>,
}

impl Running {
    fn name(&self) -> &str {
        self.instance.plan.name()
    }

    /// Where its adverts are read, while its interface exists.
    fn listen(&self) -> Option<Listen> {
        let plan = &self.instance.plan;
        self.instance.ifindex().map(|ifindex| Listen {
            ifindex,
            ifname: plan.ifname.clone(),
            v6: plan.is_v6(),
        })
    }
}

struct Group {
    name: String,
    /// Indexes in [`Engine::instances`].
    members: Vec<usize>,
    notify: Arc<Scripts>,
}

/// The queue notify scripts and the FIFO are fed through, and the runner that empties it.
struct Notifier {
    fifo: Option<PathBuf>,
    notices: mpsc::UnboundedSender<Notice>,
    runner: tokio::task::JoinHandle<()>,
}

impl Notifier {
    fn spawn(fifo: Option<PathBuf>) -> Self {
        let (notices, runner) = notify::spawn(fifo.clone());
        Self {
            fifo,
            notices,
            runner,
        }
    }

    fn send(&self, notice: Notice) {
        let _ = self.notices.send(notice);
    }

    /// Waits for the last notices to be carried out.
    async fn finish(self) {
        drop(self.notices);
        if let Err(e) = self.runner.await {
            warn!("notify runner ended abnormally: {e}");
        }
    }
}

struct Engine {
    netlink: Netlink,
    instances: Vec<Running>,
    groups: Vec<Group>,
    status: HashMap<Tracked, Status>,
    tasks: Tasks,
    notifier: Notifier,
    /// Rejections of packets for VRIDs no instance on the interface has.
    strays: HashMap<u32, Rejections>,
}

impl Engine {
    async fn new(spec: Spec, netlink: Netlink, tasks: Tasks) -> Result<Self, StartError> {
        let mut engine = Self {
            notifier: Notifier::spawn(spec.notify_fifo),
            netlink,
            instances: Vec::new(),
            groups: Vec::new(),
            status: HashMap::new(),
            tasks,
            strays: HashMap::new(),
        };
        for i in spec.instances {
            engine.learn_interfaces(&i.tracks).await?;
            engine.instances.push(engine.open(i).await?);
        }
        engine.groups = spec.sync_groups.into_iter().map(Group::from).collect();
        engine.tasks.listen(engine.listening())?;
        engine.tasks.track(&spec.scripts, &spec.files, |_| false);
        Ok(engine)
    }

    async fn open(&self, spec: InstanceSpec) -> Result<Running, StartError> {
        let rejections = Rejections::new(REJECT_LOG_PERIOD);
        Ok(Running {
            instance: Instance::open(spec.plan, rejections, self.netlink.clone()).await?,
            tracks: spec.tracks,
            notify: Arc::new(spec.notify),
        })
    }

    /// Asks for the state of the interfaces `tracks` names that the engine has not heard of
    /// yet; later changes arrive from the link monitor.
    async fn learn_interfaces(&mut self, tracks: &[Track]) -> Result<(), net::Error> {
        for t in tracks {
            if let Tracked::Interface(name) = &t.what
                && !self.status.contains_key(&t.what)
            {
                let link = self.netlink.link_state(net::index(name)?).await?;
                self.status.insert(t.what.clone(), Status::Up(link.up));
            }
        }
        Ok(())
    }

    /// Where the running instances' adverts are read.
    fn listening(&self) -> Vec<Listen> {
        self.instances.iter().filter_map(Running::listen).collect()
    }

    /// Reads adverts where the instances are now; a socket that cannot be opened is
    /// logged, and tried again the next time instances move.
    fn listen_where_bound(&mut self) {
        if let Err(e) = self.tasks.listen(self.listening()) {
            error!("{e}");
        }
    }

    async fn run(
        &mut self,
        mut inputs: mpsc::UnboundedReceiver<Input>,
        mut reloads: mpsc::UnboundedReceiver<(Spec, oneshot::Sender<()>)>,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let now = Instant::now();
        for i in 0..self.instances.len() {
            let changes = self.start_instance(i, now).await;
            self.after(i, changes, now, events).await;
        }
        loop {
            let deadline = self
                .instances
                .iter()
                .filter_map(|r| r.instance.deadline())
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                reload = reloads.recv() => match reload {
                    Some((spec, done)) => {
                        self.reload(spec, events).await;
                        let _ = done.send(());
                    }
                    None => return,
                },
                Some(input) = inputs.recv() => self.on_input(input, events).await,
                () = sleep => {
                    let now = Instant::now();
                    for i in 0..self.instances.len() {
                        let changes = self.instances[i].instance.on_timer(now).await;
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
            Input::Link(event) => self.on_link(event, now, events).await,
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
            .any(|r| r.instance.plan.settings.primary == received.src)
        {
            return;
        }
        let vrid = received.payload.get(1).copied().and_then(Vrid::new);
        let target = self.instances.iter().position(|r| {
            let plan = &r.instance.plan;
            r.instance.ifindex() == Some(ifindex)
                && Some(plan.vrid) == vrid
                && plan.is_v6() == received.src.is_ipv6()
        });
        match target {
            Some(i) => {
                let changes = self.instances[i].instance.on_packet(&received, now).await;
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

    /// Records a tracked object's new status: every interface is heard of, only those
    /// some instance tracks are kept, and a report from a script or file that a reload
    /// just stopped is too late.
    async fn track_changed(
        &mut self,
        what: Tracked,
        status: Status,
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let kept = match &what {
            Tracked::Interface(_) => self.status.contains_key(&what),
            _ => self.tasks.runs(&what),
        };
        if !kept || self.status.insert(what.clone(), status) == Some(status) {
            return;
        }
        for i in 0..self.instances.len() {
            if self.instances[i].tracks.iter().any(|t| t.what == what) {
                self.apply_tracking(i, now, events).await;
            }
        }
    }

    /// What tracking makes of instance `i`; a missing interface is a fault whatever
    /// `dont_track_primary` says, as there is nothing to send adverts on.
    fn verdict(&self, i: usize) -> Verdict {
        let running = &self.instances[i];
        let mut verdict = track::evaluate(&running.tracks, |w| self.status.get(w).copied());
        verdict.fault |= running.instance.ifindex().is_none();
        verdict
    }

    async fn apply_tracking(
        &mut self,
        i: usize,
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let verdict = self.verdict(i);
        let inst = &mut self.instances[i].instance;
        let mut actions = inst.machine.set_priority_delta(verdict.delta, now);
        actions.extend(inst.machine.set_fault(verdict.fault, now));
        let changes = inst.carry_out(actions, now).await;
        self.after(i, changes, now, events).await;
    }

    /// Takes instance `i` out of Initialize with tracking's verdict, as at start-up;
    /// returns its transitions for the caller to report.
    async fn start_instance(&mut self, i: usize, now: Instant) -> Vec<Change> {
        let verdict = self.verdict(i);
        let inst = &mut self.instances[i].instance;
        let mut actions = inst.machine.set_priority_delta(verdict.delta, now);
        actions.extend(inst.machine.set_fault(verdict.fault, now));
        actions.extend(inst.machine.start(now));
        inst.carry_out(actions, now).await
    }

    fn group_of(&self, i: usize) -> Option<usize> {
        self.groups.iter().position(|g| g.members.contains(&i))
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
            self.report(&self.instances[i], change.to, events);
            if change.to == State::Initialize {
                continue;
            }
            let Some(g) = self.group_of(i) else {
                continue;
            };
            let members = self.groups[g].members.clone();
            for &m in members.iter().filter(|&&m| m != i) {
                self.follow(m, change.to, now, events).await;
            }
            if let Some(state) = reported(change.to) {
                self.notifier.send(Notice {
                    kind: "GROUP",
                    name: self.groups[g].name.clone(),
                    state,
                    priority: 0,
                    scripts: self.groups[g].notify.clone(),
                });
            }
        }
    }

    /// Moves instance `m` into `to` because another member of its sync group went there.
    async fn follow(
        &mut self,
        m: usize,
        to: State,
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let inst = &mut self.instances[m].instance;
        let actions = inst.machine.follow(to, now);
        for c in inst.carry_out(actions, now).await {
            self.report(&self.instances[m], c.to, events);
        }
    }

    /// Tells the rest of xlb and the notify scripts that `running` is now in `to`.
    fn report(&self, running: &Running, to: State, events: &mpsc::UnboundedSender<Event>) {
        publish(running, to, events);
        if let Some(state) = reported(to) {
            self.notifier.send(Notice {
                kind: "INSTANCE",
                name: running.name().to_owned(),
                state,
                priority: running.instance.machine.priority().get(),
                scripts: running.notify.clone(),
            });
        }
    }

    /// Stops `running` as on shutdown, reporting it.
    async fn shut_down(&self, mut running: Running, events: &mpsc::UnboundedSender<Event>) {
        let actions = running.instance.machine.shutdown();
        let changes = running.instance.carry_out(actions, Instant::now()).await;
        for c in changes {
            self.report(&running, c.to, events);
        }
    }

    /// Shuts every instance down and waits for the last notify scripts.
    async fn stop(mut self, events: &mpsc::UnboundedSender<Event>) {
        self.tasks.shutdown().await;
        for running in std::mem::take(&mut self.instances) {
            self.shut_down(running, events).await;
        }
        self.notifier.finish().await;
    }
}

impl From<SyncGroupSpec> for Group {
    fn from(g: SyncGroupSpec) -> Self {
        Self {
            name: g.name,
            members: g.members,
            notify: Arc::new(g.notify),
        }
    }
}

/// Tells the rest of xlb where `running` stands, without notifying anyone.
fn publish(running: &Running, state: State, events: &mpsc::UnboundedSender<Event>) {
    let _ = events.send(Event {
        instance: running.name().to_owned(),
        state,
        vips: running.instance.plan.covered(),
    });
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
