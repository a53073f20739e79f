//! `cargo xtask <command>`: everything a developer or CI does to xlb beyond `cargo build`.

mod bench;
mod build;
mod cmd;
mod demo;
mod setup;
mod test;

use std::{ffi::OsString, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "xlb's developer commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what building and testing xlb needs (Debian 12, as root); idempotent.
    Setup,
    /// Build the XDP object and print where it is.
    BuildEbpf,
    /// Setup, build, then run every test.
    Test {
        /// Passed on to `cargo test`, e.g. a test name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_test_args: Vec<OsString>,
    },
    /// Build, then `xlb run` with the given arguments.
    Run {
        /// Arguments of `xlb run` (after `--` for `--help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        xlb_args: Vec<OsString>,
    },
    /// Show xlb balancing HTTP traffic in XDP, in a throwaway topology of namespaces.
    Demo,
    /// Measure the XDP program's cost per packet.
    Bench,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Setup => setup::run(),
        Command::BuildEbpf => build::print_objects(),
        Command::Test { cargo_test_args } => test::run(&cargo_test_args),
        Command::Run { xlb_args } => run_xlb(&xlb_args),
        Command::Demo => demo::run(),
        Command::Bench => bench::run(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_xlb(args: &[OsString]) -> anyhow::Result<()> {
    let built = build::userspace()?;
    let mut xlb = std::process::Command::new(&built.xlb);
    xlb.arg("run").args(args);
    cmd::run(&mut xlb)
}
