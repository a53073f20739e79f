//! VRRP (RFC 3768 v2, RFC 5798 v3), interoperable with keepalived.
//!
//! The public face is [`start`]: it resolves the configuration's instances against the
//! host, runs them, and reports every state change as an [`Event`]; the [`Handle`] takes a
//! reloaded configuration ([`resolve`]d first) as keepalived does on SIGHUP, and stops them
//! as keepalived does on SIGTERM. The modules below are public so tests and benchmarks can
//! drive the pieces (codec, state machine, engine) directly.

pub mod accept;
pub mod announce;
pub mod engine;
pub mod fsm;
pub mod garp;
pub mod instance;
pub mod notify;
pub mod packet;
pub mod plan;
pub mod script;
pub mod socket;
pub mod track;
pub mod types;

pub use engine::{Event, Handle, Spec};
pub use fsm::State;
pub use types::{AdvertInterval, Priority, Version, Vrid};

use tokio::sync::mpsc;

use crate::{config::Config, net};

/// Why VRRP could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error("opening VRRP sockets: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Net(#[from] net::Error),
}

/// Starts every `vrrp_instance` of `config`, in the network namespace the instances'
/// interfaces live in.
pub async fn start(
    config: &Config,
) -> Result<(Handle, mpsc::UnboundedReceiver<Event>), StartError> {
    let netlink = net::Netlink::open()?;
    let spec = plan::resolve(config, &netlink).await?;
    engine::start(spec, netlink).await
}

/// What `config`'s VRRP part is on this host, for [`Handle::reload`]: an error leaves
/// nothing to apply, so the running instances stay as they are.
pub async fn resolve(config: &Config) -> Result<Spec, StartError> {
    let netlink = net::Netlink::open()?;
    Ok(plan::resolve(config, &netlink).await?)
}
