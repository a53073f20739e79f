//! The control socket: how `xlb status` (and tests, and the demo) ask a running agent what
//! it is doing.
//!
//! One JSON request per line on a Unix socket in the run directory, one JSON reply per
//! line. The agent answers from its own state and the data plane's counters, and opens the
//! socket only once it is running (data plane attached, first plan applied): a status that
//! answers is one that forwards.

mod client;
mod display;
mod server;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use lb_common::stats::Counters;
use serde::{Deserialize, Serialize};

pub use self::{
    client::{CtlError, status},
    server::{Pending, Server},
};
use crate::config::{ForwardMethod, Protocol, Scheduler};

/// Where the agent listens, inside its run directory.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join("xlb.sock")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Status(Status),
    Error(String),
}

/// A running agent's view of its services.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    /// Interfaces the XDP program is attached to.
    pub interfaces: Vec<String>,
    pub services: Vec<ServiceStatus>,
    /// Packets the data plane passed or dropped, by reason, and how it forwarded the rest.
    pub events: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub addr: SocketAddr,
    /// False while VRRP has another director serve the VIP.
    pub active: bool,
    pub protocol: Protocol,
    pub scheduler: Scheduler,
    pub method: ForwardMethod,
    pub counters: Counters,
    pub reals: Vec<RealStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RealStatus {
    pub addr: SocketAddr,
    pub weight: u32,
    pub healthy: bool,
    pub counters: Counters,
    /// Connections as the least-connection schedulers count them (ipvsadm's ActiveConn
    /// and InActConn); zero under the other schedulers, which do not count.
    #[serde(default)]
    pub conns: ConnCounts,
}

/// A real's connections, as IPVS splits them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnCounts {
    pub active: u32,
    pub inactive: u32,
}
