//! The agent: one event loop owns the desired state, folds every event (a checker's verdict,
//! a reload, a control request) into a new [`Plan`] and hands it to the data plane.

mod health;
mod status;

use std::{collections::HashSet, net::IpAddr, path::PathBuf};

use anyhow::{Context as _, anyhow};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
    task::JoinSet,
};
use tracing::{error, info, warn};

use self::health::Health;
use crate::{
    check,
    config::{self, Config, Diagnostics, ServiceTarget},
    ctl,
    dataplane::{
        Plan,
        xdp::{self, Mode, XdpDataPlane, neigh},
    },
};

/// How `xlb run` was asked to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub config: PathBuf,
    pub interfaces: Vec<String>,
    /// Per-instance state (control socket), so several agents can share a host.
    pub run_dir: PathBuf,
    pub xdp_mode: Mode,
    /// Flow-table size; the data plane's default when `None`.
    pub flows: Option<u32>,
}

/// Runs until SIGTERM or SIGINT; SIGHUP reloads the configuration.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let config = load(&options.config)?;
    std::fs::create_dir_all(&options.run_dir)
        .with_context(|| format!("creating run directory {}", options.run_dir.display()))?;

    let mut dataplane = XdpDataPlane::load(options.flows).context("loading the XDP data plane")?;
    for interface in &options.interfaces {
        dataplane.attach(interface, options.xdp_mode)?;
    }
    let (resolve_tx, resolve_rx) = mpsc::channel(64);
    let misses = dataplane
        .take_neigh_misses()?
        .context("neighbour ring already taken")?;
    let resolver = neigh::Resolver::new().context("opening a netlink socket")?;
    tokio::spawn(neigh::serve(misses, resolver, resolve_rx));

    let (requests_tx, mut requests) = mpsc::channel(16);
    let _server = ctl::Server::start(ctl::socket_path(&options.run_dir), requests_tx)
        .context("starting the control socket")?;

    let mut agent = Agent {
        options,
        config,
        health: Health::default(),
        dataplane,
        checkers: JoinSet::new(),
        resolve: resolve_tx,
    };
    let (transitions_tx, mut transitions) = mpsc::channel(256);
    agent.start(&transitions_tx).await?;

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            Some(transition) = transitions.recv() => agent.health_changed(transition)?,
            Some(pending) = requests.recv() => {
                let _ = pending.reply.send(agent.respond(&pending.request));
            }
            _ = hangup.recv() => agent.reload(&transitions_tx).await,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    info!("Stopping");
    agent.checkers.shutdown().await;
    Ok(())
}

struct Agent {
    options: Options,
    config: Config,
    health: Health,
    dataplane: XdpDataPlane,
    checkers: JoinSet<()>,
    resolve: mpsc::Sender<Vec<IpAddr>>,
}

impl Agent {
    /// Applies the current configuration and starts its checkers.
    async fn start(&mut self, transitions: &mpsc::Sender<check::Transition>) -> anyhow::Result<()> {
        self.apply()?;
        let reals: HashSet<IpAddr> = self
            .config
            .virtual_servers
            .iter()
            .flat_map(|vs| vs.real_servers.iter().map(|rs| rs.addr.ip()))
            .collect();
        let _ = self.resolve.send(reals.into_iter().collect()).await;
        let health = &self.health;
        check::spawn_all(
            &self.config,
            |id| !health.is_down(&id),
            &mut self.checkers,
            transitions,
        );
        Ok(())
    }

    fn plan(&self) -> Plan {
        Plan::new(&self.config, |service, real| {
            self.health.is_up(service, real)
        })
    }

    fn apply(&mut self) -> anyhow::Result<()> {
        let plan = self.plan();
        self.dataplane
            .apply(&plan)
            .context("updating the XDP data plane")
    }

    fn health_changed(&mut self, transition: check::Transition) -> anyhow::Result<()> {
        let id = transition.id;
        if let Some(up) = self.health.record(transition) {
            let verb = if up {
                "Adding service"
            } else {
                "Removing service"
            };
            let prep = if up { "to" } else { "from" };
            info!(
                "{verb} [{}]:{}:{} {prep} VS {}",
                id.real.ip(),
                id.service.protocol,
                id.real.port(),
                id.service
            );
            self.apply()?;
        }
        Ok(())
    }

    /// Re-reads the configuration; on error the running one stays, on success only what
    /// changed is applied and checkers restart with their last verdicts kept.
    async fn reload(&mut self, transitions: &mpsc::Sender<check::Transition>) {
        info!("Reloading configuration {}", self.options.config.display());
        let config = match load(&self.options.config) {
            Ok(config) => config,
            Err(err) => {
                error!("Keeping the running configuration: {err:#}");
                return;
            }
        };
        self.checkers.shutdown().await;
        self.config = config;
        self.health.retain(&self.config);
        if let Err(err) = self.start(transitions).await {
            error!("Applying the reloaded configuration: {err:#}");
        }
    }

    fn respond(&self, request: &ctl::Request) -> ctl::Response {
        match request {
            ctl::Request::Status => match self.dataplane.stats() {
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

/// Reads the configuration and checks that the XDP data plane can honour all of it.
fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    let loaded = config::load(path).map_err(report)?;
    for warning in loaded.warnings.iter() {
        warn!("{warning}");
    }
    let mut diags = Diagnostics::default();
    for vs in &loaded.config.virtual_servers {
        if !matches!(vs.target, ServiceTarget::Addr(_)) {
            diags.error(
                &vs.pos,
                "only address:port services are supported by the XDP data plane yet",
            );
        }
        if let Err(reason) = xdp::supports(vs.scheduler, vs.method) {
            diags.error(&vs.pos, reason);
        }
    }
    if diags.has_errors() {
        return Err(report(diags));
    }
    Ok(loaded.config)
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
