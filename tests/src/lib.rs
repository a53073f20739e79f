//! A test bed of network namespaces for xlb's end-to-end tests, benchmarks and demo.
//!
//! Every packet a test sends must start and end in namespaces the test made, and nothing may
//! outlive a failing test, so each resource here is a guard: [`Netns`] deletes its namespace
//! and kills what runs in it, [`Child`] stops and reaps its process, and both leave their logs
//! on stderr when a test panics. Waits are bounded ([`wait_until`]); nothing sleeps blindly.
//!
//! Errors are `anyhow` because they are only ever read by a person looking at a failed test.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use xlb_testbed::DrTopology;
//! let topo = DrTopology::new("rr")?;
//! let _servers = topo.start_http_servers()?;
//! // ... start `xlb run` on topo.director ...
//! let answers = topo.client.http_get_many(topo.vip, 60)?;
//! println!("{:?}", answers.per_server());
//! # Ok(())
//! # }
//! ```

pub mod addrs;
mod bins;
mod bpf_sys;
mod capture;
mod child;
mod director;
mod dr;
mod exec;
mod failover;
mod host_addrs;
mod http;
mod keepalived;
mod lan;
mod nat;
mod netns;
mod notify;
mod privilege;
mod reals;
mod static_net;
mod verifier;
mod vip;
mod wait;
mod xdp_pass;
mod xlb;

pub use addrs::ipv6_for;
pub use bins::workspace_binary;
pub use capture::{Capture, Mark};
pub use child::{Child, Ended};
pub use director::Topology;
pub use dr::DrTopology;
pub use failover::{FailoverTopology, Vrrp};
pub use http::{Answers, HttpConnection, HttpServer, serve_http};
pub use keepalived::{Keepalived, Peer};
pub use lan::{Lan, MacAddr, Node};
pub use nat::NatTopology;
pub use netns::Netns;
/// For [`Child::signal`].
pub use nix::sys::signal::Signal;
pub use privilege::{is_root, note_skip};
pub use static_net::StaticNet;
pub use verifier::{Verdict, table as verifier_table, verify};
pub use vip::wait_sole_holder;
pub use wait::{Ready, TIME_SCALE_VAR, holds_for, scaled, wait_until};
pub use xlb::XlbRun;
