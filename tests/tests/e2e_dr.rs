//! LVS-DR through the XDP data plane, end to end: `xlb run` on a director in a namespace,
//! real HTTP servers behind the VIP, fresh and long-lived client connections.
//!
//! The director has no route to the VIP, so every answer the client gets went through the
//! XDP program; each test also checks the program's own counters.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use xlb::ctl::{self, Status};
use xlb_testbed::{Child, DrTopology, HttpConnection, require_root, wait_until};

const POLL: Duration = Duration::from_millis(50);
/// Checkers run every `delay_loop` (1 s) and give up on a connection after
/// `connect_timeout` (1 s) with no retry: a dead real is out of the tables within this.
const CHECK_CYCLE: Duration = Duration::from_secs(2);
/// What scheduling and process wake-ups may add to a check cycle on a loaded CI machine.
const MARGIN: Duration = Duration::from_secs(2);

/// The service of [`DrTopology`] with the given scheduler and weights for real1..real3.
fn config(algo: &str, weights: [u32; 3]) -> String {
    let reals: String = weights
        .iter()
        .enumerate()
        .map(|(i, weight)| {
            format!(
                "    real_server 192.0.2.1{} 80 {{
        weight {weight}
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
",
                i + 1
            )
        })
        .collect();
    format!(
        "virtual_server 203.0.113.10 80 {{
    delay_loop 1
    lb_algo {algo}
    lb_kind DR
    protocol TCP
{reals}}}
"
    )
}

/// `xlb run` on the topology's director, and where to ask it for its status.
struct Director {
    _xlb: Child,
    run_dir: PathBuf,
}

impl Director {
    /// Starts xlb with `config` and waits until the client's first request through the VIP
    /// is answered (checkers have run, neighbours are resolved).
    fn start(topo: &DrTopology, config: &str) -> anyhow::Result<Self> {
        let (xlb, run_dir) = topo.start_xlb(config)?;
        Ok(Self { _xlb: xlb, run_dir })
    }

    fn status(&self) -> anyhow::Result<Status> {
        Ok(ctl::status(&self.run_dir)?)
    }

    /// Waits until the agent has taken `real` out of its tables, at most `timeout`.
    fn wait_down(&self, real: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
        wait_until(
            &format!("{real} to be declared down"),
            timeout,
            POLL,
            || {
                let status = self.status()?;
                let found = status
                    .services
                    .iter()
                    .flat_map(|s| &s.reals)
                    .find(|r| r.addr == real);
                ensure!(
                    !found.context("real not in status")?.healthy,
                    "still healthy"
                );
                Ok::<_, anyhow::Error>(())
            },
        )
    }
}

/// The XDP program is attached to the director's interface and it counted `flows` new
/// flows at least: the traffic went through it.
fn assert_forwarded_by_xdp(
    topo: &DrTopology,
    director: &Director,
    flows: u64,
) -> anyhow::Result<()> {
    let link = topo.director.ip(&["link", "show", "eth0"])?;
    ensure!(
        link.contains("prog/xdp"),
        "no XDP program on the director's eth0: {link}"
    );
    let status = director.status()?;
    let counted: u64 = status
        .services
        .iter()
        .flat_map(|s| &s.reals)
        .map(|r| r.counters.new_flows)
        .sum();
    ensure!(
        counted >= flows,
        "XDP counted {counted} new flows, expected at least {flows}"
    );
    ensure!(
        status.events["tx"] > 0,
        "nothing bounced by XDP_TX: {:?}",
        status.events
    );
    Ok(())
}

fn real(topo: &DrTopology, i: usize) -> SocketAddr {
    SocketAddr::from((topo.reals[i].addr(), 80))
}

#[test]
fn rr_spreads_fresh_connections_over_every_real() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("rr")?;
    let _servers = topo.start_http_servers()?;
    let director = Director::start(&topo, &config("rr", [1, 1, 1]))?;

    let answers = topo.client.http_get_many(topo.vip, 60)?;
    assert_eq!(answers.failures(), []);
    let per_server = answers.per_server();
    assert_eq!(per_server.len(), 3, "{per_server:?}");
    for (server, count) in &per_server {
        assert!(
            (10..=30).contains(count),
            "{server} got {count} of 60: {per_server:?}"
        );
    }
    assert_forwarded_by_xdp(&topo, &director, 60)
}

#[test]
fn wrr_follows_the_weights_and_weight_zero_takes_nothing() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("wrr")?;
    let _servers = topo.start_http_servers()?;
    let director = Director::start(&topo, &config("wrr", [3, 1, 0]))?;

    let answers = topo.client.http_get_many(topo.vip, 80)?;
    assert_eq!(answers.failures(), []);
    let per_server = answers.per_server();
    let heavy = per_server.get("real1").copied().unwrap_or(0);
    let light = per_server.get("real2").copied().unwrap_or(0);
    assert!(
        !per_server.contains_key("real3"),
        "weight 0 took connections: {per_server:?}"
    );
    assert!(light > 0, "{per_server:?}");
    let ratio = heavy as f64 / light as f64;
    assert!(
        (2.5..=3.5).contains(&ratio),
        "real1:real2 = {ratio:.2}, not about 3: {per_server:?}"
    );
    assert_forwarded_by_xdp(&topo, &director, 80)
}

#[test]
fn a_dead_real_takes_no_new_flows_after_one_check_cycle() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("dead")?;
    let mut servers = topo.start_http_servers()?;
    let director = Director::start(&topo, &config("rr", [1, 1, 1]))?;

    servers[1].kill()?;
    let killed = Instant::now();
    director.wait_down(real(&topo, 1), CHECK_CYCLE + MARGIN)?;
    println!(
        "real2 left the tables {:?} after its server died",
        killed.elapsed()
    );

    let answers = topo.client.http_get_many(topo.vip, 30)?;
    assert_eq!(answers.failures(), []);
    let per_server = answers.per_server();
    assert_eq!(
        per_server.keys().copied().collect::<Vec<_>>(),
        ["real1", "real3"],
        "{per_server:?}"
    );
    assert_forwarded_by_xdp(&topo, &director, 30)
}

/// Drops the director's health checks to port 80 in `real`'s namespace, so its checker
/// fails while connections already established keep working.
fn block_health_checks(topo: &DrTopology, real: usize) -> anyhow::Result<()> {
    let director = topo.director.addr().to_string();
    let node = &topo.reals[real];
    node.output("nft", &["add", "table", "inet", "xlbtest"])?;
    node.output(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "xlbtest",
            "input",
            "{ type filter hook input priority 0; }",
        ],
    )?;
    node.output(
        "nft",
        &[
            "add", "rule", "inet", "xlbtest", "input", "ip", "saddr", &director, "tcp", "dport",
            "80", "drop",
        ],
    )?;
    Ok(())
}

#[test]
fn an_inhibited_real_that_fails_its_checks_keeps_its_long_lived_connection() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("sticky")?;
    let _servers = topo.start_http_servers()?;
    let config = config("rr", [1, 1, 1]).replacen(
        "    lb_kind DR\n",
        "    lb_kind DR\n    inhibit_on_failure\n",
        1,
    );
    let (director, owner, mut long_lived) = fail_the_owner(&topo, &config)?;
    assert_eq!(
        long_lived.get()?,
        owner,
        "the checker cut an established flow of an inhibited real"
    );
    assert_forwarded_by_xdp(&topo, &director, 16)
}

/// As keepalived takes a failed real out of IPVS: its established connection is moved to a
/// real that knows nothing of it, which resets it at once; no blackhole.
#[test]
fn a_real_that_fails_its_checks_has_its_long_lived_connection_reset() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("unsticky")?;
    let _servers = topo.start_http_servers()?;
    let (_director, owner, mut long_lived) = fail_the_owner(&topo, &config("rr", [1, 1, 1]))?;
    let asked = Instant::now();
    match long_lived.get() {
        Ok(real) => {
            bail!("the connection of a real that left was answered by {real} (was {owner})")
        }
        Err(err) => ensure!(
            asked.elapsed() < CHECK_CYCLE,
            "the connection took {:?} to fail, not a reset: {err:#}",
            asked.elapsed()
        ),
    }
    Ok(())
}

/// Starts xlb with `config` (rr over the three reals), opens a long-lived connection, and
/// has its real fail its checks while new connections rotate: the director, the real that
/// owned the connection, and the connection.
fn fail_the_owner(
    topo: &DrTopology,
    config: &str,
) -> anyhow::Result<(Director, String, HttpConnection)> {
    let director = Director::start(topo, config)?;
    let mut long_lived = topo.client.http_connect(topo.vip)?;
    let owner = long_lived.get()?;
    let fresh = topo.client.http_get_many(topo.vip, 9)?;
    assert_eq!(fresh.failures(), []);
    assert_eq!(
        fresh.per_server().len(),
        3,
        "new connections did not rotate: {:?}",
        fresh.each
    );
    assert_eq!(long_lived.get()?, owner, "the long-lived connection moved");

    // A blocked check times out (connect_timeout, 1 s) rather than being refused.
    let index = topo
        .reals
        .iter()
        .position(|r| r.name() == owner)
        .context("owner")?;
    block_health_checks(topo, index)?;
    director.wait_down(
        real(topo, index),
        Duration::from_secs(1) + CHECK_CYCLE + MARGIN,
    )?;
    let after: BTreeSet<String> = topo
        .client
        .http_get_many(topo.vip, 6)?
        .each
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    assert!(
        !after.contains(&owner),
        "a real that is down took new flows: {after:?}"
    );
    Ok((director, owner, long_lived))
}

/// A long-lived connection through the VIP, with the real that answers on it.
fn hold(topo: &DrTopology) -> anyhow::Result<(String, HttpConnection)> {
    let mut connection = topo.client.http_connect(topo.vip)?;
    Ok((connection.get()?, connection))
}

#[test]
fn lc_sends_new_connections_to_the_least_loaded_real() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("lc")?;
    let _servers = topo.start_http_servers()?;
    let director = Director::start(&topo, &config("lc", [1, 1, 1]))?;

    let mut held = (0..6)
        .map(|_| hold(&topo))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut per_real: BTreeMap<&str, usize> = BTreeMap::new();
    for (owner, _) in &held {
        *per_real.entry(owner).or_default() += 1;
    }
    assert_eq!(
        per_real.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "lc did not spread long-lived connections evenly: {per_real:?}"
    );

    // One real's connections close: with the others still holding two each, it is the
    // least loaded by far (a closed connection weighs 1/256 of an open one).
    let emptied = held[0].0.clone();
    held.retain(|(owner, _)| *owner != emptied);
    let index = topo
        .reals
        .iter()
        .position(|r| r.name() == emptied)
        .context("emptied real")?;
    wait_until("the closed connections to be counted", MARGIN, POLL, || {
        let status = director.status()?;
        let conns = status
            .services
            .iter()
            .flat_map(|s| &s.reals)
            .find(|r| r.addr == real(&topo, index))
            .context("real not in status")?
            .conns;
        ensure!(conns.active == 0, "{conns:?}");
        Ok::<_, anyhow::Error>(())
    })?;
    let fresh = (0..2)
        .map(|_| hold(&topo))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (owner, _) in &fresh {
        assert_eq!(
            *owner, emptied,
            "a new connection skipped the least loaded real"
        );
    }
    assert_forwarded_by_xdp(&topo, &director, 8)
}
