//! Data planes: what forwards VIP traffic, driven by a [`Plan`] the agent recomputes.
//!
//! The agent never talks to maps or kernel tables directly: it builds the desired state as
//! a plain value and hands it to a driver, which changes only what differs from what it
//! applied last. That keeps failover and health changes cheap and flows untouched.

pub mod plan;
mod stats;
pub mod xdp;

use thiserror::Error;

pub use plan::{Conditions, Plan, RealPlan, ServicePlan};
pub use stats::Stats;

/// What forwards the traffic of a [`Plan`]: xlb's XDP programs, or the kernel's IPVS. The
/// agent owns one, brought up for the `--interface`s, and hands it every plan it computes.
pub trait Driver: Send {
    /// Makes the forwarding state what `plan` says, changing only what differs from the
    /// plan applied last. On failure the previous state keeps forwarding.
    fn apply(&mut self, plan: &Plan) -> Result<(), DriverError>;

    /// Counters of every applied service and its reals.
    fn stats(&self) -> Result<Stats, DriverError>;

    /// Takes up again the interfaces that were deleted and created anew since it started
    /// forwarding on them; returns their names.
    fn follow_interfaces(&mut self) -> Result<Vec<String>, DriverError> {
        Ok(Vec::new())
    }

    /// Stops forwarding and undoes what the driver set up; with `keep`, leaves the
    /// forwarding state running for the next agent to adopt (an upgrade) instead.
    fn shut_down(self: Box<Self>, keep: bool) -> Result<(), DriverError>;
}

#[derive(Debug, Error)]
pub enum DriverError {
    #[error("the XDP data plane")]
    Xdp(#[from] xdp::XdpError),
}
