//! LVS-NAT through the XDP data plane, end to end: the client and the reals on two
//! segments, `xlb run` on the director between them, reals serving on another port than
//! the VIP's and answering through the director.

use anyhow::{Context, ensure};
use xlb::ctl;
use xlb_testbed::{Answers, NatTopology, require_root};

const CONFIG: &str = "
global_defs {
    lvs_timeouts tcp 600 tcpfin 30 udp 60
}
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

#[test]
fn http_through_the_vip_reaches_every_real_and_answers_come_back_from_the_vip() -> anyhow::Result<()>
{
    require_root!(Ok(()));
    let topo = NatTopology::new("nat")?;
    let _servers = topo.start_http_servers()?;
    let (_xlb, run_dir) = topo.start_xlb(CONFIG)?;

    // Only the reals' port 8080 listens: every answer was readdressed there, and came back
    // from the VIP's address and port, or the client's TCP would not have taken it.
    let answers = topo.client.http_get_many(topo.vip, 30)?;
    assert_spread_evenly(&answers);

    let mut connection = topo.client.http_connect(topo.vip)?;
    let owner = connection.get()?;
    let client_end = connection.local_addr()?;
    let real = topo
        .reals
        .iter()
        .find(|r| r.name() == owner)
        .context("owner")?;
    // The server listens on [::], so ss shows IPv4 peers as v4-mapped addresses.
    let sockets = real
        .output("ss", &["-Htn", "state", "established"])?
        .replace("[::ffff:", "")
        .replace(']', "");
    ensure!(
        sockets.contains(&format!("{}:{} ", real.addr(), topo.real_port))
            && sockets.contains(&client_end.to_string()),
        "{owner} does not see the client {client_end} on port {}: {sockets}",
        topo.real_port
    );

    for interface in &topo.interfaces {
        let link = topo.director.ip(&["link", "show", interface])?;
        ensure!(
            link.contains("prog/xdp"),
            "no XDP program on {interface}: {link}"
        );
    }
    let status = ctl::status(&run_dir)?;
    ensure!(
        status.events["nat_answer"] >= 31 && status.events["redirect"] >= 62,
        "answers were not translated by XDP: {:?}",
        status.events
    );
    Ok(())
}

#[test]
fn an_established_connection_survives_while_new_ones_rotate() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = NatTopology::new("natsticky")?;
    let _servers = topo.start_http_servers()?;
    let _xlb = topo.start_xlb(CONFIG)?;

    let mut long_lived = topo.client.http_connect(topo.vip)?;
    let owner = long_lived.get()?;
    let fresh = topo.client.http_get_many(topo.vip, 6)?;
    assert_eq!(fresh.failures(), []);
    assert_eq!(fresh.per_server().len(), 3, "{:?}", fresh.each);
    // Several exchanges, each a round trip through both translations.
    for _ in 0..3 {
        assert_eq!(long_lived.get()?, owner, "the long-lived connection moved");
    }
    Ok(())
}

#[test]
fn a_director_on_one_segment_translates_both_ways_out_of_one_interface() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = NatTopology::one_segment("nat1")?;
    let _servers = topo.start_http_servers()?;
    let (_xlb, run_dir) = topo.start_xlb(CONFIG)?;

    let answers = topo.client.http_get_many(topo.vip, 9)?;
    assert_eq!(answers.failures(), []);
    assert_eq!(answers.per_server().len(), 3, "{:?}", answers.each);
    let status = ctl::status(&run_dir)?;
    ensure!(
        status.events["nat_answer"] >= 10 && status.events["tx"] >= 20,
        "answers were not translated and bounced by XDP: {:?}",
        status.events
    );
    Ok(())
}

const CONFIG6: &str = "
virtual_server 2001:db8:203::10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 2001:db8:2::b 8080 { TCP_CHECK { connect_timeout 1 } }
    real_server 2001:db8:2::c 8080 { TCP_CHECK { connect_timeout 1 } }
    real_server 2001:db8:2::d 8080 { TCP_CHECK { connect_timeout 1 } }
}
";

#[test]
fn nat_over_ipv6_reaches_every_real_and_answers_come_back_from_the_vip() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = NatTopology::new("nat6")?;
    let vip = topo.add_ipv6()?;
    let _servers = topo.start_http_servers()?;
    let (_xlb, run_dir) = topo.start_xlb_for(CONFIG6, vip)?;

    let answers = topo.client.http_get_many(vip, 30)?;
    assert_spread_evenly(&answers);
    let status = ctl::status(&run_dir)?;
    ensure!(
        status.events["nat_answer"] >= 31,
        "answers were not translated by XDP: {:?}",
        status.events
    );
    Ok(())
}

/// Every request of 30 answered, ten by each real (rr over three).
fn assert_spread_evenly(answers: &Answers) {
    assert_eq!(answers.failures(), []);
    let per_server = answers.per_server();
    assert_eq!(
        per_server.values().copied().collect::<Vec<_>>(),
        [10, 10, 10],
        "{per_server:?}"
    );
}
