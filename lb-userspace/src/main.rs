//! The `xlb` command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// keepalived-compatible load balancer with an XDP data plane.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration file: every problem, with file:line:col.
    Check {
        /// The keepalived.conf to read.
        #[arg(short = 'f', long = "use-file", default_value = DEFAULT_CONFIG)]
        file: PathBuf,
    },
}

const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check(&file),
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    match xlb::config::load(file) {
        Ok(loaded) => {
            eprint!("{}", loaded.warnings);
            ExitCode::SUCCESS
        }
        Err(diags) => {
            eprint!("{diags}");
            ExitCode::FAILURE
        }
    }
}
