//! The `xlb` command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use xlb::config;

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
        /// Print the resolved configuration as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Also check this machine: interfaces exist, scripts exist and are safe to run.
        #[arg(long)]
        host: bool,
        /// keepalived's config id, selecting `@ID` lines (default: the short host name).
        #[arg(short = 'i', long = "config-id")]
        config_id: Option<String>,
    },
}

const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            file,
            json,
            host,
            config_id,
        } => check(&file, json, host, config_id),
    }
}

/// `xlb check`: every problem as `FILE:LINE:COL: error|warning: message` on stderr; exit
/// status 0 when the configuration can run (warnings allowed), 1 when not.
fn check(file: &std::path::Path, json: bool, host: bool, config_id: Option<String>) -> ExitCode {
    let mut opts = config::Options::default();
    if config_id.is_some() {
        opts.config_id = config_id;
    }
    let loaded = match config::load_with(file, &opts) {
        Ok(loaded) => loaded,
        Err(diags) => {
            eprint!("{diags}");
            return ExitCode::FAILURE;
        }
    };
    eprint!("{}", loaded.warnings);
    let mut ok = true;
    if host {
        let diags = config::host::check(&loaded.config);
        eprint!("{diags}");
        ok = !diags.has_errors();
    }
    if json {
        match serde_json::to_string_pretty(&loaded.config) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!(
                    "{}: error: cannot print the configuration: {err}",
                    file.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
