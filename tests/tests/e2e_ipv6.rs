//! IPv6 through the XDP data plane, end to end: LVS-DR with an IPv6 VIP and IPv6 reals,
//! HTTP from a client in its own namespace.

use std::net::SocketAddr;

use anyhow::ensure;
use xlb::ctl;
use xlb_testbed::{DrTopology, ipv6_for, require_root};

/// An IPv6 service over the three reals of [`DrTopology`], checked over IPv6.
fn config(topo: &DrTopology, vip: SocketAddr) -> String {
    let reals: String = topo
        .reals
        .iter()
        .map(|real| {
            format!(
                "    real_server {} 80 {{
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
",
                ipv6_for(real.addr())
            )
        })
        .collect();
    format!(
        "virtual_server {} {} {{
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
{reals}}}
",
        vip.ip(),
        vip.port()
    )
}

#[test]
fn dr_over_ipv6_spreads_connections_over_every_real() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("dr6")?;
    let vip = topo.add_ipv6()?;
    let _servers = topo.start_http_servers()?;
    let (_xlb, run_dir) = topo.start_xlb_for(&config(&topo, vip), vip)?;

    let answers = topo.client.http_get_many(vip, 30)?;
    assert_eq!(answers.failures(), []);
    let per_server = answers.per_server();
    assert_eq!(per_server.len(), 3, "{per_server:?}");

    let status = ctl::status(&run_dir)?;
    let flows: u64 = status
        .services
        .iter()
        .flat_map(|s| &s.reals)
        .map(|r| r.counters.new_flows)
        .sum();
    ensure!(flows >= 30, "XDP counted {flows} new flows, expected 30");
    ensure!(status.events["tx"] > 0, "{:?}", status.events);
    Ok(())
}
