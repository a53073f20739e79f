//! `cargo xtask demo`: xlb balancing real HTTP traffic in XDP, end to end, in namespaces.
//!
//! A client, a director and three real servers on one segment (the test bed's
//! `DrTopology`); `xlb run` on the director with the configuration below; a dozen requests
//! from the client. The director has no route to the VIP, so every answer went through the
//! XDP program, and the demo checks the program's own counters before it says so.

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use xlb_testbed::{DrTopology, is_root};

use crate::{build, cmd, setup};

/// A keepalived.conf as an operator of LVS-DR would write it.
const CONFIG: &str = "\
virtual_server 203.0.113.10 80 {
    delay_loop 2
    lb_algo rr
    lb_kind DR
    protocol TCP

    real_server 192.0.2.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 192.0.2.12 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 192.0.2.13 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
";

const REQUESTS: usize = 12;

pub fn run() -> anyhow::Result<()> {
    setup::run().context("setup")?;
    let built = build::userspace().context("build")?;
    cmd::run(cmd::cargo().args(["build", "--bins"])).context("build")?;
    if !is_root() {
        bail!("the demo builds network namespaces and loads XDP programs: run it as root");
    }

    println!("\n== Topology: client 192.0.2.1, director 192.0.2.2 (xlb), reals 192.0.2.11-13");
    let topo = DrTopology::new("demo")?;
    let _servers = topo.start_http_servers()?;
    println!("== keepalived.conf on the director:\n{CONFIG}");
    let (xlb, run_dir) = topo.start_xlb(CONFIG)?;
    let xlb = xlb.quiet();

    println!(
        "== {REQUESTS} requests from the client to http://{}/ (a new connection each)",
        topo.vip
    );
    let answers = topo.client.http_get_many(topo.vip, REQUESTS)?;
    for (i, answer) in answers.each.iter().enumerate() {
        match answer {
            Ok(server) => println!("request {:>2}: served by {server}", i + 1),
            Err(err) => println!("request {:>2}: FAILED: {err}", i + 1),
        }
    }

    let status = |json: bool| -> anyhow::Result<String> {
        let mut args = vec!["status", "--run-dir"];
        let run_dir = run_dir.to_str().context("run directory path")?;
        args.push(run_dir);
        if json {
            args.push("--json");
        }
        let xlb = built.xlb.to_str().context("xlb path")?;
        topo.director.output(xlb, &args)
    };
    println!(
        "\n== xlb status on the director (counters read from the BPF maps)\n{}",
        status(false)?
    );
    println!("== xlb's log\n{}", xlb.stderr());

    ensure!(
        answers.failures().is_empty(),
        "some requests failed: {:?}",
        answers.failures()
    );
    let link = topo.director.ip(&["link", "show", "eth0"])?;
    ensure!(
        link.contains("prog/xdp"),
        "no XDP program on the director's eth0"
    );
    let status: Value = serde_json::from_str(&status(true)?)?;
    let flows: u64 = status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["reals"].as_array().into_iter().flatten())
        .filter_map(|r| r["counters"]["new_flows"].as_u64())
        .sum();
    ensure!(
        flows as usize >= REQUESTS,
        "XDP counted {flows} new flows for {REQUESTS} requests"
    );
    println!(
        "== OK: {REQUESTS} requests answered; the XDP program on the director's eth0 scheduled \
         {flows} flows (the director has no route to the VIP: only XDP could deliver them)"
    );
    Ok(())
}
