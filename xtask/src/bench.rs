//! `cargo xtask bench`: xlb's benchmarks, which are performance targets kept out of tests.
//!
//! They live as `harness = false` benches of the test bed crate, which may use the `xlb`
//! library (xtask may not: see its Cargo.toml), and print their own tables.

use anyhow::Context;

use crate::{cmd, setup};

pub fn run() -> anyhow::Result<()> {
    setup::run().context("setup")?;
    // The failover benchmark runs `xlb` itself, from the profile benches are built in.
    cmd::run(cmd::cargo().args(["build", "--release", "--bins"])).context("build")?;
    cmd::run(cmd::cargo().args(["bench", "--package", "xlb-testbed"]))
}
