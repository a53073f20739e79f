//! Bringing up the XDP data plane on the `--interface`s.

use std::net::IpAddr;

use anyhow::{Context as _, anyhow};
use tokio::sync::mpsc;

use super::Options;
use tracing::{debug, info, warn};

use crate::{
    dataplane::xdp::{Found, Pins, XdpDataPlane, load::LoadReport, neigh},
    unsupported,
};

/// Loads the XDP balancer, attaches it to the `--interface`s and starts resolving the next
/// hops it asks for.
///
/// The interfaces are looked up first: loading waits for the verifier, which takes seconds,
/// and an interface that is not there is the likeliest mistake.
pub fn start(
    options: &Options,
    resolve: mpsc::Receiver<Vec<IpAddr>>,
) -> anyhow::Result<XdpDataPlane> {
    for interface in &options.interfaces {
        unsupported::interface_exists(interface)?;
    }
    let pins = Pins::new(options.pin_dir.clone());
    let (mut dataplane, report, found) = XdpDataPlane::open(Some(pins), options.flows)
        .map_err(|err| unsupported::load_failed(err, "loading the XDP data plane"))?;
    log_load(&report);
    match found {
        Found::Nothing => {}
        Found::Adoptable => info!(
            "Took over the data plane pinned in {}: its flows are kept",
            options.pin_dir.display()
        ),
        Found::Foreign(why) => warn!(
            "The data plane pinned in {} is not one this xlb can take over ({why}): \
             started afresh, its flows are lost",
            options.pin_dir.display()
        ),
    }
    for (i, source) in options.tunnel_sources.iter().enumerate() {
        if options.tunnel_sources[..i]
            .iter()
            .any(|s| s.family() == source.family())
        {
            return Err(anyhow!(
                "--tunnel-source {source}: one {} source prefix at most",
                source.family().name()
            ));
        }
        dataplane.set_tunnel_source(source)?;
    }
    dataplane.set_nodest(options.nodest);
    for interface in &options.interfaces {
        dataplane
            .attach(interface, options.xdp_mode)
            .map_err(unsupported::attach_failed)?;
    }
    let misses = dataplane
        .take_neigh_misses()?
        .context("neighbour ring already taken")?;
    let resolver = crate::net::Resolver::new()?;
    tokio::spawn(neigh::serve(misses, resolver, resolve));
    Ok(dataplane)
}

/// What the verifier made of the data plane: the totals at info, each program at debug.
fn log_load(report: &LoadReport) {
    let largest = report
        .programs
        .iter()
        .max_by_key(|p| p.instructions)
        .map_or_else(String::new, |p| {
            format!(
                ", the largest {} with {}",
                p.program,
                p.instructions.unwrap_or_default()
            )
        });
    info!(
        "XDP data plane loaded: {} programs verified in {:.0?}, {} instructions processed{largest}",
        report.programs.len(),
        report.total(),
        report.instructions(),
    );
    for line in report.to_string().lines() {
        debug!("XDP program {line}");
    }
}
