//! How `xlb run` starts, or refuses to: READY=1 to the service manager only once it is
//! running, with its control socket answering; RELOADING=1 and STOPPING=1 after; and for
//! what this host or configuration lacks, exit status 1 with one line that says what (as
//! `xlb realserver` does).

use std::time::Duration;

use anyhow::{Context, ensure};
use xlb::ctl;
use xlb_testbed::{Ended, Netns, Signal, XlbRun, require_root, workspace_binary};

/// How long xlb may take to notify what a signal asked for.
const NOTIFIED: Duration = Duration::from_secs(10);

/// A DR service, so that the data plane has something to forward.
const SERVICE: &str = "\
virtual_server 203.0.113.10 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 {
    }
}
";

/// Starts xlb in `ns` with `config` and `args`, under `under` (see [`XlbRun`]), expecting
/// it to exit with status 1 before it is ready; returns how it ended.
fn refused(ns: &Netns, config: &str, args: &[&str], under: &[&str]) -> anyhow::Result<Ended> {
    let run = XlbRun {
        label: "xlb",
        config,
        args,
        under,
    };
    let Err(err) = ns.start_xlb(&run) else {
        anyhow::bail!("xlb started");
    };
    let ended = err
        .downcast::<Ended>()
        .map_err(|err| err.context("xlb did not end as expected"))?;
    ensure!(ended.reason == "xlb exited before READY=1", "{ended}");
    ensure!(
        ended.status.as_ref().ok().and_then(|s| s.code()) == Some(1),
        "{ended}"
    );
    Ok(ended)
}

/// The line xlb ended with, which must be its only `xlb:` line (the rest is its log).
fn last_line(stderr: &str) -> anyhow::Result<&str> {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("xlb: "))
        .collect();
    let last = stderr.lines().last().context("nothing on stderr")?;
    ensure!(errors == [last], "not one closing error line:\n{stderr}");
    Ok(last)
}

/// A VRRP router (no `--interface`, so no XDP program to load) is ready once VRRP runs:
/// its control socket answers as soon as READY=1 has come, a SIGHUP brings RELOADING=1
/// then READY=1, and SIGTERM STOPPING=1.
#[test]
fn ready_reloading_and_stopping_are_notified() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let ns = Netns::new("ready")?;
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
    ])?;
    ns.ip(&["address", "add", "192.0.2.1/24", "dev", "eth0"])?;
    ns.ip(&["link", "set", "eth0", "up"])?;
    ns.ip(&["link", "set", "eth1", "up"])?;
    let config = "\
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24 dev eth0
    }
}
";
    let (mut xlb, run_dir) = ns.spawn_xlb("xlb", config, &[])?;
    let status = ctl::status(&run_dir).context("the control socket right after READY=1")?;
    ensure!(status.pid == xlb.pid(), "{} answered, not xlb", status.pid);

    xlb.signal(Signal::SIGHUP)?;
    xlb.wait_notified("RELOADING=1", NOTIFIED)?;
    xlb.wait_notified("READY=1", NOTIFIED)?;
    let stopped = xlb.stop()?;
    ensure!(stopped.success(), "xlb stopped with {stopped}");
    xlb.wait_notified("STOPPING=1", NOTIFIED)
}

#[test]
fn a_missing_interface_is_one_line() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let ns = Netns::new("no-if")?;
    let ended = refused(&ns, SERVICE, &["--interface", "eth9"], &[])?;
    ensure!(
        last_line(&ended.stderr)? == "xlb: --interface eth9: no such interface",
        "{ended}"
    );
    Ok(())
}

/// `lo` has no native XDP; the kernel refuses to attach there in driver mode.
#[test]
fn native_mode_on_a_driver_without_it_is_one_line() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let ns = Netns::new("no-native")?;
    let ended = refused(
        &ns,
        SERVICE,
        &["--interface", "lo", "--xdp-mode", "native"],
        &[],
    )?;
    let line = last_line(&ended.stderr)?;
    ensure!(
        line.starts_with(
            "xlb: --interface lo: its driver has no native XDP: use --xdp-mode auto or skb: "
        ),
        "{ended}"
    );
    Ok(())
}

/// `xlb realserver` says the same of its decapsulation program, which it loads and
/// attaches before anything else can fail.
#[test]
fn realserver_native_mode_on_a_driver_without_it_is_one_line() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let ns = Netns::new("rs-native")?;
    let mut command = ns.command(workspace_binary("xlb")?);
    command
        .args(["realserver", "--vip", "203.0.113.10", "--mode", "tun"])
        .args(["--xdp-mode", "native", "--interface", "lo", "--run-dir"])
        .arg(ns.dir().join("realserver-run"));
    let mut realserver = ns.spawn("realserver", command)?;
    let status = realserver.wait_for_exit(NOTIFIED)?;
    ensure!(status.code() == Some(1), "realserver ended with {status}");
    let stderr = realserver.stderr();
    let line = last_line(&stderr)?;
    ensure!(
        line.starts_with(
            "xlb: --interface lo: its driver has no native XDP: use --xdp-mode auto or skb: "
        ),
        "{stderr}"
    );
    Ok(())
}

/// Root without CAP_BPF, CAP_SYS_ADMIN and CAP_PERFMON may not use bpf(), as in a
/// container that withholds them.
#[test]
fn bpf_not_permitted_is_one_line() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let ns = Netns::new("no-bpf")?;
    let ended = refused(
        &ns,
        SERVICE,
        &["--interface", "lo"],
        &["setpriv", "--bounding-set", "-bpf,-sys_admin,-perfmon"],
    )?;
    let line = last_line(&ended.stderr)?;
    ensure!(
        line.starts_with("xlb: BPF is not permitted to xlb here: ")
            && line.ends_with("Operation not permitted (os error 1)"),
        "{ended}"
    );
    Ok(())
}

/// A configuration with errors gets each at its file:line:col, then the closing line.
#[test]
fn a_bad_configuration_is_refused_at_its_lines() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let ns = Netns::new("bad-conf")?;
    let config = "\
virtual_server 203.0.113.10 80 {
    lb_algo nonsense
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 {
        weight -3
    }
}
";
    let ended = refused(&ns, config, &["--interface", "lo"], &[])?;
    let file = ns.dir().join("xlb.conf");
    for diagnostic in [
        "2:13: error: unknown lb_algo 'nonsense'",
        "6:16: error: '-3' is not an integer",
    ] {
        let at = format!("{}:{diagnostic}", file.display());
        ensure!(ended.stderr.contains(&at), "no {at:?} in: {ended}");
    }
    ensure!(
        last_line(&ended.stderr)? == "xlb: the configuration has 2 error(s); not starting",
        "{ended}"
    );
    Ok(())
}
