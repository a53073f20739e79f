//! VRRP (RFC 3768 v2, RFC 5798 v3), interoperable with keepalived.

pub mod announce;
pub mod check;
pub mod engine;
pub mod fsm;
pub mod garp;
pub mod instance;
pub mod netlink;
pub mod notify;
pub mod packet;
pub mod script;
pub mod socket;
pub mod track;
pub mod types;

pub use types::{AdvertInterval, Priority, Version, Vrid};
