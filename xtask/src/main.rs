//! `cargo xtask <command>`: everything a developer or CI does to xlb beyond `cargo build`.

mod bench;
mod build;
mod cmd;
mod demo;
mod setup;
mod test;
mod vm;

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
    /// Run a command under Debian 12's kernel in a throwaway QEMU VM (see DEVELOPERS.md).
    ///
    /// The exit code is the command's, or 125 if the guest could not be set up, or 124 if
    /// the VM died or timed out first.
    Vm {
        #[command(flatten)]
        machine: vm::Machine,
        /// The command and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    let outcome = match cli.command {
        Command::Setup => done(setup::run()),
        Command::BuildEbpf => done(build::print_objects()),
        Command::Test { cargo_test_args } => done(test::run(&cargo_test_args)),
        Command::Run { xlb_args } => done(run_xlb(&xlb_args)),
        Command::Demo => done(demo::run()),
        Command::Bench => done(bench::run()),
        Command::Vm { machine, command } => vm::main(&machine, &command),
    };
    match outcome {
        Ok(code) => code,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
