//! SIGHUP applies the whole configuration, VRRP included, with keepalived's semantics, and
//! VRRP survives its interface being deleted and created again.
//!
//! Every router runs a `notify` script that logs each state change it is told of: a reload
//! that changes nothing must add no line, one that changes a priority exactly the
//! transitions the election makes of it. Addresses are asserted as the kernel shows them,
//! announcements as tcpdump sees them on the switch.

use std::{
    fs,
    net::{IpAddr, Ipv4Addr},
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use xlb_testbed::{
    Capture, Child, FailoverTopology, Keepalived, Lan, Mark, Netns, Node, require_root,
    wait_sole_holder, wait_until,
};

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
const VIP_ADDED: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 101));
const VIP_OF_VI_2: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 102));

const HIGH: u8 = 200;
const LOW: u8 = 100;
/// Below [`LOW`]: a master reloaded with it hands over.
const LOWER: u8 = 50;

const POLL: Duration = Duration::from_millis(10);
/// Starting a router and its first election, at 1 s adverts (Master_Down_Interval 3.6 s).
const ELECTION: Duration = Duration::from_secs(15);
/// A handover at 1 s adverts: Master_Down_Interval, plus what a loaded machine adds.
const HANDOVER: Duration = Duration::from_secs(6);
/// How long a state must last to count as settled.
const SETTLED: Duration = Duration::from_secs(1);
/// A master announces new VIPs as soon as it has them.
const ANNOUNCE: Duration = Duration::from_secs(3);
/// How long a notify script may take to log a change already made.
const TOLD: Duration = Duration::from_secs(2);

/// 30 SIGHUPs in 30 s.
const RELOADS: u32 = 30;
const RELOAD_PACE: Duration = Duration::from_secs(1);
/// How often the client opens a new connection.
const PACE: Duration = Duration::from_millis(10);
/// The longest the client runs, whatever happens to the test.
const CLIENT_LIMIT: Duration = Duration::from_secs(120);

/// One router's keepalived.conf.
#[derive(Clone, Debug)]
struct Router {
    priority: u8,
    advert_int: &'static str,
    /// `VI_1`'s addresses.
    vips: Vec<IpAddr>,
    /// A second instance, `VI_2` (VRID 52), holding this address.
    second: Option<IpAddr>,
    /// Every instance's `notify` script.
    notify: Option<PathBuf>,
    /// After the instances: a virtual server, say.
    extra: String,
}

impl Router {
    fn new(priority: u8, advert_int: &'static str) -> Self {
        Self {
            priority,
            advert_int,
            vips: vec![VIP],
            second: None,
            notify: None,
            extra: String::new(),
        }
    }

    fn config(&self) -> String {
        let mut text = self.instance("VI_1", 51, &self.vips);
        if let Some(vip) = self.second {
            text.push_str(&self.instance("VI_2", 52, &[vip]));
        }
        text.push_str(&self.extra);
        text
    }

    fn instance(&self, name: &str, vrid: u8, vips: &[IpAddr]) -> String {
        let notify = self
            .notify
            .as_ref()
            .map(|script| format!("    notify {}\n", script.display()))
            .unwrap_or_default();
        let vips: String = vips
            .iter()
            .map(|vip| format!("        {vip}/24 dev eth0\n"))
            .collect();
        format!(
            "vrrp_instance {name} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    version 3
    priority {priority}
    advert_int {advert_int}
{notify}    virtual_ipaddress {{
{vips}    }}
}}
",
            priority = self.priority,
            advert_int = self.advert_int,
        )
    }
}

/// A `notify` script in `ns` that logs what it is told, one change a line
/// (`INSTANCE VI_1 MASTER 200`).
struct Notified {
    script: PathBuf,
    log: PathBuf,
}

impl Notified {
    fn new(ns: &Netns) -> anyhow::Result<Self> {
        let (script, log) = (ns.dir().join("notify.sh"), ns.dir().join("notify.log"));
        fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
        )?;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
        Ok(Self { script, log })
    }

    fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the log is `expected`, in order and nothing more.
    fn wait_for(&self, expected: &[&str], timeout: Duration) -> anyhow::Result<()> {
        wait_until("the notify log", timeout, POLL, || {
            let told = self.lines();
            ensure!(told == expected, "the notify script was told {told:?}");
            Ok(())
        })
    }
}

/// `master` alone holds `vip` within `within`, and it stays so for [`SETTLED`].
fn settled(master: &Node, backup: &Node, vip: IpAddr, within: Duration) -> anyhow::Result<()> {
    wait_sole_holder(master, backup, vip, within, SETTLED)
}

/// Waits for `node`'s gratuitous ARP for `vip` on the wire after `since`.
fn announced(wire: &Capture, node: &Node, vip: IpAddr, since: Mark) -> anyhow::Result<()> {
    wire.wait_announced(node, vip, since, ANNOUNCE)
}

/// How many state changes `xlb` has logged.
fn entered(xlb: &Child) -> usize {
    xlb.stderr().matches(" STATE").count()
}

/// Both directors of a failover pair serve HTTP through the VIP; each is reloaded 30 times
/// in 30 s with its unchanged configuration while a client opens a connection every 10 ms.
/// Not one request fails, and neither director changes state.
#[test]
fn thirty_unchanged_reloads_fail_no_request_and_move_no_router() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = FailoverTopology::new("reload-30")?;
    let _servers = topo.start_http_servers()?;
    let [dir1, dir2] = &topo.directors;
    let notified = [Notified::new(dir1)?, Notified::new(dir2)?];
    let config = |priority, notified: &Notified| {
        Router {
            notify: Some(notified.script.clone()),
            extra: topo.virtual_server(),
            ..Router::new(priority, "1")
        }
        .config()
    };
    let configs = [config(HIGH, &notified[0]), config(LOW, &notified[1])];
    // dir1 first, so that dir2 starts as the backup it stays.
    let (mut xlb1, _) = dir1.spawn_xlb("xlb", &configs[0], &["eth0"])?;
    wait_until("dir1 master", ELECTION, POLL, || dir1.holding(VIP, true))?;
    let (mut xlb2, _) = dir2.spawn_xlb("xlb", &configs[1], &["eth0"])?;
    wait_until("an answer through the VIP", ELECTION, POLL, || {
        topo.client.http_get(topo.vip)
    })?;
    settled(dir1, dir2, VIP, ELECTION)?;
    notified[0].wait_for(
        &["INSTANCE VI_1 BACKUP 200", "INSTANCE VI_1 MASTER 200"],
        TOLD,
    )?;
    notified[1].wait_for(&["INSTANCE VI_1 BACKUP 100"], TOLD)?;
    let changes = [entered(&xlb1), entered(&xlb2)];

    let stop = AtomicBool::new(false);
    let (reloaded, churn) = thread::scope(|scope| {
        let churn = scope.spawn(|| {
            topo.client
                .http_get_until(topo.vip, PACE, &stop, CLIENT_LIMIT)
        });
        let reloaded = (|| -> anyhow::Result<()> {
            for round in 0..RELOADS {
                let due = Instant::now() + RELOAD_PACE;
                dir1.reload_xlb(&mut xlb1, &configs[0])
                    .with_context(|| format!("reload {round} of dir1"))?;
                dir2.reload_xlb(&mut xlb2, &configs[1])
                    .with_context(|| format!("reload {round} of dir2"))?;
                // Pacing, not waiting for anything: the next reload is due at `due`.
                thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        (reloaded, churn.join().expect("the client thread panicked"))
    });
    reloaded?;
    churn?.all_answered("across the reloads")?;
    ensure!(
        [entered(&xlb1), entered(&xlb2)] == changes,
        "a director changed state across the reloads"
    );
    notified[0].wait_for(
        &["INSTANCE VI_1 BACKUP 200", "INSTANCE VI_1 MASTER 200"],
        TOLD,
    )?;
    notified[1].wait_for(&["INSTANCE VI_1 BACKUP 100"], TOLD)?;
    for xlb in [&xlb1, &xlb2] {
        let finished = xlb.stderr().matches("Reload finished").count();
        ensure!(finished == RELOADS as usize, "{finished} reloads finished");
    }
    settled(dir1, dir2, VIP, SETTLED)
}

/// Two xlb routers on one segment, reloaded through every change keepalived applies in
/// place: the master's priority below the backup's and back (the election follows, and
/// only the election), a VIP added and removed (on both routers, as adverts carry the
/// list: the master holds and announces it, then drops it, and nobody changes state), and
/// an instance added and removed.
#[test]
fn reloads_move_mastership_vips_and_instances_in_place() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let lan = Lan::new("reload-vrrp", 24)?;
    let (a, b) = (lan.attach("a", A)?, lan.attach("b", B)?);
    let wire = Capture::start(lan.switch(), "wire", "br0", "arp")?;
    let (told_a, told_b) = (Notified::new(&a)?, Notified::new(&b)?);
    let mut high = Router {
        notify: Some(told_a.script.clone()),
        ..Router::new(HIGH, "1")
    };
    let mut low = Router {
        notify: Some(told_b.script.clone()),
        ..Router::new(LOW, "1")
    };
    let (mut xlb_a, _) = a.spawn_xlb("xlb", &high.config(), &[])?;
    wait_until("a master", ELECTION, POLL, || a.holding(VIP, true))?;
    let (mut xlb_b, _) = b.spawn_xlb("xlb", &low.config(), &[])?;
    settled(&a, &b, VIP, ELECTION)?;

    high.priority = LOWER;
    a.reload_xlb(&mut xlb_a, &high.config())?;
    settled(&b, &a, VIP, HANDOVER).context("after lowering a's priority")?;
    high.priority = HIGH;
    a.reload_xlb(&mut xlb_a, &high.config())?;
    settled(&a, &b, VIP, HANDOVER).context("after restoring a's priority")?;
    // a's priority as told is the one it had then; no STOP: it never restarted.
    let mut a_told = vec![
        "INSTANCE VI_1 BACKUP 200",
        "INSTANCE VI_1 MASTER 200",
        "INSTANCE VI_1 BACKUP 50",
        "INSTANCE VI_1 MASTER 200",
    ];
    let mut b_told = vec![
        "INSTANCE VI_1 BACKUP 100",
        "INSTANCE VI_1 MASTER 100",
        "INSTANCE VI_1 BACKUP 100",
    ];
    told_a.wait_for(&a_told, TOLD)?;
    told_b.wait_for(&b_told, TOLD)?;

    for router in [&mut high, &mut low] {
        router.vips.push(VIP_ADDED);
    }
    let mark = wire.mark();
    b.reload_xlb(&mut xlb_b, &low.config())?;
    a.reload_xlb(&mut xlb_a, &high.config())?;
    announced(&wire, &a, VIP_ADDED, mark)?;
    settled(&a, &b, VIP_ADDED, ANNOUNCE).context("after adding a VIP")?;
    for router in [&mut high, &mut low] {
        router.vips.retain(|&v| v != VIP_ADDED);
    }
    b.reload_xlb(&mut xlb_b, &low.config())?;
    a.reload_xlb(&mut xlb_a, &high.config())?;
    wait_until("the removed VIP gone", ANNOUNCE, POLL, || {
        a.holding(VIP_ADDED, false)
    })?;
    settled(&a, &b, VIP, SETTLED).context("after removing a VIP")?;
    told_a.wait_for(&a_told, TOLD)?;
    told_b.wait_for(&b_told, TOLD)?;

    // a first, so that its new instance's timer runs out first; and on removal b first,
    // so that a's priority-0 advert finds no backup left to take over.
    for router in [&mut high, &mut low] {
        router.second = Some(VIP_OF_VI_2);
    }
    a.reload_xlb(&mut xlb_a, &high.config())?;
    b.reload_xlb(&mut xlb_b, &low.config())?;
    settled(&a, &b, VIP_OF_VI_2, HANDOVER).context("after adding VI_2")?;
    a_told.extend(["INSTANCE VI_2 BACKUP 200", "INSTANCE VI_2 MASTER 200"]);
    b_told.push("INSTANCE VI_2 BACKUP 100");
    told_a.wait_for(&a_told, TOLD)?;
    told_b.wait_for(&b_told, TOLD)?;
    for router in [&mut high, &mut low] {
        router.second = None;
    }
    b.reload_xlb(&mut xlb_b, &low.config())?;
    a.reload_xlb(&mut xlb_a, &high.config())?;
    wait_until("VI_2's VIP gone", ANNOUNCE, POLL, || {
        a.holding(VIP_OF_VI_2, false)
    })?;
    a_told.push("INSTANCE VI_2 STOP 200");
    b_told.push("INSTANCE VI_2 STOP 100");
    told_a.wait_for(&a_told, TOLD)?;
    told_b.wait_for(&b_told, TOLD)?;
    settled(&a, &b, VIP, SETTLED).context("after removing VI_2")
}

/// The master's interface is deleted: it goes to FAULT and keepalived, its peer, takes
/// the VIP. The interface is created again (a new index): xlb opens its sockets there,
/// comes back as BACKUP, preempts with its higher priority and announces the VIP.
#[test]
fn a_deleted_interface_faults_and_its_return_resumes_mastership() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let lan = Lan::new("reload-link", 24)?;
    let (a, b) = (lan.attach("a", A)?, lan.attach("b", B)?);
    let wire = Capture::start(lan.switch(), "wire", "br0", "arp")?;
    let told = Notified::new(&a)?;
    let high = Router {
        notify: Some(told.script.clone()),
        ..Router::new(HIGH, "0.1")
    };
    let (xlb, _) = a.spawn_xlb("xlb", &high.config(), &[])?;
    wait_until("a master", ELECTION, POLL, || a.holding(VIP, true))?;
    let _keepalived = Keepalived::start(&b, "keepalived", &Router::new(LOW, "0.1").config())?;
    settled(&a, &b, VIP, ELECTION)?;

    a.ip(&["link", "del", a.iface()])?;
    told.wait_for(
        &[
            "INSTANCE VI_1 BACKUP 200",
            "INSTANCE VI_1 MASTER 200",
            "INSTANCE VI_1 FAULT 200",
        ],
        TOLD,
    )?;
    wait_until("b to take the VIP", HANDOVER, POLL, || b.holding(VIP, true))?;

    let mark = wire.mark();
    lan.cable(&a, a.name(), a.iface(), A)?;
    settled(&a, &b, VIP, HANDOVER).context("after the interface came back")?;
    announced(&wire, &a, VIP, mark)?;
    told.wait_for(
        &[
            "INSTANCE VI_1 BACKUP 200",
            "INSTANCE VI_1 MASTER 200",
            "INSTANCE VI_1 FAULT 200",
            "INSTANCE VI_1 BACKUP 200",
            "INSTANCE VI_1 MASTER 200",
        ],
        TOLD,
    )?;
    let log = xlb.stderr();
    ensure!(
        log.contains("Interface eth0 deleted") && log.contains("Interface eth0 is back"),
        "xlb did not say what became of eth0:\n{log}"
    );
    Ok(())
}
