//! The test bed tested: namespaces, links, processes, HTTP, and that nothing outlives a test.

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    process::Stdio,
    time::Duration,
};

use anyhow::Context;
use xlb_testbed::{Child, DrTopology, Lan, MacAddr, Netns, require_root, wait_until};

const SHORT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(10);

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn shell(ns: &Netns, label: &str, script: &str) -> anyhow::Result<Child> {
    let mut command = ns.command("sh");
    command.args(["-c", script]);
    ns.spawn(label, command)
}

#[test]
fn two_namespaces_on_a_veth_serve_http() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let server = Netns::new("veth-srv")?;
    let client = Netns::new("veth-cli")?;
    client.ip(&[
        "link",
        "add",
        "name",
        "left",
        "type",
        "veth",
        "peer",
        "name",
        "right",
        "netns",
        server.name(),
    ])?;
    client.ip(&["address", "add", "198.51.100.1/24", "dev", "left"])?;
    client.ip(&["link", "set", "left", "up"])?;
    server.ip(&["address", "add", "198.51.100.2/24", "dev", "right"])?;
    server.ip(&["link", "set", "right", "up"])?;

    let _http = server.start_http_server("alpha", 8080)?;
    let addr = SocketAddr::from(([198, 51, 100, 2], 8080));
    // The first packet may wait on ARP; after that every request must succeed.
    wait_until("the first request to succeed", SHORT, POLL, || {
        client.http_get(addr)
    })?;
    let answers = client.http_get_many(addr, 5)?;
    assert_eq!(answers.failures(), []);
    assert_eq!(
        answers.per_server().into_iter().collect::<Vec<_>>(),
        [("alpha", 5)]
    );
    Ok(())
}

#[test]
fn dropping_a_namespace_deletes_it_and_kills_what_runs_in_it() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let ns = Netns::new("cleanup")?;
    let name = ns.name().to_owned();
    let dir = ns.dir().to_owned();
    // Started without a guard: only the namespace's own teardown can stop it.
    let mut stray = ns
        .command("sleep")
        .arg("600")
        .stdout(Stdio::null())
        .spawn()
        .context("spawn sleep")?;
    assert!(netns_exists(&name));
    assert_eq!(ns.pids()?, [stray.id()]);

    drop(ns);
    assert!(!netns_exists(&name), "{name} survived");
    assert!(!dir.exists(), "{} survived", dir.display());
    let status = stray.try_wait()?.context("the stray process survived")?;
    assert!(!status.success());
    Ok(())
}

#[test]
fn a_child_guard_stops_and_reaps_its_process() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let ns = Netns::new("child")?;
    let mut child = shell(
        &ns,
        "sleeper",
        "echo started; echo oops >&2; exec sleep 600",
    )?;
    let pid = child.pid();
    wait_until("the sleeper to say it started", SHORT, POLL, || {
        child.stdout() == "started\n"
    })?;
    assert_eq!(child.stderr(), "oops\n");
    assert!(child.is_running()?);

    drop(child);
    assert!(
        !process_exists(pid),
        "pid {pid} is still there (running or unreaped)"
    );
    Ok(())
}

#[test]
fn a_child_reports_its_own_exit() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let ns = Netns::new("exit")?;
    let mut child = shell(&ns, "exit3", "exit 3")?;
    assert_eq!(child.wait_for_exit(SHORT)?.code(), Some(3));
    assert!(!child.is_running()?);
    Ok(())
}

#[test]
fn sysctls_are_per_namespace() -> anyhow::Result<()> {
    require_root!(Ok(()));
    const KEY: &str = "/proc/sys/net/ipv4/conf/lo/arp_ignore";
    let root_before = fs::read_to_string(KEY)?;
    let ns = Netns::new("sysctl")?;
    let wanted = if root_before.trim() == "2" { "1" } else { "2" };
    ns.sysctl("net.ipv4.conf.lo.arp_ignore", wanted)?;
    assert_eq!(ns.run(|| fs::read_to_string(KEY))??.trim(), wanted);
    assert_eq!(fs::read_to_string(KEY)?, root_before);
    Ok(())
}

#[test]
fn lan_hosts_get_predictable_macs_and_reach_each_other() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let lan = Lan::new("lan", 24)?;
    let a = lan.attach("a", Ipv4Addr::new(192, 0, 2, 101))?;
    let b = lan.attach("b", Ipv4Addr::new(192, 0, 2, 102))?;
    let link = b.ip(&["-o", "link", "show", b.iface()])?;
    let expected = MacAddr::for_ipv4(b.addr()).to_string();
    assert!(link.contains(&format!("link/ether {expected}")), "{link}");
    let port = lan.switch().ip(&["link", "show", "p-b"])?;
    assert!(
        port.contains("prog/xdp"),
        "switch port without XDP:\n{port}"
    );
    let offloads = b.output("ethtool", &["--show-offload", b.iface()])?;
    assert!(offloads.contains("tx-checksumming: off"), "{offloads}");

    let _http = b.start_http_server("b", 80)?;
    let addr = SocketAddr::from((b.addr(), 80));
    assert_eq!(a.http_get(addr)?, "b");
    Ok(())
}

#[test]
fn a_keep_alive_connection_keeps_its_server_until_it_dies() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let lan = Lan::new("keep", 24)?;
    let client = lan.attach("client", Ipv4Addr::new(192, 0, 2, 1))?;
    let server = lan.attach("server", Ipv4Addr::new(192, 0, 2, 11))?;
    let mut http = server.start_http_server("real1", 80)?;
    let addr = SocketAddr::from((server.addr(), 80));

    let mut connection = client.http_connect(addr)?;
    let flow = connection.local_addr()?;
    for _ in 0..3 {
        assert_eq!(connection.get()?, "real1");
    }
    assert_eq!(connection.local_addr()?, flow);

    http.kill()?;
    assert!(connection.get().is_err(), "a dead server answered");
    let refused = client.http_get(addr).unwrap_err();
    assert!(format!("{refused:#}").contains("refused"), "{refused:#}");
    Ok(())
}

#[test]
fn dr_topology_leaves_the_vip_to_xdp() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("dr")?;
    let _servers = topo.start_http_servers()?;
    assert_eq!(topo.vip, SocketAddr::from(([203, 0, 113, 10], 80)));

    for real in &topo.reals {
        assert_eq!(
            topo.client.http_get(SocketAddr::from((real.addr(), 80)))?,
            real.name()
        );
        let lo = real.ip(&["-o", "address", "show", "dev", "lo"])?;
        assert!(lo.contains("203.0.113.10/32"), "{}: {lo}", real.name());
    }
    let route = topo.client.ip(&["route", "get", "203.0.113.10"])?;
    assert!(route.contains("via 192.0.2.2"), "{route}");
    assert!(
        topo.director.ip(&["route", "get", "203.0.113.10"]).is_err(),
        "the director can route the VIP without XDP"
    );
    let forwarding = topo
        .director
        .run(|| fs::read_to_string("/proc/sys/net/ipv4/conf/eth0/forwarding"))??;
    assert_eq!(forwarding.trim(), "1");
    // Without a load balancer on the director, the VIP is unreachable.
    assert!(topo.client.http_get(topo.vip).is_err());
    let director: IpAddr = topo.director.addr().into();
    assert_eq!(director, IpAddr::from([192, 0, 2, 2]));
    Ok(())
}
