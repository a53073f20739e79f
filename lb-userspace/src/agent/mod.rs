//! The agent: one event loop owns the desired state, folds every event (a checker's verdict,
//! a VRRP state change, a reload, a control request) into a new [`Plan`] and hands it to the
//! data plane.

mod attach;
mod health;
mod ownership;
mod status;
mod systemd;

use std::{collections::HashSet, net::IpAddr, path::PathBuf, time::Instant};

use anyhow::{Context as _, anyhow};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
    task::JoinSet,
};
use tracing::{error, info, warn};

use self::{health::Health, ownership::Ownership, systemd::Notifier};
use crate::{
    check,
    config::{self, Config, Diagnostics, RealKey, ServiceTarget, Weight},
    ctl,
    dataplane::{
        Conditions, Driver, DriverError, Plan, Stats,
        xdp::{self, Mode},
    },
    vrrp,
};

/// How `xlb run` was asked to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub config: PathBuf,
    /// keepalived's `--config-id`: which `@id` lines apply to this host.
    pub config_id: Option<String>,
    pub interfaces: Vec<String>,
    /// Per-instance state (control socket), so several agents can share a host.
    pub run_dir: PathBuf,
    pub xdp_mode: Mode,
    /// Flow-table size; the data plane's default when `None`.
    pub flows: Option<u32>,
    /// Outer sources of tunnelled packets, at most one per family; the route's source
    /// address for a family without one.
    pub tunnel_sources: Vec<xdp::TunnelPrefix>,
    /// What becomes of flows whose real is removed.
    pub nodest: xdp::Nodest,
    /// Where the data plane is pinned, and adopted from.
    pub pin_dir: PathBuf,
    /// Whether a stop leaves the data plane forwarding.
    pub keep_dataplane: bool,
}

/// Runs until SIGTERM or SIGINT; SIGHUP reloads the configuration.
///
/// Whatever start-up cannot do ends it with an error. Only once the data plane is attached,
/// the first plan applied and VRRP and the checkers started does the control socket answer
/// and the service manager hear READY=1: what answers is what forwards.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let notifier = Notifier::from_env();
    let config = load(&options)?;
    std::fs::create_dir_all(&options.run_dir)
        .with_context(|| format!("creating run directory {}", options.run_dir.display()))?;

    let (resolve_tx, resolve_rx) = mpsc::channel(64);
    let dataplane = if options.interfaces.is_empty() {
        // VRRP alone: nothing to forward, so no program to load (and wait for the verifier).
        None
    } else {
        Some(Box::new(attach::start(&options, resolve_rx)?) as Box<dyn Driver>)
    };

    let mut agent = Agent {
        ownership: Ownership::new(&config),
        options,
        config,
        health: Health::default(),
        dataplane,
        checkers: JoinSet::new(),
        resolve: resolve_tx,
    };
    let (transitions_tx, mut transitions) = mpsc::channel(256);
    agent
        .start(&transitions_tx)
        .await
        .context("applying the configuration to the XDP data plane")?;
    // After the first plan, which needs no VRRP state (VIPs start on standby), so that a
    // refused plan leaves no VRRP instance to stop. Started without instances too, for a
    // reload to add some.
    let (vrrp, mut vrrp_events) = vrrp::start(&agent.config).await.context("starting VRRP")?;

    let (requests_tx, mut requests) = mpsc::channel(16);
    let _server = ctl::Server::start(ctl::socket_path(&agent.options.run_dir), requests_tx)
        .context("starting the control socket")?;
    // Before READY=1, so that whoever waited for it may signal at once.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    info!("Startup complete");
    notifier.ready();
    // Interfaces are looked at every second: one that was deleted and has come back gets
    // the balancer again.
    let mut interfaces = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = interfaces.tick() => agent.follow_interfaces(),
            Some(transition) = transitions.recv() => agent.health_changed(transition),
            Some(event) = vrrp_events.recv() => agent.vrrp_changed(&event),
            Some(pending) = requests.recv() => {
                let _ = pending.reply.send(agent.respond(&pending.request));
            }
            _ = hangup.recv() => {
                notifier.reloading();
                agent.reload(&transitions_tx, &vrrp).await;
                notifier.ready();
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    info!("Stopping");
    notifier.stopping();
    vrrp.shutdown().await;
    agent.checkers.shutdown().await;
    if let Some(dataplane) = agent.dataplane.take() {
        dataplane
            .shut_down(agent.options.keep_dataplane)
            .context("stopping the data plane")?;
    }
    Ok(())
}

struct Agent {
    options: Options,
    config: Config,
    health: Health,
    ownership: Ownership,
    /// `None` for VRRP alone (no `--interface`).
    dataplane: Option<Box<dyn Driver>>,
    checkers: JoinSet<()>,
    resolve: mpsc::Sender<Vec<IpAddr>>,
}

/// The agent's view of the world as the plan needs it.
struct View<'a> {
    health: &'a Health,
    ownership: &'a Ownership,
}

impl Conditions for View<'_> {
    fn healthy(&self, real: &RealKey) -> bool {
        self.health.is_up(real)
    }

    fn serves(&self, vip: IpAddr) -> bool {
        self.ownership.serves(vip)
    }

    fn weight(&self, real: &RealKey, configured: Weight) -> Weight {
        self.health.weight(real, configured)
    }
}

impl Agent {
    /// Starts the current configuration's checkers and applies it, with the verdicts the
    /// checkers start from (reals under `alpha` start down). A plan the data plane refuses
    /// is left to the caller: fatal at start-up, logged on reload.
    async fn start(
        &mut self,
        transitions: &mpsc::Sender<check::Transition>,
    ) -> Result<(), DriverError> {
        let health = &self.health;
        let starting = check::spawn_all(
            &self.config,
            |id| health.verdict(&id),
            &mut self.checkers,
            transitions,
        );
        for transition in starting {
            self.health.record(transition);
        }
        let applied = self.apply();
        let reals: HashSet<IpAddr> = self
            .config
            .virtual_servers
            .iter()
            .flat_map(|vs| vs.real_servers.iter().map(|rs| rs.addr.ip()))
            .collect();
        let _ = self.resolve.send(reals.into_iter().collect()).await;
        applied
    }

    fn plan(&self) -> Plan {
        Plan::new(
            &self.config,
            &View {
                health: &self.health,
                ownership: &self.ownership,
            },
        )
    }

    /// Hands the current plan to the data plane. A failure leaves the data plane as it was
    /// (still forwarding).
    fn apply(&mut self) -> Result<(), DriverError> {
        let plan = self.plan();
        match &mut self.dataplane {
            Some(dataplane) => dataplane.apply(&plan),
            None => Ok(()),
        }
    }

    /// [`Agent::apply`] after an event: a failure is logged, and the next event tries again.
    fn update(&mut self) {
        if let Err(err) = self.apply() {
            log_refused(err);
        }
    }

    /// Attaches the data plane again to the interfaces that came back.
    fn follow_interfaces(&mut self) {
        let Some(dataplane) = &mut self.dataplane else {
            return;
        };
        match dataplane.follow_interfaces() {
            Ok(returned) => {
                for interface in returned {
                    info!("Interface {interface} is back: XDP balancer attached again");
                }
            }
            Err(err) => error!("Following the interfaces: {:#}", anyhow::Error::from(err)),
        }
    }

    /// Follows a checker's new verdict: logs what it changes for its real as keepalived
    /// does, runs the real's `notify_up` / `notify_down`, and applies the new plan.
    fn health_changed(&mut self, transition: check::Transition) {
        let id = transition.id;
        let Some(rs) = self.real_server(&id).cloned() else {
            return;
        };
        let real = id.real;
        let service = real.service;
        let weight_before = self.health.weight(&real, rs.weight);
        let changed = self.health.record(transition);
        let weight_after = self.health.weight(&real, rs.weight);
        if let Some(up) = changed {
            // keepalived's wording: inhibited reals are enabled and disabled, others
            // added and removed (xlb keeps the flows of either).
            let (verb, prep) = match (up, rs.inhibit_on_failure) {
                (true, false) => ("Adding", "to"),
                (false, false) => ("Removing", "from"),
                (true, true) => ("Enabling", "of"),
                (false, true) => ("Disabling", "of"),
            };
            info!("{verb} service {real} {prep} VS {service}");
            let notify = if up { &rs.notify_up } else { &rs.notify_down };
            if let Some(command) = notify {
                self.notify(command);
            }
        }
        if weight_before != weight_after {
            info!(
                "Changing weight from {} to {} for {}active service {real} of VS {service}",
                weight_before.get(),
                weight_after.get(),
                if self.health.is_up(&real) { "" } else { "in" }
            );
        }
        if changed.is_some() || weight_before != weight_after {
            self.update();
        }
    }

    /// The configuration of the real a checker checks.
    fn real_server(&self, id: &check::CheckId) -> Option<&config::RealServer> {
        self.config
            .virtual_servers
            .iter()
            .filter(|vs| vs.key() == Some(id.real.service))
            .flat_map(|vs| &vs.real_servers)
            .find(|rs| rs.addr == id.real.addr)
    }

    /// Runs a real's notify script in the background, as keepalived does.
    fn notify(&self, command: &config::Command) {
        match check::script::Script::new(command, &self.config.global) {
            Ok(script) => {
                tokio::spawn(async move {
                    match script.run(None).await {
                        Ok(check::script::Ending::Exited(0)) => {}
                        Ok(ending) => warn!("notify script {} {ending}", script.program()),
                        Err(err) => warn!("cannot run notify script {}: {err}", script.program()),
                    }
                });
            }
            Err(err) => warn!(
                "{}: notify script {} not run: {err}",
                command.pos,
                command.program()
            ),
        }
    }

    fn vrrp_changed(&mut self, event: &vrrp::Event) {
        if self.ownership.record(event) {
            self.update();
        }
    }

    /// Re-reads the configuration and applies all of it, as keepalived does on SIGHUP: VRRP
    /// instances that did not change carry on untouched and the others change in place or
    /// restart ([`vrrp::Handle::reload`]), virtual servers are applied as a new plan, and
    /// checkers restart with their last verdicts kept. A configuration that cannot be read,
    /// or whose VRRP part cannot run on this host, leaves everything as it was.
    async fn reload(&mut self, transitions: &mpsc::Sender<check::Transition>, vrrp: &vrrp::Handle) {
        let began = Instant::now();
        info!("Reloading configuration {}", self.options.config.display());
        let config = match load(&self.options) {
            Ok(config) => config,
            Err(err) => {
                error!("Keeping the running configuration: {err:#}");
                return;
            }
        };
        let spec = match vrrp::resolve(&config).await {
            Ok(spec) => spec,
            Err(err) => {
                error!("Keeping the running configuration: {err}");
                return;
            }
        };
        // Before the instances' events, which are read once the reload is done.
        self.ownership.reconfigure(&config);
        vrrp.reload(spec).await;
        self.checkers.shutdown().await;
        self.config = config;
        self.health.retain(&self.config);
        if let Err(err) = self.start(transitions).await {
            log_refused(err);
        }
        info!("Reload finished in {:?}", began.elapsed());
    }

    fn respond(&self, request: &ctl::Request) -> ctl::Response {
        match request {
            ctl::Request::Status => match self
                .dataplane
                .as_ref()
                .map_or(Ok(Stats::default()), |dataplane| dataplane.stats())
            {
                Ok(stats) => ctl::Response::Status(status::build(
                    &self.plan(),
                    &stats,
                    &self.options.interfaces,
                )),
                Err(err) => ctl::Response::Error(format!("reading counters: {err}")),
            },
        }
    }
}

/// Logs a plan the data plane refused, which keeps forwarding as it was.
fn log_refused(err: DriverError) {
    error!("Updating {:#}", anyhow::Error::from(err));
}

/// Reads the configuration and checks that the XDP data plane can honour all of it.
fn load(options: &Options) -> anyhow::Result<Config> {
    let read = config::Options {
        config_id: options.config_id.clone(),
    };
    let loaded = config::load_with(&options.config, &read).map_err(report)?;
    for warning in loaded.warnings.iter() {
        warn!("{warning}");
    }
    let mut diags = Diagnostics::default();
    check_support(&loaded.config, &mut diags);
    if let (Some(vs), true) = (
        loaded.config.virtual_servers.first(),
        options.interfaces.is_empty(),
    ) {
        diags.error(
            &vs.pos,
            "virtual servers need an interface to forward on: pass --interface",
        );
    }
    if diags.has_errors() {
        return Err(report(diags));
    }
    Ok(loaded.config)
}

/// Reports, as errors at their lines, what in `config` this xlb cannot honour: what
/// `xlb run` refuses to start with, and what `xlb check` warns an operator of beforehand.
pub fn check_support(config: &Config, diags: &mut Diagnostics) {
    for vs in &config.virtual_servers {
        if !matches!(vs.target, ServiceTarget::Addr(_)) {
            diags.error(
                &vs.pos,
                "only address:port services are supported by the XDP data plane yet",
            );
        }
        if let Err(reason) = xdp::supports(vs.scheduler)
            .and_then(|()| xdp::supports_reals(vs.scheduler, vs.real_servers.len()))
        {
            diags.error(&vs.pos, reason);
        }
        if vs.persistence.as_ref().is_some_and(|p| p.engine.is_some()) {
            diags.error(
                &vs.pos,
                "persistence_engine is not supported by the XDP data plane",
            );
        }
    }
    check::supports(config, diags);
}

/// Logs every diagnostic at its level and sums them up as one error.
fn report(diags: Diagnostics) -> anyhow::Error {
    let mut errors = 0;
    for d in diags.iter() {
        match d.severity {
            config::Severity::Error => {
                errors += 1;
                error!("{d}");
            }
            config::Severity::Warning => warn!("{d}"),
        }
    }
    anyhow!("the configuration has {errors} error(s); not starting")
}
