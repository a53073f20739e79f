//! Faults that must lose no traffic, over LVS-DR: a real whose MAC the director does not
//! know yet, a datagram too big for one frame, an interface deleted and created again.

use std::{
    net::{SocketAddr, UdpSocket},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use xlb::ctl;
use xlb_testbed::{Capture, DrTopology, Netns, require_root, wait_until};

const POLL: Duration = Duration::from_millis(50);
/// Health checks, ARP and the agent's resolution of next hops, on a loaded machine.
const SETTLE: Duration = Duration::from_secs(15);

/// rr over the three reals, without checkers: the reals are up whatever they answer.
const CONFIG: &str = "\
virtual_server 203.0.113.10 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 { }
    real_server 192.0.2.12 80 { }
    real_server 192.0.2.13 80 { }
}
virtual_server 203.0.113.10 5353 {
    lb_algo rr
    lb_kind DR
    protocol UDP
    real_server 192.0.2.11 5353 { }
    real_server 192.0.2.12 5353 { }
    real_server 192.0.2.13 5353 { }
}
";

/// Whether `node` answers ARP requests for its addresses.
fn answer_arp(node: &Netns, answer: bool) -> anyhow::Result<()> {
    // arp_ignore 8: answer no request at all.
    let value = if answer { "0" } else { "8" };
    node.output(
        "sysctl",
        &[
            "-q",
            "-w",
            &format!("net.ipv4.conf.eth0.arp_ignore={value}"),
        ],
    )?;
    Ok(())
}

/// Passed on to the director's kernel, a SYN for the VIP, which the director holds, would
/// draw a RST; dropped, it is retransmitted, and goes through once the real is resolved.
#[test]
fn a_first_syn_to_an_unresolved_real_draws_no_reset_from_the_director() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("neigh")?;
    let _servers = topo.start_http_servers()?;
    for real in &topo.reals {
        answer_arp(real, false)?;
    }
    // The director holds the VIP, as a VRRP master does.
    topo.director
        .ip(&["address", "add", "203.0.113.10/32", "dev", "lo"])?;
    let (_xlb, run_dir) = topo.director.spawn_xlb("xlb", CONFIG, &["eth0"])?;
    let resets = Capture::start(
        &topo.client,
        "resets",
        "eth0",
        "tcp[tcpflags] & tcp-rst != 0",
    )?;
    let since = resets.mark();

    let answered = thread::scope(|scope| -> anyhow::Result<String> {
        let client = scope.spawn(|| topo.client.http_get(topo.vip));
        wait_until(
            "the program to meet the unresolved real",
            SETTLE,
            POLL,
            || {
                let status = ctl::status(&run_dir)?;
                let misses = status.events.get("neigh_miss").copied().unwrap_or(0);
                ensure!(misses > 0, "no neighbour miss yet");
                Ok::<_, anyhow::Error>(())
            },
        )?;
        for real in &topo.reals {
            answer_arp(real, true)?;
        }
        client.join().expect("the client thread panicked")
    })?;
    ensure!(
        answered.starts_with("real"),
        "the client was answered by {answered}"
    );
    let seen = resets.matching(since, &[]);
    ensure!(seen.is_empty(), "the client saw resets: {seen:?}");
    Ok(())
}

/// The first fragment carries the ports and is balanced; the others follow it to the
/// same real, which reassembles the datagram.
#[test]
fn a_fragmented_datagram_reaches_one_real_whole() -> anyhow::Result<()> {
    require_root!(Ok(()));
    const SIZE: usize = 4000;
    let topo = DrTopology::new("frag")?;
    let (_xlb, _) = topo.director.spawn_xlb("xlb", CONFIG, &["eth0"])?;
    let vip = SocketAddr::from((topo.vip.ip(), 5353));
    let received = thread::scope(|scope| -> anyhow::Result<Vec<(String, usize)>> {
        let listeners: Vec<_> = topo
            .reals
            .iter()
            .map(|real| scope.spawn(move || receive(real, vip)))
            .collect();
        let datagram = vec![0x5a; SIZE];
        topo.client.run(|| -> anyhow::Result<()> {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            // The first datagram may meet an unresolved real: send until one is received.
            let deadline = Instant::now() + SETTLE;
            for _ in 0..20 {
                socket.send_to(&datagram, vip)?;
                if Instant::now() > deadline {
                    break;
                }
                thread::sleep(POLL);
            }
            Ok(())
        })??;
        listeners
            .into_iter()
            .map(|l| l.join().expect("a listener panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(|all| all.into_iter().flatten().collect())
    })?;
    ensure!(!received.is_empty(), "no real received the datagram");
    for (real, len) in &received {
        ensure!(*len == SIZE, "{real} received {len} bytes of {SIZE}");
    }
    Ok(())
}

/// What `real` receives on `vip` within a few seconds: its name and each datagram's length.
fn receive(real: &xlb_testbed::Node, vip: SocketAddr) -> anyhow::Result<Option<(String, usize)>> {
    real.run(|| -> anyhow::Result<Option<(String, usize)>> {
        let socket = UdpSocket::bind(vip).with_context(|| format!("bind {vip}"))?;
        socket.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut buf = vec![0u8; 65536];
        match socket.recv(&mut buf) {
            Ok(len) => Ok(Some((real.name().to_string(), len))),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    })?
}

#[test]
fn forwarding_resumes_on_an_interface_deleted_and_created_again() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("iface")?;
    let _servers = topo.start_http_servers()?;
    let (xlb, _) = topo.start_xlb(CONFIG)?;
    topo.director.ip(&["link", "del", "eth0"])?;
    topo.lans
        .cable(&topo.director, "director", "eth0", topo.director.addr())?;
    wait_until("an answer through the VIP again", SETTLE, POLL, || {
        topo.client.http_get(topo.vip)
    })?;
    ensure!(
        xlb.stderr().contains("Interface eth0 is back"),
        "the balancer was not attached again:\n{}",
        xlb.stderr()
    );
    Ok(())
}
