//! The data plane outlives its agent: `xlb run` killed (or stopped with
//! `--keep-dataplane`, as for an upgrade) and started again loses no established flow, and
//! new connections keep succeeding throughout, over DR and over NAT.
//!
//! Long-lived keep-alive connections stand for the established flows: each must be answered
//! by the same real after the restart. A client opens a new connection every 10 ms the
//! whole time; every one must succeed.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::ensure;
use xlb_testbed::{
    Child, DrTopology, NatTopology, Signal, Topology, XlbRun, require_root, wait_until,
};

/// Keep-alive connections that must survive each restart.
const LONG_LIVED: usize = 6;
/// How often the client opens a new connection.
const PACE: Duration = Duration::from_millis(10);
/// The longest the client runs, whatever happens to the test.
const CLIENT_LIMIT: Duration = Duration::from_secs(120);
/// How long a ready agent may take to check its reals and answer through the VIP.
const ANSWER: Duration = Duration::from_secs(15);

/// How the agent goes away before its successor starts.
#[derive(Clone, Copy, Debug)]
enum Exit {
    /// SIGKILL: a crash, an OOM kill.
    Killed,
    /// SIGTERM with `--keep-dataplane`: an upgrade.
    KeepingTheDataPlane,
}

#[test]
fn dr_flows_survive_a_killed_agent() -> anyhow::Result<()> {
    require_root!(Ok(()));
    survives(&DrTopology::new("restart-dr")?, "DR", Exit::Killed)
}

#[test]
fn dr_flows_survive_an_upgrade() -> anyhow::Result<()> {
    require_root!(Ok(()));
    survives(
        &DrTopology::new("upgrade-dr")?,
        "DR",
        Exit::KeepingTheDataPlane,
    )
}

#[test]
fn nat_flows_survive_a_killed_agent() -> anyhow::Result<()> {
    require_root!(Ok(()));
    survives(&NatTopology::new("restart-nat")?, "NAT", Exit::Killed)
}

/// Starts the reals' servers and xlb on the director of `topo` with a round-robin service
/// forwarding by `lb_kind`, opens the long-lived connections, takes the agent away as
/// `exit` says and starts its successor, with a client opening new connections all along;
/// then checks that every connection was answered, the long-lived ones by their real.
fn survives<S>(topo: &Topology<S>, lb_kind: &str, exit: Exit) -> anyhow::Result<()> {
    let _servers = topo.start_http_servers()?;
    let config = topo.round_robin_config(lb_kind);
    let (director, client, vip) = (&topo.director, &topo.client, topo.vip);
    let mut args: Vec<&str> = topo
        .interfaces
        .iter()
        .flat_map(|interface| ["--interface", interface])
        .collect();
    if matches!(exit, Exit::KeepingTheDataPlane) {
        args.push("--keep-dataplane");
    }
    // The successor has the same label, so the same run and pinning directories.
    let run = XlbRun {
        label: "xlb",
        config: &config,
        args: &args,
        ..XlbRun::default()
    };
    let start = || -> anyhow::Result<Child> {
        let (xlb, _) = director.start_xlb(&run)?;
        wait_until("an answer through the VIP", ANSWER, PACE, || {
            client.http_get(vip)
        })?;
        Ok(xlb)
    };
    let mut first = start()?;
    let mut long_lived = Vec::new();
    for _ in 0..LONG_LIVED {
        let mut connection = client.http_connect(vip)?;
        let real = connection.get()?;
        long_lived.push((connection, real));
    }
    let stop = AtomicBool::new(false);
    let (successor, churn) = thread::scope(|scope| {
        let churn = scope.spawn(|| client.http_get_until(vip, PACE, &stop, CLIENT_LIMIT));
        let successor = restart(&mut first, exit, start);
        // New connections after the restart as well as across it.
        let settled = successor
            .as_ref()
            .map(|_| Instant::now() + Duration::from_secs(1));
        if let Ok(until) = settled {
            let _ = wait_until(
                "a second of new connections",
                Duration::from_secs(5),
                PACE,
                || Instant::now() >= until,
            );
        }
        stop.store(true, Ordering::Relaxed);
        (successor, churn.join().expect("the client thread panicked"))
    });
    let successor = successor?;
    churn?.all_answered("across the restart")?;
    for (i, (connection, real)) in long_lived.iter_mut().enumerate() {
        let now = connection
            .get()
            .map_err(|err| err.context(format!("long-lived connection {i} after the restart")))?;
        ensure!(
            &now == real,
            "long-lived connection {i} went from {real} to {now}"
        );
    }
    let log = successor.stderr();
    ensure!(
        log.contains("Took over the data plane"),
        "the new agent did not adopt the pinned data plane:\n{log}"
    );
    Ok(())
}

/// Takes the running agent away as `exit` says, and starts its successor.
fn restart(
    agent: &mut Child,
    exit: Exit,
    start: impl Fn() -> anyhow::Result<Child>,
) -> anyhow::Result<Child> {
    match exit {
        Exit::Killed => {
            agent.kill()?;
        }
        Exit::KeepingTheDataPlane => {
            agent.signal(Signal::SIGTERM)?;
            let status = agent.wait_for_exit(Duration::from_secs(10))?;
            ensure!(status.success(), "the agent stopped with {status}");
        }
    }
    start()
}
