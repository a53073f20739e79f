//! The typed configuration every subsystem takes its settings from.
//!
//! Values are what keepalived means by them (durations, addresses, enums), each with the
//! position it was read from so that later stages can point at the line they cannot honour.
//! Defaults that keepalived derives (an instance's VRRP version from its addresses, its
//! priority from its initial state, GARP settings from `global_defs`) are already resolved,
//! so consumers never re-implement keepalived's defaulting rules.

mod global;
mod identity;
mod lvs;
mod vrrp;

use std::net::IpAddr;

use serde::Serialize;

pub use global::{GlobalDefs, LvsTimeouts, NotifyFifo};
pub use identity::{RealKey, ServiceKey};
pub use lvs::*;
pub use vrrp::*;

use super::diag::Pos;

/// A whole keepalived.conf.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Config {
    pub global: GlobalDefs,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub track_files: Vec<TrackFile>,
    pub track_processes: Vec<TrackProcess>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub vrrp_sync_groups: Vec<VrrpSyncGroup>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
}

impl Config {
    pub fn vrrp_script(&self, name: &str) -> Option<&VrrpScript> {
        self.vrrp_scripts.iter().find(|s| s.name == name)
    }

    pub fn track_file(&self, name: &str) -> Option<&TrackFile> {
        self.track_files.iter().find(|f| f.name == name)
    }

    pub fn vrrp_instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp_instances.iter().find(|i| i.name == name)
    }

    pub fn virtual_server_group(&self, name: &str) -> Option<&VirtualServerGroup> {
        self.virtual_server_groups.iter().find(|g| g.name == name)
    }

    /// The concrete addresses and firewall marks a service matches: its own address or
    /// mark, or every entry of its `virtual_server_group` with ranges expanded.
    pub fn service_endpoints(&self, vs: &VirtualServer) -> Vec<ServiceEndpoint> {
        match &vs.target {
            ServiceTarget::Addr(addr) => vec![ServiceEndpoint::Addr(*addr)],
            ServiceTarget::Fwmark(mark) => vec![ServiceEndpoint::Fwmark(*mark)],
            ServiceTarget::Group(name) => self
                .virtual_server_group(name)
                .map(|group| group.endpoints().collect())
                .unwrap_or_default(),
        }
    }
}

/// A name with where it was written, for references between blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Named {
    pub pos: Pos,
    pub name: String,
}

/// IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// A command keepalived would run: a notify script, a `vrrp_script`, a MISC_CHECK.
///
/// keepalived splits the quoted command like a shell does (quotes, backslash escapes), and
/// words after it name the user and group to run it as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Command {
    pub pos: Pos,
    /// Program and arguments; never empty.
    pub argv: Vec<String>,
    /// Who runs it; `None` means `global_defs`'s `script_user`, or keepalived's default.
    pub user: Option<ScriptUser>,
}

impl Command {
    pub fn program(&self) -> &str {
        &self.argv[0]
    }
}

/// `USERNAME [GROUPNAME]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}
