//! `global_defs`: settings shared by every instance and service.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Duration,
};

use serde::Serialize;

use super::{Command, Garp, Pos, ScriptUser, VrrpVersion};

/// `global_defs { ... }`. Only settings xlb acts on are typed; the rest are reported as
/// unsupported when read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    /// Version of instances that set none and have IPv4 addresses.
    pub vrrp_version: VrrpVersion,
    /// Instance defaults for `garp_*` (`vrrp_garp_*`).
    pub garp: Garp,
    /// Minimum gap between gratuitous ARPs on one interface.
    pub vrrp_garp_interval: Duration,
    /// Minimum gap between unsolicited neighbour adverts on one interface.
    pub vrrp_gna_interval: Duration,
    pub vrrp_lower_prio_no_advert: bool,
    pub vrrp_higher_prio_send_advert: bool,
    pub vrrp_check_unicast_src: bool,
    pub vrrp_skip_check_adv_addr: bool,
    pub vrrp_strict: bool,
    pub vrrp_mcast_group4: Ipv4Addr,
    pub vrrp_mcast_group6: Ipv6Addr,
    /// Refuse to run scripts that a non-root user could change (`enable_script_security`).
    pub enable_script_security: bool,
    /// Default user of scripts.
    pub script_user: Option<ScriptUser>,
    pub notify_fifo: Option<NotifyFifo>,
    pub vrrp_notify_fifo: Option<NotifyFifo>,
    pub lvs_notify_fifo: Option<NotifyFifo>,
    pub smtp_server: Option<IpAddr>,
    /// How long idle NAT connections are kept (`lvs_timeouts`).
    pub lvs_timeouts: LvsTimeouts,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        Self {
            router_id: None,
            vrrp_version: VrrpVersion::V2,
            garp: Garp::default(),
            vrrp_garp_interval: Duration::ZERO,
            vrrp_gna_interval: Duration::ZERO,
            vrrp_lower_prio_no_advert: false,
            vrrp_higher_prio_send_advert: false,
            vrrp_check_unicast_src: false,
            vrrp_skip_check_adv_addr: false,
            vrrp_strict: false,
            vrrp_mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            vrrp_mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            enable_script_security: false,
            script_user: None,
            notify_fifo: None,
            vrrp_notify_fifo: None,
            lvs_notify_fifo: None,
            smtp_server: None,
            lvs_timeouts: LvsTimeouts::default(),
        }
    }
}

/// A FIFO that state changes are written to, and the script that reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotifyFifo {
    pub pos: Pos,
    pub path: PathBuf,
    pub script: Option<Command>,
}

/// `lvs_timeouts tcp N tcpfin N udp N`: idle limits of forwarded connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LvsTimeouts {
    /// An established TCP connection.
    pub tcp: Duration,
    /// A TCP connection after FIN or RST.
    pub tcp_fin: Duration,
    pub udp: Duration,
}

impl Default for LvsTimeouts {
    /// IPVS's defaults.
    fn default() -> Self {
        Self {
            tcp: Duration::from_secs(900),
            tcp_fin: Duration::from_secs(120),
            udp: Duration::from_secs(300),
        }
    }
}
