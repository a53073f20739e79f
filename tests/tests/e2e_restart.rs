//! The data plane outlives its agent: `xlb run` killed (or stopped with
//! `--keep-dataplane`, as for an upgrade) and started again loses no established flow, and
//! new connections keep succeeding throughout, over DR and over NAT.
//!
//! Long-lived keep-alive connections stand for the established flows: each must be answered
//! by the same real after the restart. A client opens a new connection every 10 ms the
//! whole time; every one must succeed.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::ensure;
use xlb_testbed::{
    Child, DrTopology, NatTopology, Netns, Signal, XlbRun, require_root, wait_until,
};

const CONFIG_DR: &str = "\
virtual_server 203.0.113.10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 { TCP_CHECK { connect_timeout 1 } }
    real_server 192.0.2.12 80 { TCP_CHECK { connect_timeout 1 } }
    real_server 192.0.2.13 80 { TCP_CHECK { connect_timeout 1 } }
}
";

/// The NAT topology's reals listen on 8080.
const CONFIG_NAT: &str = "\
virtual_server 203.0.113.10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.11 8080 { TCP_CHECK { connect_timeout 1 } }
    real_server 192.0.2.12 8080 { TCP_CHECK { connect_timeout 1 } }
    real_server 192.0.2.13 8080 { TCP_CHECK { connect_timeout 1 } }
}
";

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
    let topo = DrTopology::new("restart-dr")?;
    let _servers = topo.start_http_servers()?;
    survives(
        &topo.director,
        &["eth0"],
        CONFIG_DR,
        &topo.client,
        topo.vip,
        Exit::Killed,
    )
}

#[test]
fn dr_flows_survive_an_upgrade() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("upgrade-dr")?;
    let _servers = topo.start_http_servers()?;
    survives(
        &topo.director,
        &["eth0"],
        CONFIG_DR,
        &topo.client,
        topo.vip,
        Exit::KeepingTheDataPlane,
    )
}

#[test]
fn nat_flows_survive_a_killed_agent() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = NatTopology::new("restart-nat")?;
    let _servers = topo.start_http_servers()?;
    survives(
        &topo.director,
        &topo.interfaces,
        CONFIG_NAT,
        &topo.client,
        topo.vip,
        Exit::Killed,
    )
}

/// Starts xlb on `director` with `config`, opens the long-lived connections, takes the
/// agent away as `exit` says and starts its successor, with a client opening new
/// connections all along; then checks that every connection was answered, the long-lived
/// ones by their real.
fn survives(
    director: &Netns,
    interfaces: &[&str],
    config: &str,
    client: &Netns,
    vip: SocketAddr,
    exit: Exit,
) -> anyhow::Result<()> {
    let mut args: Vec<&str> = interfaces
        .iter()
        .flat_map(|interface| ["--interface", interface])
        .collect();
    if matches!(exit, Exit::KeepingTheDataPlane) {
        args.push("--keep-dataplane");
    }
    // The successor has the same label, so the same run and pinning directories.
    let run = XlbRun {
        label: "xlb",
        config,
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
