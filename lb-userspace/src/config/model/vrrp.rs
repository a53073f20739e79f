//! VRRP: `vrrp_instance`, `vrrp_sync_group`, `vrrp_script`, `track_file`, `vrrp_track_process`.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use serde::Serialize;

use super::{Command, Family, Named, Pos};

/// A virtual router identifier, 1–255.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Vrid(u8);

impl Vrid {
    pub const fn new(vrid: u8) -> Option<Self> {
        if vrid == 0 { None } else { Some(Self(vrid)) }
    }

    pub const fn get(self) -> u8 {
        self.0
    }
}

impl std::fmt::Display for Vrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A configured VRRP priority, 1–255. 255 means this router owns the virtual addresses;
/// 0 is never configured (it is what a master sends when it resigns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Priority(u8);

impl Priority {
    pub const OWNER: Priority = Priority(255);
    /// keepalived's priority for a BACKUP instance that sets none.
    pub const DEFAULT: Priority = Priority(100);

    pub const fn new(priority: u8) -> Option<Self> {
        if priority == 0 {
            None
        } else {
            Some(Self(priority))
        }
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    pub const fn is_owner(self) -> bool {
        self.0 == 255
    }
}

/// The VRRP protocol version an instance speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum VrrpVersion {
    /// RFC 3768: whole-second advert intervals, IPv4 only, optional authentication.
    #[default]
    #[serde(rename = "2")]
    V2,
    /// RFC 5798: centisecond advert intervals, IPv4 and IPv6.
    #[serde(rename = "3")]
    V3,
}

impl VrrpVersion {
    pub const fn number(self) -> u8 {
        match self {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        }
    }
}

/// `state`: the state an instance starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InitialState {
    Master,
    Backup,
}

/// `authentication { auth_type }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthType {
    /// Simple text password in the advert.
    Pass,
    /// IPsec AH.
    Ah,
}

/// VRRPv2 authentication. VRRPv3 has none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Authentication {
    pub pos: Pos,
    pub auth_type: AuthType,
    /// At most [`Authentication::MAX_PASSWORD`] bytes, as keepalived truncates it.
    pub password: String,
}

impl Authentication {
    pub const MAX_PASSWORD: usize = 8;
}

/// `scope` of an address, as `ip address add ... scope` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
    /// A numeric scope from rt_scopes.
    Other(u8),
}

impl Scope {
    /// The kernel's `rtm_scope` value.
    pub const fn number(self) -> u8 {
        match self {
            Scope::Global => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
            Scope::Nowhere => 255,
            Scope::Other(n) => n,
        }
    }
}

/// `brd` of an IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Broadcast {
    Addr(std::net::Ipv4Addr),
    /// `brd +`: host bits set.
    Plus,
    /// `brd -`: host bits clear.
    Minus,
}

/// `preferred_lft` of an IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PreferredLifetime {
    Seconds(u32),
    Forever,
}

/// One line of `virtual_ipaddress` or `virtual_ipaddress_excluded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VirtualAddress {
    pub pos: Pos,
    pub addr: IpAddr,
    /// Defaults to a host prefix (32 or 128).
    pub prefix_len: u8,
    /// The interface to add it on; the instance's interface when `None`.
    pub dev: Option<String>,
    pub label: Option<String>,
    pub scope: Option<Scope>,
    pub broadcast: Option<Broadcast>,
    pub peer: Option<IpAddr>,
    /// Deleting the address does not take the instance out of MASTER.
    pub no_track: bool,
    pub home: bool,
    pub nodad: bool,
    pub mngtmpaddr: bool,
    pub noprefixroute: bool,
    pub autojoin: bool,
    pub preferred_lft: Option<PreferredLifetime>,
}

impl VirtualAddress {
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}

/// A tracking weight: how much an up (positive) or down (negative) tracked object moves
/// the priority, or 0 for "fault when down".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct TrackWeight {
    pub weight: i32,
    /// `reverse`: the adjustment applies in the opposite direction.
    pub reverse: bool,
}

/// A `track_interface` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackedInterface {
    pub pos: Pos,
    pub name: String,
    pub weight: TrackWeight,
}

/// A `track_script`, `track_file` or `track_process` line: a reference by name, with an
/// optional weight overriding the tracked object's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackRef {
    pub pos: Pos,
    pub name: String,
    pub weight: Option<TrackWeight>,
}

/// What an instance or sync group tracks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tracking {
    pub interfaces: Vec<TrackedInterface>,
    pub scripts: Vec<TrackRef>,
    pub files: Vec<TrackRef>,
    pub processes: Vec<TrackRef>,
    pub bfds: Vec<TrackRef>,
}

/// Scripts run on state changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Notify {
    pub master: Option<Command>,
    pub backup: Option<Command>,
    pub fault: Option<Command>,
    pub stop: Option<Command>,
    /// `notify_deleted`: report DELETED instead of FAULT; the script is optional.
    pub deleted: Option<Option<Command>>,
    /// `notify`: run on every transition with "INSTANCE|GROUP" NAME STATE PRIORITY appended.
    pub any: Option<Command>,
    pub master_rx_lower_pri: Option<Command>,
    pub priority_changes: bool,
}

/// `unicast_peer` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnicastPeer {
    pub pos: Pos,
    pub addr: IpAddr,
    pub min_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
}

/// Gratuitous ARP / unsolicited NA behaviour, per instance (defaults from `global_defs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Garp {
    /// Delay after becoming MASTER before the second burst.
    pub master_delay: Duration,
    /// How many GARPs per burst on becoming MASTER.
    pub master_repeat: u32,
    /// Interval of periodic GARPs while MASTER; `None` sends none.
    pub master_refresh: Option<Duration>,
    pub master_refresh_repeat: u32,
    /// Delay before GARPs after a lower-priority advert is received while MASTER.
    pub lower_prio_delay: Duration,
    pub lower_prio_repeat: u32,
}

impl Default for Garp {
    /// keepalived's defaults.
    fn default() -> Self {
        Self {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
        }
    }
}

/// `vrrp_instance NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VrrpInstance {
    pub pos: Pos,
    pub name: String,
    /// Resolved: MASTER when configured so, or when the priority is 255.
    pub state: InitialState,
    /// The interface adverts are sent on; optional only for unicast instances.
    pub interface: Option<Named>,
    pub vrid: Vrid,
    /// Resolved: 255 for a MASTER that sets none, 100 otherwise.
    pub priority: Priority,
    /// Resolved against the version: whole seconds for v2, centiseconds for v3.
    pub advert_int: Duration,
    /// Resolved: `version`, or 3 for IPv6, or `global_defs`'s `vrrp_version`.
    pub version: VrrpVersion,
    /// Resolved from the virtual addresses (IPv4 when there are none).
    pub family: Family,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddresses: Vec<VirtualAddress>,
    /// Added and removed with the instance but not carried in adverts.
    pub virtual_ipaddresses_excluded: Vec<VirtualAddress>,
    pub track: Tracking,
    /// Do not go to FAULT when `interface` goes down.
    pub dont_track_primary: bool,
    /// Source address of adverts (`mcast_src_ip` or `unicast_src_ip`).
    pub src_ip: Option<IpAddr>,
    /// Unicast adverts to these peers instead of multicast when not empty.
    pub unicast_peers: Vec<UnicastPeer>,
    pub unicast_ttl: Option<u8>,
    /// Only accept unicast adverts from configured peers.
    pub check_unicast_src: bool,
    /// `mcast_dst_ip`; `global_defs`' group when `None`.
    pub mcast_dst_ip: Option<IpAddr>,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub garp: Garp,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    pub skip_check_adv_addr: bool,
    pub strict_mode: bool,
    /// Accept mode: answer traffic to the VIPs when not address owner.
    pub accept: bool,
    pub promote_secondaries: bool,
    /// Master-down timer in advert intervals (3 per the RFCs).
    pub down_timer_adverts: u8,
    pub notify: Notify,
    pub smtp_alert: bool,
}

impl VrrpInstance {
    /// Unicast adverts are used when peers are configured.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }
}

/// `vrrp_sync_group NAME { ... }`: instances that change state together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VrrpSyncGroup {
    pub pos: Pos,
    pub name: String,
    pub members: Vec<Named>,
    pub track: Tracking,
    pub notify: Notify,
    pub smtp_alert: bool,
    /// `sync_group_tracking_weight` (or the deprecated `global_tracking`): members keep
    /// their own tracking weights instead of having them zeroed.
    pub tracking_weight: bool,
}

/// `vrrp_script NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VrrpScript {
    pub pos: Pos,
    pub name: String,
    pub command: Command,
    pub interval: Duration,
    /// How long a run may take before it counts as failed; `interval` when `None`.
    pub timeout: Option<Duration>,
    pub weight: TrackWeight,
    /// Successes needed to count as up.
    pub rise: u32,
    /// Failures needed to count as down.
    pub fall: u32,
    /// The script starts in the failed state.
    pub init_fail: bool,
}

/// `track_file NAME { ... }` (old name `vrrp_track_file`): a file holding a number that
/// moves the priority of instances tracking it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackFile {
    pub pos: Pos,
    pub name: String,
    pub file: PathBuf,
    pub weight: TrackWeight,
    /// `init_file [VALUE] [overwrite]`: create the file with VALUE at start.
    pub init: Option<TrackFileInit>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackFileInit {
    pub value: i64,
    pub overwrite: bool,
}

/// `vrrp_track_process NAME { ... }`: read so that references resolve; xlb does not
/// track processes yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackProcess {
    pub pos: Pos,
    pub name: String,
    /// The process name or path, with its parameters when given.
    pub process: Vec<String>,
    pub weight: TrackWeight,
    pub quorum: u32,
    pub quorum_max: Option<u32>,
}
