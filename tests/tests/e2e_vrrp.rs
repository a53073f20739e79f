//! VRRP end to end: two routers on one segment, each `xlb run` or keepalived (Debian's
//! package), and every scenario of the interoperability matrix played by every mix: xlb with
//! xlb, xlb favoured with keepalived opposite, and keepalived favoured with xlb opposite.
//!
//! Assertions are on what the kernel and the wire show: the VIPs present on each router's
//! interface, and the gratuitous ARPs / unsolicited NAs (and adverts) tcpdump sees.
//! Handover times are measured and held to the protocol's bound plus [`MARGIN`].
//!
//! A scenario runs its mixes concurrently, each on its own segment, to keep the file fast.

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use xlb::ctl::{self, ServiceStatus};
use xlb_testbed::{
    Capture, Child, FailoverTopology, Keepalived, Lan, Mark, Node, Peer, Vrrp, require_root,
    wait_sole_holder, wait_until,
};

const POLL: Duration = Duration::from_millis(10);
/// What process start-up, scheduling and polling may add to a protocol bound on a loaded
/// two-core CI machine. Smaller than Master_Down_Interval minus Skew_Time at 1 s adverts
/// (about 3 s), so a graceful handover within Skew_Time + MARGIN is not a timeout in
/// disguise.
const MARGIN: Duration = Duration::from_millis(1500);
/// Starting both routers and their first election, at the slowest timers used here.
const ELECTION: Duration = Duration::from_secs(15);
/// How long a state must last to count as settled.
const SETTLED: Duration = Duration::from_secs(1);
/// A master announces its VIPs as soon as it becomes master.
const ANNOUNCE: Duration = Duration::from_secs(3);

/// A `track_script` runs every second and one failure counts.
const SCRIPT_ROUND: Duration = Duration::from_secs(2).saturating_add(MARGIN);

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const VIP4_SYNCED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);
const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

const HIGH: u8 = 200;
const LOW: u8 = 100;

/// Every mix a scenario runs: (the router it favours, the other one).
const MIXES: [(Peer, Peer); 3] = [
    (Peer::Xlb, Peer::Xlb),
    (Peer::Xlb, Peer::Keepalived),
    (Peer::Keepalived, Peer::Xlb),
];

/// One `vrrp_instance` and what it needs, as a keepalived.conf both implementations read.
#[derive(Clone, Debug)]
struct Instance {
    version: u8,
    advert_int: &'static str,
    priority: u8,
    vip: IpAddr,
    nopreempt: bool,
    /// This router's address and its peer's, for unicast adverts.
    unicast: Option<(IpAddr, IpAddr)>,
    /// A `vrrp_script` that fails while this file is missing, tracked by `VI_1`.
    track_file: Option<PathBuf>,
    /// A second instance `VI_2` with this VIP, in one `vrrp_sync_group` with `VI_1`.
    synced_vip: Option<IpAddr>,
    /// `VI_1`'s `notify` script, and the `notify_fifo`.
    notify: Option<(PathBuf, PathBuf)>,
    /// VRRPv2 simple-password authentication.
    auth_pass: Option<&'static str>,
}

impl Instance {
    fn new(version: u8, advert_int: &'static str, priority: u8) -> Self {
        Self {
            version,
            advert_int,
            priority,
            vip: IpAddr::V4(VIP4),
            nopreempt: false,
            unicast: None,
            track_file: None,
            synced_vip: None,
            notify: None,
            auth_pass: None,
        }
    }

    /// Skew_Time: how long after a priority-0 advert this router takes over.
    fn skew_time(&self) -> Duration {
        let unit = if self.version == 2 {
            // RFC 3768 counts it in seconds, whatever the advert interval.
            Duration::from_secs(1)
        } else {
            self.interval()
        };
        unit * (256 - u32::from(self.priority)) / 256
    }

    /// Master_Down_Interval: how long after the last advert this router takes over.
    fn master_down_interval(&self) -> Duration {
        self.interval() * 3 + self.skew_time()
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.advert_int.parse().expect("advert_int is a number"))
    }

    fn config(&self, router_id: &str) -> String {
        let mut extra = String::new();
        if self.nopreempt {
            extra.push_str("    nopreempt\n");
        }
        if let Some(pass) = self.auth_pass {
            extra.push_str(&format!(
                "    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}\n"
            ));
        }
        if let Some((src, peer)) = self.unicast {
            extra.push_str(&format!(
                "    unicast_src_ip {src}\n    unicast_peer {{\n        {peer}\n    }}\n"
            ));
        }
        let mut tracked = extra.clone();
        let mut global = String::new();
        if let Some((script, fifo)) = &self.notify {
            global = format!("    notify_fifo {}\n", fifo.display());
            tracked.push_str(&format!("    notify {}\n", script.display()));
        }
        let mut text = format!("global_defs {{\n    router_id {router_id}\n{global}}}\n");
        if let Some(file) = &self.track_file {
            text.push_str(&format!(
                "vrrp_script chk_flag {{\n    script \"/usr/bin/test -e {}\"\n    interval 1\n    \
                 fall 1\n    rise 1\n}}\n",
                file.display()
            ));
            tracked.push_str("    track_script {\n        chk_flag\n    }\n");
        }
        text.push_str(&self.instance("VI_1", 51, self.vip, &tracked));
        if let Some(vip) = self.synced_vip {
            text.push_str(&self.instance("VI_2", 52, vip, &extra));
            text.push_str(
                "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n",
            );
        }
        text
    }

    fn instance(&self, name: &str, vrid: u8, vip: IpAddr, extra: &str) -> String {
        let prefix = if vip.is_ipv4() { 24 } else { 64 };
        format!(
            "vrrp_instance {name} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    version {version}
    priority {priority}
    advert_int {advert_int}
    garp_lower_prio_repeat 2
    garp_lower_prio_delay 0
{extra}    virtual_ipaddress {{
        {vip}/{prefix} dev eth0
    }}
}}
",
            version = self.version,
            priority = self.priority,
            advert_int = self.advert_int,
        )
    }
}

/// A running VRRP router, whichever implementation.
enum Router {
    Xlb(Child),
    Keepalived(Keepalived),
}

impl Router {
    fn start(peer: Peer, node: &Node, instance: &Instance) -> anyhow::Result<Self> {
        let config = instance.config(node.name());
        Ok(match peer {
            Peer::Xlb => Self::Xlb(node.spawn_xlb("xlb", &config, &[])?.0),
            Peer::Keepalived => Self::Keepalived(Keepalived::start(node, "keepalived", &config)?),
        })
    }

    /// SIGTERM: the router's masters send priority 0 and drop their VIPs.
    fn stop(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Xlb(xlb) => xlb.stop().map(drop),
            Self::Keepalived(keepalived) => keepalived.stop(),
        }
    }

    /// SIGKILL: nothing more is sent.
    fn crash(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Xlb(xlb) => xlb.kill().map(drop),
            Self::Keepalived(keepalived) => keepalived.crash(),
        }
    }
}

/// Two routers' hosts on one segment: `a` (192.0.2.1) is the one a scenario favours, `b`
/// (192.0.2.2) the other; `wire` sees what the switch floods (ARP, NA, multicast adverts).
struct Segment {
    a: Node,
    b: Node,
    wire: Capture,
    /// The switch, kept for as long as the hosts use it.
    _lan: Lan,
}

impl Segment {
    fn new(tag: &str, filter: &str) -> anyhow::Result<Self> {
        let lan = Lan::new(tag, 24)?;
        let a = lan.attach("a", A)?;
        let b = lan.attach("b", B)?;
        let wire = Capture::start(lan.switch(), "wire", "br0", filter)?;
        Ok(Self {
            a,
            b,
            wire,
            _lan: lan,
        })
    }

    /// Waits until `node` holds `vip` and returns how long that took from `since`, failing
    /// past `bound` from `since`.
    fn wait_vip(
        &self,
        node: &Node,
        vip: IpAddr,
        since: Instant,
        bound: Duration,
    ) -> anyhow::Result<Duration> {
        wait_until(
            &format!("{vip} on {}", node.name()),
            bound.saturating_sub(since.elapsed()),
            POLL,
            || node.holding(vip, true),
        )?;
        Ok(since.elapsed())
    }

    /// `master` alone holds `vip` within [`ANNOUNCE`], and it stays so for [`SETTLED`].
    fn settled(&self, master: &Node, backup: &Node, vip: IpAddr) -> anyhow::Result<()> {
        wait_sole_holder(master, backup, vip, ANNOUNCE, SETTLED)
    }

    /// Waits for `node`'s announcement of `vip` seen on the wire after `since`.
    fn wait_announced(&self, node: &Node, vip: IpAddr, since: Mark) -> anyhow::Result<()> {
        self.wire.wait_announced(node, vip, since, ANNOUNCE)
    }

    /// Starts `favoured` on `a` and `other` on `b`, and waits until `a` is the settled
    /// master and has announced the VIP.
    fn elect(
        &self,
        (favoured, other): (Peer, Peer),
        high: &Instance,
        low: &Instance,
    ) -> anyhow::Result<(Router, Router)> {
        let mark = self.wire.mark();
        let started = Instant::now();
        let routers = (
            Router::start(favoured, &self.a, high)?,
            Router::start(other, &self.b, low)?,
        );
        self.wait_vip(&self.a, high.vip, started, ELECTION)?;
        self.wait_announced(&self.a, high.vip, mark)?;
        self.settled(&self.a, &self.b, high.vip)?;
        Ok(routers)
    }
}

/// Runs `scenario` for every mix at once, each on its own segment, and reports every mix
/// that failed.
fn each_mix(scenario: impl Fn((Peer, Peer)) -> anyhow::Result<()> + Sync) -> anyhow::Result<()> {
    let failures: Vec<String> = thread::scope(|scope| {
        let runs: Vec<_> = MIXES
            .iter()
            .map(|&mix| {
                let scenario = &scenario;
                (mix, scope.spawn(move || scenario(mix)))
            })
            .collect();
        runs.into_iter()
            .filter_map(|((favoured, other), run)| {
                let outcome = match run.join() {
                    Ok(Ok(())) => return None,
                    Ok(Err(err)) => format!("{err:#}"),
                    Err(_) => "panicked".to_owned(),
                };
                Some(format!(
                    "{favoured:?} favoured, {other:?} opposite: {outcome}"
                ))
            })
            .collect()
    });
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

fn tag(scenario: &str, (favoured, other): (Peer, Peer)) -> String {
    let short = |peer| match peer {
        Peer::Xlb => "x",
        Peer::Keepalived => "k",
    };
    format!("{scenario}-{}{}", short(favoured), short(other))
}

/// Logged so a run shows the margins actually used.
fn report(scenario: &str, mix: (Peer, Peer), took: Duration, bound: Duration) {
    eprintln!("{scenario} {mix:?}: handed over in {took:?} (bound {bound:?})");
}

#[test]
fn the_higher_priority_wins_the_election() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("elect", mix), "arp")?;
        let _routers = segment.elect(
            mix,
            &Instance::new(3, "0.1", HIGH),
            &Instance::new(3, "0.1", LOW),
        )?;
        Ok(())
    })
}

#[test]
fn a_graceful_stop_hands_over_within_skew_time() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("stop", mix), "arp")?;
        // 1 s adverts, so Skew_Time (0.6 s) and Master_Down_Interval (3.6 s) are apart.
        let low = Instance::new(3, "1", LOW);
        let (mut favoured, _other) = segment.elect(mix, &Instance::new(3, "1", HIGH), &low)?;
        let mark = segment.wire.mark();
        let stopped = Instant::now();
        favoured.stop()?;
        let bound = low.skew_time() + MARGIN;
        let took = segment.wait_vip(&segment.b, low.vip, stopped, bound)?;
        report("graceful stop", mix, took, bound);
        ensure!(
            !segment.a.has_address(low.vip)?,
            "the stopped master kept the VIP"
        );
        segment.wait_announced(&segment.b, low.vip, mark)
    })
}

/// v2 at 1 s adverts: RFC 3768 timing, with simple-password authentication.
#[test]
fn a_crash_hands_over_within_master_down_interval() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("crash", mix), "arp")?;
        let v2 = |priority| Instance {
            auth_pass: Some("s3cret"),
            ..Instance::new(2, "1", priority)
        };
        let low = v2(LOW);
        let (mut favoured, _other) = segment.elect(mix, &v2(HIGH), &low)?;
        let mark = segment.wire.mark();
        let crashed = Instant::now();
        favoured.crash()?;
        let bound = low.master_down_interval() + MARGIN;
        let took = segment.wait_vip(&segment.b, low.vip, crashed, bound)?;
        report("crash", mix, took, bound);
        // The last advert came at most one interval before the crash; sooner than that
        // would mean the crashed router still said goodbye.
        let earliest = low.master_down_interval() - low.interval();
        ensure!(
            took >= earliest,
            "took over after {took:?}, before {earliest:?}: no crash"
        );
        segment.wait_announced(&segment.b, low.vip, mark)
    })
}

/// v3 at 0.1 s adverts, as both implementations run them, through a crash.
#[test]
fn v3_sub_second_adverts_hand_over_fast() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("fast", mix), "arp")?;
        let low = Instance::new(3, "0.1", LOW);
        let (mut favoured, _other) = segment.elect(mix, &Instance::new(3, "0.1", HIGH), &low)?;
        let crashed = Instant::now();
        favoured.crash()?;
        let bound = low.master_down_interval() + MARGIN;
        let took = segment.wait_vip(&segment.b, low.vip, crashed, bound)?;
        report("v3 0.1 s crash", mix, took, bound);
        Ok(())
    })
}

/// Started after a lower-priority master, the favoured router takes over with `preempt`
/// and stays backup with `nopreempt`.
#[test]
fn preempt_takes_over_and_nopreempt_does_not() -> anyhow::Result<()> {
    require_root!(Ok(()));
    for nopreempt in [false, true] {
        each_mix(|(favoured, other)| {
            let scenario = if nopreempt { "nopreempt" } else { "preempt" };
            let segment = Segment::new(&tag(scenario, (favoured, other)), "arp")?;
            let low = Instance::new(3, "0.1", LOW);
            let high = Instance {
                nopreempt,
                ..Instance::new(3, "0.1", HIGH)
            };
            let _low = Router::start(other, &segment.b, &low)?;
            segment.wait_vip(&segment.b, low.vip, Instant::now(), ELECTION)?;
            let mark = segment.wire.mark();
            let started = Instant::now();
            let _high = Router::start(favoured, &segment.a, &high)?;
            if nopreempt {
                // Many Master_Down_Intervals (0.36 s) of the favoured router.
                return segment.settled(&segment.b, &segment.a, low.vip);
            }
            segment.wait_vip(&segment.a, high.vip, started, ELECTION)?;
            segment.wait_announced(&segment.a, high.vip, mark)?;
            segment.settled(&segment.a, &segment.b, high.vip)
        })?;
    }
    Ok(())
}

/// Adverts go to the configured peer only, never to the multicast group, and a graceful
/// stop still hands over.
#[test]
fn unicast_peers_elect_and_hand_over() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("ucast", mix), "arp")?;
        let adverts = Capture::start(&segment.b, "adverts", "eth0", "vrrp")?;
        let unicast = |priority, own: Ipv4Addr, peer: Ipv4Addr| Instance {
            unicast: Some((IpAddr::V4(own), IpAddr::V4(peer))),
            ..Instance::new(3, "0.1", priority)
        };
        let low = unicast(LOW, B, A);
        let (mut favoured, _other) = segment.elect(mix, &unicast(HIGH, A, B), &low)?;
        adverts.wait_for(
            "a unicast advert from a to b",
            Mark::default(),
            &[&format!(
                "{A} > {B}: VRRPv3, Advertisement, vrid 51, prio {HIGH}"
            )],
            ANNOUNCE,
        )?;
        let multicast = adverts.matching(Mark::default(), &["> 224.0.0.18"]);
        ensure!(multicast.is_empty(), "multicast adverts: {multicast:?}");
        let stopped = Instant::now();
        favoured.stop()?;
        let bound = low.skew_time() + MARGIN;
        let took = segment.wait_vip(&segment.b, low.vip, stopped, bound)?;
        report("unicast stop", mix, took, bound);
        Ok(())
    })
}

/// VRRPv3 over IPv6: adverts to ff02::12 from the link-local address, election, unsolicited
/// NA, and a graceful handover.
#[test]
fn ipv6_elects_announces_and_hands_over() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("v6", mix), "icmp6 or ip6 proto 112")?;
        let link_local = segment.a.add_ipv6(A6, 64)?;
        segment.b.add_ipv6(B6, 64)?;
        let v6 = |priority| Instance {
            vip: IpAddr::V6(VIP6),
            ..Instance::new(3, "0.1", priority)
        };
        let low = v6(LOW);
        let (mut favoured, _other) = segment.elect(mix, &v6(HIGH), &low)?;
        segment.wire.wait_for(
            "an advert from a's link-local address to ff02::12",
            Mark::default(),
            &[&format!(
                "{link_local} > ff02::12: VRRPv3, Advertisement, vrid 51, prio {HIGH}"
            )],
            ANNOUNCE,
        )?;
        let mark = segment.wire.mark();
        let stopped = Instant::now();
        favoured.stop()?;
        let bound = low.skew_time() + MARGIN;
        let took = segment.wait_vip(&segment.b, low.vip, stopped, bound)?;
        report("IPv6 stop", mix, took, bound);
        segment.wait_announced(&segment.b, low.vip, mark)
    })
}

/// The favoured router's `track_script` fails: it goes to FAULT and the VIP moves; the
/// script recovers: it takes the VIP back.
#[test]
fn a_failing_track_script_moves_the_vip() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("track", mix), "arp")?;
        let flag = segment.a.dir().join("healthy");
        std::fs::write(&flag, "").context("create the track flag")?;
        let high = Instance {
            track_file: Some(flag.clone()),
            ..Instance::new(3, "0.1", HIGH)
        };
        let low = Instance::new(3, "0.1", LOW);
        let _routers = segment.elect(mix, &high, &low)?;
        std::fs::remove_file(&flag).context("remove the track flag")?;
        let failed = Instant::now();
        segment.wait_vip(&segment.b, low.vip, failed, SCRIPT_ROUND)?;
        segment.settled(&segment.b, &segment.a, low.vip)?;
        std::fs::write(&flag, "").context("restore the track flag")?;
        let recovered = Instant::now();
        segment.wait_vip(&segment.a, high.vip, recovered, SCRIPT_ROUND)?;
        segment.settled(&segment.a, &segment.b, high.vip)
    })
}

/// `VI_1` and `VI_2` in one `vrrp_sync_group`: when the favoured router's `VI_1` fails
/// its `track_script`, `VI_2` goes with it, though nothing tracks `VI_2`; when the script
/// recovers, both come back.
#[test]
fn a_sync_group_moves_together() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("sync", mix), "arp")?;
        let flag = segment.a.dir().join("healthy");
        std::fs::write(&flag, "").context("create the track flag")?;
        let synced = IpAddr::V4(VIP4_SYNCED);
        let low = Instance {
            synced_vip: Some(synced),
            ..Instance::new(3, "0.1", LOW)
        };
        let high = Instance {
            track_file: Some(flag.clone()),
            priority: HIGH,
            ..low.clone()
        };
        let _routers = segment.elect(mix, &high, &low)?;
        segment.settled(&segment.a, &segment.b, synced)?;
        std::fs::remove_file(&flag).context("remove the track flag")?;
        for vip in [low.vip, synced] {
            segment.wait_vip(&segment.b, vip, Instant::now(), SCRIPT_ROUND)?;
            segment.settled(&segment.b, &segment.a, vip)?;
        }
        std::fs::write(&flag, "").context("restore the track flag")?;
        for vip in [low.vip, synced] {
            segment.wait_vip(&segment.a, vip, Instant::now(), SCRIPT_ROUND)?;
            segment.settled(&segment.a, &segment.b, vip)?;
        }
        Ok(())
    })
}

/// The favoured router's `notify` script and `notify_fifo` hear of every state change of
/// its life, in order, worded as keepalived words them.
#[test]
fn notify_script_and_fifo_report_every_change_in_order() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("notify", mix), "arp")?;
        let dir = segment.a.dir();
        let (script, log, fifo) = (
            dir.join("notify.sh"),
            dir.join("notify.log"),
            dir.join("notify.fifo"),
        );
        fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
        )?;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
        // Opened for writing too, so the reader never sees end of file between writers.
        let mut read = segment.a.command("sh");
        read.arg("-c")
            .arg(format!("exec cat <> {}", fifo.display()));
        let reader = segment.a.spawn("fifo", read)?;
        // The routers write to the fifo only while it has a reader, as keepalived does:
        // they start once the reader has it open.
        wait_until("the fifo's reader", ELECTION, POLL, || has_reader(&fifo))?;
        let high = Instance {
            notify: Some((script, fifo)),
            ..Instance::new(3, "0.1", HIGH)
        };
        let (mut favoured, _other) = segment.elect(mix, &high, &Instance::new(3, "0.1", LOW))?;
        favoured.stop()?;
        let expected = ["BACKUP", "MASTER", "STOP"];
        let script_lines: Vec<String> = expected
            .iter()
            .map(|s| format!("INSTANCE VI_1 {s} {HIGH}"))
            .collect();
        let fifo_lines: Vec<String> = expected
            .iter()
            .map(|s| format!("INSTANCE \"VI_1\" {s} {HIGH}"))
            .collect();
        wait_until(
            "every notification",
            ANNOUNCE,
            POLL,
            || -> anyhow::Result<()> {
                let told = fs::read_to_string(&log).unwrap_or_default();
                let told: Vec<&str> = told.lines().collect();
                ensure!(told == script_lines, "the script was told {told:?}");
                let fed = reader.stdout();
                let fed: Vec<&str> = fed.lines().collect();
                ensure!(fed == fifo_lines, "the fifo was fed {fed:?}");
                Ok(())
            },
        )
    })
}

/// Whether a writer opening `fifo` now would find a reader: opening it for writing without
/// blocking fails (with ENXIO) until one has it open.
fn has_reader(fifo: &Path) -> anyhow::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .context("opening the fifo for writing")?;
    Ok(())
}

/// Adverts dropped both ways make both routers master. The link heals towards the
/// favoured router first: hearing a lower priority as master, it announces the VIP anew
/// (`garp_lower_prio_repeat`) so the segment forgets the other's MAC; once the other
/// hears it too, it steps down and one master is left.
///
/// Healing both ways at once would leave the announcement to chance: whichever advert
/// crosses first decides whether the favoured router ever sees a lower priority.
#[test]
fn a_healed_split_brain_leaves_one_master_announcing() -> anyhow::Result<()> {
    require_root!(Ok(()));
    each_mix(|mix| {
        let segment = Segment::new(&tag("split", mix), "arp")?;
        let low = Instance::new(3, "0.1", LOW);
        let _routers = segment.elect(mix, &Instance::new(3, "0.1", HIGH), &low)?;
        for node in [&segment.a, &segment.b] {
            drop_vrrp(node)?;
        }
        let split = Instant::now();
        segment.wait_vip(
            &segment.b,
            low.vip,
            split,
            low.master_down_interval() + MARGIN,
        )?;
        segment.a.holding(low.vip, true).context("no split brain")?;
        let mark = segment.wire.mark();
        heal(&segment.a)?;
        segment.wait_announced(&segment.a, low.vip, mark)?;
        heal(&segment.b)?;
        wait_until("b to step down", ANNOUNCE, POLL, || {
            segment.b.holding(low.vip, false)
        })?;
        segment.settled(&segment.a, &segment.b, low.vip)
    })
}

/// Lets `node` hear VRRP adverts again.
fn heal(node: &Node) -> anyhow::Result<()> {
    node.output("nft", &["delete", "table", "inet", "split"])
        .map(drop)
}

/// Makes `node` deaf to VRRP adverts, as a broken link or a firewall would.
fn drop_vrrp(node: &Node) -> anyhow::Result<()> {
    node.output("nft", &["add", "table", "inet", "split"])?;
    node.output(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "split",
            "input",
            "{ type filter hook input priority 0 ; }",
        ],
    )?;
    node.output(
        "nft",
        &[
            "add", "rule", "inet", "split", "input", "ip", "protocol", "vrrp", "drop",
        ],
    )
    .map(drop)
}

/// The data plane follows VRRP: of two directors running `xlb run` with the same virtual
/// server, only the master forwards. The master crashes: the backup takes the VIP and
/// forwards new connections. The old master comes back with a lower priority: it stays
/// backup, its service on standby, and forwards nothing.
#[test]
fn only_the_master_director_forwards() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = FailoverTopology::new("vrrp-dp")?;
    let _servers = topo.start_http_servers()?;
    let vip = topo.vip.ip();
    let timers = |priority| Vrrp {
        version: 3,
        advert_int: Duration::from_millis(100),
        priority,
    };
    let config = |priority| {
        format!(
            "{}{}",
            topo.vrrp_instance(timers(priority)),
            topo.virtual_server()
        )
    };
    let [dir1, dir2] = &topo.directors;
    let (mut master, master_run) = dir1.spawn_xlb("xlb", &config(HIGH), &["eth0"])?;
    let (_backup, backup_run) = dir2.spawn_xlb("xlb", &config(LOW), &["eth0"])?;
    wait_until("an answer through the VIP", ELECTION, POLL, || {
        topo.client.http_get(topo.vip)
    })?;
    // dir2 may have answered, winning the first election before dir1 had started.
    wait_until("dir1 active and dir2 on standby", ELECTION, POLL, || {
        dir1.holding(vip, true)?;
        dir2.holding(vip, false)?;
        ensure!(service(&master_run)?.active, "dir1's service on standby");
        ensure!(!service(&backup_run)?.active, "dir2's service active");
        Ok::<_, anyhow::Error>(())
    })?;
    // Whatever dir2 forwarded while it held the VIP is fair; as a backup it forwards nothing.
    let settled = new_flows(&backup_run)?;
    let answers = topo.client.http_get_many(topo.vip, 10)?;
    ensure!(answers.failures().is_empty(), "{:?}", answers.failures());
    ensure!(
        new_flows(&backup_run)? == settled,
        "dir2 forwarded as backup"
    );

    master.kill()?;
    let crashed = Instant::now();
    let bound = Instance::new(3, "0.1", LOW).master_down_interval() + MARGIN;
    wait_until("dir2 to take the VIP", bound, POLL, || {
        dir2.holding(vip, true)
    })?;
    eprintln!("dir2 took the VIP {:?} after the crash", crashed.elapsed());
    wait_until("an answer through dir2", ANNOUNCE, POLL, || {
        topo.client.http_get(topo.vip)
    })?;
    ensure!(
        service(&backup_run)?.active,
        "dir2's service still on standby"
    );
    ensure!(new_flows(&backup_run)? > 0, "dir2 forwarded nothing");

    // The crashed agent's data plane is still attached and pinned: the one that replaces it
    // (same run directory) takes it over, as a restarted keepalived finds IPVS as it was.
    let (_rejoined, rejoined_run) = dir1.spawn_xlb("xlb", &config(LOW / 2), &["eth0"])?;
    wait_until("dir1 back, on standby", ELECTION, POLL, || {
        dir1.holding(vip, false)?;
        ensure!(!service(&rejoined_run)?.active, "dir1's service active");
        Ok::<_, anyhow::Error>(())
    })?;
    let before = new_flows(&backup_run)?;
    let rejoined_before = new_flows(&rejoined_run)?;
    let answers = topo.client.http_get_many(topo.vip, 10)?;
    ensure!(answers.failures().is_empty(), "{:?}", answers.failures());
    ensure!(
        new_flows(&rejoined_run)? == rejoined_before,
        "dir1 forwarded as backup"
    );
    ensure!(
        new_flows(&backup_run)? >= before + 10,
        "dir2 did not forward every new connection"
    );
    dir2.holding(vip, true)
}

/// The one service of a director's `xlb status`.
fn service(run_dir: &Path) -> anyhow::Result<ServiceStatus> {
    ctl::status(run_dir)?
        .services
        .into_iter()
        .next()
        .context("no service in the status")
}

/// The connections a director's XDP program has scheduled.
fn new_flows(run_dir: &Path) -> anyhow::Result<u64> {
    Ok(service(run_dir)?
        .reals
        .iter()
        .map(|r| r.counters.new_flows)
        .sum())
}
