//! The `xlb` command line.

use std::{
    io::IsTerminal as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use xlb::{
    agent, config, ctl,
    dataplane::xdp::{Mode, Nodest, TunnelPrefix, pin},
    realserver::{self, RealMode},
};

/// keepalived-compatible load balancer with an XDP data plane.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: load the data plane, apply the configuration, check the reals.
    Run {
        /// The keepalived.conf to read.
        #[arg(short = 'f', long = "use-file", default_value = DEFAULT_CONFIG)]
        file: PathBuf,
        /// Interface to attach the XDP balancer to (repeat for several). Needed when the
        /// configuration has virtual servers.
        #[arg(long = "interface")]
        interfaces: Vec<String>,
        /// keepalived's config id, selecting `@ID` lines (default: the short host name).
        #[arg(short = 'i', long = "config-id")]
        config_id: Option<String>,
        /// Directory for this instance's control socket and state.
        #[arg(long, default_value = DEFAULT_RUN_DIR)]
        run_dir: PathBuf,
        /// How to attach the XDP program.
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        xdp_mode: Mode,
        /// Flow-table entries (connections remembered per director).
        #[arg(long)]
        flows: Option<u32>,
        /// Outer source of LVS-TUN packets, ADDR or ADDR/PREFIX, at most one per family
        /// (default: the route's source address). With a prefix, the host bits vary per
        /// connection so that reals spread tunnelled connections over their receive
        /// queues; the director should own the prefix, to receive ICMP errors about them.
        #[arg(long = "tunnel-source", value_name = "ADDR[/PREFIX]")]
        tunnel_sources: Vec<TunnelPrefix>,
        /// Packets of a connection whose real server was removed: scheduled again, or
        /// dropped (IPVS's expire_nodest_conn 1 or 0).
        #[arg(long, value_enum, default_value_t = Nodest::Reschedule)]
        expire_nodest_conn: Nodest,
        /// Where the data plane's maps and links are pinned, on the BPF file system
        /// (default: a directory of /sys/fs/bpf/xlb named after the run directory). An
        /// xlb started where another left its data plane takes it over, flows and all.
        #[arg(long, value_name = "DIR")]
        pin_dir: Option<PathBuf>,
        /// On SIGTERM, stop the agent but leave the data plane forwarding, for the next
        /// xlb to take over (an upgrade: start the new binary with the same run directory).
        #[arg(long)]
        keep_dataplane: bool,
    },
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
    /// Make this host an LVS-DR or LVS-TUN real server: the VIPs on lo, ARP kept quiet
    /// about them, and for TUN xlb's decapsulation XDP program on the interface. With
    /// --remove, undo exactly what was done.
    Realserver {
        /// A VIP this host serves (repeat for several).
        #[arg(long = "vip", required_unless_present = "remove")]
        vips: Vec<std::net::IpAddr>,
        #[arg(long, value_enum, default_value_t = RealMode::Dr)]
        mode: RealMode,
        /// The interface the director's packets arrive on.
        #[arg(long)]
        interface: String,
        /// Undo what a previous call did on the interface.
        #[arg(long)]
        remove: bool,
        /// Directory for the state --remove reads.
        #[arg(long, default_value = DEFAULT_RUN_DIR)]
        run_dir: PathBuf,
        /// How to attach the decapsulation program (TUN).
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        xdp_mode: Mode,
    },
    /// Show a running agent's services, reals and counters.
    Status {
        #[arg(long, default_value = DEFAULT_RUN_DIR)]
        run_dir: PathBuf,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";
const DEFAULT_RUN_DIR: &str = "/run/xlb";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("XLB_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Run {
            file,
            interfaces,
            config_id,
            run_dir,
            xdp_mode,
            flows,
            tunnel_sources,
            expire_nodest_conn,
            pin_dir,
            keep_dataplane,
        } => run(agent::Options {
            pin_dir: pin_dir.unwrap_or_else(|| pin::default_dir(&run_dir)),
            keep_dataplane,
            config: file,
            config_id,
            interfaces,
            run_dir,
            xdp_mode,
            flows,
            tunnel_sources,
            nodest: expire_nodest_conn,
        }),
        Command::Check {
            file,
            json,
            host,
            config_id,
        } => return check(&file, json, host, config_id),
        Command::Status { run_dir, json } => status(&run_dir, json),
        Command::Realserver {
            interface,
            remove: true,
            run_dir,
            ..
        } => netlink_command(realserver::remove(&run_dir, &interface)),
        Command::Realserver {
            vips,
            mode,
            interface,
            remove: false,
            run_dir,
            xdp_mode,
        } => netlink_command(realserver::add(&realserver::Options {
            vips,
            mode,
            interface,
            run_dir,
            xdp_mode,
        })),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xlb: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: agent::Options) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(agent::run(options))
}

/// Runs a one-shot command whose netlink requests need a runtime, on this thread alone.
fn netlink_command(command: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(command)
}

/// `xlb check`: every problem as `FILE:LINE:COL: error|warning: message` on stderr; exit
/// status 0 when the configuration can run (warnings allowed), 1 when not.
fn check(file: &Path, json: bool, host: bool, config_id: Option<String>) -> ExitCode {
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
    // A valid keepalived.conf passes; what this xlb cannot run yet is still said, at its line.
    let mut refused = config::Diagnostics::default();
    agent::check_support(&loaded.config, &mut refused);
    let mut diags = config::Diagnostics::default();
    for d in refused.iter() {
        diags.warning(&d.pos, format!("xlb run refuses this: {}", d.message));
    }
    if host {
        diags.extend(config::host::check(&loaded.config));
    }
    eprint!("{diags}");
    let ok = !diags.has_errors();
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

fn status(run_dir: &Path, json: bool) -> anyhow::Result<()> {
    let status = ctl::status(run_dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
