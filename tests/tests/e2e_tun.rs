//! LVS-TUN end to end: the director's XDP program wraps client packets in IPIP, and reals
//! prepared by `xlb realserver --mode tun` unwrap them with xlb's decapsulation program
//! and answer the client directly.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, ensure};
use xlb::ctl;
use xlb_testbed::{DrTopology, Node, ipv6_for, require_root, workspace_binary};

const CONFIG: &str = "virtual_server 203.0.113.10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind TUN
    protocol TCP
    real_server 192.0.2.11 80 { TCP_CHECK { connect_timeout 1 } }
    real_server 192.0.2.12 80 { TCP_CHECK { connect_timeout 1 } }
    real_server 192.0.2.13 80 { TCP_CHECK { connect_timeout 1 } }
}
";

/// A host made a TUN real server by `xlb realserver`; dropping it runs `--remove`, so the
/// pinned program never outlives a failing test.
struct TunReal<'a> {
    node: &'a Node,
    run_dir: PathBuf,
    removed: bool,
}

impl<'a> TunReal<'a> {
    fn set_up(node: &'a Node, vip: &str) -> anyhow::Result<Self> {
        let run_dir = node.dir().join("realserver");
        let real = Self {
            node,
            run_dir,
            removed: false,
        };
        real.xlb(&["--vip", vip, "--mode", "tun"])?;
        Ok(real)
    }

    fn remove(&mut self) -> anyhow::Result<()> {
        self.removed = true;
        self.xlb(&["--remove"]).map(drop)
    }

    fn xlb(&self, args: &[&str]) -> anyhow::Result<String> {
        let xlb = workspace_binary("xlb")?;
        let run_dir = self.run_dir.to_str().context("run dir")?;
        let mut all = vec!["realserver", "--interface", "eth0", "--run-dir", run_dir];
        all.extend_from_slice(args);
        self.node.output(xlb.to_str().context("xlb path")?, &all)
    }
}

impl Drop for TunReal<'_> {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.xlb(&["--remove"]);
        }
    }
}

fn sysctl(node: &Node, key: &str) -> anyhow::Result<String> {
    let path = format!("/proc/sys/net/ipv4/conf/{key}");
    Ok(node
        .run(|| std::fs::read_to_string(&path))??
        .trim()
        .to_string())
}

/// The answers of 30 fresh connections to `vip` came from all three reals, and the XDP
/// program counted them.
fn assert_spread_by_xdp(
    topo: &DrTopology,
    vip: SocketAddr,
    run_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let answers = topo.client.http_get_many(vip, 30)?;
    assert_eq!(answers.failures(), []);
    let per_server = answers.per_server();
    assert_eq!(per_server.len(), 3, "{per_server:?}");
    let status = ctl::status(run_dir)?;
    let flows: u64 = status
        .services
        .iter()
        .flat_map(|s| &s.reals)
        .map(|r| r.counters.new_flows)
        .sum();
    ensure!(flows >= 30, "XDP counted {flows} new flows, expected 30");
    Ok(())
}

#[test]
fn tun_reals_unwrap_ipip_with_xlb_realserver_and_answer_the_client() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::without_vips_on_reals("tun")?;
    let vip = topo.vip.ip().to_string();
    let before = sysctl(&topo.reals[0], "all/arp_ignore")?;
    let mut reals = topo
        .reals
        .iter()
        .map(|node| TunReal::set_up(node, &vip))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let real = &topo.reals[0];
    ensure!(real.ip(&["address", "show", "dev", "lo"])?.contains(&vip));
    ensure!(real.ip(&["link", "show", "eth0"])?.contains("prog/xdp"));
    ensure!(sysctl(real, "all/arp_ignore")? == "1");
    ensure!(sysctl(real, "eth0/arp_announce")? == "2");

    let _servers = topo.start_http_servers()?;
    let (_xlb, run_dir) = topo.start_xlb(CONFIG)?;
    assert_spread_by_xdp(&topo, topo.vip, &run_dir)?;

    for real in &mut reals {
        real.remove()?;
    }
    ensure!(!real.ip(&["address", "show", "dev", "lo"])?.contains(&vip));
    ensure!(!real.ip(&["link", "show", "eth0"])?.contains("prog/xdp"));
    ensure!(sysctl(real, "all/arp_ignore")? == before);
    Ok(())
}

#[test]
fn tun_over_ipv6_unwraps_ip6ip6_on_the_reals() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::without_vips_on_reals("tun6")?;
    let vip = topo.add_ipv6_without_vips_on_reals()?;
    let _reals = topo
        .reals
        .iter()
        .map(|node| TunReal::set_up(node, &vip.ip().to_string()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let reals: String = topo
        .reals
        .iter()
        .map(|r| {
            format!(
                "    real_server {} 80 {{ TCP_CHECK {{ connect_timeout 1 }} }}\n",
                ipv6_for(r.addr())
            )
        })
        .collect();
    let config = format!(
        "virtual_server {} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind TUN\n{reals}}}\n",
        vip.ip()
    );
    let _servers = topo.start_http_servers()?;
    let (_xlb, run_dir) = topo.start_xlb_for(&config, vip)?;
    assert_spread_by_xdp(&topo, vip, &run_dir)
}
