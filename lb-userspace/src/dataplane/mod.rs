//! Data planes: what forwards VIP traffic, driven by a [`Plan`] the agent recomputes.
//!
//! The agent never talks to maps or kernel tables directly: it builds the desired state as
//! a plain value and hands it to a driver, which changes only what differs from what it
//! applied last. That keeps failover and health changes cheap and flows untouched.

pub mod plan;
pub mod xdp;

pub use plan::{Plan, RealPlan, ServiceKey, ServicePlan};
