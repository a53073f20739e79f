//! xlb: keepalived's configuration and behaviour, with an XDP data plane.
//!
//! The binary (`main.rs`) is a thin CLI over these subsystems; integration tests and the
//! xtask demo use the same library, so what they check is what ships.

pub mod agent;
pub mod check;
pub mod config;
pub mod ctl;
pub mod dataplane;
pub mod net;
pub mod realserver;
mod unsupported;
pub mod vrrp;
